//! `mlgate_monitors`: a tenant's drift monitors and their evaluation state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mlgate_monitors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub monitor_id: String,
    pub model_id: String,
    /// The drift signal (`None` for a quality monitor).
    pub signal: Option<String>,
    pub feature: Option<String>,
    /// The drift statistic (`None` for a quality monitor).
    pub method: Option<String>,
    pub reference_kind: String,
    pub reference_from: Option<DateTimeUtc>,
    pub reference_to: Option<DateTimeUtc>,
    pub reference_seconds: Option<i64>,
    pub reference_version: Option<String>,
    pub current_version: Option<String>,
    pub current_seconds: i64,
    pub interval_seconds: i64,
    pub threshold_kind: String,
    pub warning: f64,
    pub critical: f64,
    pub reference_chunks: i32,
    pub breaches_to_fire: i32,
    pub keep_firing: i32,
    pub cooldown_seconds: i64,
    pub queue_training: bool,
    pub notify_webhook: bool,
    pub training_cooldown_seconds: i64,
    pub enabled: bool,
    pub next_due_at: DateTimeUtc,
    pub evaluations: i64,
    pub consecutive_breaches: i32,
    pub firing_left: i32,
    pub firing: bool,
    pub last_value: Option<f64>,
    pub last_level: Option<String>,
    pub last_evaluated_at: Option<DateTimeUtc>,
    pub last_notified_at: Option<DateTimeUtc>,
    pub last_training_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The quality measure of a quality monitor.
    pub quality: Option<String>,
    pub decision_threshold: Option<f64>,
    pub minimum_outcomes: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
