//! The statements of one dialect: quoting, locations, and one function per kind of statement.
//!
//! Contract: text only — no I/O, no knowledge of any stream. Every identifier is quoted the
//! way its position in the dialect needs (so a column named like a keyword still works) and
//! every string literal escaped the dialect's way.

use std::collections::BTreeSet;

use arrow_schema::{Field, SchemaRef};

use super::types::column_type;
use super::{
    CurrentTable, DEFAULT_BIGQUERY_CONNECTION, DEFAULT_SNOWFLAKE_INTEGRATION, Dialect, Layout,
    Options, RawTable, TRINO_DELTA_CATALOG, TRINO_HIVE_CATALOG,
};
use crate::convert::{
    DELETED_AT_COLUMN, DELETED_BY_COLUMN, DELETED_COLUMN, EXTRACTED_AT_COLUMN, MERGED_INTO_COLUMN,
};
use crate::error::Error;

/// The Hive partition of the raw history (`<stream>/extracted_date=YYYY-MM-DD/…`).
pub const PARTITION_COLUMN: &str = "extracted_date";
/// The tie-breaker after the extraction time and the tombstone flag, when a stream has it.
const UPDATED_AT: &str = "updated_at";
/// The row number the de-duplicating view ranks by.
const RANK: &str = "_rn";
/// Snowflake's stage over the destination (in the schema).
const SNOWFLAKE_STAGE: &str = "greenhouse_stage";

/// Trino's reserved words (Athena runs its views on Trino): quoted there, bare otherwise.
const TRINO_RESERVED: &[&str] = &[
    "alter",
    "and",
    "as",
    "between",
    "by",
    "case",
    "cast",
    "constraint",
    "create",
    "cross",
    "cube",
    "current_date",
    "current_path",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "deallocate",
    "delete",
    "describe",
    "distinct",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "execute",
    "exists",
    "extract",
    "false",
    "for",
    "from",
    "full",
    "group",
    "grouping",
    "having",
    "in",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "left",
    "like",
    "listagg",
    "localtime",
    "localtimestamp",
    "natural",
    "normalize",
    "not",
    "null",
    "on",
    "or",
    "order",
    "outer",
    "prepare",
    "recursive",
    "right",
    "rollup",
    "select",
    "skip",
    "table",
    "then",
    "trim",
    "true",
    "uescape",
    "union",
    "unnest",
    "using",
    "values",
    "when",
    "where",
    "with",
];

/// Where an identifier stands: Athena quotes DDL (Hive) and queries (Trino) differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Ddl,
    Query,
}

/// Which of Trino's catalogs a name lives in.
#[derive(Clone, Copy)]
enum Catalog {
    Hive,
    Delta,
}

pub(super) struct Writer<'a> {
    d: Dialect,
    o: &'a Options,
    /// The destination's root as this engine reaches it, without a trailing `/`.
    base: String,
}

impl<'a> Writer<'a> {
    pub(super) fn new(d: Dialect, o: &'a Options, url: &str) -> Writer<'a> {
        let base = match &o.location {
            Some(l) => l.trim_end_matches('/').to_string(),
            None => engine_url(d, url.trim_end_matches('/')),
        };
        Writer { d, o, base }
    }

    pub(super) fn render(&self, layout: &Layout) -> Result<String, Error> {
        let mut out = self.header(layout);
        out.push_str(&self.schema_statements());
        let names: BTreeSet<&str> = layout
            .current
            .iter()
            .map(|t| t.name.as_str())
            .chain(layout.raw.iter().map(|t| t.name.as_str()))
            .collect();
        for name in names {
            out.push_str(&format!("\n-- {name}\n"));
            let current = layout.current.iter().find(|t| t.name == name);
            let raw = layout.raw.iter().find(|t| t.name == name);
            match current {
                Some(t) => out.push_str(&(self.current_table(t)? + "\n")),
                None => out.push_str(&format!(
                    "-- No current-state table at {} yet (tables = \"raw\", or written before \
                     them): `greenhouse-extract rebuild --streams {name}` builds it.\n\n",
                    self.current_dir(name)
                )),
            }
            if let Some(r) = raw {
                out.push_str(&(self.raw_table(r)? + "\n"));
                out.push_str(&(self.latest_view(r) + "\n"));
            }
        }
        // One blank line between statements and blocks, none at the end.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        Ok(out.trim_end().to_string() + "\n")
    }

    // ---- naming ------------------------------------------------------------------------

    fn quote(&self, name: &str, at: At) -> String {
        let wrap = |q: char, s: &str| {
            let doubled = s.replace(q, &format!("{q}{q}"));
            format!("{q}{doubled}{q}")
        };
        match (self.d, at) {
            (Dialect::Duckdb | Dialect::Trino, _) => wrap('"', name),
            (Dialect::Athena, At::Ddl) | (Dialect::Spark | Dialect::Bigquery, _) => wrap('`', name),
            (Dialect::Athena, At::Query) => {
                let simple = name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if simple && !TRINO_RESERVED.contains(&name) {
                    name.to_string()
                } else {
                    wrap('"', name)
                }
            }
            // Quoted upper case is what an unquoted name means, and a keyword stays a name.
            (Dialect::Snowflake, _) => wrap('"', &name.to_uppercase()),
        }
    }

    fn col(&self, name: &str) -> String {
        self.quote(name, At::Ddl)
    }

    fn qcol(&self, name: &str) -> String {
        self.quote(name, At::Query)
    }

    fn schema_name(&self, at: At) -> String {
        self.o
            .schema
            .split('.')
            .map(|p| self.quote(p, at))
            .collect::<Vec<_>>()
            .join(".")
    }

    fn catalog_prefix(&self, catalog: Catalog) -> &'static str {
        match (self.d, catalog) {
            (Dialect::Trino, Catalog::Hive) => "hive.",
            (Dialect::Trino, Catalog::Delta) => "delta.",
            _ => "",
        }
    }

