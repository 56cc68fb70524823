//! The SHAP entry functions of migration 000013, rewritten to cost less per
//! prediction with the same answers. Every prediction written goes through
//! them (the rollup triggers), and so does every partial hour a dashboard
//! reads from the rows:
//! - `mlgate_explained` was an `EXISTS` over `mlgate_shap_entries`, which
//!   PostgreSQL cannot inline: a sub-plan per row, about 17 µs a prediction
//!   on the benchmark data. It is now one `jsonb_path_exists` expression,
//!   inlined into the calling query (about 1 µs).
//! - `mlgate_shap_entries` read each number through its text
//!   (`#>> '{}'` then `::numeric`); `jsonb` casts to `numeric` directly, to
//!   the same value.
//!
//! PostgreSQL only, like the rollups.

use sea_orm_migration::prelude::*;

use crate::m20260101_000013_dashboard_rollups::shap_entry_functions_000013;
use crate::sql::run_on_postgres;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The entries of a prediction's SHAP values, as `domain::explanation`
/// reads them: the object under `values` if there is one, else the value
/// itself if it is an object; numbers only, base-value keys left out.
const UP: &str = r#"
CREATE OR REPLACE FUNCTION mlgate_shap_entries(v JSONB) RETURNS TABLE (feature TEXT, value NUMERIC)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.key, e.value::numeric
      FROM jsonb_each(CASE WHEN jsonb_typeof(v -> 'values') = 'object' THEN v -> 'values'
                           WHEN jsonb_typeof(v) = 'object' THEN v
                           ELSE '{}'::jsonb END) e
     WHERE jsonb_typeof(e.value) = 'number'
       AND e.key NOT IN ('base_value', '_base_value', 'expected_value')
$$
;;
CREATE OR REPLACE FUNCTION mlgate_explained(v JSONB) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_path_exists(
               CASE WHEN jsonb_typeof(v -> 'values') = 'object' THEN v -> 'values'
                    WHEN jsonb_typeof(v) = 'object' THEN v
                    ELSE '{}'::jsonb END,
               '$.keyvalue() ? (@.value.type() == "number" && @.key != "base_value"
                                && @.key != "_base_value" && @.key != "expected_value")')
$$
;;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_on_postgres(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to migration 000013's definitions.
        let down =
            shap_entry_functions_000013!().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION");
        run_on_postgres(manager, &down).await
    }
}
