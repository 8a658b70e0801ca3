//! The writers' memory budget (`writer_memory_bytes`): one configured bound on what a sync's
//! writers hold at once, split once per run between the raw Parquet files and the
//! current-table merges, so that memory follows the configuration, not the account's size.
//!
//! Contract:
//! - The raw files get up to half of the budget: each of the `concurrency` files open at once
//!   holds its upload buffer and a row group in progress of [`WriterMemory::row_group_bytes`]
//!   encoded bytes, at least [`MIN_ROW_GROUP_BYTES`] (smaller row groups cost readers more
//!   than they save) and at most [`crate::sink::MAX_IN_PROGRESS_BYTES`].
//! - The merges get the rest, [`MERGES_AT_ONCE`] at a time: a merge round holds
//!   at most [`WriterMemory::round_bytes`] of changed rows, half its share (the other half is
//!   for the group of files it rewrites and the rows it is encoding).
//! - A configured budget too small for that is refused when the configuration is validated,
//!   naming the smallest that fits; the default grows with `concurrency` to fit it.
//! - What the budget does not cover: the pages being fetched and converted (two per chain,
//!   bounded by `per_page` and `max_page_bytes`), the runtime, and the allocator's slack.

use crate::sink::MAX_IN_PROGRESS_BYTES;

/// Merges of different streams' tables that run at the same time (one per core of the 2-core
/// machines this is measured on; each holds at most a round of changes and one group of files).
pub const MERGES_AT_ONCE: usize = 2;

/// The default budget (when `concurrency` needs no more): 64 MiB.
pub const DEFAULT_WRITER_MEMORY_BYTES: u64 = 64 << 20;
/// The smallest row group in progress a raw file is given.
pub const MIN_ROW_GROUP_BYTES: usize = 1 << 20;
/// The smallest merge round (bytes of changed rows); a round always takes at least one batch.
pub const MIN_ROUND_BYTES: usize = 1 << 20;

/// The budget as each writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterMemory {
    /// The whole budget, in bytes.
    pub total: u64,
    /// Encoded bytes a raw file's row group in progress may reach before it is flushed.
    pub row_group_bytes: usize,
    /// Bytes of changed rows a merge round holds before it is merged.
    pub round_bytes: usize,
}

impl WriterMemory {
    /// The smallest budget that fits `concurrency` open files with `upload_buffer` each.
    pub fn minimum(concurrency: usize, upload_buffer: usize) -> u64 {
        (concurrency * (upload_buffer + MIN_ROW_GROUP_BYTES) + MERGES_AT_ONCE * 2 * MIN_ROUND_BYTES)
            as u64
    }

    /// The budget when none is configured: the default, or the minimum when `concurrency`
    /// needs more.
    pub fn default_for(concurrency: usize, upload_buffer: usize) -> Self {
        let total = DEFAULT_WRITER_MEMORY_BYTES.max(Self::minimum(concurrency, upload_buffer));
        Self::split(total, concurrency, upload_buffer)
            .unwrap_or_else(|_| unreachable!("the minimum budget always splits"))
    }

    /// Splits `total` between `concurrency` open raw files (each with an upload buffer of
    /// `upload_buffer` bytes) and the merges; `Err` says why it cannot.
    pub fn split(total: u64, concurrency: usize, upload_buffer: usize) -> Result<Self, String> {
        let concurrency = concurrency.max(1);
        let minimum = Self::minimum(concurrency, upload_buffer);
        if total < minimum {
            return Err(format!(
                "writer_memory_bytes is {total} but {concurrency} open files (concurrency) and \
                 {MERGES_AT_ONCE} merges need at least {minimum} ({} MiB): each file holds a {} MiB \
                 upload buffer and a row group of at least {} MiB, each merge at least {} MiB",
                minimum.div_ceil(1 << 20),
                upload_buffer >> 20,
                MIN_ROW_GROUP_BYTES >> 20,
                (2 * MIN_ROUND_BYTES) >> 20,
            ));
        }
        let per_file = (total / 2) as usize / concurrency;
        let row_group_bytes = per_file
            .saturating_sub(upload_buffer)
            .clamp(MIN_ROW_GROUP_BYTES, MAX_IN_PROGRESS_BYTES);
        let merges = total as usize - concurrency * (upload_buffer + row_group_bytes);
        Ok(WriterMemory {
            total,
            row_group_bytes,
            round_bytes: (merges / MERGES_AT_ONCE / 2).max(MIN_ROUND_BYTES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPLOAD: usize = 5 << 20;

    /// Everything the budget pays for, which must never exceed it.
    fn spent(m: &WriterMemory, concurrency: usize) -> usize {
        concurrency * (m.row_group_bytes + UPLOAD) + MERGES_AT_ONCE * 2 * m.round_bytes
    }

    #[test]
    fn the_default_budget_splits_between_raw_files_and_merges() {
        let m = WriterMemory::default_for(6, UPLOAD);
        assert_eq!(m.total, DEFAULT_WRITER_MEMORY_BYTES);
        // 32 MiB for 6 files leaves 0.33 MiB of row group each: they get the 1 MiB floor.
        assert_eq!(m.row_group_bytes, MIN_ROW_GROUP_BYTES);
        // 64 - 36 = 28 MiB for 2 merges, half of each share for the changes.
        assert_eq!(m.round_bytes, 7 << 20);
        assert!(spent(&m, 6) <= m.total as usize);
        // Fewer files: larger row groups, capped.
        let m = WriterMemory::split(1 << 30, 2, UPLOAD).unwrap();
        assert_eq!(m.row_group_bytes, MAX_IN_PROGRESS_BYTES);
        assert!(spent(&m, 2) <= m.total as usize);
    }

    #[test]
    fn a_budget_too_small_for_the_open_files_is_refused() {
        let e = WriterMemory::split(32 << 20, 6, UPLOAD).unwrap_err();
        assert!(e.contains("concurrency") && e.contains("40 MiB"), "{e}");
        let fits = WriterMemory::split(WriterMemory::minimum(6, UPLOAD), 6, UPLOAD).unwrap();
        assert!(spent(&fits, 6) <= fits.total as usize);
        // The default grows with the concurrency rather than refusing it.
        let wide = WriterMemory::default_for(64, UPLOAD);
        assert_eq!(wide.total, WriterMemory::minimum(64, UPLOAD));
    }
}
