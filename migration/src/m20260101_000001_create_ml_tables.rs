//! The seven `ml_*` tables with every column of the spec, per-tenant unique
//! business ids, tenant-carrying foreign keys and the per-tenant indexes.

use sea_orm_migration::prelude::*;

use crate::sql::{run_for_backend, sqlite_dialect};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, POSTGRES_UP, &sqlite_dialect(POSTGRES_UP)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, DOWN, DOWN).await
    }
}

const DOWN: &str = r#"
DROP TABLE IF EXISTS ml_drift_metrics
;;
DROP TABLE IF EXISTS ml_feature_store
;;
DROP TABLE IF EXISTS ml_feedback
;;
DROP TABLE IF EXISTS ml_predictions
;;
DROP TABLE IF EXISTS ml_models
;;
DROP TABLE IF EXISTS ml_training_jobs
;;
DROP TABLE IF EXISTS ml_configurations
"#;

// Nullability follows the spec exactly so that an existing database of the
// published shape passes `verify-schema`; the fixes are the keys, checks and
// indexes. `tenant_id <> ''` keeps the empty string (what an unset setting
// reads as) from ever naming a tenant.
const POSTGRES_UP: &str = r#"
CREATE EXTENSION IF NOT EXISTS pgcrypto
;;
CREATE TABLE ml_configurations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    configuration JSONB NOT NULL,
    features JSONB,
    policy_context JSONB,
    baseline_config JSONB,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
)
;;
CREATE INDEX idx_ml_configurations_tenant_resource ON ml_configurations (tenant_id, resource_id)
;;
CREATE INDEX idx_ml_configurations_tenant_created ON ml_configurations (tenant_id, created_at DESC)
;;
CREATE TABLE ml_training_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    model_type VARCHAR(50) NOT NULL,
    trigger_reason VARCHAR(100) NOT NULL
        CHECK (trigger_reason IN ('scheduled', 'drift_detected', 'manual', 'feedback_threshold')),
    status VARCHAR(50) NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    training_config JSONB NOT NULL,
    hyperparameters JSONB,
    dataset_info JSONB,
    metrics JSONB,
    error_message TEXT,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    estimated_completion TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by VARCHAR(255),
    resource_usage JSONB,
    cost_estimate DECIMAL(10,2),
    CONSTRAINT uq_ml_training_jobs_tenant_job UNIQUE (tenant_id, job_id),
    CONSTRAINT uq_ml_training_jobs_tenant_id UNIQUE (tenant_id, id)
)
;;
CREATE INDEX idx_ml_training_jobs_tenant_status ON ml_training_jobs (tenant_id, status)
;;
CREATE INDEX idx_ml_training_jobs_tenant_created ON ml_training_jobs (tenant_id, created_at DESC)
;;
CREATE TABLE ml_models (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    model_name VARCHAR(255) NOT NULL,
    model_type VARCHAR(50) NOT NULL,
    version VARCHAR(20) NOT NULL,
    parameters JSONB NOT NULL,
    metrics JSONB NOT NULL,
    model_path TEXT,
    encrypted_model BYTEA,
    encryption_key_id VARCHAR(255),
    status VARCHAR(50) DEFAULT 'active'
        CHECK (status IN ('active', 'training', 'retired', 'failed')),
    training_job_id UUID,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now(),
    deployed_at TIMESTAMPTZ,
    retired_at TIMESTAMPTZ,
    CONSTRAINT uq_ml_models_tenant_model UNIQUE (tenant_id, model_id),
    CONSTRAINT fk_ml_models_training_job FOREIGN KEY (tenant_id, training_job_id)
        REFERENCES ml_training_jobs (tenant_id, id)
)
;;
CREATE INDEX idx_ml_models_tenant_status ON ml_models (tenant_id, status)
;;
CREATE INDEX idx_ml_models_tenant_type ON ml_models (tenant_id, model_type)
;;
CREATE INDEX idx_ml_models_tenant_training_job ON ml_models (tenant_id, training_job_id)
;;
CREATE INDEX idx_ml_models_tenant_created ON ml_models (tenant_id, created_at DESC)
;;
CREATE TABLE ml_predictions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prediction_id VARCHAR(255) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    model_id VARCHAR(255) NOT NULL,
    violation_probability DECIMAL(5,4) NOT NULL CHECK (violation_probability BETWEEN 0 AND 1),
    time_to_violation_hours DECIMAL(10,2),
    confidence_score DECIMAL(5,4) NOT NULL CHECK (confidence_score BETWEEN 0 AND 1),
    confidence_interval_lower DECIMAL(5,4),
    confidence_interval_upper DECIMAL(5,4),
    risk_level VARCHAR(20) NOT NULL CHECK (risk_level IN ('critical', 'high', 'medium', 'low')),
    risk_score DECIMAL(5,4),
    impact_factors JSONB,
    uncertainty_sources JSONB,
    recommendations TEXT[],
    features_used JSONB,
    shap_values JSONB,
    attention_weights JSONB,
    inference_time_ms DECIMAL(10,2) NOT NULL,
    model_version VARCHAR(20) NOT NULL,
    prediction_timestamp TIMESTAMPTZ DEFAULT now(),
    expires_at TIMESTAMPTZ,
    remediation_status VARCHAR(50)
        CHECK (remediation_status IN ('pending', 'in_progress', 'completed', 'failed')),
    remediation_id UUID,
    CONSTRAINT uq_ml_predictions_tenant_prediction UNIQUE (tenant_id, prediction_id),
    CONSTRAINT ck_ml_predictions_interval
        CHECK (confidence_interval_lower IS NULL OR confidence_interval_upper IS NULL
               OR confidence_interval_lower <= confidence_interval_upper),
    CONSTRAINT fk_ml_predictions_model FOREIGN KEY (tenant_id, model_id)
        REFERENCES ml_models (tenant_id, model_id)
)
;;
CREATE INDEX idx_ml_predictions_tenant_resource ON ml_predictions (tenant_id, resource_id)
;;
CREATE INDEX idx_ml_predictions_tenant_model_time ON ml_predictions (tenant_id, model_id, prediction_timestamp DESC)
;;
CREATE INDEX idx_ml_predictions_tenant_time ON ml_predictions (tenant_id, prediction_timestamp DESC)
;;
CREATE INDEX idx_ml_predictions_tenant_risk ON ml_predictions (tenant_id, risk_level)
;;
CREATE INDEX idx_ml_predictions_tenant_remediation ON ml_predictions (tenant_id, remediation_status)
;;
CREATE INDEX idx_ml_predictions_recent_high_risk ON ml_predictions (tenant_id, risk_level, prediction_timestamp DESC)
    WHERE risk_level IN ('critical', 'high')