    fn table(&self, name: &str, catalog: Catalog, at: At) -> String {
        format!(
            "{}{}.{}",
            self.catalog_prefix(catalog),
            self.schema_name(at),
            self.quote(name, at)
        )
    }

    fn raw_name(name: &str) -> String {
        format!("{name}_raw")
    }

    fn view_name(name: &str) -> String {
        format!("{name}_raw_latest")
    }

    fn lit(&self, s: &str) -> String {
        match self.d {
            Dialect::Bigquery => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("'{}'", s.replace('\'', "''")),
        }
    }

    fn current_dir(&self, name: &str) -> String {
        format!("{}/current/{name}", self.base)
    }

    fn raw_dir(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    fn column_type(&self, table: &str, f: &Field) -> Result<String, Error> {
        column_type(self.d, f.data_type(), &|n| self.col(n)).map_err(|e| {
            Error::Fatal(format!(
                "ddl: {table}.{}: {e}; this column cannot be declared in {}",
                f.name(),
                self.d.label()
            ))
        })
    }

    fn connection(&self) -> &str {
        match (&self.o.connection, self.d) {
            (Some(c), _) => c,
            (None, Dialect::Bigquery) => DEFAULT_BIGQUERY_CONNECTION,
            (None, _) => DEFAULT_SNOWFLAKE_INTEGRATION,
        }
    }

    fn stage(&self) -> String {
        format!(
            "{}.{}",
            self.schema_name(At::Ddl),
            self.quote(SNOWFLAKE_STAGE, At::Ddl)
        )
    }

    // ---- statements --------------------------------------------------------------------

    fn header(&self, layout: &Layout) -> String {
        let what = format!(
            "-- greenhouse-extract ddl --dialect {}: {} current-state table{}, {} raw histor{} at {}\n",
            self.d.name(),
            layout.current.len(),
            if layout.current.len() == 1 { "" } else { "s" },
            layout.raw.len(),
            if layout.raw.len() == 1 { "y" } else { "ies" },
            self.base
        );
        let how = match self.d {
            Dialect::Duckdb => "-- Needs DuckDB's delta extension (INSTALL delta; LOAD delta;), and for a bucket\n-- httpfs or azure with a secret (CREATE SECRET). Views: they read the files at every query.\n".to_string(),
            Dialect::Athena => "-- Athena engine version 3: current tables are Delta Lake tables read in place; the raw\n-- history finds new extracted_date partitions by partition projection.\n".to_string(),
            Dialect::Trino => format!(
                "-- Trino: catalog {TRINO_DELTA_CATALOG} is the Delta Lake connector (delta.register-table-procedure.enabled=true),\n-- catalog {TRINO_HIVE_CATALOG} the Hive connector. Run the sync_partition_metadata calls again after each sync.\n"
            ),
            Dialect::Snowflake => format!(
                "-- Snowflake: a stage over the destination through the storage integration {} (--connection).\n-- External tables see new files at REFRESH: run the ALTER EXTERNAL TABLE … REFRESH statements\n-- again after each sync (or set up AUTO_REFRESH notifications).\n",
                self.connection()
            ),
            Dialect::Bigquery => format!(
                "-- BigQuery: BigLake tables through the connection {} (--connection), whose service account\n-- reads the bucket.\n",
                self.connection()
            ),
            Dialect::Spark => "-- Spark SQL with Delta Lake (delta-spark, Databricks). Run MSCK REPAIR TABLE again after each\n-- sync so that the raw tables see new extracted_date partitions.\n".to_string(),
        };
        what + &how
    }

    fn schema_statements(&self) -> String {
        let schema = self.schema_name(At::Ddl);
        match self.d {
            Dialect::Athena => format!("\nCREATE DATABASE IF NOT EXISTS {schema};\n"),
            Dialect::Trino => format!(
                "\nCREATE SCHEMA IF NOT EXISTS {}{schema};\nCREATE SCHEMA IF NOT EXISTS {}{schema};\n",
                self.catalog_prefix(Catalog::Delta),
                self.catalog_prefix(Catalog::Hive)
            ),
            Dialect::Snowflake => format!(
                "\nCREATE SCHEMA IF NOT EXISTS {schema};\nCREATE STAGE IF NOT EXISTS {}\n  URL = {}\n  STORAGE_INTEGRATION = {};\n",
                self.stage(),
                self.lit(&format!("{}/", self.base)),
                self.connection()
            ),
            Dialect::Duckdb | Dialect::Bigquery | Dialect::Spark => {
                format!("\nCREATE SCHEMA IF NOT EXISTS {schema};\n")
            }
        }
    }

    fn current_table(&self, t: &CurrentTable) -> Result<String, Error> {
        let name = self.table(&t.name, Catalog::Delta, At::Ddl);
        let dir = self.current_dir(&t.name);
        Ok(match self.d {
            Dialect::Duckdb => format!(
                "CREATE OR REPLACE VIEW {name} AS\nSELECT * FROM delta_scan({});\n",
                self.lit(&dir)
            ),
            Dialect::Athena => format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {name}\nLOCATION {}\nTBLPROPERTIES ('table_type' = 'DELTA');\n",
                self.lit(&format!("{dir}/"))
            ),
            Dialect::Trino => format!(
                "CALL {TRINO_DELTA_CATALOG}.system.register_table(schema_name => {}, table_name => {}, table_location => {});\n",
                self.lit(&self.o.schema),
                self.lit(&t.name),
                self.lit(&dir)
            ),
            Dialect::Snowflake => {
                let columns = self.snowflake_columns(&t.name, &t.schema)?;
                format!(
                    "CREATE OR REPLACE EXTERNAL TABLE {name} (\n{}\n)\nLOCATION = @{}/current/{}/\nFILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)\nTABLE_FORMAT = DELTA\nAUTO_REFRESH = FALSE\nREFRESH_ON_CREATE = FALSE;\n\nALTER EXTERNAL TABLE {name} REFRESH;\n",
                    columns.join(",\n"),
                    self.stage(),
                    t.name
                )
            }
            Dialect::Bigquery => format!(
                "CREATE OR REPLACE EXTERNAL TABLE {name}\nWITH CONNECTION {}\nOPTIONS (format = 'DELTA_LAKE', uris = [{}]);\n",
                self.quote(self.connection(), At::Ddl),
                self.lit(&dir)
            ),
            Dialect::Spark => format!(
                "CREATE TABLE IF NOT EXISTS {name}\nUSING DELTA\nLOCATION {};\n",
                self.lit(&dir)
            ),
        })
    }

