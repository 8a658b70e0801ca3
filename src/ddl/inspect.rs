//! What the destination holds now, for [`super::render`]: its current-state tables (with the
//! schema each one's Delta log declares) and its streams' raw histories.
//!
//! Contract: reads listings and Delta logs only, never a data file, and writes nothing. A name
//! chosen with `--streams` that the destination holds nothing for is an error saying to sync
//! it first; a raw history without a current table is described, with a warning naming
//! `rebuild`.

use std::collections::{BTreeMap, BTreeSet};

use object_store::ObjectStore;
use object_store::path::Path;

use super::sql::PARTITION_COLUMN;
use super::{CurrentTable, Layout, RawTable};
use crate::config::ColumnPolicy;
use crate::current::table::{CURRENT_DIR, Table};
use crate::error::Error;
use crate::registry::Registry;
use crate::storage::Destination;

/// The layout of `dest` for the streams and tables named in `chosen` (names or globs of
/// streams, or names of current tables; `None`: everything the destination holds).
pub async fn inspect(
    dest: &Destination,
    registry: &Registry,
    policies: &BTreeMap<String, ColumnPolicy>,
    chosen: Option<&[String]>,
) -> Result<Layout, Error> {
    let folders = subfolders(dest, &dest.prefix).await?;
    let tables: BTreeSet<String> = match folders.contains(CURRENT_DIR) {
        true => subfolders(dest, &dest.prefix.clone().join(CURRENT_DIR))
            .await?
            .into_iter()
            .filter(|n| is_plain_name(n))
            .collect(),
        false => BTreeSet::new(),
    };
    let wanted: Option<BTreeSet<String>> = match chosen {
        None => None,
        Some(names) => {
            // A current table that is no stream's (one the tables add beside the streams') is
            // chosen by its name; everything else is a stream name or glob.
            let (tables_only, streams): (Vec<String>, Vec<String>) = names
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .partition(|n| tables.contains(n) && registry.get(n).is_none());
            let mut out: BTreeSet<String> = tables_only.into_iter().collect();
            if !streams.is_empty() {
                out.extend(crate::config::resolve_stream_names(&streams, registry)?);
            }
            Some(out)
        }
    };
    let is_wanted = |n: &str| wanted.as_ref().is_none_or(|w| w.contains(n));

    let mut layout = Layout {
        url: dest.url.clone(),
        current: Vec::new(),
        raw: Vec::new(),
    };
    for name in tables.iter().filter(|n| is_wanted(n)) {
        let Some(table) = Table::existing(dest, name)
            .await
            .map_err(|e| Error::Destination(e.to_string()))?
        else {
            continue;
        };
        let schema = table
            .arrow_schema()
            .map_err(|e| Error::Destination(e.to_string()))?;
        layout.current.push(CurrentTable {
            name: name.clone(),
            schema,
        });
    }
    for stream in registry.streams() {
        if !folders.contains(&stream.name) || !is_wanted(&stream.name) {
            continue;
        }
        let dir = dest.prefix.clone().join(stream.name.as_str());
        let prefix = format!("{PARTITION_COLUMN}=");
        let Some(first_date) = subfolders(dest, &dir)
            .await?
            .into_iter()
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .min()
        else {
            continue;
        };
        layout.raw.push(RawTable {
            name: stream.name.clone(),
            schema: crate::privacy::raw_schema(policies, stream),
            key: stream.primary_key.clone(),
            latest_read_only: !stream.is_incremental(),
            first_date,
        });
    }

    let found: BTreeSet<&str> = layout
        .current
        .iter()
        .map(|t| t.name.as_str())
        .chain(layout.raw.iter().map(|t| t.name.as_str()))
        .collect();
    if let Some(w) = &wanted {
        let missing: Vec<&str> = w
            .iter()
            .map(String::as_str)
            .filter(|n| !found.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::config(format!(
                "{} has neither raw files nor a current table for {}: run `greenhouse-extract sync --streams {}` first (or check --destination)",
                dest.url,
                missing.join(", "),
                missing.join(",")
            )));
        }
    }
    if found.is_empty() {
        return Err(Error::config(format!(
            "{} holds no raw history and no current-state table yet: run `greenhouse-extract sync` first (or check --destination)",
            dest.url
        )));
    }
    for r in &layout.raw {
        if !layout.current.iter().any(|t| t.name == r.name) {
            crate::events::ddl_no_current_table(&r.name);
        }
    }
    Ok(layout)
}

/// Names are quoted in the statements, but only plain ones are described: a folder named
/// otherwise is no table this tool wrote.
fn is_plain_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('_')
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The names of the folders directly under `dir`.
async fn subfolders(dest: &Destination, dir: &Path) -> Result<BTreeSet<String>, Error> {
    let list = dest
        .store
        .list_with_delimiter(Some(dir))
        .await
        .map_err(|e| Error::Destination(format!("ddl: cannot list {dir}: {e}")))?;
    Ok(list
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect())
}
