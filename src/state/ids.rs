//! The id index of one stream: which ids the destination holds live (with the parent references
//! deletes cascade through) and which it has tombstoned — kept compactly beside the state so
//! that reconciliation never re-scans the Parquet history.
//!
//! Contract:
//! - Live ids are kept sorted, each with one value per declared cascade field (`NULL_REF` when
//!   the reference is null); tombstoned ids are kept sorted with when and how they were learned.
//!   An id is live or deleted, never both: a row read again after its tombstone (a child that a
//!   merge moved to another parent between two reads) is live again.
//! - [`IdIndex::encode`] is a small binary format (delta + varint columns, then zstd): about
//!   1-3 bytes per id. [`IdIndex::decode`] refuses anything it did not write, and reads an index
//!   written for other cascade fields with those references unknown (null): a changed
//!   declaration can then miss a cascade, never invent one.
//! - Nothing here does I/O; where the bytes live is the output's business.

use chrono::{DateTime, Utc};

/// A null parent reference.
pub const NULL_REF: i64 = i64::MIN;

const MAGIC: &[u8] = b"GHIDS1\n";
/// zstd level. The index is written at most once per stream commit, but a level-9 context for
/// a large index allocates ~6 MB at the end of each stream's read, where the run's memory peaks;
/// level 3 writes ~15 % more bytes (at simulator scale 50: 951 against 825 KB for all streams).
const ZSTD_LEVEL: i32 = 3;

/// How a delete was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeletedBy {
    /// The id was missing from a complete id listing (or from a full-refresh read).
    Reconcile,
    /// Its parent was deleted, through a declared cascade.
    Cascade,
    /// A Greenhouse webhook named it.
    Webhook,
}

impl DeletedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedBy::Reconcile => "reconcile",
            DeletedBy::Cascade => "cascade",
            DeletedBy::Webhook => "webhook",
        }
    }

    fn code(self) -> u8 {
        match self {
            DeletedBy::Reconcile => 0,
            DeletedBy::Cascade => 1,
            DeletedBy::Webhook => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => DeletedBy::Reconcile,
            1 => DeletedBy::Cascade,
            2 => DeletedBy::Webhook,
            _ => return None,
        })
    }
}

/// One tombstoned id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub id: i64,
    /// When this extractor learned of the delete (microseconds since the epoch).
    pub at_micros: i64,
    pub by: DeletedBy,
    /// The record it was merged into, when known (a candidate merge seen by a webhook).
    pub merged_into: Option<i64>,
}

impl Deleted {
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.at_micros).unwrap_or_default()
    }
}

/// Ids read from the API, with their cascade references: columnar, in read order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    pub ids: Vec<i64>,
    /// One column per cascade field, each as long as `ids` ([`NULL_REF`] for null).
    pub refs: Vec<Vec<i64>>,
}

impl Keys {
    pub fn new(ref_fields: usize) -> Self {
        Keys {
            ids: Vec::new(),
            refs: vec![Vec::new(); ref_fields],
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends `other` (same cascade fields).
    pub fn extend(&mut self, other: Keys) {
        if self.refs.len() < other.refs.len() {
            self.refs
                .resize(other.refs.len(), vec![NULL_REF; self.ids.len()]);
        }
        let n = other.ids.len();
        self.ids.extend(other.ids);
        for (i, col) in self.refs.iter_mut().enumerate() {
            match other.refs.get(i) {
                Some(c) => col.extend_from_slice(c),
                None => col.extend(std::iter::repeat_n(NULL_REF, n)),
            }
        }
    }
}

/// A set of ids held compactly in memory: sorted, without repeats, as varint deltas (1-3 bytes
/// per id for the dense ids Greenhouse hands out, against 8 in a `Vec<i64>` plus its growth
/// slack). A complete read keeps every id it returned until the deletes phase compares them
/// with the index; held as plain vectors, those lists of every stream grew the run's memory
/// with the account's size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    deltas: Vec<u8>,
    len: usize,
}

impl IdSet {
    /// The set of `ids` (any order, repeats allowed).
    pub fn from_ids(mut ids: Vec<i64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        Self::from_sorted(ids.into_iter())
    }

