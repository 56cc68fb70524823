//! Hourly prediction rollups on PostgreSQL, kept by triggers on
//! `ml_predictions` so that every writer (the gateway, the demo loader, a
//! team's own jobs) keeps them current: per (tenant, model, version, UTC
//! hour) the prediction count, sums, minima and maxima of probability,
//! confidence and inference time, and the risk-level counts; beside it a
//! log-scale histogram of inference times (1 % wide buckets) from which
//! latency percentiles are estimated within 1 %.
//!
//! Model performance answers from them instead of scanning every prediction
//! of the window (see `server::store::analytics::rollups`). Inserts add to the
//! hours they touch (one grouped upsert per statement, in key order so that
//! concurrent batches lock rollup rows in the same order); updates that
//! change a rolled-up column and deletes rebuild the hours they touched from
//! the predictions, since a minimum or maximum cannot be taken back. (A
//! rebuild racing a concurrent insert into the same, previously empty hour
//! could count that insert twice; migration 000013 closes that race with a
//! lock per hour and replaces these triggers.)
//!
//! SQLite, the embedded single-process default for small data, scans.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::tenant_policy;
use crate::sql::{run_on_postgres, run_script};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        run_script(manager, UP).await?;
        run_script(manager, BACKFILL).await?;
        for table in ROLLUP_TABLES {
            run_script(manager, &tenant_policy(table, true)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, DOWN).await
    }
}

pub(crate) const ROLLUP_TABLES: [&str; 2] =
    ["mlgate_prediction_hours", "mlgate_prediction_latency_hours"];

/// The rolled-up measures of the predictions in `source` (which has the
/// columns of `ml_predictions`), grouped by `hour` (an expression).
macro_rules! hour_measures {
    () => {
        "count(*), sum(violation_probability), min(violation_probability), max(violation_probability),
         sum(confidence_score), min(confidence_score), max(confidence_score),
         sum(inference_time_ms), min(inference_time_ms), max(inference_time_ms),
         count(*) FILTER (WHERE risk_level = 'critical'), count(*) FILTER (WHERE risk_level = 'high'),
         count(*) FILTER (WHERE risk_level = 'medium'), count(*) FILTER (WHERE risk_level = 'low')"
    };
}

macro_rules! hour_columns {
    () => {
        "tenant_id, model_id, model_version, hour_start, predictions,
         probability_sum, probability_min, probability_max,
         confidence_sum, confidence_min, confidence_max,
         latency_sum, latency_min, latency_max,
         critical, high, medium, low"
    };
}

pub(crate) const UP: &str = concat!(
    r#"
CREATE TABLE mlgate_prediction_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    predictions BIGINT NOT NULL,
    probability_sum NUMERIC NOT NULL,
    probability_min NUMERIC NOT NULL,
    probability_max NUMERIC NOT NULL,
    confidence_sum NUMERIC NOT NULL,
    confidence_min NUMERIC NOT NULL,
    confidence_max NUMERIC NOT NULL,
    latency_sum NUMERIC NOT NULL,
    latency_min NUMERIC NOT NULL,
    latency_max NUMERIC NOT NULL,
    critical BIGINT NOT NULL,
    high BIGINT NOT NULL,
    medium BIGINT NOT NULL,
    low BIGINT NOT NULL,
    -- Hour before version: windows select a model's hours across its versions.
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
CREATE TABLE mlgate_prediction_latency_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    bucket INTEGER NOT NULL,
    predictions BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version, bucket),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
-- Bucket b holds latencies in [1.01^b, 1.01^(b+1)) ms; zero has its own.
CREATE FUNCTION mlgate_latency_bucket(ms NUMERIC) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ms <= 0 THEN -2147483648
                ELSE floor(ln(ms::float8) / ln(1.01::float8))::integer END
