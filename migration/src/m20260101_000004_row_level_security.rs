//! Row-level security on PostgreSQL: the gateway role, its grants, and a
//! forced tenant policy on every ML table keyed on the transaction-local
//! setting `app.tenant_id`. An unset setting reads as NULL, which matches no
//! row: a request that forgot to set its tenant sees nothing.
//!
//! SQLite has no row-level security; there the application's tenant filter
//! (always present, through the scoped handle) is the only guard.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql::{run_script, GATEWAY_ROLE, ML_TABLES};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let mut script = ensure_gateway_role();
        script.push_str(&format!(
            "GRANT SELECT ON v_recent_predictions, v_model_performance TO {GATEWAY_ROLE}\n;;\n"
        ));
        for table in ML_TABLES {
            script.push_str(&tenant_policy(table, true));
        }
        run_script(manager, &script).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let mut script = String::new();
        for table in ML_TABLES {
            script.push_str(&drop_tenant_policy(table));
        }
        script.push_str(&format!(
            "REVOKE ALL ON v_recent_predictions, v_model_performance FROM {GATEWAY_ROLE}\n;;\n"
        ));
        // The role is cluster-wide and other databases may use it, so it stays.
        run_script(manager, &script).await
    }
}

/// Creates the gateway role if this cluster does not have it yet, lets the
/// migrating (pool) user switch to it, and grants it the current schema.
/// Concurrent migrations of several databases may race to create it.
fn ensure_gateway_role() -> String {
    format!(
        r#"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{GATEWAY_ROLE}') THEN
        CREATE ROLE {GATEWAY_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$
;;
DO $$
BEGIN
    IF NOT pg_has_role(current_user, '{GATEWAY_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {GATEWAY_ROLE} TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {GATEWAY_ROLE}', current_schema());
END $$
;;
"#
    )
}

/// Grants the gateway `table` and enables the tenant policy on it; `forced`
/// makes the policy bind the table's owner too.
pub fn tenant_policy(table: &str, forced: bool) -> String {
    let force = if forced {
        format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY\n;;")
    } else {
        String::new()
    };
    format!(
        r#"
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {GATEWAY_ROLE}
;;
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY
;;
{force}
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true))
;;
"#
    )
}

pub fn drop_tenant_policy(table: &str) -> String {
    format!(
        r#"
DROP POLICY IF EXISTS tenant_isolation ON {table}
;;
ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY
;;
ALTER TABLE {table} DISABLE ROW LEVEL SECURITY
;;
REVOKE ALL ON {table} FROM {GATEWAY_ROLE}
;;
"#
    )
}
