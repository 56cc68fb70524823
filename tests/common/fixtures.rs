//! Minimal rows for tests, written through a tenant-scoped handle.
#![allow(dead_code)]

use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::json;
use server::auth::{AuthSettings, Authenticator, Role};
use server::db::{Database, Scoped};

use super::TestDb;

/// The scoped handle a real caller of `tenant` would get: a key is created
/// and authenticated, exactly as a request does.
pub async fn scoped_for(test_db: &TestDb, db: &Database, tenant: &str) -> Scoped {
    let key = test_db.key(tenant, Role::Admin).await;
    let auth = Authenticator::new(db.clone(), &AuthSettings::default(), || true).unwrap();
    let principal = auth
        .authenticate_token(&key)
        .await
        .expect("key authenticates");
    db.scoped(&principal)
}

/// Gives `tenant` these models (through its own scoped handle).
pub async fn seed_models(test_db: &TestDb, tenant: &str, model_ids: &[&str]) {
    let db = test_db.connect().await;
    let scoped = scoped_for(test_db, &db, tenant).await;
    insert_all(
        &scoped,
        model_ids.iter().map(|id| model(tenant, id)).collect(),
    )
    .await
    .unwrap();
    db.close().await.ok();
}

pub fn model(tenant: &str, model_id: &str) -> entity::model::ActiveModel {
    entity::model::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        model_id: Set(model_id.into()),
        tenant_id: Set(tenant.into()),
        model_name: Set(format!("{model_id} name")),
        model_type: Set("lstm".into()),
        version: Set("1.0.0".into()),
        parameters: Set(json!({})),
        metrics: Set(json!({"accuracy": 0.9})),
        model_path: Set(None),
        encrypted_model: Set(None),
        encryption_key_id: Set(None),
        status: Set(Some("active".into())),
        training_job_id: Set(None),
        created_at: Set(Some(server::store::now())),
        updated_at: Set(Some(server::store::now())),
        deployed_at: Set(None),
        retired_at: Set(None),
    }
}

pub fn prediction(
    tenant: &str,
    prediction_id: &str,
    model_id: &str,
) -> entity::prediction::ActiveModel {
    entity::prediction::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        prediction_id: Set(prediction_id.into()),
        resource_id: Set("res-1".into()),
        tenant_id: Set(tenant.into()),
        model_id: Set(model_id.into()),
        violation_probability: Set(Decimal::new(8123, 4)),
        time_to_violation_hours: Set(Some(Decimal::new(1250, 2))),
        confidence_score: Set(Decimal::new(9, 1)),
        confidence_interval_lower: Set(Some(Decimal::new(75, 2))),
        confidence_interval_upper: Set(Some(Decimal::new(87, 2))),
        risk_level: Set("high".into()),
        risk_score: Set(None),
        impact_factors: Set(None),
        uncertainty_sources: Set(None),
        recommendations: Set(Some(entity::StringList(vec![
            "rotate keys".into(),
            "say \"hi\"".into(),
        ]))),
        features_used: Set(None),
        shap_values: Set(Some(json!({"a": 0.5, "b": -0.25}))),
        attention_weights: Set(None),
        inference_time_ms: Set(Decimal::new(1234, 2)),
        model_version: Set("1.0.0".into()),
        prediction_timestamp: Set(Some(server::store::now())),
        expires_at: Set(None),
        remediation_status: Set(None),
        remediation_id: Set(None),
    }
}

pub fn feedback(
    tenant: &str,
    feedback_id: &str,
    prediction_id: &str,
) -> entity::feedback::ActiveModel {
    entity::feedback::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        feedback_id: Set(feedback_id.into()),
        prediction_id: Set(prediction_id.into()),
        tenant_id: Set(tenant.into()),
        feedback_type: Set("correct".into()),
        correct_label: Set(Some(true)),
        accuracy_rating: Set(Some(Decimal::new(450, 2))),
        comments: Set(None),
        user_id: Set("u-1".into()),
        user_role: Set(Some("analyst".into())),
        processed: Set(Some(false)),
        impact_on_model: Set(None),
        created_at: Set(Some(server::store::now())),
        processed_at: Set(None),
    }
}

