//! Query parameters of `GET /v3/<resource>`: validation, filters and opaque cursors.
//!
//! Contract (harvest-v3.md §5, §6, §13): every parameter must be known for the resource
//! (else 422 `Invalid query params: <name>`); `per_page` is 1–500 (default 100); `ids` and
//! every `*_ids` list hold ≤ 50 comma-separated integers; dates use the pipe grammar
//! `op|value(|op|value)` with `gte|lte|gt|lt`; booleans are `true|false`; enums are checked.
//! A `cursor` must be the only parameter; it carries the original parameters, `per_page`,
//! the last id returned and its issue time, signed with a seed-derived key so tampering is a
//! 422.  A parsed `Query` is turned into `Cond`itions evaluated by `page`.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::cf_defs;
use super::data::Db;
use super::json::Millis;
use super::model::{self, R};
use super::rng::hash;

/// A 422 body.
pub type Reject = Value;

fn unprocessable(errors: Value) -> Reject {
    json!({"message": "Unprocessable Content", "errors": errors})
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gte,
    Lte,
    Gt,
    Lt,
}

impl Op {
    pub fn holds(self, v: Millis, bound: Millis) -> bool {
        match self {
            Op::Gte => v >= bound,
            Op::Lte => v <= bound,
            Op::Gt => v > bound,
            Op::Lt => v < bound,
        }
    }
}