    /// `ids` must ascend strictly.
    fn from_sorted(ids: impl Iterator<Item = i64>) -> Self {
        let mut deltas = Vec::new();
        let mut len = 0;
        let mut prev = 0i64;
        for id in ids {
            // Ascending, so every delta after the first is positive; the first (from 0) may
            // be negative, hence zigzag.
            put_varint(&mut deltas, zigzag(id.wrapping_sub(prev)));
            prev = id;
            len += 1;
        }
        deltas.shrink_to_fit();
        IdSet { deltas, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (what the unit test measures).
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.deltas.capacity()
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let mut r = Reader {
            b: &self.deltas,
            at: 0,
        };
        let mut prev = 0i64;
        (0..self.len).map(move |_| {
            // Only this type writes the bytes, so they always read back.
            prev = prev.wrapping_add(unzigzag(r.varint().unwrap_or(0)));
            prev
        })
    }

    /// This set with `ids` added (any order, repeats allowed).
    pub fn union(&self, ids: Vec<i64>) -> Self {
        self.union_set(&IdSet::from_ids(ids))
    }

    /// The ids of this set and of `other`.
    pub fn union_set(&self, other: &IdSet) -> Self {
        if other.is_empty() {
            return self.clone();
        }
        let (mut a, mut b) = (self.iter().peekable(), other.iter().peekable());
        let merged = std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(&x), Some(&y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(&x), Some(&y)) if x < y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        });
        IdSet::from_sorted(merged)
    }
}

/// Why bytes could not be read as an index.
#[derive(Debug, thiserror::Error)]
#[error("the id index is unreadable ({0})")]
pub struct IndexError(String);

/// See the module contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdIndex {
    ref_fields: Vec<String>,
    ids: Vec<i64>,
    refs: Vec<Vec<i64>>,
    deleted: Vec<Deleted>,
}

impl IdIndex {
    /// An empty index whose live ids carry `ref_fields` (the stream's cascade fields, in order).
    pub fn new(ref_fields: &[String]) -> Self {
        IdIndex {
            ref_fields: ref_fields.to_vec(),
            ids: Vec::new(),
            refs: vec![Vec::new(); ref_fields.len()],
            deleted: Vec::new(),
        }
    }

    pub fn ref_fields(&self) -> &[String] {
        &self.ref_fields
    }

    pub fn live_len(&self) -> usize {
        self.ids.len()
    }

    pub fn deleted_len(&self) -> usize {
        self.deleted.len()
    }

    /// Live ids, ascending.
    pub fn live_ids(&self) -> &[i64] {
        &self.ids
    }

    /// Tombstoned ids, by id.
    pub fn deleted(&self) -> &[Deleted] {
        &self.deleted
    }

    pub fn is_live(&self, id: i64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    pub fn is_deleted(&self, id: i64) -> bool {
        self.deleted.binary_search_by_key(&id, |d| d.id).is_ok()
    }

    /// The value of cascade field `field` of live id `id`.
    pub fn reference(&self, id: i64, field: usize) -> Option<i64> {
        let i = self.ids.binary_search(&id).ok()?;
        let v = *self.refs.get(field)?.get(i)?;
        (v != NULL_REF).then_some(v)
    }

    /// Adds or refreshes live ids (the last occurrence of an id in `keys` wins); an id read again
    /// after its tombstone is live again. Returns how many ids are new to the index.
    pub fn upsert(&mut self, keys: &Keys) -> usize {
        if keys.is_empty() {
            return 0;
        }
        // Sort the new keys by id, keeping the last occurrence (a later page is a later read).
        let mut order: Vec<usize> = (0..keys.ids.len()).collect();
        order.sort_by_key(|&i| (keys.ids[i], std::cmp::Reverse(i)));
        order.dedup_by_key(|i| keys.ids[*i]);
        let k = self.ref_fields.len();
        let new_ref = |i: usize, f: usize| keys.refs.get(f).map_or(NULL_REF, |c| c[i]);

        let mut ids = Vec::with_capacity(self.ids.len() + order.len());
        let mut refs: Vec<Vec<i64>> = vec![Vec::with_capacity(ids.capacity()); k];
        let (mut a, mut b, mut added) = (0usize, 0usize, 0usize);
        while a < self.ids.len() || b < order.len() {
            let take_new = match (self.ids.get(a), order.get(b)) {
                (Some(old), Some(&n)) => {
                    let nid = keys.ids[n];
                    if nid == *old {
                        a += 1; // replaced by the new read
                        true
                    } else {
                        nid < *old
                    }
                }
                (None, Some(_)) => true,
                _ => false,
            };
            if take_new {
                let n = order[b];
                if !self.is_live_at(keys.ids[n], a) {
                    added += 1;
                }
                ids.push(keys.ids[n]);
                for (f, col) in refs.iter_mut().enumerate() {
                    col.push(new_ref(n, f));
                }
                b += 1;
            } else {
                ids.push(self.ids[a]);
                for (f, col) in refs.iter_mut().enumerate() {
                    col.push(self.refs[f][a]);
                }
                a += 1;
            }
        }
        self.ids = ids;
        self.refs = refs;
        // Live again: drop their tombstones.
        if !self.deleted.is_empty() {
            let live = &self.ids;
            self.deleted.retain(|d| live.binary_search(&d.id).is_err());
        }
        added
    }

    /// Whether `id` equals the old live id just consumed (index `a - 1`): used by `upsert` to
    /// count only ids new to the index.
    fn is_live_at(&self, id: i64, a: usize) -> bool {
        a > 0 && self.ids.get(a - 1) == Some(&id)
    }

    /// Tombstones `gone`: each id leaves the live set (when there) and joins the deleted set
    /// unless it is already there. Returns the ones that are new tombstones, in id order.
    pub fn delete(&mut self, mut gone: Vec<Deleted>) -> Vec<Deleted> {
        gone.sort_by_key(|d| d.id);
        gone.dedup_by_key(|d| d.id);
        gone.retain(|d| !self.is_deleted(d.id));
        if gone.is_empty() {
            return gone;
        }
        let remove: Vec<i64> = gone.iter().map(|d| d.id).collect();
        let keep: Vec<bool> = self
            .ids
            .iter()
            .map(|id| remove.binary_search(id).is_err())
            .collect();
        fn kept(col: &[i64], keep: &[bool]) -> Vec<i64> {
            col.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v)
                .collect()
        }
        self.ids = kept(&self.ids, &keep);
        self.refs = self.refs.iter().map(|c| kept(c, &keep)).collect();
        self.deleted.extend(gone.iter().copied());
        self.deleted.sort_by_key(|d| d.id);
        gone
    }

