//! Rollups for every dashboard analytic on PostgreSQL, kept by triggers on
//! `ml_predictions` and `ml_feedback` so that every writer keeps them
//! current. Per (tenant, model, version, UTC hour):
//!
//! - `mlgate_prediction_hours`, now also per risk level and remediation
//!   status (`''` for none): counts, sums, minima and maxima of probability,
//!   confidence and inference time, and the predictions with SHAP values
//!   (`explained`). Prediction statistics grouped by those dimensions and
//!   model performance read it.
//! - `mlgate_prediction_latency_hours` (from migration 000010, unchanged).
//! - `mlgate_shap_hours`, per feature: the predictions carrying it, the sum
//!   of its values and of their absolute values (exact `NUMERIC`), for SHAP
//!   importance.
//! - `mlgate_feedback_hours`, per 1 %-wide probability bin (bin 100 holds
//!   probability 1): feedback rows, ratings, the predictions with feedback,
//!   and, by the kind of each prediction's latest feedback (positive,
//!   negative, "as decided", "opposite"), the count, the sum and the sum of
//!   squares of the probabilities. Any decision threshold on a bin edge
//!   (a multiple of 0.01) then gives exact confusion counts, calibration
//!   bins and Brier score.
//!
//! - `mlgate_distribution_hours`: per signal (`probability`, `confidence`)
//!   and 1 %-wide bin (as above), the predictions in it: the distributions
//!   the drift engine compares (no reader yet).
//!
//! Prediction inserts add to the hours they touch; prediction updates and
//! deletes rebuild them from the rows (a minimum cannot be taken back).
//! Feedback changes add, per prediction they are about, the difference
//! between its feedback after the statement and before it ("latest
//! feedback wins" is decided on each side).
//!
//! Every writer of an hour first takes a transaction-level advisory lock on
//! it, in key order within one call. Writers that only add rows cannot
//! deadlock on them; a feedback change about a prediction that another
//! transaction just moved takes the new hour after the old one, and a
//! deadlock there is detected and one side retried. This closes the
//! race migration 000010 documented: a rebuild that ran beside an insert
//! into the same, previously empty hour could count that insert twice (or
//! fail on the key), because neither saw the other's uncommitted rows. Now
//! the second waits for the first to commit and its statements then see it.
//!
//! One case is known not to hold: a single statement that fires more than
//! one of these triggers on rows of one hour. Examples: `INSERT … ON
//! CONFLICT DO UPDATE` that both inserts and updates, or a CTE that inserts
//! feedback and deletes other feedback, or that inserts feedback and updates
//! its prediction. Each trigger sees the others' rows as already there, so
//! rows are counted twice. The gateway never writes that way (its upserts
//! are `DO NOTHING`). `mlgate verify-schema --deep` finds it, and
//! `mlgate rollups rebuild` repairs it.
//!
//! `mlgate_rollup_hours()` lists the hours the rollups should hold (from
//! the rows) or hold; `mlgate_rebuild_hours()` rebuilds a set of them (the
//! triggers' own path; `mlgate rollups rebuild` runs it for a tenant's
//! every hour); `mlgate_rollup_differences()` compares every rollup with
//! an independent aggregation of the rows (`mlgate verify-schema --deep`).
//! All run as the caller, so row-level security scopes them.
//!
//! SQLite, the embedded single-process default for small data, scans.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20260101_000004_row_level_security::tenant_policy;
use crate::m20260101_000010_prediction_rollups as hourly;
use crate::sql::run_script;

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
        for table in NEW_TABLES {
            run_script(manager, &tenant_policy(table, true)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // Back to migration 000010's rollups, rebuilt from the rows.
        run_script(manager, DOWN).await?;
        run_script(manager, hourly::UP).await?;
        run_script(manager, hourly::BACKFILL).await?;
        for table in hourly::ROLLUP_TABLES {
            run_script(manager, &tenant_policy(table, true)).await?;
        }
        Ok(())
    }
}

const NEW_TABLES: [&str; 4] = [
    "mlgate_prediction_hours",
    "mlgate_shap_hours",
    "mlgate_feedback_hours",
    "mlgate_distribution_hours",
];

/// The measures of `mlgate_prediction_hours` over predictions `p`.
macro_rules! prediction_measures {
    () => {
        "count(*), count(*) FILTER (WHERE mlgate_explained(p.shap_values)),
         sum(p.violation_probability), min(p.violation_probability), max(p.violation_probability),
         sum(p.confidence_score), min(p.confidence_score), max(p.confidence_score),
         sum(p.inference_time_ms), min(p.inference_time_ms), max(p.inference_time_ms)"
    };
}

macro_rules! prediction_columns {
    () => {
        "tenant_id, model_id, model_version, hour_start, risk_level, remediation_status,
         predictions, explained, probability_sum, probability_min, probability_max,
         confidence_sum, confidence_min, confidence_max, latency_sum, latency_min, latency_max"
    };
}

