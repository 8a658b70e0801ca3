-- greenhouse-extract ddl --dialect bigquery: 2 current-state tables, 2 raw histories at gs://my-bucket/greenhouse
-- BigQuery: BigLake tables through the connection us.greenhouse (--connection), whose service account
-- reads the bucket.

CREATE SCHEMA IF NOT EXISTS `greenhouse`;

-- custom_field_values
CREATE OR REPLACE EXTERNAL TABLE `greenhouse`.`custom_field_values`
WITH CONNECTION `us.greenhouse`
OPTIONS (format = 'DELTA_LAKE', uris = ['gs://my-bucket/greenhouse/current/custom_field_values']);

-- gadgets
-- No current-state table at gs://my-bucket/greenhouse/current/gadgets yet (tables = "raw", or written before them): `greenhouse-extract rebuild --streams gadgets` builds it.

CREATE OR REPLACE EXTERNAL TABLE `greenhouse`.`gadgets_raw` (
  `id` INT64,
  `label` STRING,
  `_extra` STRING,
  `_extracted_at` TIMESTAMP,
  `_run_id` STRING,
  `_deleted` BOOL,
  `_deleted_at` TIMESTAMP,
  `_deleted_by` STRING,
  `_merged_into` INT64
)
WITH CONNECTION `us.greenhouse`
WITH PARTITION COLUMNS (`extracted_date` DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://my-bucket/greenhouse/gadgets/*.parquet'],
  hive_partition_uri_prefix = 'gs://my-bucket/greenhouse/gadgets',
  enable_list_inference = TRUE
);

CREATE OR REPLACE VIEW `greenhouse`.`gadgets_raw_latest` AS
SELECT
  `id`, `label`, `_extra`, `_extracted_at`, `_run_id`
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY `id` ORDER BY `_extracted_at` DESC, COALESCE(`_deleted`, FALSE) DESC) AS `_rn`
  FROM `greenhouse`.`gadgets_raw`
  WHERE `_extracted_at` = (SELECT MAX(`_extracted_at`) FROM `greenhouse`.`gadgets_raw`)
) AS ranked
WHERE `_rn` = 1 AND NOT COALESCE(`_deleted`, FALSE);

-- widgets
CREATE OR REPLACE EXTERNAL TABLE `greenhouse`.`widgets`
WITH CONNECTION `us.greenhouse`
OPTIONS (format = 'DELTA_LAKE', uris = ['gs://my-bucket/greenhouse/current/widgets']);

CREATE OR REPLACE EXTERNAL TABLE `greenhouse`.`widgets_raw` (
  `id` INT64,
  `updated_at` TIMESTAMP,
  `name` STRING,
  `order` STRING,
  `score` FLOAT64,
  `active` BOOL,
  `born_on` DATE,
  `tags` ARRAY<STRING>,
  `owner` STRUCT<`id` INT64, `email` STRING>,
  `custom_fields` STRING,
  `_extra` STRING,
  `_extracted_at` TIMESTAMP,
  `_run_id` STRING,
  `_deleted` BOOL,
  `_deleted_at` TIMESTAMP,
  `_deleted_by` STRING,
  `_merged_into` INT64
)
WITH CONNECTION `us.greenhouse`
WITH PARTITION COLUMNS (`extracted_date` DATE)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://my-bucket/greenhouse/widgets/*.parquet'],
  hive_partition_uri_prefix = 'gs://my-bucket/greenhouse/widgets',
  enable_list_inference = TRUE
);

CREATE OR REPLACE VIEW `greenhouse`.`widgets_raw_latest` AS
SELECT
  `id`, `updated_at`, `name`, `order`, `score`, `active`, `born_on`, `tags`, `owner`,
  `custom_fields`, `_extra`, `_extracted_at`, `_run_id`
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY `id` ORDER BY `_extracted_at` DESC, COALESCE(`_deleted`, FALSE) DESC, `updated_at` DESC) AS `_rn`
  FROM `greenhouse`.`widgets_raw`
) AS ranked
WHERE `_rn` = 1 AND NOT COALESCE(`_deleted`, FALSE);
