-- greenhouse-extract ddl --dialect spark: 2 current-state tables, 2 raw histories at s3a://my-bucket/greenhouse
-- Spark SQL with Delta Lake (delta-spark, Databricks). Run MSCK REPAIR TABLE again after each
-- sync so that the raw tables see new extracted_date partitions.

CREATE SCHEMA IF NOT EXISTS `greenhouse`;

-- custom_field_values
CREATE TABLE IF NOT EXISTS `greenhouse`.`custom_field_values`
USING DELTA
LOCATION 's3a://my-bucket/greenhouse/current/custom_field_values';

-- gadgets
-- No current-state table at s3a://my-bucket/greenhouse/current/gadgets yet (tables = "raw", or written before them): `greenhouse-extract rebuild --streams gadgets` builds it.

CREATE TABLE IF NOT EXISTS `greenhouse`.`gadgets_raw` (
  `id` BIGINT,
  `label` STRING,
  `_extra` STRING,
  `_extracted_at` TIMESTAMP,
  `_run_id` STRING,
  `_deleted` BOOLEAN,
  `_deleted_at` TIMESTAMP,
  `_deleted_by` STRING,
  `_merged_into` BIGINT,
  `extracted_date` DATE
)
USING PARQUET
PARTITIONED BY (`extracted_date`)
LOCATION 's3a://my-bucket/greenhouse/gadgets/';

MSCK REPAIR TABLE `greenhouse`.`gadgets_raw`;

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
CREATE TABLE IF NOT EXISTS `greenhouse`.`widgets`
USING DELTA
LOCATION 's3a://my-bucket/greenhouse/current/widgets';

CREATE TABLE IF NOT EXISTS `greenhouse`.`widgets_raw` (
  `id` BIGINT,
  `updated_at` TIMESTAMP,
  `name` STRING,
  `order` STRING,
  `score` DOUBLE,
  `active` BOOLEAN,
  `born_on` DATE,
  `tags` ARRAY<STRING>,
  `owner` STRUCT<`id`: BIGINT, `email`: STRING>,
  `custom_fields` STRING,
  `_extra` STRING,
  `_extracted_at` TIMESTAMP,
  `_run_id` STRING,
  `_deleted` BOOLEAN,
  `_deleted_at` TIMESTAMP,
  `_deleted_by` STRING,
  `_merged_into` BIGINT,
  `extracted_date` DATE
)
USING PARQUET
PARTITIONED BY (`extracted_date`)
LOCATION 's3a://my-bucket/greenhouse/widgets/';

MSCK REPAIR TABLE `greenhouse`.`widgets_raw`;

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
