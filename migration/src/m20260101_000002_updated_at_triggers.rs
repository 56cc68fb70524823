//! `update_updated_at_column()` and the two triggers keeping `updated_at`
//! current on `ml_configurations` and `ml_models`.

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
        run_for_backend(manager, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}

const POSTGRES_UP: &str = r#"
CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
;;
CREATE TRIGGER update_ml_configurations_updated_at BEFORE UPDATE ON ml_configurations
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()
;;
CREATE TRIGGER update_ml_models_updated_at BEFORE UPDATE ON ml_models
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS update_ml_models_updated_at ON ml_models
;;
DROP TRIGGER IF EXISTS update_ml_configurations_updated_at ON ml_configurations
;;
DROP FUNCTION IF EXISTS update_updated_at_column()
"#;

// SQLite has no BEFORE-UPDATE assignment to NEW, so an AFTER trigger rewrites
// the row. The WHEN clause leaves an explicitly set `updated_at` alone and
// keeps the trigger from firing on its own update.
const SQLITE_UP: &str = r#"
CREATE TRIGGER update_ml_configurations_updated_at AFTER UPDATE ON ml_configurations
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE ml_configurations SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END
;;
CREATE TRIGGER update_ml_models_updated_at AFTER UPDATE ON ml_models
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE ml_models SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END
"#;

const SQLITE_DOWN: &str = r#"
DROP TRIGGER IF EXISTS update_ml_models_updated_at
;;
DROP TRIGGER IF EXISTS update_ml_configurations_updated_at
"#;