/// The measures of `mlgate_feedback_hours` over predictions `p` joined to
/// `r`, their feedback summed (`feedback`, `rated`, `rating_sum`) and the
/// outcome kind of the latest (`kind`).
macro_rules! feedback_measures {
    () => {
        "count(*), sum(r.feedback), sum(r.rated), COALESCE(sum(r.rating_sum), 0),
         count(*) FILTER (WHERE r.kind = 1),
         COALESCE(sum(p.violation_probability) FILTER (WHERE r.kind = 1), 0),
         COALESCE(sum(p.violation_probability * p.violation_probability) FILTER (WHERE r.kind = 1), 0),
         count(*) FILTER (WHERE r.kind = 0),
         COALESCE(sum(p.violation_probability) FILTER (WHERE r.kind = 0), 0),
         COALESCE(sum(p.violation_probability * p.violation_probability) FILTER (WHERE r.kind = 0), 0),
         count(*) FILTER (WHERE r.kind = 2),
         COALESCE(sum(p.violation_probability) FILTER (WHERE r.kind = 2), 0),
         COALESCE(sum(p.violation_probability * p.violation_probability) FILTER (WHERE r.kind = 2), 0),
         count(*) FILTER (WHERE r.kind = 3),
         COALESCE(sum(p.violation_probability) FILTER (WHERE r.kind = 3), 0),
         COALESCE(sum(p.violation_probability * p.violation_probability) FILTER (WHERE r.kind = 3), 0)"
    };
}

/// [`feedback_measures!`] of the differences `r` (each prediction's
/// feedback summed, with `sign` +1 for after, −1 for before).
macro_rules! signed_feedback_measures {
    () => {
        "sum(r.sign), sum(r.sign * r.feedback), sum(r.sign * r.rated), COALESCE(sum(r.sign * r.rating_sum), 0),
         COALESCE(sum(r.sign) FILTER (WHERE r.kind = 1), 0),
         COALESCE(sum(r.sign * p.prob) FILTER (WHERE r.kind = 1), 0),
         COALESCE(sum(r.sign * p.prob * p.prob) FILTER (WHERE r.kind = 1), 0),
         COALESCE(sum(r.sign) FILTER (WHERE r.kind = 0), 0),
         COALESCE(sum(r.sign * p.prob) FILTER (WHERE r.kind = 0), 0),
         COALESCE(sum(r.sign * p.prob * p.prob) FILTER (WHERE r.kind = 0), 0),
         COALESCE(sum(r.sign) FILTER (WHERE r.kind = 2), 0),
         COALESCE(sum(r.sign * p.prob) FILTER (WHERE r.kind = 2), 0),
         COALESCE(sum(r.sign * p.prob * p.prob) FILTER (WHERE r.kind = 2), 0),
         COALESCE(sum(r.sign) FILTER (WHERE r.kind = 3), 0),
         COALESCE(sum(r.sign * p.prob) FILTER (WHERE r.kind = 3), 0),
         COALESCE(sum(r.sign * p.prob * p.prob) FILTER (WHERE r.kind = 3), 0)"
    };
}

macro_rules! feedback_columns {
    () => {
        "tenant_id, model_id, model_version, hour_start, bin, reviewed, feedback, rated, rating_sum,
         positive_n, positive_sum, positive_squares, negative_n, negative_sum, negative_squares,
         as_decided_n, as_decided_sum, as_decided_squares, opposite_n, opposite_sum, opposite_squares"
    };
}

/// One prediction's feedback, summed: select list over feedback rows `fe`.
macro_rules! feedback_of_prediction {
    () => {
        "count(*) AS feedback, count(fe.accuracy_rating) AS rated, sum(fe.accuracy_rating) AS rating_sum,
         (array_agg(mlgate_outcome_kind(fe.feedback_type, fe.correct_label)
                    ORDER BY fe.created_at DESC NULLS LAST, fe.feedback_id DESC))[1] AS kind"
    };
}

/// Each prediction `p`'s two rows of `mlgate_distribution_hours`: its
/// probability's bin and its confidence's, as `d(signal, bin)`.
macro_rules! distribution_bins {
    () => {
        "(VALUES ('probability', mlgate_probability_bin(p.violation_probability)),
                 ('confidence', mlgate_probability_bin(p.confidence_score))) AS d(signal, bin)"
    };
}

/// A prediction's columns that some rollup reads, with its id.
macro_rules! rolled_up_columns {
    () => {
        "id, tenant_id, prediction_id, model_id, model_version, prediction_timestamp,
         violation_probability, confidence_score, inference_time_ms, risk_level,
         remediation_status, shap_values"
    };
}

/// The hours `k(tenant_id, model_id, model_version, hour_start, hour_end)`
/// given as four parallel arrays, joined to their predictions `p`. The end
/// is computed before the join: under row-level security only leakproof
/// conditions may bound an index scan, and `+ interval` is not, so
/// `< hour_start + interval '1 hour'` scanned every later prediction of the
/// model and filtered.
macro_rules! keyed_predictions {
    () => {
        "(SELECT DISTINCT u.tenant_id, u.model_id, u.model_version, u.hour_start,
                 u.hour_start + interval '1 hour' AS hour_end
            FROM unnest(tenants, models, versions, hours) AS u(tenant_id, model_id, model_version, hour_start)) k
         JOIN ml_predictions p ON p.tenant_id = k.tenant_id AND p.model_id = k.model_id
          AND p.model_version = k.model_version
          AND p.prediction_timestamp >= k.hour_start AND p.prediction_timestamp < k.hour_end"
    };
}

macro_rules! keyed_delete {
    ($table:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " h USING unnest(tenants, models, versions, hours) AS k(tenant_id, model_id, model_version, hour_start)
              WHERE h.tenant_id = k.tenant_id AND h.model_id = k.model_id
                AND h.model_version = k.model_version AND h.hour_start = k.hour_start;"
        )
    };
}

