-- greenhouse-extract ddl --dialect duckdb: 2 current-state tables, 2 raw histories at s3://my-bucket/greenhouse
-- Needs DuckDB's delta extension (INSTALL delta; LOAD delta;), and for a bucket
-- httpfs or azure with a secret (CREATE SECRET). Views: they read the files at every query.

CREATE SCHEMA IF NOT EXISTS "greenhouse";

-- custom_field_values
CREATE OR REPLACE VIEW "greenhouse"."custom_field_values" AS
SELECT * FROM delta_scan('s3://my-bucket/greenhouse/current/custom_field_values');

-- gadgets
-- No current-state table at s3://my-bucket/greenhouse/current/gadgets yet (tables = "raw", or written before them): `greenhouse-extract rebuild --streams gadgets` builds it.

CREATE OR REPLACE VIEW "greenhouse"."gadgets_raw" AS
SELECT * FROM read_parquet('s3://my-bucket/greenhouse/gadgets/extracted_date=*/*.parquet',
  hive_partitioning = true, union_by_name = true, hive_types = {'extracted_date': DATE});

CREATE OR REPLACE VIEW "greenhouse"."gadgets_raw_latest" AS
SELECT
  "id", "label", "_extra", "_extracted_at", "_run_id"
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY "id" ORDER BY "_extracted_at" DESC, COALESCE("_deleted", FALSE) DESC) AS "_rn"
  FROM "greenhouse"."gadgets_raw"
  WHERE "_extracted_at" = (SELECT MAX("_extracted_at") FROM "greenhouse"."gadgets_raw")
) AS ranked
WHERE "_rn" = 1 AND NOT COALESCE("_deleted", FALSE);

-- widgets
CREATE OR REPLACE VIEW "greenhouse"."widgets" AS
SELECT * FROM delta_scan('s3://my-bucket/greenhouse/current/widgets');

CREATE OR REPLACE VIEW "greenhouse"."widgets_raw" AS
SELECT * FROM read_parquet('s3://my-bucket/greenhouse/widgets/extracted_date=*/*.parquet',
  hive_partitioning = true, union_by_name = true, hive_types = {'extracted_date': DATE});

CREATE OR REPLACE VIEW "greenhouse"."widgets_raw_latest" AS
SELECT
  "id", "updated_at", "name", "order", "score", "active", "born_on", "tags", "owner",
  "custom_fields", "_extra", "_extracted_at", "_run_id"
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY "id" ORDER BY "_extracted_at" DESC, COALESCE("_deleted", FALSE) DESC, "updated_at" DESC) AS "_rn"
  FROM "greenhouse"."widgets_raw"
) AS ranked
WHERE "_rn" = 1 AND NOT COALESCE("_deleted", FALSE);
