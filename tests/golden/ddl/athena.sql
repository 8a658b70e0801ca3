-- greenhouse-extract ddl --dialect athena: 2 current-state tables, 2 raw histories at s3://my-bucket/greenhouse
-- Athena engine version 3: current tables are Delta Lake tables read in place; the raw
-- history finds new extracted_date partitions by partition projection.

CREATE DATABASE IF NOT EXISTS `greenhouse`;

-- custom_field_values
CREATE EXTERNAL TABLE IF NOT EXISTS `greenhouse`.`custom_field_values`
LOCATION 's3://my-bucket/greenhouse/current/custom_field_values/'
TBLPROPERTIES ('table_type' = 'DELTA');

-- gadgets
-- No current-state table at s3://my-bucket/greenhouse/current/gadgets yet (tables = "raw", or written before them): `greenhouse-extract rebuild --streams gadgets` builds it.

CREATE EXTERNAL TABLE IF NOT EXISTS `greenhouse`.`gadgets_raw` (
  `id` bigint,
  `label` string,
  `_extra` string,
  `_extracted_at` timestamp,
  `_run_id` string,
  `_deleted` boolean,
  `_deleted_at` timestamp,
  `_deleted_by` string,
  `_merged_into` bigint
)
PARTITIONED BY (`extracted_date` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/greenhouse/gadgets/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.extracted_date.type' = 'date',
  'projection.extracted_date.format' = 'yyyy-MM-dd',
  'projection.extracted_date.range' = '2025-02-14,NOW',
  'projection.extracted_date.interval' = '1',
  'projection.extracted_date.interval.unit' = 'DAYS'
);

CREATE OR REPLACE VIEW greenhouse.gadgets_raw_latest AS
SELECT
  id, label, _extra, _extracted_at, _run_id
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY id ORDER BY _extracted_at DESC, COALESCE(_deleted, FALSE) DESC) AS _rn
  FROM greenhouse.gadgets_raw
  WHERE _extracted_at = (SELECT MAX(_extracted_at) FROM greenhouse.gadgets_raw)
) AS ranked
WHERE _rn = 1 AND NOT COALESCE(_deleted, FALSE);

-- widgets
CREATE EXTERNAL TABLE IF NOT EXISTS `greenhouse`.`widgets`
LOCATION 's3://my-bucket/greenhouse/current/widgets/'
TBLPROPERTIES ('table_type' = 'DELTA');

CREATE EXTERNAL TABLE IF NOT EXISTS `greenhouse`.`widgets_raw` (
  `id` bigint,
  `updated_at` timestamp,
  `name` string,
  `order` string,
  `score` double,
  `active` boolean,
  `born_on` date,
  `tags` array<string>,
  `owner` struct<`id`:bigint,`email`:string>,
  `custom_fields` string,
  `_extra` string,
  `_extracted_at` timestamp,
  `_run_id` string,
  `_deleted` boolean,
  `_deleted_at` timestamp,
  `_deleted_by` string,
  `_merged_into` bigint
)
PARTITIONED BY (`extracted_date` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/greenhouse/widgets/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.extracted_date.type' = 'date',
  'projection.extracted_date.format' = 'yyyy-MM-dd',
  'projection.extracted_date.range' = '2025-03-01,NOW',
  'projection.extracted_date.interval' = '1',
  'projection.extracted_date.interval.unit' = 'DAYS'
);

CREATE OR REPLACE VIEW greenhouse.widgets_raw_latest AS
SELECT
  id, updated_at, name, "order", score, active, born_on, tags, owner, custom_fields, _extra,
  _extracted_at, _run_id
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY id ORDER BY _extracted_at DESC, COALESCE(_deleted, FALSE) DESC, updated_at DESC) AS _rn
  FROM greenhouse.widgets_raw
) AS ranked
WHERE _rn = 1 AND NOT COALESCE(_deleted, FALSE);
