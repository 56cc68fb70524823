//! PostgreSQL notifications that wake the gateways' subscriptions: every
//! process `LISTEN`s, so an event written through any gateway (or any other
//! writer of these tables) reaches the subscribers of all of them.
//!
//! - `mlgate_alerts`, payload the tenant: drift-alert events were committed
//!   for it. Subscribers then read the events after their cursor from
//!   `mlgate_alert_events`; the notification carries no data, so a lost or
//!   repeated one can neither lose nor duplicate an alert.
//! - `mlgate_jobs`, payload `{"tenant": …, "job": …}`: a training job was
//!   created or changed status.
//!
//! `NOTIFY` is transactional: it is delivered at commit, and identical
//! notifications of one transaction are delivered once. SQLite has no
//! notifications; there the write path wakes the one process's subscribers.

use sea_orm_migration::prelude::*;

use crate::sql::run_on_postgres;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, POSTGRES_DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE OR REPLACE FUNCTION mlgate_notify_alerts() RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify('mlgate_alerts', NEW.tenant_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
;;
CREATE TRIGGER mlgate_alert_events_notify AFTER INSERT ON mlgate_alert_events
    FOR EACH ROW EXECUTE FUNCTION mlgate_notify_alerts()
;;
CREATE OR REPLACE FUNCTION mlgate_notify_jobs() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('mlgate_jobs', json_build_object('tenant', NEW.tenant_id, 'job', NEW.job_id)::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
;;
CREATE TRIGGER mlgate_training_jobs_notify AFTER INSERT OR UPDATE ON ml_training_jobs
    FOR EACH ROW EXECUTE FUNCTION mlgate_notify_jobs()
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS mlgate_training_jobs_notify ON ml_training_jobs
;;
DROP FUNCTION IF EXISTS mlgate_notify_jobs()
;;
DROP TRIGGER IF EXISTS mlgate_alert_events_notify ON mlgate_alert_events
;;
DROP FUNCTION IF EXISTS mlgate_notify_alerts()
"#;
