//! `ddl`: the statements that make a warehouse read the destination as it is now — each
//! current-state Delta table through the engine's own Delta support, and each stream's raw
//! history as an external table (the declared columns and the `extracted_date` Hive partition)
//! with a de-duplicating view over it.
//!
//! Contract:
//! - What is described is found on the destination ([`inspect`]): a current table is a
//!   `current/<name>/` folder whose Delta log has a commit, with the columns its log declares
//!   now (columns added by schema evolution, custom-field columns, tables that are no stream's
//!   included); a raw history is a stream folder holding at least one `extracted_date=`
//!   partition, with the columns the declaration (after column policies) gives its files.
//! - Rendering ([`render`]) is a pure function of that [`Layout`] and the [`Options`]: the same
//!   destination gives the same text, so the output can be kept in a repository and diffed.
//! - The de-duplicating view keeps, per primary key, the row of the latest `_extracted_at`,
//!   then a tombstone before a record of the same run, then the greatest `updated_at` (when the
//!   stream has one), and only keys whose winning row is no tombstone; a file written before
//!   tombstones existed has no `_deleted` and reads as a record. A full-refresh stream's view
//!   ranks only the latest read's rows (its current table is that read). Its columns are the
//!   current table's (the declared fields, `_extra`, `_extracted_at`, `_run_id`).
//! - Nothing is written, and nothing but listings and the tables' logs is read.
//!
//! Names: `<schema>.<name>` is the current table, `<schema>.<name>_raw` the raw history and
//! `<schema>.<name>_raw_latest` the view. Each dialect's text is checked by a parser of that
//! dialect and by golden files (`tests/ddl.rs`); DuckDB's is run against a real destination.

pub mod inspect;
mod sql;
pub mod types;

use arrow_schema::SchemaRef;

use crate::error::Error;

/// The warehouses `ddl` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Duckdb,
    Athena,
    Trino,
    Snowflake,
    Bigquery,
    Spark,
}

impl Dialect {
    pub const ALL: [Dialect; 6] = [
        Dialect::Duckdb,
        Dialect::Athena,
        Dialect::Trino,
        Dialect::Snowflake,
        Dialect::Bigquery,
        Dialect::Spark,
    ];

    /// The engine's name in prose.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Duckdb => "DuckDB",
            Dialect::Athena => "Athena",
            Dialect::Trino => "Trino",
            Dialect::Snowflake => "Snowflake",
            Dialect::Bigquery => "BigQuery",
            Dialect::Spark => "Spark",
        }
    }

    /// The name on the command line (`--dialect`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Duckdb => "duckdb",
            Dialect::Athena => "athena",
            Dialect::Trino => "trino",
            Dialect::Snowflake => "snowflake",
            Dialect::Bigquery => "bigquery",
            Dialect::Spark => "spark",
        }
    }
}

/// The schema (database, dataset) the statements create their tables in, by default.
pub const DEFAULT_SCHEMA: &str = "greenhouse";
/// Snowflake's storage integration and BigQuery's connection when `--connection` names none.
pub const DEFAULT_SNOWFLAKE_INTEGRATION: &str = "greenhouse_integration";
pub const DEFAULT_BIGQUERY_CONNECTION: &str = "us.greenhouse";
/// Trino's catalogs: the Hive connector's (raw history, views) and the Delta Lake connector's.
pub const TRINO_HIVE_CATALOG: &str = "hive";
pub const TRINO_DELTA_CATALOG: &str = "delta";

/// How the statements name and reach things.
#[derive(Debug, Clone)]
pub struct Options {
    /// Schema (database, dataset; `project.dataset` in BigQuery) of every table and view.
    pub schema: String,
    /// Snowflake: the storage integration of the stage; BigQuery: the connection
    /// (`region.name` or `project.region.name`) of the BigLake tables.
    pub connection: Option<String>,
    /// The destination's URL as the warehouse reaches it, used as given; `None`: the
    /// destination's own URL, in the form each engine spells its scheme.
    pub location: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schema: DEFAULT_SCHEMA.to_string(),
            connection: None,
            location: None,
        }
    }
}

impl Options {
    /// Refuses a schema or connection name that could not be quoted as identifiers.
    pub fn validate(&self) -> Result<(), Error> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    let mut c = part.chars();
                    c.next()
                        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '-')
                })
        };
        if !ok(&self.schema) {
            return Err(Error::config(format!(
                "--schema {:?}: use a name of letters, digits and underscores (`project.dataset` for BigQuery)",
                self.schema
            )));
        }
        if let Some(c) = &self.connection
            && !ok(c)
        {
            return Err(Error::config(format!(
                "--connection {c:?}: use the integration's or connection's name (letters, digits, underscores, dots)"
            )));
        }
        if let Some(l) = &self.location
            && (!l.contains("://") || l.contains(['\'', '?', '#']))
        {
            return Err(Error::config(format!(
                "--location {l:?}: give the destination's URL as the warehouse reaches it, e.g. s3://bucket/prefix (no quotes, query or fragment)"
            )));
        }
        Ok(())
    }
}

/// What the destination holds, as the statements describe it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The destination's URL (`file:///abs/dir`, `s3://bucket/prefix`, …; no credentials).
    pub url: String,
    /// Current-state tables, by name.
    pub current: Vec<CurrentTable>,
    /// Raw histories, by stream name.
    pub raw: Vec<RawTable>,
}

/// One current-state Delta table.
#[derive(Debug, Clone)]
pub struct CurrentTable {
    pub name: String,
    /// The table's columns as its log declares them now.
    pub schema: SchemaRef,
}

/// One stream's raw history.
#[derive(Debug, Clone)]
pub struct RawTable {
    pub name: String,
    /// The columns of its files (declared fields, `_extra`, `_extracted_at`, `_run_id`, the
    /// tombstone columns), without the partition column.
    pub schema: SchemaRef,
    /// The primary key's columns.
    pub key: Vec<String>,
    /// Whether every read is complete (a full-refresh stream): then the current state is the
    /// latest read alone, and a record missing from it is gone even without a tombstone.
    pub latest_read_only: bool,
    /// The earliest `extracted_date` partition (`YYYY-MM-DD`), where Athena's partition
    /// projection starts.
    pub first_date: String,
}

/// The statements for `layout` in `dialect`.
pub fn render(layout: &Layout, dialect: Dialect, options: &Options) -> Result<String, Error> {
    // Trino's catalogs are fixed (one per connector), and Athena's DDL names no catalog.
    if matches!(dialect, Dialect::Trino | Dialect::Athena) && options.schema.contains('.') {
        return Err(Error::config(format!(
            "--schema {}: {} takes one schema name (no catalog or project)",
            options.schema,
            dialect.label()
        )));
    }
    sql::Writer::new(dialect, options, &layout.url).render(layout)
}