/// Inserts one row through `scoped` in its own transaction.
pub async fn insert<A>(scoped: &Scoped, row: A) -> Result<(), sea_orm::DbErr>
where
    A: ActiveModelTrait + Send,
{
    let txn = scoped.begin().await?;
    server::write::insert_many(&txn, vec![row]).await?;
    txn.commit().await
}

pub fn drift_metric(
    tenant: &str,
    metric_id: &str,
    model_id: &str,
) -> entity::drift_metric::ActiveModel {
    entity::drift_metric::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        metric_id: Set(metric_id.into()),
        resource_id: Set(Some("res-1".into())),
        tenant_id: Set(tenant.into()),
        model_id: Set(Some(model_id.into())),
        drift_type: Set("data".into()),
        drift_score: Set(Decimal::new(4200, 4)),
        drift_velocity: Set(Some(Decimal::new(15, 3))),
        reconstruction_error: Set(None),
        psi_score: Set(Some(Decimal::new(21, 2))),
        ks_statistic: Set(None),
        wasserstein_distance: Set(None),
        alert_triggered: Set(Some(true)),
        alert_level: Set(Some("warning".into())),
        time_to_violation_hours: Set(None),
        measured_at: Set(Some(server::store::now())),
        baseline_comparison: Set(None),
        feature_contributions: Set(Some(json!({"cpu": 0.6, "mem": -0.1}))),
    }
}

pub fn training_job(tenant: &str, job_id: &str) -> entity::training_job::ActiveModel {
    entity::training_job::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        job_id: Set(job_id.into()),
        tenant_id: Set(tenant.into()),
        model_type: Set("lstm".into()),
        trigger_reason: Set("drift_detected".into()),
        status: Set("completed".into()),
        training_config: Set(json!({"epochs": 10})),
        hyperparameters: Set(None),
        dataset_info: Set(None),
        metrics: Set(None),
        error_message: Set(None),
        started_at: Set(None),
        completed_at: Set(None),
        estimated_completion: Set(None),
        created_at: Set(Some(server::store::now())),
        created_by: Set(Some("scheduler".into())),
        resource_usage: Set(None),
        cost_estimate: Set(Some(Decimal::new(1250, 2))),
    }
}

pub fn feature_set(tenant: &str, feature_set_id: &str) -> entity::feature_set::ActiveModel {
    entity::feature_set::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        feature_set_id: Set(feature_set_id.into()),
        resource_id: Set("res-1".into()),
        tenant_id: Set(tenant.into()),
        feature_type: Set("temporal".into()),
        features: Set(json!({"x": 1})),
        feature_version: Set(Some(1)),
        computed_at: Set(Some(server::store::now())),
        expires_at: Set(None),
        quality_score: Set(Some(Decimal::new(90, 2))),
        completeness: Set(Some(Decimal::new(100, 2))),
    }
}

pub fn configuration(tenant: &str, resource_id: &str) -> entity::configuration::ActiveModel {
    entity::configuration::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        resource_id: Set(resource_id.into()),
        tenant_id: Set(tenant.into()),
        configuration: Set(json!({"encrypted": true})),
        features: Set(None),
        policy_context: Set(None),
        baseline_config: Set(None),
        created_at: Set(Some(server::store::now())),
        updated_at: Set(Some(server::store::now())),
    }
}

/// Inserts rows through `scoped` in one transaction.
pub async fn insert_all<A>(scoped: &Scoped, rows: Vec<A>) -> Result<(), sea_orm::DbErr>
where
    A: ActiveModelTrait + Send,
{
    let txn = scoped.begin().await?;
    server::write::insert_many(&txn, rows).await?;
    txn.commit().await
}
