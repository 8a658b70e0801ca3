//! Which data files of a current-state table a change touches: the table's files are kept
//! clustered by id, so that a change rewrites only the files that own its ids.
//!
//! Ownership: every file covers the id range from its smallest id up to (not including) the
//! smallest id of the next file in id order; the first file also owns every id below it. A
//! changed or deleted id therefore has exactly one owner when the files' ranges are disjoint
//! (as this module keeps them), and every file whose `[min, max]` contains it when they are not
//! (files written by another writer, an `OPTIMIZE` from Spark): all of those are rewritten, so
//! the result is right whatever the layout, and only the cost depends on it.
//!
//! A merge round takes the changed ids (sorted), rewrites their owners with the owned changes,
//! and cuts each rewritten range into files of at most `target_rows` rows. New ids above every
//! file go to the last file (the "top" of the table), so inserts rewrite one small file rather
//! than opening a new one per run — unless that file already holds `full_rows`: then they
//! start new files above it (and ids below every file new files below a full first file), so
//! that a large load merged in rounds (a first sync reads ids descending) writes each row once
//! instead of rewriting the table's edge file every round.

/// Rows per data file of a current table.
pub const TARGET_ROWS: usize = 25_000;
/// Rows per row group of a data file: a change is checked against the row groups that can
/// hold its ids, so a re-read of unchanged records decodes a few row groups, not the file.
pub const ROW_GROUP_ROWS: usize = 8_192;
/// Rows per data page (at most): the unit a row check decompresses.
pub const PAGE_ROWS: usize = 1_024;

/// One data file of the table, as its `add` action describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRange {
    pub path: String,
    pub min_id: i64,
    pub max_id: i64,
    pub rows: u64,
    /// Bytes of the file.
    pub size: u64,
}

/// What a merge round rewrites: groups of files, each rewritten together with the changed ids
/// it owns (indices into the file list and into the sorted changed ids).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Files rewritten (their rows, minus the changed ids, go into the new files).
    pub files: Vec<usize>,
    /// The changed ids (as positions in the sorted change list) this group owns.
    pub changes: std::ops::Range<usize>,
}

/// Plans one merge round: `files` as the table lists them (any order), `changed` sorted and
/// without duplicates; an edge file with `full_rows` or more takes no ids beyond its range.
/// An empty table puts every change into one group with no file.
pub fn plan(files: &[FileRange], changed: &[i64], full_rows: u64) -> Plan {
    if changed.is_empty() {
        return Plan::default();
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| (files[i].min_id, files[i].max_id));
    if order.is_empty() {
        return Plan {
            groups: vec![Group {
                files: Vec::new(),
                changes: 0..changed.len(),
            }],
        };
    }
    // The owner of each change: the last file (in min-id order) whose min is ≤ the id, or the
    // first file for ids below every file.
    let owner = |id: i64| -> usize {
        let pos = order.partition_point(|&i| files[i].min_id <= id);
        pos.saturating_sub(1)
    };
    // Files whose [min, max] reaches past the next file's min overlap it: every change inside
    // such a range also touches the overlapping files, so they are rewritten together.
    // Ids beyond every file, next to a full edge file: new files of their own.
    let lowest = &files[order[0]];
    let highest = files.iter().map(|f| f.max_id).max().unwrap_or(i64::MAX);
    let top_full = files
        .iter()
        .filter(|f| f.max_id == highest)
        .all(|f| f.rows >= full_rows);
    let beyond =
        |id: i64| (id < lowest.min_id && lowest.rows >= full_rows) || (id > highest && top_full);
    let mut groups: Vec<Group> = Vec::new();
    let mut start = 0;
    while start < changed.len() {
        if beyond(changed[start]) {
            let below = changed[start] < lowest.min_id;
            let mut end = start;
            while end < changed.len()
                && beyond(changed[end])
                && (changed[end] < lowest.min_id) == below
            {
                end += 1;
            }
            groups.push(Group {
                files: Vec::new(),
                changes: start..end,
            });
            start = end;
            continue;
        }
        let first = owner(changed[start]);
        let mut end = start;
        while end < changed.len() && owner(changed[end]) == first {
            end += 1;
        }
        let mut members = vec![order[first]];
        // Overlaps: any other file whose [min, max] holds one of these ids.
        for &i in &order {
            if i == order[first] {
                continue;
            }
            let f = &files[i];
            let lo = changed[start..end].partition_point(|&id| id < f.min_id);
            if lo < end - start && changed[start + lo] <= f.max_id {
                members.push(i);
            }
        }
        members.sort_unstable();
        // Merge with an earlier group sharing a file (overlapping layouts only), and with every
        // group after it, so that each group's changes stay one contiguous run.
        if let Some(k) = groups
            .iter()
            .position(|g| g.files.iter().any(|f| members.contains(f)))
        {
            let mut merged = Group {
                files: members,
                changes: groups[k].changes.start..end,
            };
            for g in groups.drain(k..) {
                merged.files.extend(g.files);
            }
            merged.files.sort_unstable();
            merged.files.dedup();
            groups.push(merged);
        } else {
            groups.push(Group {
                files: members,
                changes: start..end,
            });
        }
        start = end;
    }
    Plan { groups }
}