/// One filter condition.  `Fast*` conditions use the compact state only; the rest inspect
/// the rendered row.
#[derive(Debug, Clone)]
pub enum Cond {
    FastIds(HashSet<i64>),
    FastParent(HashSet<i64>),
    FastCreated(Vec<(Op, Millis)>),
    FastUpdated(Vec<(Op, Millis)>),
    /// Date(-time) field of the row; date-only values compare at midnight UTC.
    Date(String, Vec<(Op, Millis)>),
    Bool(String, bool),
    /// `<x>_ids`: the row's `<x>_id`, `<x>_ids` or `<x>s[].id` is in the set.
    IdIn(String, HashSet<i64>),
    Str(String, String, bool),
    Enum(String, String),
    /// Custom field option: (map key, field name_key, option name).
    CustomOption(&'static str, String, String),
    CustomFieldKey(String),
    HideServiceAccounts,
    HideDefaultReasons,
    CurrentOnly(bool),
    Email(String),
    Tag(String),
    Never,
}

#[derive(Debug, Clone)]
pub struct Query {
    pub r: R,
    pub per_page: usize,
    pub conds: Vec<Cond>,
    pub fields: Option<HashSet<String>>,
    /// The validated parameters (without `per_page`), replayed from cursors.
    pub params: Vec<(String, String)>,
    /// Keyset: only ids below this one (from a cursor).
    pub before_id: Option<i64>,
    /// Whether the request carried a cursor, and when that cursor was issued (epoch s).
    pub cursor_issued: Option<u64>,
}

/// Kind of a resource-specific filter, parsed from the `model` spec grammar:
/// `x_ids` (id list), `name:d` (date), `name:b` (bool), `name:s`/`name:si` (string,
/// case-(in)sensitive), `name:id` (single id), `name=a|b` (enum), bare word (special).
#[derive(Debug, Clone)]
enum Kind {
    Ids,
    Date,
    Bool,
    Str(bool),
    SingleId,
    Enum(Vec<String>),
    Special,
}

fn spec(r: R) -> Vec<(String, Kind)> {
    let d = model::def(r);
    let mut out: Vec<(String, Kind)> = vec![("ids".into(), Kind::Ids)];
    if d.dates {
        out.push(("created_at".into(), Kind::Date));
        out.push(("updated_at".into(), Kind::Date));
    }
    for tok in d.filters.split_whitespace() {
        let item = if let Some((n, vals)) = tok.split_once('=') {
            (
                n.to_string(),
                Kind::Enum(vals.split('|').map(str::to_string).collect()),
            )
        } else if let Some((n, k)) = tok.split_once(':') {
            let kind = match k {
                "d" => Kind::Date,
                "b" => Kind::Bool,
                "s" => Kind::Str(false),
                "si" => Kind::Str(true),
                _ => Kind::SingleId,
            };
            (n.to_string(), kind)
        } else if tok.ends_with("_ids") {
            (tok.to_string(), Kind::Ids)
        } else {
            (tok.to_string(), Kind::Special)
        };
        out.push(item);
    }
    out
}

/// The parameter names a resource accepts (for docs and tests).
pub fn accepted_params(r: R) -> Vec<String> {
    let mut v: Vec<String> = spec(r).into_iter().map(|(n, _)| n).collect();
    v.extend(["per_page", "cursor", "fields"].map(String::from));
    v
}

fn parse_ts(v: &str) -> Option<Millis> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// `gte|2024-01-01T00:00:00Z|lt|2024-02-01T00:00:00Z` → bounds.
pub fn parse_date_filter(name: &str, v: &str) -> Result<Vec<(Op, Millis)>, Reject> {
    let bad = || {
        unprocessable(
            json!([{ name: format!("`{v}` is not a valid date filter (expected op|ISO-8601 with op in gte, lte, gt, lt)") }]),
        )
    };
    let parts: Vec<&str> = v.split('|').collect();
    if parts.len() != 2 && parts.len() != 4 {
        return Err(bad());
    }
    let mut out = Vec::new();
    for pair in parts.chunks(2) {
        let op = match pair[0] {
            "gte" => Op::Gte,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "lt" => Op::Lt,
            _ => return Err(bad()),
        };
        out.push((op, parse_ts(pair[1]).ok_or_else(bad)?));
    }
    Ok(out)
}

fn parse_ids(name: &str, v: &str) -> Result<HashSet<i64>, Reject> {
    let items: Vec<&str> = v.split(',').map(str::trim).collect();
    if items.len() > 50 {
        return Err(unprocessable(
            json!([{ name: format!("`{}` ids given; the maximum is 50", items.len()) }]),
        ));
    }
    items
        .iter()
        .map(|s| s.parse::<i64>())
        .collect::<Result<HashSet<_>, _>>()
        .map_err(|_| {
            unprocessable(
                json!([{ name: format!("`{v}` is not a comma-separated list of integers") }]),
            )
        })
}

fn parse_bool(name: &str, v: &str) -> Result<bool, Reject> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(unprocessable(
            json!([{ name: format!("`{v}` is not a boolean (true|false)") }]),
        )),
    }
}

/// Parses a request's raw query string.
pub fn parse(db: &Db, r: R, raw: &str, secret: u64) -> Result<Query, Reject> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    if pairs.iter().any(|(k, _)| k == "cursor") {
        if pairs.len() > 1 {
            return Err(unprocessable(json!([
                "When passing a cursor, do not include other query params."
            ])));
        }
        let c = decode_cursor(&pairs[0].1, secret, r)
            .ok_or_else(|| unprocessable(json!(["Invalid cursor."])))?;
        let mut q = parse_pairs(db, r, &c.params, Some(c.per_page))?;
        q.before_id = Some(c.last_id);
        q.cursor_issued = Some(c.issued);
        return Ok(q);
    }
    parse_pairs(db, r, &pairs, None)
}