    /// Live ids that are not in `listed` (ascending): what a complete id listing says is gone.
    pub fn missing_from(&self, listed: &IdSet) -> Vec<i64> {
        // Both ascend: one pass over each.
        let mut listed = listed.iter().peekable();
        self.ids
            .iter()
            .copied()
            .filter(|&id| {
                while listed.next_if(|&l| l < id).is_some() {}
                listed.peek() != Some(&id)
            })
            .collect()
    }

    /// Live ids whose cascade field `field` points at one of `parents` (sorted ascending).
    pub fn referencing(&self, field: usize, parents: &[i64]) -> Vec<i64> {
        let Some(col) = self.refs.get(field) else {
            return Vec::new();
        };
        self.ids
            .iter()
            .zip(col)
            .filter(|(_, r)| **r != NULL_REF && parents.binary_search(r).is_ok())
            .map(|(id, _)| *id)
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // Encoding
    // -----------------------------------------------------------------------------------------

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.ids.len() * 3);
        put_varint(&mut b, self.ref_fields.len() as u64);
        for f in &self.ref_fields {
            put_varint(&mut b, f.len() as u64);
            b.extend_from_slice(f.as_bytes());
        }
        put_varint(&mut b, self.ids.len() as u64);
        put_deltas(&mut b, self.ids.iter().copied());
        for col in &self.refs {
            put_nullable_deltas(&mut b, col.iter().map(|v| (*v != NULL_REF).then_some(*v)));
        }
        put_varint(&mut b, self.deleted.len() as u64);
        put_deltas(&mut b, self.deleted.iter().map(|d| d.id));
        put_deltas(&mut b, self.deleted.iter().map(|d| d.at_micros));
        for d in &self.deleted {
            b.push(d.by.code());
        }
        put_nullable_deltas(&mut b, self.deleted.iter().map(|d| d.merged_into));
        let mut out = MAGIC.to_vec();
        out.extend(zstd::bulk::compress(&b, ZSTD_LEVEL).unwrap_or_else(|_| b.clone()));
        out
    }

    /// Reads `bytes` (see the module contract); `ref_fields` are the stream's cascade fields now.
    pub fn decode(bytes: &[u8], ref_fields: &[String]) -> Result<IdIndex, IndexError> {
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| IndexError("not an id index".into()))?;
        let raw = zstd::stream::decode_all(body).map_err(|e| IndexError(e.to_string()))?;
        let mut r = Reader { b: &raw, at: 0 };
        let nf = r.varint()? as usize;
        let mut stored_fields = Vec::with_capacity(nf.min(64));
        for _ in 0..nf {
            let len = r.varint()? as usize;
            let s = r.take(len)?;
            stored_fields.push(String::from_utf8_lossy(s).into_owned());
        }
        let n = r.varint()? as usize;
        let ids = r.deltas(n)?;
        let mut stored_refs = Vec::with_capacity(nf);
        for _ in 0..nf {
            stored_refs.push(
                r.nullable_deltas(n)?
                    .into_iter()
                    .map(|v| v.unwrap_or(NULL_REF))
                    .collect::<Vec<_>>(),
            );
        }
        let nd = r.varint()? as usize;
        let did = r.deltas(nd)?;
        let dat = r.deltas(nd)?;
        let mut by = Vec::with_capacity(nd.min(1 << 20));
        for _ in 0..nd {
            let c = r.take(1)?[0];
            by.push(DeletedBy::from_code(c).ok_or_else(|| IndexError("bad delete kind".into()))?);
        }
        let merged = r.nullable_deltas(nd)?;
        if r.at != raw.len() {
            return Err(IndexError("trailing bytes".into()));
        }
        if !ids.windows(2).all(|w| w[0] < w[1]) || !did.windows(2).all(|w| w[0] < w[1]) {
            return Err(IndexError("ids out of order".into()));
        }
        // References by the current declaration's field names; unknown ones are null.
        let refs = ref_fields
            .iter()
            .map(|f| match stored_fields.iter().position(|s| s == f) {
                Some(i) => stored_refs[i].clone(),
                None => vec![NULL_REF; n],
            })
            .collect();
        let deleted = (0..nd)
            .map(|i| Deleted {
                id: did[i],
                at_micros: dat[i],
                by: by[i],
                merged_into: merged[i],
            })
            .collect();
        Ok(IdIndex {
            ref_fields: ref_fields.to_vec(),
            ids,
            refs,
            deleted,
        })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_deltas(b: &mut Vec<u8>, values: impl Iterator<Item = i64>) {
    let mut prev = 0i64;
    for v in values {
        put_varint(b, zigzag(v.wrapping_sub(prev)));
        prev = v;
    }
}