/// How many files `rows` rows become at `target_rows` per file (at least one), and the size of
/// each: as even as possible, so that no tiny remainder file is left.
pub fn cut(rows: usize, target_rows: usize) -> Vec<usize> {
    if rows == 0 {
        return Vec::new();
    }
    let target = target_rows.max(1);
    let n = rows.div_ceil(target);
    let base = rows / n;
    let extra = rows % n;
    (0..n).map(|i| base + usize::from(i < extra)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, min_id: i64, max_id: i64) -> FileRange {
        FileRange {
            path: path.into(),
            min_id,
            max_id,
            rows: (max_id - min_id + 1) as u64,
            size: 0,
        }
    }

    #[test]
    fn an_empty_table_takes_every_change_in_one_group() {
        let p = plan(&[], &[1, 5, 9], u64::MAX);
        assert_eq!(
            p.groups,
            vec![Group {
                files: vec![],
                changes: 0..3
            }]
        );
        assert_eq!(plan(&[f("a", 1, 2)], &[], u64::MAX), Plan::default());
    }

    #[test]
    fn changes_go_to_the_files_that_own_them_and_no_other() {
        // Files listed out of order; ids 1..=10, 20..=30, 40..=50.
        let files = [f("c", 40, 50), f("a", 1, 10), f("b", 20, 30)];
        // 5 → a; 15 (a gap) → a; 25 → b; 60 (above all) → c; nothing for the others.
        let p = plan(&files, &[5, 15, 25, 60], u64::MAX);
        assert_eq!(
            p.groups,
            vec![
                Group {
                    files: vec![1],
                    changes: 0..2
                },
                Group {
                    files: vec![2],
                    changes: 2..3
                },
                Group {
                    files: vec![0],
                    changes: 3..4
                },
            ]
        );
        // Below every file: the first file owns it.
        assert_eq!(plan(&files, &[-3], u64::MAX).groups[0].files, vec![1]);
    }

    #[test]
    fn ids_beyond_a_full_edge_file_start_new_files() {
        // a: 1..=10 (10 rows), b: 20..=30 (11 rows); full from 10 rows on.
        let files = [f("b", 20, 30), f("a", 1, 10)];
        let p = plan(&files, &[-5, -1, 5, 40, 41], 10);
        assert_eq!(
            p.groups,
            vec![
                Group {
                    files: vec![],
                    changes: 0..2
                },
                Group {
                    files: vec![1],
                    changes: 2..3
                },
                Group {
                    files: vec![],
                    changes: 3..5
                },
            ]
        );
        // Not full yet: the edge files take them, as before.
        let p = plan(&files, &[-5, 40], 12);
        assert_eq!(p.groups[0].files, vec![1]);
        assert_eq!(p.groups[1].files, vec![0]);
    }

    #[test]
    fn overlapping_files_are_rewritten_together() {
        // b overlaps a (an outside writer's layout): an id in both ranges touches both.
        let files = [f("a", 1, 20), f("b", 10, 30), f("c", 40, 50)];
        let p = plan(&files, &[12, 45], u64::MAX);
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[0].files, vec![0, 1]);
        assert_eq!(p.groups[1].files, vec![2]);
        // 5 is owned by a and lies in no other range; 15 is in both.
        let p = plan(&files, &[5, 15], u64::MAX);
        assert_eq!(p.groups.len(), 1);
        assert_eq!(p.groups[0].files, vec![0, 1]);
        assert_eq!(p.groups[0].changes, 0..2);
        // A later overlap folds the groups in between into one (each change in one group).
        let files = [f("a", 1, 100), f("b", 10, 20), f("c", 30, 40)];
        let p = plan(&files, &[15, 35, 90], u64::MAX);
        let all: Vec<usize> = p.groups.iter().flat_map(|g| g.changes.clone()).collect();
        assert_eq!(all, vec![0, 1, 2]);
        assert_eq!(p.groups.last().unwrap().files, vec![0, 1, 2]);
    }

    #[test]
    fn files_are_cut_evenly() {
        assert_eq!(cut(0, 10), Vec::<usize>::new());
        assert_eq!(cut(7, 10), vec![7]);
        assert_eq!(cut(21, 10), vec![7, 7, 7]);
        assert_eq!(cut(25, 10), vec![9, 8, 8]);
        assert_eq!(cut(5, 0), vec![1, 1, 1, 1, 1]);
    }
}