fn parse_pairs(
    db: &Db,
    r: R,
    pairs: &[(String, String)],
    per_page: Option<usize>,
) -> Result<Query, Reject> {
    let spec = spec(r);
    let unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !matches!(*k, "per_page" | "fields") && !spec.iter().any(|(n, _)| n == k))
        .collect();
    if !unknown.is_empty() {
        return Err(unprocessable(json!([format!(
            "Invalid query params: {}",
            unknown.join(", ")
        )])));
    }
    let mut seen = HashSet::new();
    for (k, _) in pairs {
        if !seen.insert(k.as_str()) {
            return Err(unprocessable(
                json!([{ k.as_str(): "parameter given more than once" }]),
            ));
        }
    }
    let mut q = Query {
        r,
        per_page: per_page.unwrap_or(100),
        conds: Vec::new(),
        fields: None,
        params: Vec::new(),
        before_id: None,
        cursor_issued: None,
    };
    let parent_field = model::def(r).parent_field;
    let mut show_service = false;
    let mut include_defaults = false;
    let mut active_given = false;
    for (k, v) in pairs {
        if k == "per_page" {
            q.per_page = parse_per_page(v)?;
            continue;
        }
        q.params.push((k.clone(), v.clone()));
        if k == "fields" {
            let f: HashSet<String> = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if f.len() > 50 {
                return Err(unprocessable(json!([{ "fields": "at most 50 fields" }])));
            }
            q.fields = Some(f);
            continue;
        }
        let kind = spec
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, kd)| kd.clone())
            .unwrap_or(Kind::Special);
        let cond = match kind {
            Kind::Ids => {
                let set = parse_ids(k, v)?;
                let base = k.trim_end_matches("_ids");
                if k == "ids" {
                    Cond::FastIds(set)
                } else if !parent_field.is_empty() && parent_field == format!("{base}_id") {
                    Cond::FastParent(set)
                } else {
                    Cond::IdIn(base.to_string(), set)
                }
            }
            Kind::Date => {
                let b = parse_date_filter(k, v)?;
                match k.as_str() {
                    "created_at" => Cond::FastCreated(b),
                    "updated_at" => Cond::FastUpdated(b),
                    _ => Cond::Date(k.clone(), b),
                }
            }
            Kind::Bool => {
                let b = parse_bool(k, v)?;
                if k == "active" {
                    active_given = true;
                }
                Cond::Bool(k.clone(), b)
            }
            Kind::Str(ci) => Cond::Str(k.clone(), v.clone(), ci),
            Kind::SingleId => {
                let id: i64 = v.parse().map_err(|_| {
                    unprocessable(json!([{ k.as_str(): format!("`{v}` is not a valid integer") }]))
                })?;
                Cond::IdIn(
                    k.trim_end_matches("_id").to_string(),
                    [id].into_iter().collect(),
                )
            }
            Kind::Enum(vals) => {
                if !vals.iter().any(|x| x == v) {
                    return Err(unprocessable(
                        json!([{ k.as_str(): format!("`{v}` is not one of: {}", vals.join(", ")) }]),
                    ));
                }
                let val = if r == R::Applications && k == "status" && v == "active" {
                    "in_process".to_string()
                } else {
                    v.clone()
                };
                Cond::Enum(k.clone(), val)
            }
            Kind::Special => match k.as_str() {
                "show_service_accounts" => {
                    show_service = parse_bool(k, v)?;
                    continue;
                }
                "include_defaults" => {
                    include_defaults = parse_bool(k, v)?;
                    continue;
                }
                "current_only" => Cond::CurrentOnly(parse_bool(k, v)?),
                "email" => Cond::Email(v.to_lowercase()),
                "tag" => Cond::Tag(v.clone()),
                "custom_field_key" => Cond::CustomFieldKey(v.clone()),
                "custom_field_option_id" => custom_option_cond(db, r, k, v)?,
                "external_office_id" | "external_department_id" => external_cond(db, k, v),
                _ => return Err(unprocessable(json!([format!("Invalid query params: {k}")]))),
            },
        };
        q.conds.push(cond);
    }
    if r == R::Users && !show_service {
        q.conds.push(Cond::HideServiceAccounts);
    }
    if r == R::RejectionReasons && !include_defaults {
        q.conds.push(Cond::HideDefaultReasons);
    }
    if r == R::JobPosts && !active_given {
        // Deleted (inactive) posts are hidden unless `active=false` is asked for.
        q.conds.push(Cond::Bool("active".into(), true));
    }
    Ok(q)
}