    /// Snowflake's external-table columns: each a typed expression over the row's VARIANT.
    fn snowflake_columns(&self, table: &str, schema: &SchemaRef) -> Result<Vec<String>, Error> {
        schema
            .fields()
            .iter()
            .map(|f| {
                let ty = self.column_type(table, f)?;
                Ok(format!(
                    "  {} {ty} AS (VALUE:{}::{ty})",
                    self.col(f.name()),
                    wrap_double(f.name())
                ))
            })
            .collect()
    }

    fn declared_columns(&self, r: &RawTable, sep: &str) -> Result<Vec<String>, Error> {
        r.schema
            .fields()
            .iter()
            .map(|f| {
                Ok(format!(
                    "  {}{sep}{}",
                    self.col(f.name()),
                    self.column_type(&r.name, f)?
                ))
            })
            .collect()
    }

    fn raw_table(&self, r: &RawTable) -> Result<String, Error> {
        let raw = Self::raw_name(&r.name);
        let name = self.table(&raw, Catalog::Hive, At::Ddl);
        let dir = self.raw_dir(&r.name);
        let part = self.col(PARTITION_COLUMN);
        Ok(match self.d {
            Dialect::Duckdb => format!(
                "CREATE OR REPLACE VIEW {name} AS\nSELECT * FROM read_parquet({},\n  hive_partitioning = true, union_by_name = true, hive_types = {{'{PARTITION_COLUMN}': DATE}});\n",
                self.lit(&format!("{dir}/{PARTITION_COLUMN}=*/*.parquet"))
            ),
            Dialect::Athena => format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{}\n)\nPARTITIONED BY ({part} string)\nSTORED AS PARQUET\nLOCATION {}\nTBLPROPERTIES (\n  'projection.enabled' = 'true',\n  'projection.{PARTITION_COLUMN}.type' = 'date',\n  'projection.{PARTITION_COLUMN}.format' = 'yyyy-MM-dd',\n  'projection.{PARTITION_COLUMN}.range' = '{},NOW',\n  'projection.{PARTITION_COLUMN}.interval' = '1',\n  'projection.{PARTITION_COLUMN}.interval.unit' = 'DAYS'\n);\n",
                self.declared_columns(r, " ")?.join(",\n"),
                self.lit(&format!("{dir}/")),
                r.first_date
            ),
            Dialect::Trino => {
                let mut columns = self.declared_columns(r, " ")?;
                columns.push(format!("  {part} varchar"));
                format!(
                    "CREATE TABLE IF NOT EXISTS {name} (\n{}\n)\nWITH (\n  external_location = {},\n  format = 'PARQUET',\n  partitioned_by = ARRAY['{PARTITION_COLUMN}']\n);\n\nCALL {TRINO_HIVE_CATALOG}.system.sync_partition_metadata(schema_name => {}, table_name => {}, mode => 'FULL');\n",
                    columns.join(",\n"),
                    self.lit(&format!("{dir}/")),
                    self.lit(&self.o.schema),
                    self.lit(&raw)
                )
            }
            Dialect::Snowflake => {
                let mut columns = vec![format!(
                    "  {part} DATE AS (TO_DATE(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, '{PARTITION_COLUMN}=', 2), '/', 1)))"
                )];
                columns.extend(self.snowflake_columns(&r.name, &r.schema)?);
                format!(
                    "CREATE OR REPLACE EXTERNAL TABLE {name} (\n{}\n)\nPARTITION BY ({part})\nLOCATION = @{}/{}/\nPATTERN = '.*[.]parquet'\nFILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)\nAUTO_REFRESH = FALSE;\n\nALTER EXTERNAL TABLE {name} REFRESH;\n",
                    columns.join(",\n"),
                    self.stage(),
                    r.name
                )
            }
            Dialect::Bigquery => format!(
                "CREATE OR REPLACE EXTERNAL TABLE {name} (\n{}\n)\nWITH CONNECTION {}\nWITH PARTITION COLUMNS ({part} DATE)\nOPTIONS (\n  format = 'PARQUET',\n  uris = [{}],\n  hive_partition_uri_prefix = {},\n  enable_list_inference = TRUE\n);\n",
                self.declared_columns(r, " ")?.join(",\n"),
                self.quote(self.connection(), At::Ddl),
                self.lit(&format!("{dir}/*.parquet")),
                self.lit(&dir)
            ),
            Dialect::Spark => {
                let mut columns = self.declared_columns(r, " ")?;
                columns.push(format!("  {part} DATE"));
                format!(
                    "CREATE TABLE IF NOT EXISTS {name} (\n{}\n)\nUSING PARQUET\nPARTITIONED BY ({part})\nLOCATION {};\n\nMSCK REPAIR TABLE {name};\n",
                    columns.join(",\n"),
                    self.lit(&format!("{dir}/"))
                )
            }
        })
    }

    /// The de-duplicating view over the raw history (see the module contract).
    fn latest_view(&self, r: &RawTable) -> String {
        let view = self.table(&Self::view_name(&r.name), Catalog::Hive, At::Query);
        let raw = self.table(&Self::raw_name(&r.name), Catalog::Hive, At::Query);
        let tombstone = [
            DELETED_COLUMN,
            DELETED_AT_COLUMN,
            DELETED_BY_COLUMN,
            MERGED_INTO_COLUMN,
        ];
        let has = |c: &str| r.schema.field_with_name(c).is_ok();
        let columns: Vec<String> = r
            .schema
            .fields()
            .iter()
            .filter(|f| !tombstone.contains(&f.name().as_str()))
            .map(|f| self.qcol(f.name()))
            .collect();
        let key: Vec<String> = r.key.iter().map(|k| self.qcol(k)).collect();
        let deleted = format!("COALESCE({}, FALSE)", self.qcol(DELETED_COLUMN));
        let mut order = vec![format!("{} DESC", self.qcol(EXTRACTED_AT_COLUMN))];
        if has(DELETED_COLUMN) {
            order.push(format!("{deleted} DESC"));
        }
        if has(UPDATED_AT) {
            order.push(format!("{} DESC", self.qcol(UPDATED_AT)));
        }
        let extracted = self.qcol(EXTRACTED_AT_COLUMN);
        let latest_read = match r.latest_read_only {
            true => format!("\n  WHERE {extracted} = (SELECT MAX({extracted}) FROM {raw})"),
            false => String::new(),
        };
        let rank = self.qcol(RANK);
        let mut keep = format!("{rank} = 1");
        if has(DELETED_COLUMN) {
            keep.push_str(&format!(" AND NOT {deleted}"));
        }
        format!(
            "CREATE OR REPLACE VIEW {view} AS\nSELECT\n{}\nFROM (\n  SELECT *, ROW_NUMBER() OVER (\n    PARTITION BY {} ORDER BY {}) AS {rank}\n  FROM {raw}{latest_read}\n) AS ranked\nWHERE {keep};\n",
            wrap(&columns, 100),
            key.join(", "),
            order.join(", ")
        )
    }
}

