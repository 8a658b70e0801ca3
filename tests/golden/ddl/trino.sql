-- greenhouse-extract ddl --dialect trino: 2 current-state tables, 2 raw histories at s3://my-bucket/greenhouse
-- Trino: catalog delta is the Delta Lake connector (delta.register-table-procedure.enabled=true),
-- catalog hive the Hive connector. Run the sync_partition_metadata calls again after each sync.

CREATE SCHEMA IF NOT EXISTS delta."greenhouse";
CREATE SCHEMA IF NOT EXISTS hive."greenhouse";

-- custom_field_values
CALL delta.system.register_table(schema_name => 'greenhouse', table_name => 'custom_field_values', table_location => 's3://my-bucket/greenhouse/current/custom_field_values');

-- gadgets
-- No current-state table at s3://my-bucket/greenhouse/current/gadgets yet (tables = "raw", or written before them): `greenhouse-extract rebuild --streams gadgets` builds it.

CREATE TABLE IF NOT EXISTS hive."greenhouse"."gadgets_raw" (
  "id" bigint,
  "label" varchar,
  "_extra" varchar,
  "_extracted_at" timestamp,
  "_run_id" varchar,
  "_deleted" boolean,
  "_deleted_at" timestamp,
  "_deleted_by" varchar,
  "_merged_into" bigint,
  "extracted_date" varchar
)
WITH (
  external_location = 's3://my-bucket/greenhouse/gadgets/',
  format = 'PARQUET',
  partitioned_by = ARRAY['extracted_date']
);

CALL hive.system.sync_partition_metadata(schema_name => 'greenhouse', table_name => 'gadgets_raw', mode => 'FULL');

CREATE OR REPLACE VIEW hive."greenhouse"."gadgets_raw_latest" AS
SELECT
  "id", "label", "_extra", "_extracted_at", "_run_id"
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY "id" ORDER BY "_extracted_at" DESC, COALESCE("_deleted", FALSE) DESC) AS "_rn"
  FROM hive."greenhouse"."gadgets_raw"
  WHERE "_extracted_at" = (SELECT MAX("_extracted_at") FROM hive."greenhouse"."gadgets_raw")
) AS ranked
WHERE "_rn" = 1 AND NOT COALESCE("_deleted", FALSE);

-- widgets
CALL delta.system.register_table(schema_name => 'greenhouse', table_name => 'widgets', table_location => 's3://my-bucket/greenhouse/current/widgets');

CREATE TABLE IF NOT EXISTS hive."greenhouse"."widgets_raw" (
  "id" bigint,
  "updated_at" timestamp,
  "name" varchar,
  "order" varchar,
  "score" double,
  "active" boolean,
  "born_on" date,
  "tags" array(varchar),
  "owner" row("id" bigint, "email" varchar),
  "custom_fields" varchar,
  "_extra" varchar,
  "_extracted_at" timestamp,
  "_run_id" varchar,
  "_deleted" boolean,
  "_deleted_at" timestamp,
  "_deleted_by" varchar,
  "_merged_into" bigint,
  "extracted_date" varchar
)
WITH (
  external_location = 's3://my-bucket/greenhouse/widgets/',
  format = 'PARQUET',
  partitioned_by = ARRAY['extracted_date']
);

CALL hive.system.sync_partition_metadata(schema_name => 'greenhouse', table_name => 'widgets_raw', mode => 'FULL');

CREATE OR REPLACE VIEW hive."greenhouse"."widgets_raw_latest" AS
SELECT
  "id", "updated_at", "name", "order", "score", "active", "born_on", "tags", "owner",
  "custom_fields", "_extra", "_extracted_at", "_run_id"
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY "id" ORDER BY "_extracted_at" DESC, COALESCE("_deleted", FALSE) DESC, "updated_at" DESC) AS "_rn"
  FROM hive."greenhouse"."widgets_raw"
) AS ranked
WHERE "_rn" = 1 AND NOT COALESCE("_deleted", FALSE);