/// 0 for null, else zigzag(delta from the previous non-null value) + 1.
fn put_nullable_deltas(b: &mut Vec<u8>, values: impl Iterator<Item = Option<i64>>) {
    let mut prev = 0i64;
    for v in values {
        match v {
            None => put_varint(b, 0),
            Some(v) => {
                put_varint(b, zigzag(v.wrapping_sub(prev)).wrapping_add(1));
                prev = v;
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], IndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| IndexError("truncated".into()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, IndexError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(IndexError("bad varint".into()))
    }

    fn deltas(&mut self, n: usize) -> Result<Vec<i64>, IndexError> {
        let mut out = Vec::with_capacity(n.min(1 << 24));
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(self.varint()?));
            out.push(prev);
        }
        Ok(out)
    }

    fn nullable_deltas(&mut self, n: usize) -> Result<Vec<Option<i64>>, IndexError> {
        let mut out = Vec::with_capacity(n.min(1 << 24));
        let mut prev = 0i64;
        for _ in 0..n {
            match self.varint()? {
                0 => out.push(None),
                v => {
                    prev = prev.wrapping_add(unzigzag(v - 1));
                    out.push(Some(prev));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(rows: &[(i64, Option<i64>)]) -> Keys {
        Keys {
            ids: rows.iter().map(|r| r.0).collect(),
            refs: vec![rows.iter().map(|r| r.1.unwrap_or(NULL_REF)).collect()],
        }
    }

    fn del(id: i64, by: DeletedBy) -> Deleted {
        Deleted {
            id,
            at_micros: 1_700_000_000_000_000 + id,
            by,
            merged_into: (by == DeletedBy::Webhook).then_some(id + 1),
        }
    }

    fn fields() -> Vec<String> {
        vec!["candidate_id".to_string()]
    }

    #[test]
    fn upsert_keeps_ids_sorted_and_the_latest_reference() {
        let mut ix = IdIndex::new(&fields());
        assert_eq!(
            ix.upsert(&keys(&[(30, Some(3)), (10, Some(1)), (20, None)])),
            3
        );
        assert_eq!(ix.live_ids(), &[10, 20, 30]);
        // 10 moves to parent 9 (a merge), 40 is new, 30 twice: the later read wins.
        assert_eq!(
            ix.upsert(&keys(&[
                (40, Some(4)),
                (30, Some(5)),
                (10, Some(9)),
                (30, Some(6))
            ])),
            1
        );
        assert_eq!(ix.live_ids(), &[10, 20, 30, 40]);
        assert_eq!(ix.reference(10, 0), Some(9));
        assert_eq!(ix.reference(20, 0), None);
        assert_eq!(ix.reference(30, 0), Some(6));
        assert_eq!(ix.referencing(0, &[4, 9]), vec![10, 40]);
    }

    #[test]
    fn delete_is_idempotent_and_a_reread_id_is_live_again() {
        let mut ix = IdIndex::new(&fields());
        ix.upsert(&keys(&[(1, Some(7)), (2, Some(7)), (3, Some(8))]));
        assert_eq!(
            ix.missing_from(&IdSet::from_ids(vec![99, 3, 3])),
            vec![1, 2]
        );
        let new = ix.delete(vec![
            del(2, DeletedBy::Reconcile),
            del(1, DeletedBy::Cascade),
        ]);
        assert_eq!(new.len(), 2);
        assert!(ix.delete(vec![del(2, DeletedBy::Webhook)]).is_empty());
        assert_eq!(ix.live_ids(), &[3]);
        assert!(ix.is_deleted(1) && ix.is_deleted(2) && !ix.is_deleted(3));
        ix.upsert(&keys(&[(2, Some(8))]));
        assert!(ix.is_live(2) && !ix.is_deleted(2));
        assert_eq!(ix.reference(3, 0), Some(8));
    }

    #[test]
    fn an_id_set_keeps_each_id_once_ascending_in_a_few_bytes_each() {
        let set = IdSet::from_ids(vec![5, -3, 5, 1 << 40, 0]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![-3, 0, 5, 1 << 40]);
        assert_eq!(set.len(), 4);
        let set = set.union(vec![7, 5, i64::MIN, i64::MAX]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![i64::MIN, -3, 0, 5, 7, 1 << 40, i64::MAX]
        );
        assert_eq!(set.len(), 7);
        assert!(IdSet::default().is_empty());
        assert_eq!(IdSet::default().union(vec![2, 1]).len(), 2);
        // Two sets: each id once, either side empty.
        let other = IdSet::from_ids(vec![6, 5, -4]);
        assert_eq!(
            set.union_set(&other).iter().collect::<Vec<_>>(),
            vec![i64::MIN, -4, -3, 0, 5, 6, 7, 1 << 40, i64::MAX]
        );
        assert_eq!(set.union_set(&IdSet::default()), set);
        assert_eq!(IdSet::default().union_set(&other), other);
        // Dense ids descending, as pages bring them: one byte each after the first.
        let dense = IdSet::from_ids((1_000_000..1_100_000).rev().collect());
        assert_eq!(dense.len(), 100_000);
        assert!(dense.held_bytes() < 100_010, "{}", dense.held_bytes());
        assert!(dense.iter().eq(1_000_000..1_100_000));
    }

    #[test]
    fn encode_decode_round_trips_compactly() {
        let mut ix = IdIndex::new(&fields());
        let rows: Vec<(i64, Option<i64>)> = (0..10_000i64)
            .map(|i| {
                (
                    4_000_000_000 + i * 128 + 1,
                    (i % 7 != 0).then_some(4_000_000_013 + i),
                )
            })
            .collect();
        ix.upsert(&keys(&rows));
        ix.delete(vec![
            del(4_000_000_001, DeletedBy::Reconcile),
            del(4_000_000_129, DeletedBy::Webhook),
            del(5, DeletedBy::Cascade),
        ]);
        let bytes = ix.encode();
        assert!(bytes.len() < 10_000 * 3, "{} bytes", bytes.len());
        let back = IdIndex::decode(&bytes, &fields()).unwrap();
        assert_eq!(back, ix);
        // Another declaration: references unknown, never invented.
        let other = IdIndex::decode(&bytes, &["application_id".to_string()]).unwrap();
        assert_eq!(other.live_ids(), ix.live_ids());
        assert_eq!(other.referencing(0, &[4_000_000_014]), Vec::<i64>::new());
    }

    #[test]
    fn decode_refuses_foreign_or_damaged_bytes() {
        assert!(IdIndex::decode(b"{}", &fields()).is_err());
        let mut ix = IdIndex::new(&fields());
        ix.upsert(&keys(&[(1, None), (2, Some(3))]));
        let bytes = ix.encode();
        assert!(IdIndex::decode(&bytes[..bytes.len() - 3], &fields()).is_err());
        let mut junk = MAGIC.to_vec();
        junk.extend(zstd::bulk::compress(&[200, 200, 200], 1).unwrap());
        assert!(IdIndex::decode(&junk, &fields()).is_err());
    }
}