$$
;;
CREATE FUNCTION mlgate_roll_up_inserted_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mlgate_prediction_hours AS h ("#,
    hour_columns!(),
    r#")
    SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'), "#,
    hour_measures!(),
    r#"
      FROM inserted_rows WHERE prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, model_id, model_version, hour_start) DO UPDATE SET
        predictions = h.predictions + EXCLUDED.predictions,
        probability_sum = h.probability_sum + EXCLUDED.probability_sum,
        probability_min = LEAST(h.probability_min, EXCLUDED.probability_min),
        probability_max = GREATEST(h.probability_max, EXCLUDED.probability_max),
        confidence_sum = h.confidence_sum + EXCLUDED.confidence_sum,
        confidence_min = LEAST(h.confidence_min, EXCLUDED.confidence_min),
        confidence_max = GREATEST(h.confidence_max, EXCLUDED.confidence_max),
        latency_sum = h.latency_sum + EXCLUDED.latency_sum,
        latency_min = LEAST(h.latency_min, EXCLUDED.latency_min),
        latency_max = GREATEST(h.latency_max, EXCLUDED.latency_max),
        critical = h.critical + EXCLUDED.critical,
        high = h.high + EXCLUDED.high,
        medium = h.medium + EXCLUDED.medium,
        low = h.low + EXCLUDED.low;
    INSERT INTO mlgate_prediction_latency_hours AS h
        (tenant_id, model_id, model_version, hour_start, bucket, predictions)
    SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'),
           mlgate_latency_bucket(inference_time_ms), count(*)
      FROM inserted_rows WHERE prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, model_id, model_version, hour_start, bucket) DO UPDATE SET
        predictions = h.predictions + EXCLUDED.predictions;
    RETURN NULL;