fn parse_per_page(v: &str) -> Result<usize, Reject> {
    let n: i64 = v.parse().map_err(|_| {
        unprocessable(json!([{ "per_page": format!("`{v}` is not a valid integer") }]))
    })?;
    if n > 500 {
        return Err(unprocessable(
            json!([{ "per_page": format!("`{n}` number is greater than: 500") }]),
        ));
    }
    if n < 1 {
        return Err(unprocessable(
            json!([{ "per_page": format!("`{n}` number is less than: 1") }]),
        ));
    }
    Ok(n as usize)
}

fn custom_option_cond(db: &Db, r: R, k: &str, v: &str) -> Result<Cond, Reject> {
    let id: i64 = v
        .parse()
        .map_err(|_| unprocessable(json!([{ k: format!("`{v}` is not a valid integer") }])))?;
    let map = if r == R::RejectionDetails {
        "question_custom_fields"
    } else {
        "custom_fields"
    };
    let Some(idx) =
        model::idx_of(R::CustomFieldOptions, id).filter(|i| db.is_alive(R::CustomFieldOptions, *i))
    else {
        return Ok(Cond::Never);
    };
    let def = db.parent_of(R::CustomFieldOptions, idx).unwrap_or(0) as usize;
    let row: Value =
        serde_json::from_str(&db.row_json(R::CustomFieldOptions, idx)).unwrap_or(Value::Null);
    let name = row["name"].as_str().unwrap_or_default().to_string();
    match cf_defs::DEFS.get(def) {
        Some(d) => Ok(Cond::CustomOption(map, d.key.to_string(), name)),
        None => Ok(Cond::Never),
    }
}

/// `external_office_id` / `external_department_id` on users: match users whose office (or
/// department) ids include one with that `external_id`.
fn external_cond(db: &Db, k: &str, v: &str) -> Cond {
    let (res, field) = if k == "external_office_id" {
        (R::Offices, "office")
    } else {
        (R::Departments, "department")
    };
    let t = db.t(res);
    let ids: HashSet<i64> = (0..t.len())
        .filter(|i| db.is_alive(res, *i))
        .filter(|i| {
            let row: Value = serde_json::from_str(&db.row_json(res, *i)).unwrap_or(Value::Null);
            row["external_id"].as_str() == Some(v)
        })
        .map(|i| model::id_of(res, i))
        .collect();
    Cond::IdIn(field.to_string(), ids)
}

pub struct CursorState {
    pub params: Vec<(String, String)>,
    pub per_page: usize,
    pub last_id: i64,
    pub issued: u64,
}

fn mac(secret: u64, payload: &[u8]) -> u64 {
    let mut h = hash(&[secret, payload.len() as u64]);
    for chunk in payload.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = hash(&[h, u64::from_le_bytes(b)]);
    }
    h
}

pub fn encode_cursor(q: &Query, last_id: i64, issued: u64, secret: u64) -> String {
    let payload =
        json!({"r": q.r.name(), "p": q.params, "n": q.per_page, "a": last_id, "t": issued})
            .to_string();
    let mut bytes = mac(secret, payload.as_bytes()).to_le_bytes().to_vec();
    bytes.extend_from_slice(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(s: &str, secret: u64, r: R) -> Option<CursorState> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
    if bytes.len() <= 8 {
        return None;
    }
    let (m, payload) = bytes.split_at(8);
    if u64::from_le_bytes(m.try_into().ok()?) != mac(secret, payload) {
        return None;
    }
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v["r"].as_str()? != r.name() {
        return None;
    }
    let params = v["p"]
        .as_array()?
        .iter()
        .map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect::<Option<Vec<_>>>()?;
    Some(CursorState {
        params,
        per_page: v["n"].as_u64()? as usize,
        last_id: v["a"].as_i64()?,
        issued: v["t"].as_u64()?,
    })
}