/// The four key arrays of the distinct hours of `$rows` (predictions).
macro_rules! hours_of {
    ($rows:literal) => {
        concat!(
            "SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
               INTO t, m, v, h
               FROM (SELECT DISTINCT tenant_id, model_id, model_version,
                            date_trunc('hour', prediction_timestamp, 'UTC') AS hour_start
                       FROM ",
            $rows,
            " WHERE prediction_timestamp IS NOT NULL) touched;"
        )
    };
}

/// The feedback trigger's function, with the lookup of the predictions a
/// statement's feedback is about given: migration 000014 replaces this
/// version's joins (which a planner misestimating the tenant's size turned
/// into a scan of all its predictions per feedback row) with index lookups.
macro_rules! changed_feedback_function {
    ($create:literal, $touched:literal, $about:literal) => {
        concat!(
            r#""#,
            $create,
            r#" mlgate_roll_up_changed_feedback() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    removed ml_feedback[]; added ml_feedback[]; added_ids UUID[];
    tenants TEXT[]; ids TEXT[];
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n), array_agg(n.id) INTO added, added_ids FROM new_feedback n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(o) INTO removed FROM old_feedback o;
    ELSE
        -- Only rows whose rolled-up columns changed: marking feedback
        -- processed touches no rollup (and takes no lock).
        SELECT array_agg(o) INTO removed FROM old_feedback o
         WHERE NOT EXISTS (SELECT 1 FROM new_feedback n WHERE n.id = o.id
                   AND (n.tenant_id, n.prediction_id, n.feedback_id, n.feedback_type, n.correct_label,
                        n.accuracy_rating, n.created_at)
                       IS NOT DISTINCT FROM
                       (o.tenant_id, o.prediction_id, o.feedback_id, o.feedback_type, o.correct_label,
                        o.accuracy_rating, o.created_at));
        SELECT array_agg(n), array_agg(n.id) INTO added, added_ids FROM new_feedback n
         WHERE NOT EXISTS (SELECT 1 FROM old_feedback o WHERE o.id = n.id
                   AND (n.tenant_id, n.prediction_id, n.feedback_id, n.feedback_type, n.correct_label,
                        n.accuracy_rating, n.created_at)
                       IS NOT DISTINCT FROM
                       (o.tenant_id, o.prediction_id, o.feedback_id, o.feedback_type, o.correct_label,
                        o.accuracy_rating, o.created_at));
    END IF;
    SELECT array_agg(tenant_id), array_agg(prediction_id) INTO tenants, ids
      FROM (SELECT r.tenant_id, r.prediction_id FROM unnest(removed) r
            UNION SELECT a.tenant_id, a.prediction_id FROM unnest(added) a) about;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
      INTO t, m, v, h
      FROM (SELECT DISTINCT p.tenant_id, p.model_id, p.model_version,
                   date_trunc('hour', p.prediction_timestamp, 'UTC') AS hour_start
"#,
            $touched,
            r#"             WHERE p.prediction_timestamp IS NOT NULL) touched;
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM mlgate_lock_hours(t, m, v, h);
    SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
      INTO t, m, v, h
      FROM (SELECT DISTINCT p.tenant_id, p.model_id, p.model_version,
                   date_trunc('hour', p.prediction_timestamp, 'UTC') AS hour_start
"#,
            $touched,
            r#"             WHERE p.prediction_timestamp IS NOT NULL) touched;
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM mlgate_lock_hours(t, m, v, h);
    WITH about AS (
        SELECT p.tenant_id, p.prediction_id, p.model_id, p.model_version,
               date_trunc('hour', p.prediction_timestamp, 'UTC') AS hour_start,
               mlgate_probability_bin(p.violation_probability) AS bin, p.violation_probability AS prob
"#,
            $about,
            r#"         WHERE p.prediction_timestamp IS NOT NULL
    ), now_rows AS (
        SELECT fe.id, fe.tenant_id, fe.prediction_id, fe.feedback_type, fe.correct_label,
               fe.accuracy_rating, fe.created_at, fe.feedback_id
          FROM about JOIN ml_feedback fe
            ON fe.tenant_id = about.tenant_id AND fe.prediction_id = about.prediction_id
    ), states AS (
        SELECT 1 AS sign, * FROM now_rows
        UNION ALL
        SELECT -1, * FROM now_rows WHERE added_ids IS NULL OR NOT (id = ANY (added_ids))
        UNION ALL
        SELECT -1, r.id, r.tenant_id, r.prediction_id, r.feedback_type, r.correct_label,
               r.accuracy_rating, r.created_at, r.feedback_id
          FROM unnest(removed) r
    ), r AS (
        SELECT fe.sign, fe.tenant_id, fe.prediction_id, "#,
    $crate::m20260101_000013_dashboard_rollups::feedback_of_prediction!(),
    r#"
          FROM states fe GROUP BY 1, 2, 3
    )
    INSERT INTO mlgate_feedback_hours AS x ("#,
    $crate::m20260101_000013_dashboard_rollups::feedback_columns!(),
    r#")
    SELECT p.tenant_id, p.model_id, p.model_version, p.hour_start, p.bin, "#,
    $crate::m20260101_000013_dashboard_rollups::signed_feedback_measures!(),
    r#"
      FROM r JOIN about p ON p.tenant_id = r.tenant_id AND p.prediction_id = r.prediction_id
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, model_id, hour_start, model_version, bin) DO UPDATE SET
        reviewed = x.reviewed + EXCLUDED.reviewed,
        feedback = x.feedback + EXCLUDED.feedback,
        rated = x.rated + EXCLUDED.rated,
        rating_sum = x.rating_sum + EXCLUDED.rating_sum,
        positive_n = x.positive_n + EXCLUDED.positive_n,
        positive_sum = x.positive_sum + EXCLUDED.positive_sum,
        positive_squares = x.positive_squares + EXCLUDED.positive_squares,
        negative_n = x.negative_n + EXCLUDED.negative_n,
        negative_sum = x.negative_sum + EXCLUDED.negative_sum,
        negative_squares = x.negative_squares + EXCLUDED.negative_squares,
        as_decided_n = x.as_decided_n + EXCLUDED.as_decided_n,
        as_decided_sum = x.as_decided_sum + EXCLUDED.as_decided_sum,
        as_decided_squares = x.as_decided_squares + EXCLUDED.as_decided_squares,
        opposite_n = x.opposite_n + EXCLUDED.opposite_n,
        opposite_sum = x.opposite_sum + EXCLUDED.opposite_sum,
        opposite_squares = x.opposite_squares + EXCLUDED.opposite_squares;
    -- A bin no prediction with feedback is left in is not kept (as a rebuild).
    DELETE FROM mlgate_feedback_hours x
     USING unnest(t, m, v, h) AS k(tenant_id, model_id, model_version, hour_start)
     WHERE x.tenant_id = k.tenant_id AND x.model_id = k.model_id
       AND x.model_version = k.model_version AND x.hour_start = k.hour_start AND x.reviewed = 0;
    RETURN NULL;
END
$$
"#
        )
    };
}
pub(crate) use changed_feedback_function;

/// This migration's lookups, as 000014's down migration restores them.
macro_rules! changed_feedback_function_000013 {
    () => {
        changed_feedback_function!(
            "CREATE FUNCTION",
            r#"              FROM unnest(tenants, ids) AS a(tenant_id, prediction_id)
              JOIN ml_predictions p ON p.tenant_id = a.tenant_id AND p.prediction_id = a.prediction_id
"#,
            r#"          FROM (SELECT DISTINCT * FROM unnest(tenants, ids)) AS a(tenant_id, prediction_id)
          JOIN ml_predictions p ON p.tenant_id = a.tenant_id AND p.prediction_id = a.prediction_id
"#
        )
    };
}
pub(crate) use changed_feedback_function_000013;

pub(crate) use {feedback_columns, feedback_of_prediction, signed_feedback_measures};

/// 000013's SHAP entry functions, as it created them (migration 000016
/// replaces them and restores these on the way down).
macro_rules! shap_entry_functions_000013 {
    () => {
        r#"-- The numeric feature contributions of a SHAP object, as the gateway reads
-- them (server::domain::explanation): its "values" member when that is an
-- object, else the object itself; base-value keys and non-numbers left out.
CREATE FUNCTION mlgate_shap_entries(v JSONB) RETURNS TABLE (feature TEXT, value NUMERIC)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.key, (e.value #>> '{}')::numeric
      FROM jsonb_each(CASE WHEN jsonb_typeof(v -> 'values') = 'object' THEN v -> 'values'
                           WHEN jsonb_typeof(v) = 'object' THEN v
                           ELSE '{}'::jsonb END) e
     WHERE jsonb_typeof(e.value) = 'number'
       AND e.key NOT IN ('base_value', '_base_value', 'expected_value')
$$
;;
CREATE FUNCTION mlgate_explained(v JSONB) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM mlgate_shap_entries(v))
$$
;;
"#
    };
}
pub(crate) use shap_entry_functions_000013;

pub(crate) const UP: &str = concat!(
    r#"
DROP TRIGGER ml_predictions_roll_up_truncates ON ml_predictions
;;
DROP TRIGGER ml_predictions_roll_up_deletes ON ml_predictions
;;
DROP TRIGGER ml_predictions_roll_up_updates ON ml_predictions
;;
DROP TRIGGER ml_predictions_roll_up_inserts ON ml_predictions
;;
DROP FUNCTION mlgate_roll_up_truncated_predictions()
;;
DROP FUNCTION mlgate_roll_up_deleted_predictions()
;;
DROP FUNCTION mlgate_roll_up_updated_predictions()
;;
DROP FUNCTION mlgate_rebuild_prediction_hours(TEXT[], TEXT[], TEXT[], TIMESTAMPTZ[])
;;
DROP FUNCTION mlgate_roll_up_inserted_predictions()
;;
DROP TABLE mlgate_prediction_hours
;;
"#,
    shap_entry_functions_000013!(),
    r#"-- Bin b holds probabilities in [b/100, (b+1)/100); bin 100 holds 1.
CREATE FUNCTION mlgate_probability_bin(p NUMERIC) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT floor(p * 100)::integer
$$
;;
-- The outcome a feedback row says: 1 violation, 0 none, 2 as the model
-- decided, 3 the opposite of what it decided.
CREATE FUNCTION mlgate_outcome_kind(feedback_type TEXT, correct_label BOOLEAN) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN correct_label IS NOT NULL THEN (CASE WHEN correct_label THEN 1 ELSE 0 END)
                WHEN feedback_type = 'false_positive' THEN 0
                WHEN feedback_type = 'false_negative' THEN 1
                WHEN feedback_type = 'correct' THEN 2
                WHEN feedback_type = 'incorrect' THEN 3 END
$$
;;
-- Locks the hours (parallel arrays) until the transaction ends, in key
-- order. The key is a hash of the hour (as epoch seconds, `Infinity` too:
-- a timestamp as text would follow the session's time zone); a collision
-- only serialises two writers more.
CREATE FUNCTION mlgate_lock_hours(
    tenants TEXT[], models TEXT[], versions TEXT[], hours TIMESTAMPTZ[]
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(key)
       FROM (SELECT DISTINCT hashtextextended(
                    concat_ws(E'\x1f', t, m, v, extract(epoch FROM h)::text), 7019) AS key
               FROM unnest(tenants, models, versions, hours) AS k(t, m, v, h)
              ORDER BY 1) keys;
END
$$
;;
-- A prediction's feedback, latest first, with what the rollups read: the
-- rebuilds look it up once per prediction of an hour.
CREATE INDEX idx_ml_feedback_tenant_prediction_latest ON ml_feedback
    (tenant_id, prediction_id, created_at DESC NULLS LAST, feedback_id DESC)
    INCLUDE (feedback_type, correct_label, accuracy_rating)
;;
CREATE TABLE mlgate_prediction_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    risk_level VARCHAR(20) NOT NULL,
    -- '' for predictions without a remediation status.
    remediation_status VARCHAR(50) NOT NULL,
    predictions BIGINT NOT NULL,
    explained BIGINT NOT NULL,
    probability_sum NUMERIC NOT NULL,
    probability_min NUMERIC NOT NULL,
    probability_max NUMERIC NOT NULL,
    confidence_sum NUMERIC NOT NULL,
    confidence_min NUMERIC NOT NULL,
    confidence_max NUMERIC NOT NULL,
    latency_sum NUMERIC NOT NULL,
    latency_min NUMERIC NOT NULL,
    latency_max NUMERIC NOT NULL,
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version, risk_level, remediation_status),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
-- Statistics over all of a tenant's models read a time range.
CREATE INDEX idx_mlgate_prediction_hours_tenant_hour ON mlgate_prediction_hours (tenant_id, hour_start)
;;
CREATE TABLE mlgate_shap_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    feature TEXT NOT NULL,
    predictions BIGINT NOT NULL,
    value_sum NUMERIC NOT NULL,
    abs_sum NUMERIC NOT NULL,
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version, feature),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
CREATE TABLE mlgate_feedback_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    bin INTEGER NOT NULL CHECK (bin BETWEEN 0 AND 100),
    reviewed BIGINT NOT NULL,
    feedback BIGINT NOT NULL,
    rated BIGINT NOT NULL,
    rating_sum NUMERIC NOT NULL,
    positive_n BIGINT NOT NULL,
    positive_sum NUMERIC NOT NULL,
    positive_squares NUMERIC NOT NULL,
    negative_n BIGINT NOT NULL,
    negative_sum NUMERIC NOT NULL,
    negative_squares NUMERIC NOT NULL,
    as_decided_n BIGINT NOT NULL,
    as_decided_sum NUMERIC NOT NULL,
    as_decided_squares NUMERIC NOT NULL,
    opposite_n BIGINT NOT NULL,
    opposite_sum NUMERIC NOT NULL,
    opposite_squares NUMERIC NOT NULL,
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version, bin),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
CREATE TABLE mlgate_distribution_hours (
    tenant_id VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    hour_start TIMESTAMPTZ NOT NULL,
    signal VARCHAR(20) NOT NULL CHECK (signal IN ('probability', 'confidence')),
    bin INTEGER NOT NULL CHECK (bin BETWEEN 0 AND 100),
    predictions BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, model_id, hour_start, model_version, signal, bin),
    FOREIGN KEY (tenant_id, model_id) REFERENCES ml_models (tenant_id, model_id) ON DELETE CASCADE
)
;;
-- Rebuilds the given hours (parallel arrays) from the rows: the prediction
-- measures, latency histograms and feedback bins, and with `shap` the SHAP
-- sums too.
CREATE FUNCTION mlgate_rebuild_hours(
    tenants TEXT[], models TEXT[], versions TEXT[], hours TIMESTAMPTZ[], shap BOOLEAN
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mlgate_lock_hours(tenants, models, versions, hours);
    "#,
    keyed_delete!("mlgate_prediction_hours"),
    keyed_delete!("mlgate_prediction_latency_hours"),
    keyed_delete!("mlgate_feedback_hours"),
    keyed_delete!("mlgate_distribution_hours"),
    r#"
    INSERT INTO mlgate_distribution_hours
        (tenant_id, model_id, model_version, hour_start, signal, bin, predictions)
    SELECT k.tenant_id, k.model_id, k.model_version, k.hour_start, d.signal, d.bin, count(*)
      FROM "#,
    keyed_predictions!(),
    r#"
     CROSS JOIN LATERAL "#,
    distribution_bins!(),
    r#"
     GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO mlgate_prediction_hours ("#,
    prediction_columns!(),
    r#")
    SELECT k.tenant_id, k.model_id, k.model_version, k.hour_start, p.risk_level, COALESCE(p.remediation_status, ''), "#,
    prediction_measures!(),
    r#"
      FROM "#,
    keyed_predictions!(),
    r#"
     GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO mlgate_prediction_latency_hours
        (tenant_id, model_id, model_version, hour_start, bucket, predictions)
    SELECT k.tenant_id, k.model_id, k.model_version, k.hour_start, mlgate_latency_bucket(p.inference_time_ms), count(*)
      FROM "#,
    keyed_predictions!(),
    r#"
     GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO mlgate_feedback_hours ("#,
    feedback_columns!(),
    r#")
    SELECT k.tenant_id, k.model_id, k.model_version, k.hour_start, mlgate_probability_bin(p.violation_probability), "#,
    feedback_measures!(),
    r#"
      FROM "#,
    keyed_predictions!(),
    r#"
     CROSS JOIN LATERAL (SELECT "#,
    feedback_of_prediction!(),
    r#"
          FROM ml_feedback fe WHERE fe.tenant_id = p.tenant_id AND fe.prediction_id = p.prediction_id) r
     WHERE r.feedback > 0
     GROUP BY 1, 2, 3, 4, 5;
    IF shap THEN
        "#,
    keyed_delete!("mlgate_shap_hours"),
    r#"
        INSERT INTO mlgate_shap_hours
            (tenant_id, model_id, model_version, hour_start, feature, predictions, value_sum, abs_sum)
        SELECT k.tenant_id, k.model_id, k.model_version, k.hour_start, e.feature, count(*), sum(e.value), sum(abs(e.value))
          FROM "#,
    keyed_predictions!(),
    r#"
         CROSS JOIN LATERAL mlgate_shap_entries(p.shap_values) e
         GROUP BY 1, 2, 3, 4, 5;
    END IF;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_inserted_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[];
BEGIN
    "#,
    hours_of!("inserted_rows"),
    r#"
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM mlgate_lock_hours(t, m, v, h);
    -- Grouped upserts in key order, so concurrent batches lock rollup rows
    -- in the same order.
    INSERT INTO mlgate_prediction_hours AS x ("#,
    prediction_columns!(),
    r#")
    SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
           p.risk_level, COALESCE(p.remediation_status, ''), "#,
    prediction_measures!(),
    r#"
      FROM inserted_rows p WHERE p.prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, model_id, hour_start, model_version, risk_level, remediation_status) DO UPDATE SET
        predictions = x.predictions + EXCLUDED.predictions,
        explained = x.explained + EXCLUDED.explained,
        probability_sum = x.probability_sum + EXCLUDED.probability_sum,
        probability_min = LEAST(x.probability_min, EXCLUDED.probability_min),
        probability_max = GREATEST(x.probability_max, EXCLUDED.probability_max),
        confidence_sum = x.confidence_sum + EXCLUDED.confidence_sum,
        confidence_min = LEAST(x.confidence_min, EXCLUDED.confidence_min),
        confidence_max = GREATEST(x.confidence_max, EXCLUDED.confidence_max),
        latency_sum = x.latency_sum + EXCLUDED.latency_sum,
        latency_min = LEAST(x.latency_min, EXCLUDED.latency_min),
        latency_max = GREATEST(x.latency_max, EXCLUDED.latency_max);
    INSERT INTO mlgate_prediction_latency_hours AS x
        (tenant_id, model_id, model_version, hour_start, bucket, predictions)
    SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'),
           mlgate_latency_bucket(inference_time_ms), count(*)
      FROM inserted_rows WHERE prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, model_id, hour_start, model_version, bucket) DO UPDATE SET
        predictions = x.predictions + EXCLUDED.predictions;
    INSERT INTO mlgate_shap_hours AS x
        (tenant_id, model_id, model_version, hour_start, feature, predictions, value_sum, abs_sum)
    SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
           e.feature, count(*), sum(e.value), sum(abs(e.value))
      FROM inserted_rows p CROSS JOIN LATERAL mlgate_shap_entries(p.shap_values) e
     WHERE p.prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, model_id, hour_start, model_version, feature) DO UPDATE SET
        predictions = x.predictions + EXCLUDED.predictions,
        value_sum = x.value_sum + EXCLUDED.value_sum,
        abs_sum = x.abs_sum + EXCLUDED.abs_sum;
    INSERT INTO mlgate_distribution_hours AS x
        (tenant_id, model_id, model_version, hour_start, signal, bin, predictions)
    SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
           d.signal, d.bin, count(*)
      FROM inserted_rows p CROSS JOIN LATERAL "#,
    distribution_bins!(),
    r#"
     WHERE p.prediction_timestamp IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, model_id, hour_start, model_version, signal, bin) DO UPDATE SET
        predictions = x.predictions + EXCLUDED.predictions;
    -- A new prediction has no feedback yet (feedback references it).
    RETURN NULL;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_updated_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[]; with_shap BOOLEAN;
BEGIN
    -- The row versions on either side with no identical twin (id and every
    -- rolled-up column; EXCEPT compares NULLs as equal) on the other: an
    -- update of nothing rolled up (`updated_at` alone) touches no hour, one
    -- that also changes the id touches both sides.
    SELECT array_agg(tenant_id), array_agg(model_id), array_agg(model_version), array_agg(hour_start)
      INTO t, m, v, h
      FROM (SELECT DISTINCT tenant_id, model_id, model_version,
                   date_trunc('hour', prediction_timestamp, 'UTC') AS hour_start
              FROM ((SELECT "#,
    rolled_up_columns!(),
    r#" FROM old_rows EXCEPT SELECT "#,
    rolled_up_columns!(),
    r#" FROM new_rows)
                    UNION ALL
                    (SELECT "#,
    rolled_up_columns!(),
    r#" FROM new_rows EXCEPT SELECT "#,
    rolled_up_columns!(),
    r#" FROM old_rows)) changed
             WHERE prediction_timestamp IS NOT NULL) touched;
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    -- The SHAP sums are rebuilt too when what they read changed.
    with_shap := EXISTS (
        (SELECT id, tenant_id, model_id, model_version, prediction_timestamp, shap_values FROM old_rows
         EXCEPT SELECT id, tenant_id, model_id, model_version, prediction_timestamp, shap_values FROM new_rows)
        UNION ALL
        (SELECT id, tenant_id, model_id, model_version, prediction_timestamp, shap_values FROM new_rows
         EXCEPT SELECT id, tenant_id, model_id, model_version, prediction_timestamp, shap_values FROM old_rows));
    PERFORM mlgate_rebuild_hours(t, m, v, h, with_shap);
    RETURN NULL;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_deleted_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT[]; m TEXT[]; v TEXT[]; h TIMESTAMPTZ[];
BEGIN
    "#,
    hours_of!("old_rows"),
    r#"
    IF t IS NOT NULL THEN
        PERFORM mlgate_rebuild_hours(t, m, v, h, true);
    END IF;
    RETURN NULL;
END
$$
;;
CREATE FUNCTION mlgate_roll_up_truncated_predictions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE mlgate_distribution_hours, mlgate_feedback_hours, mlgate_shap_hours, mlgate_prediction_latency_hours,
             mlgate_prediction_hours;
    RETURN NULL;
END
$$
;;
-- Feedback changed: the bins of the predictions it is (or was) about
-- change by the difference between each prediction's feedback after the
-- statement and before it (what is there now, less the rows the statement
-- added, plus the rows it removed), so that a batch of feedback costs its
-- predictions, not the hours they are in. The hours are locked first (both
-- sides of an update in one ordered lock), then the predictions read again:
-- a transaction that moved one of them to another hour held the lock, and
-- its rebuild counted the prediction's feedback as committed then, to which
-- this difference applies.
"#,
    changed_feedback_function_000013!(),
    r#";;
CREATE FUNCTION mlgate_roll_up_truncated_feedback() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE mlgate_feedback_hours;
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
CREATE TRIGGER ml_feedback_roll_up_inserts AFTER INSERT ON ml_feedback
    REFERENCING NEW TABLE AS new_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_changed_feedback()
;;
-- Both sides: feedback moved to another prediction leaves one and reaches
-- the other.
CREATE TRIGGER ml_feedback_roll_up_updates AFTER UPDATE ON ml_feedback
    REFERENCING OLD TABLE AS old_feedback NEW TABLE AS new_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_changed_feedback()
;;
CREATE TRIGGER ml_feedback_roll_up_deletes AFTER DELETE ON ml_feedback
    REFERENCING OLD TABLE AS old_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_changed_feedback()
;;
CREATE TRIGGER ml_feedback_roll_up_truncates AFTER TRUNCATE ON ml_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION mlgate_roll_up_truncated_feedback()
;;
-- Every hour the rollups should hold (it has predictions) or hold, visible
-- to the caller: what a full rebuild walks.
CREATE FUNCTION mlgate_rollup_hours()
RETURNS TABLE (tenant_id TEXT, model_id TEXT, model_version TEXT, hour_start TIMESTAMPTZ)
LANGUAGE sql STABLE AS $$
    SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC')
      FROM ml_predictions WHERE prediction_timestamp IS NOT NULL
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_prediction_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_prediction_latency_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_shap_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_feedback_hours
    UNION SELECT tenant_id, model_id, model_version, hour_start FROM mlgate_distribution_hours
    ORDER BY 1, 2, 3, 4
$$
;;
"#
);

/// The rollups as one aggregation of all the rows visible (written without
/// the per-hour keys, so that it checks the triggers' path rather than
/// repeating it): used to backfill, and to compare.
macro_rules! from_rows {
    (prediction) => {
        concat!(
            "SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
                    p.risk_level, COALESCE(p.remediation_status, ''), ",
            prediction_measures!(),
            " FROM ml_predictions p WHERE p.prediction_timestamp IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6"
        )
    };
    (latency) => {
        "SELECT tenant_id, model_id, model_version, date_trunc('hour', prediction_timestamp, 'UTC'),
                mlgate_latency_bucket(inference_time_ms), count(*)
           FROM ml_predictions WHERE prediction_timestamp IS NOT NULL GROUP BY 1, 2, 3, 4, 5"
    };
    (shap) => {
        "SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
                e.feature, count(*), sum(e.value), sum(abs(e.value))
           FROM ml_predictions p CROSS JOIN LATERAL mlgate_shap_entries(p.shap_values) e
          WHERE p.prediction_timestamp IS NOT NULL GROUP BY 1, 2, 3, 4, 5"
    };
    (distribution) => {
        concat!(
            "SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
                    d.signal, d.bin, count(*)
               FROM ml_predictions p CROSS JOIN LATERAL ",
            distribution_bins!(),
            " WHERE p.prediction_timestamp IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6"
        )
    };
    (feedback) => {
        concat!(
            "SELECT p.tenant_id, p.model_id, p.model_version, date_trunc('hour', p.prediction_timestamp, 'UTC'),
                    mlgate_probability_bin(p.violation_probability), ",
            feedback_measures!(),
            " FROM ml_predictions p JOIN (SELECT fe.tenant_id, fe.prediction_id, ",
            feedback_of_prediction!(),
            " FROM ml_feedback fe GROUP BY 1, 2) r
               ON r.tenant_id = p.tenant_id AND r.prediction_id = p.prediction_id
            WHERE p.prediction_timestamp IS NOT NULL GROUP BY 1, 2, 3, 4, 5"
        )
    };
}

/// Rows of `$table` a fresh aggregation would not produce, plus the
/// reverse, as `SELECT '<table>', count`.
macro_rules! differing {
    ($table:literal, $columns:expr, $rows:expr) => {
        concat!(
            "SELECT '",
            $table,
            "'::text, (SELECT count(*) FROM ((SELECT ",
            $columns,
            " FROM ",
            $table,
            " EXCEPT ",
            $rows,
            ") UNION ALL (",
            $rows,
            " EXCEPT SELECT ",
            $columns,
            " FROM ",
            $table,
            ")) d)"
        )
    };
}

pub(crate) const BACKFILL: &str = concat!(
    r#"
-- The forced tenant policy would hide the rows from a migrating owner that
-- is not a superuser, so it is lifted for the copy (the migration runs in
-- one transaction).
ALTER TABLE ml_predictions NO FORCE ROW LEVEL SECURITY
;;
ALTER TABLE ml_feedback NO FORCE ROW LEVEL SECURITY
;;
INSERT INTO mlgate_prediction_hours ("#,
    prediction_columns!(),
    ") ",
    from_rows!(prediction),
    r#"
;;
INSERT INTO mlgate_shap_hours (tenant_id, model_id, model_version, hour_start, feature, predictions, value_sum, abs_sum) "#,
    from_rows!(shap),
    r#"
;;
INSERT INTO mlgate_feedback_hours ("#,
    feedback_columns!(),
    ") ",
    from_rows!(feedback),
    r#"
;;
INSERT INTO mlgate_distribution_hours (tenant_id, model_id, model_version, hour_start, signal, bin, predictions) "#,
    from_rows!(distribution),
    r#"
;;
ALTER TABLE ml_feedback FORCE ROW LEVEL SECURITY
;;
ALTER TABLE ml_predictions FORCE ROW LEVEL SECURITY
;;
-- Per rollup table, its rows that differ from a fresh aggregation of the
-- rows visible to the caller, counted both ways (0 everywhere: consistent).
CREATE FUNCTION mlgate_rollup_differences() RETURNS TABLE (rollup TEXT, differing BIGINT)
LANGUAGE sql STABLE AS $$
"#,
    differing!(
        "mlgate_prediction_hours",
        prediction_columns!(),
        from_rows!(prediction)
    ),
    " UNION ALL ",
    differing!(
        "mlgate_prediction_latency_hours",
        "tenant_id, model_id, model_version, hour_start, bucket, predictions",
        from_rows!(latency)
    ),
    " UNION ALL ",
    differing!(
        "mlgate_shap_hours",
        "tenant_id, model_id, model_version, hour_start, feature, predictions, value_sum, abs_sum",
        from_rows!(shap)
    ),
    " UNION ALL ",
    differing!(
        "mlgate_feedback_hours",
        feedback_columns!(),
        from_rows!(feedback)
    ),
    " UNION ALL ",
    differing!(
        "mlgate_distribution_hours",
        "tenant_id, model_id, model_version, hour_start, signal, bin, predictions",
        from_rows!(distribution)
    ),
    r#"
$$
;;
"#
);

const DOWN: &str = r#"
DROP FUNCTION IF EXISTS mlgate_rollup_differences()
;;
DROP FUNCTION IF EXISTS mlgate_rollup_hours()
;;
DROP TRIGGER IF EXISTS ml_feedback_roll_up_truncates ON ml_feedback
;;
DROP TRIGGER IF EXISTS ml_feedback_roll_up_deletes ON ml_feedback
;;
DROP TRIGGER IF EXISTS ml_feedback_roll_up_updates ON ml_feedback
;;
DROP TRIGGER IF EXISTS ml_feedback_roll_up_inserts ON ml_feedback
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_truncates ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_deletes ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_updates ON ml_predictions
;;
DROP TRIGGER IF EXISTS ml_predictions_roll_up_inserts ON ml_predictions
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_truncated_feedback()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_changed_feedback()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_truncated_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_deleted_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_updated_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_roll_up_inserted_predictions()
;;
DROP FUNCTION IF EXISTS mlgate_rebuild_hours(TEXT[], TEXT[], TEXT[], TIMESTAMPTZ[], BOOLEAN)
;;
DROP TABLE IF EXISTS mlgate_distribution_hours
;;
DROP TABLE IF EXISTS mlgate_feedback_hours
;;
DROP TABLE IF EXISTS mlgate_shap_hours
;;
DROP TABLE IF EXISTS mlgate_prediction_hours
;;
DROP TABLE IF EXISTS mlgate_prediction_latency_hours
;;
DROP FUNCTION IF EXISTS mlgate_latency_bucket(NUMERIC)
;;
DROP FUNCTION IF EXISTS mlgate_lock_hours(TEXT[], TEXT[], TEXT[], TIMESTAMPTZ[])
;;
DROP FUNCTION IF EXISTS mlgate_outcome_kind(TEXT, BOOLEAN)
;;
DROP FUNCTION IF EXISTS mlgate_probability_bin(NUMERIC)
;;
DROP FUNCTION IF EXISTS mlgate_explained(JSONB)
;;
DROP FUNCTION IF EXISTS mlgate_shap_entries(JSONB)
;;
DROP INDEX IF EXISTS idx_ml_feedback_tenant_prediction_latest
;;
"#;