/// `items` joined with `, ` in lines of at most `width` characters, each indented by two.
fn wrap(items: &[String], width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line.is_empty() && line.len() + 1 + piece.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if line.is_empty() {
            line.push_str("  ");
        } else {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.join("\n")
}

/// Snowflake's path into a VARIANT names the Parquet column as written (case-sensitive).
fn wrap_double(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The destination URL in the form `d` spells it: a local folder is a path for DuckDB; Spark's
/// Hadoop file systems read S3 as `s3a://`; Snowflake names Google Cloud Storage `gcs://` and
/// Azure `azure://<account>.blob.core.windows.net/<container>`.
fn engine_url(d: Dialect, url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match (d, scheme) {
        (Dialect::Duckdb, "file") => url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| rest.to_string()),
        (Dialect::Spark, "s3") => format!("s3a://{rest}"),
        (Dialect::Snowflake, "gs") => format!("gcs://{rest}"),
        (Dialect::Snowflake, "abfss" | "abfs") => {
            // container@account.dfs.core.windows.net/prefix
            match rest.split_once('@').and_then(|(container, host)| {
                let (host, path) = host.split_once('/').unwrap_or((host, ""));
                let account = host.strip_suffix(".dfs.core.windows.net")?;
                Some(format!(
                    "azure://{account}.blob.core.windows.net/{container}/{path}"
                ))
            }) {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => url.to_string(),
            }
        }
        (_, "s3a") if d != Dialect::Spark => format!("s3://{rest}"),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_spells_the_destination_its_way() {
        assert_eq!(
            engine_url(Dialect::Duckdb, "file:///srv/gh%20data"),
            "/srv/gh data"
        );
        assert_eq!(engine_url(Dialect::Spark, "s3://b/p"), "s3a://b/p");
        assert_eq!(engine_url(Dialect::Athena, "s3://b/p"), "s3://b/p");
        assert_eq!(engine_url(Dialect::Snowflake, "gs://b/p"), "gcs://b/p");
        assert_eq!(
            engine_url(
                Dialect::Snowflake,
                "abfss://lake@acct.dfs.core.windows.net/gh"
            ),
            "azure://acct.blob.core.windows.net/lake/gh"
        );
        assert_eq!(engine_url(Dialect::Bigquery, "gs://b/p"), "gs://b/p");
    }

    #[test]
    fn names_are_quoted_where_they_stand() {
        let o = Options::default();
        let w = |d| Writer::new(d, &o, "s3://b/p");
        assert_eq!(w(Dialect::Snowflake).col("order"), "\"ORDER\"");
        assert_eq!(w(Dialect::Athena).col("_extra"), "`_extra`");
        assert_eq!(w(Dialect::Athena).qcol("_extra"), "_extra");
        assert_eq!(w(Dialect::Athena).qcol("order"), "\"order\"");
        assert_eq!(w(Dialect::Trino).col("a\"b"), "\"a\"\"b\"");
        assert_eq!(w(Dialect::Bigquery).lit("it's"), "'it\\'s'");
        assert_eq!(w(Dialect::Duckdb).lit("it's"), "'it''s'");
    }
}
