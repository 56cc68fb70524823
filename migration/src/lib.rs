//! Schema migrations for mlgate, one migration per file.
//!
//! The ML tables follow `shared/spec/schema.md` column for column, with the spec's
//! known defects fixed (per-tenant business ids, tenant-carrying foreign keys,
//! tenant-joined `security_invoker` views, forced row-level security).
//! Each migration carries its own SQL for PostgreSQL and SQLite: the two dialects
//! differ too much (JSONB, arrays, triggers, RLS) for the schema builder to express.

pub use sea_orm_migration::prelude::*;
pub use sea_orm_migration::MigrationStatus;

mod m20260101_000001_create_ml_tables;
mod m20260101_000002_updated_at_triggers;
mod m20260101_000003_views;
mod m20260101_000004_row_level_security;
mod m20260101_000005_api_keys;
mod m20260101_000006_keyset_indexes;
mod m20260101_000007_drift_thresholds;
mod m20260101_000008_drift_alert_events;
mod m20260101_000009_event_notifications;
mod m20260101_000010_prediction_rollups;
mod m20260101_000011_analytics_covering_index;
mod m20260101_000012_key_revocation_notifications;
mod m20260101_000013_dashboard_rollups;
mod m20260101_000014_feedback_rollup_lookups;
mod m20260101_000015_rollup_days;
mod m20260101_000016_shap_entry_reads;
mod m20260101_000017_feedback_rollup_time_indexes;
mod m20260101_000018_drift_monitors;
mod m20260101_000019_risk_score_reads;
mod m20260101_000020_distance_thresholds;
mod m20260101_000021_quality_monitors;
mod m20260101_000022_distribution_days;
mod m20260101_000023_risk_distribution;
mod sql;

pub use sql::GATEWAY_ROLE;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_ml_tables::Migration),
            Box::new(m20260101_000002_updated_at_triggers::Migration),
            Box::new(m20260101_000003_views::Migration),
            Box::new(m20260101_000004_row_level_security::Migration),
            Box::new(m20260101_000005_api_keys::Migration),
            Box::new(m20260101_000006_keyset_indexes::Migration),
            Box::new(m20260101_000007_drift_thresholds::Migration),
            Box::new(m20260101_000008_drift_alert_events::Migration),
            Box::new(m20260101_000009_event_notifications::Migration),
            Box::new(m20260101_000010_prediction_rollups::Migration),
            Box::new(m20260101_000011_analytics_covering_index::Migration),
            Box::new(m20260101_000012_key_revocation_notifications::Migration),
            Box::new(m20260101_000013_dashboard_rollups::Migration),
            Box::new(m20260101_000014_feedback_rollup_lookups::Migration),
            Box::new(m20260101_000015_rollup_days::Migration),
            Box::new(m20260101_000016_shap_entry_reads::Migration),
            Box::new(m20260101_000017_feedback_rollup_time_indexes::Migration),
            Box::new(m20260101_000018_drift_monitors::Migration),
            Box::new(m20260101_000019_risk_score_reads::Migration),
            Box::new(m20260101_000020_distance_thresholds::Migration),
            Box::new(m20260101_000021_quality_monitors::Migration),
            Box::new(m20260101_000022_distribution_days::Migration),
            Box::new(m20260101_000023_risk_distribution::Migration),
        ]
    }
}
