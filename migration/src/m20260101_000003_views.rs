//! `v_recent_predictions` and `v_model_performance`, joined on the tenant as
//! well as the model id and, on PostgreSQL, `security_invoker` so that the
//! caller's row-level security applies through them.

use sea_orm_migration::prelude::*;

use crate::sql::run_for_backend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const DOWN: &str = r#"
DROP VIEW IF EXISTS v_model_performance
;;
DROP VIEW IF EXISTS v_recent_predictions
"#;

const POSTGRES_UP: &str = r#"
CREATE VIEW v_recent_predictions WITH (security_invoker = true) AS
SELECT p.*,
       m.model_name,
       m.model_type,
       (m.metrics ->> 'accuracy')::numeric AS model_accuracy
FROM ml_predictions p
JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
WHERE p.prediction_timestamp > now() - INTERVAL '24 hours'
;;
CREATE VIEW v_model_performance WITH (security_invoker = true) AS
SELECT m.tenant_id,
       m.model_id,
       m.model_name,
       m.model_type,
       m.version,
       (m.metrics ->> 'accuracy')::numeric AS accuracy,
       (m.metrics ->> 'precision')::numeric AS precision,
       (m.metrics ->> 'recall')::numeric AS recall,
       (m.metrics ->> 'f1_score')::numeric AS f1_score,
       COUNT(p.id) AS prediction_count,
       AVG(p.confidence_score) AS avg_confidence,
       AVG(p.inference_time_ms) AS avg_inference_time_ms
FROM ml_models m
LEFT JOIN ml_predictions p ON p.tenant_id = m.tenant_id AND p.model_id = m.model_id
WHERE m.status = 'active'
GROUP BY m.id, m.tenant_id, m.model_id, m.model_name, m.model_type, m.version, m.metrics
"#;

const SQLITE_UP: &str = r#"
CREATE VIEW v_recent_predictions AS
SELECT p.*,
       m.model_name,
       m.model_type,
       CAST(json_extract(m.metrics, '$.accuracy') AS REAL) AS model_accuracy
FROM ml_predictions p
JOIN ml_models m ON m.tenant_id = p.tenant_id AND m.model_id = p.model_id
WHERE p.prediction_timestamp > strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-24 hours')
;;
CREATE VIEW v_model_performance AS
SELECT m.tenant_id,
       m.model_id,
       m.model_name,
       m.model_type,
       m.version,
       CAST(json_extract(m.metrics, '$.accuracy') AS REAL) AS accuracy,
       CAST(json_extract(m.metrics, '$.precision') AS REAL) AS precision,
       CAST(json_extract(m.metrics, '$.recall') AS REAL) AS recall,
       CAST(json_extract(m.metrics, '$.f1_score') AS REAL) AS f1_score,
       COUNT(p.id) AS prediction_count,
       AVG(p.confidence_score) AS avg_confidence,
       AVG(p.inference_time_ms) AS avg_inference_time_ms
FROM ml_models m
LEFT JOIN ml_predictions p ON p.tenant_id = m.tenant_id AND p.model_id = m.model_id
WHERE m.status = 'active'
GROUP BY m.id
"#;
