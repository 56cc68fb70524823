//! `mlgate_keys`, payload the key's id: an API key was revoked (or
//! deleted). Every gateway process `LISTEN`s and, at once, forgets the key
//! in its credential cache and closes the WebSockets opened with it, so a
//! revocation through any process (or the command line, or SQL) takes
//! effect everywhere within a notification's delay. Delivered at commit,
//! like every `NOTIFY`. SQLite has no notifications; there the revoking
//! process (the only one) acts directly.

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
CREATE OR REPLACE FUNCTION mlgate_notify_key_revoked() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('mlgate_keys', OLD.id::text);
    ELSIF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
        PERFORM pg_notify('mlgate_keys', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
;;
CREATE TRIGGER mlgate_api_keys_notify AFTER UPDATE OR DELETE ON mlgate_api_keys
    FOR EACH ROW EXECUTE FUNCTION mlgate_notify_key_revoked()
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS mlgate_api_keys_notify ON mlgate_api_keys
;;
DROP FUNCTION IF EXISTS mlgate_notify_key_revoked()
"#;