END
$$
;;
-- Rebuilds the given hours (parallel arrays) from the predictions.
CREATE FUNCTION mlgate_rebuild_prediction_hours(
    tenants TEXT[], models TEXT[], versions TEXT[], hours TIMESTAMPTZ[]
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mlgate_prediction_hours h
     USING unnest(tenants, models, versions, hours) AS k(tenant_id, model_id, model_version, hour_start)
     WHERE h.tenant_id = k.tenant_id AND h.model_id = k.model_id
       AND h.model_version = k.model_version AND h.hour_start = k.hour_start;
    DELETE FROM mlgate_prediction_latency_hours h
     USING unnest(tenants, models, versions, hours) AS k(tenant_id, model_id, model_version, hour_start)
     WHERE h.tenant_id = k.tenant_id AND h.model_id = k.model_id
       AND h.model_version = k.model_version AND h.hour_start = k.hour_start;
    INSERT INTO mlgate_prediction_hours ("#,
    hour_columns!(),
    r#")
    SELECT p.tenant_id, p.model_id, p.model_version, k.hour_start, "#,
    hour_measures!(),
    r#"
      FROM unnest(tenants, models, versions, hours) AS k(tenant_id, model_id, model_version, hour_start)
      JOIN ml_predictions p ON p.tenant_id = k.tenant_id AND p.model_id = k.model_id
       AND p.model_version = k.model_version
       AND p.prediction_timestamp >= k.hour_start AND p.prediction_timestamp < k.hour_start + interval '1 hour'
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
    INSERT INTO mlgate_prediction_latency_hours
        (tenant_id, model_id, model_version, hour_start, bucket, predictions)
    SELECT p.tenant_id, p.model_id, p.model_version, k.hour_start,
           mlgate_latency_bucket(p.inference_time_ms), count(*)
      FROM unnest(tenants, models, versions, hours) AS k(tenant_id, model_id, model_version, hour_start)
      JOIN ml_predictions p ON p.tenant_id = k.tenant_id AND p.model_id = k.model_id
       AND p.model_version = k.model_version
       AND p.prediction_timestamp >= k.hour_start AND p.prediction_timestamp < k.hour_start + interval '1 hour'
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_updated_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[];
BEGIN
    -- Only rows whose rolled-up columns changed (a remediation update does not).
    WITH changed AS (
        SELECT o.tenant_id AS old_tenant, o.model_id AS old_model, o.model_version AS old_version,
               o.prediction_timestamp AS old_at,
               n.tenant_id, n.model_id, n.model_version, n.prediction_timestamp
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE (o.tenant_id, o.model_id, o.model_version, o.prediction_timestamp, o.violation_probability,
                o.confidence_score, o.inference_time_ms, o.risk_level)
               IS DISTINCT FROM
               (n.tenant_id, n.model_id, n.model_version, n.prediction_timestamp, n.violation_probability,
                n.confidence_score, n.inference_time_ms, n.risk_level)
    ), touched AS (
        SELECT old_tenant AS tenant_id, old_model AS model_id, old_version AS model_version,
               date_trunc('hour', old_at, 'UTC') AS hour_start FROM changed WHERE old_at IS NOT NULL
        UNION
        SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC')
          FROM changed WHERE prediction_timestamp IS NOT NULL
    )
    SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
      INTO t, m, v, h FROM touched;
    IF t IS NOT NULL THEN
        PERFORM mlgate_rebuild_prediction_hours(t, m, v, h);
    END IF;
    RETURN NULL;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_deleted_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[];
BEGIN
    SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
      INTO t, m, v, h
      FROM (SELECT DISTINCT tenant_id, model_id, model_version,
                   date_trunc('hour', prediction_timestamp, 'UTC') AS hour_start
              FROM old_rows WHERE prediction_timestamp IS NOT NULL) touched;
    IF t IS NOT NULL THEN
        PERFORM mlgate_rebuild_prediction_hours(t, m, v, h);
    END IF;
    RETURN NULL;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_truncated_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE mlgate_prediction_latency_hours, mlgate_prediction_hours;
    RETURN NULL;
END
$$
;;
CREATE TRIGGER ml_predictions_roll_up_inserts AFTER INSERT ON ml_predictions
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_inserted_predictions()
;;
CREATE TRIGGER ml_predictions_roll_up_updates AFTER UPDATE ON ml_predictions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_updated_predictions()
;;
CREATE TRIGGER ml_predictions_roll_up_deletes AFTER DELETE ON ml_predictions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_deleted_predictions()
;;
CREATE TRIGGER ml_predictions_roll_up_truncates AFTER TRUNCATE ON ml_predictions
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_truncated_predictions()
;;
"#
);

/// The predictions already stored. The forced tenant policy would hide them
/// from a migrating owner that is not a superuser, so it is lifted for the
/// copy (the migration runs in one transaction).
pub(crate) const BACKFILL: &str = concat!(
    r#"
ALTER TABLE ml_predictions NO FORCE ROW LEVEL SECURITY
;;
INSERT INTO mlgate_prediction_hours ("#,
    hour_columns!(),
    r#")
SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'), "#,
    hour_measures!(),
    r#"
  FROM ml_predictions WHERE prediction_timestamp IS NOT NULL
 GROUP BY 1, 2, 3, 4
;;
INSERT INTO mlgate_prediction_latency_hours
    (tenant_id, model_id, model_version, hour_start, bucket, predictions)
SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'),
       mlgate_latency_bucket(inference_time_ms), count(*)
  FROM ml_predictions WHERE prediction_timestamp IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5
;;
ALTER TABLE ml_predictions FORCE ROW LEVEL SECURITY
;;
"#
);

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS ml_predictions_roll_up_truncates ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_deletes ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_updates ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_inserts ON ml_predictions
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_truncated_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_deleted_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_updated_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_rebuild_prediction_hours(TEXT[], TEXT[], TEXT[], TIMESTAMPTZ[])
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_inserted_predictions()
;;
DROP TABLE IF EXISTS mlgate_prediction_latency_hours
;;
DROP TABLE IF EXISTS mlgate_prediction_hours
;;
DROP FUNCTION IF EXISTS mlgate_latency_bucket(NUMERIC)
;;
"#;