;;
CREATE TABLE ml_feedback (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    feedback_id VARCHAR(255) NOT NULL,
    prediction_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    feedback_type VARCHAR(50) NOT NULL
        CHECK (feedback_type IN ('correct', 'incorrect', 'false_positive', 'false_negative')),
    correct_label BOOLEAN,
    accuracy_rating DECIMAL(3,2) CHECK (accuracy_rating BETWEEN 0 AND 5),
    comments TEXT,
    user_id VARCHAR(255) NOT NULL,
    user_role VARCHAR(50),
    processed BOOLEAN DEFAULT false,
    impact_on_model VARCHAR(50)
        CHECK (impact_on_model IN ('retrain_triggered', 'weight_adjusted', 'ignored')),
    created_at TIMESTAMPTZ DEFAULT now(),
    processed_at TIMESTAMPTZ,
    CONSTRAINT uq_ml_feedback_tenant_feedback UNIQUE (tenant_id, feedback_id),
    CONSTRAINT fk_ml_feedback_prediction FOREIGN KEY (tenant_id, prediction_id)
        REFERENCES ml_predictions (tenant_id, prediction_id) ON DELETE CASCADE
)
;;
CREATE INDEX idx_ml_feedback_tenant_prediction ON ml_feedback (tenant_id, prediction_id)
;;
CREATE INDEX idx_ml_feedback_tenant_type ON ml_feedback (tenant_id, feedback_type)
;;
CREATE INDEX idx_ml_feedback_tenant_processed ON ml_feedback (tenant_id, processed)
;;
CREATE INDEX idx_ml_feedback_tenant_created ON ml_feedback (tenant_id, created_at DESC)
;;
CREATE TABLE ml_feature_store (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    feature_set_id VARCHAR(255) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    feature_type VARCHAR(50) NOT NULL
        CHECK (feature_type IN ('configuration', 'temporal', 'contextual', 'policy')),
    features JSONB NOT NULL,
    feature_version INTEGER DEFAULT 1,
    computed_at TIMESTAMPTZ DEFAULT now(),
    expires_at TIMESTAMPTZ,
    quality_score DECIMAL(3,2) CHECK (quality_score BETWEEN 0 AND 1),
    completeness DECIMAL(3,2) CHECK (completeness BETWEEN 0 AND 1),
    CONSTRAINT uq_ml_feature_store_tenant_feature_set UNIQUE (tenant_id, feature_set_id)
)
;;
CREATE INDEX idx_ml_feature_store_tenant_resource ON ml_feature_store (tenant_id, resource_id)
;;
CREATE INDEX idx_ml_feature_store_tenant_type ON ml_feature_store (tenant_id, feature_type)
;;
CREATE INDEX idx_ml_feature_store_tenant_computed ON ml_feature_store (tenant_id, computed_at DESC)
;;
CREATE TABLE ml_drift_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    metric_id VARCHAR(255) NOT NULL,
    resource_id VARCHAR(255),
    tenant_id VARCHAR(255) NOT NULL CHECK (tenant_id <> ''),
    model_id VARCHAR(255),
    drift_type VARCHAR(50) NOT NULL CHECK (drift_type IN ('data', 'concept', 'prediction')),
    drift_score DECIMAL(10,4) NOT NULL,
    drift_velocity DECIMAL(10,6),
    reconstruction_error DECIMAL(10,6),
    psi_score DECIMAL(10,6),
    ks_statistic DECIMAL(10,6),
    wasserstein_distance DECIMAL(10,6),
    alert_triggered BOOLEAN DEFAULT false,
    alert_level VARCHAR(20) CHECK (alert_level IN ('info', 'warning', 'critical')),
    time_to_violation_hours DECIMAL(10,2),
    measured_at TIMESTAMPTZ DEFAULT now(),
    baseline_comparison JSONB,
    feature_contributions JSONB,
    CONSTRAINT uq_ml_drift_metrics_tenant_metric UNIQUE (tenant_id, metric_id),
    CONSTRAINT fk_ml_drift_metrics_model FOREIGN KEY (tenant_id, model_id)
        REFERENCES ml_models (tenant_id, model_id)
)
;;
CREATE INDEX idx_ml_drift_metrics_tenant_model_time ON ml_drift_metrics (tenant_id, model_id, measured_at DESC)
;;
CREATE INDEX idx_ml_drift_metrics_tenant_resource ON ml_drift_metrics (tenant_id, resource_id)
;;
CREATE INDEX idx_ml_drift_metrics_tenant_type ON ml_drift_metrics (tenant_id, drift_type)
;;
CREATE INDEX idx_ml_drift_metrics_tenant_time ON ml_drift_metrics (tenant_id, measured_at DESC)
;;
CREATE INDEX idx_ml_drift_metrics_alerts ON ml_drift_metrics (tenant_id, alert_triggered, measured_at DESC)
    WHERE alert_triggered
"#;
