//! `mlgate verify-schema`: reads the database catalog and checks it against
//! what mlgate requires (the spec's tables and columns with its defects fixed).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::db::Database;

/// Every column of every spec table, in the spec's order.
pub const SPEC_TABLES: [(&str, &[&str]); 7] = [
    (
        "ml_configurations",
        &[
            "id",
            "resource_id",
            "tenant_id",
            "configuration",
            "features",
            "policy_context",
            "baseline_config",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "ml_models",
        &[
            "id",
            "model_id",
            "tenant_id",
            "model_name",
            "model_type",
            "version",
            "parameters",
            "metrics",
            "model_path",
            "encrypted_model",
            "encryption_key_id",
            "status",
            "training_job_id",
            "created_at",
            "updated_at",
            "deployed_at",
            "retired_at",
        ],
    ),
    (
        "ml_predictions",
        &[
            "id",
            "prediction_id",
            "resource_id",
            "tenant_id",
            "model_id",
            "violation_probability",
            "time_to_violation_hours",
            "confidence_score",
            "confidence_interval_lower",
            "confidence_interval_upper",
            "risk_level",
            "risk_score",
            "impact_factors",
            "uncertainty_sources",
            "recommendations",
            "features_used",
            "shap_values",
            "attention_weights",
            "inference_time_ms",
            "model_version",
            "prediction_timestamp",
            "expires_at",
            "remediation_status",
            "remediation_id",
        ],
    ),
    (
        "ml_training_jobs",
        &[
            "id",
            "job_id",
            "tenant_id",
            "model_type",
            "trigger_reason",
            "status",
            "training_config",
            "hyperparameters",
            "dataset_info",
            "metrics",
            "error_message",
            "started_at",
            "completed_at",
            "estimated_completion",
            "created_at",
            "created_by",
            "resource_usage",
            "cost_estimate",
        ],
    ),
    (
        "ml_feedback",
        &[
            "id",
            "feedback_id",
            "prediction_id",
            "tenant_id",
            "feedback_type",
            "correct_label",
            "accuracy_rating",
            "comments",
            "user_id",
            "user_role",
            "processed",
            "impact_on_model",
            "created_at",
            "processed_at",
        ],
    ),
    (
        "ml_feature_store",
        &[
            "id",
            "feature_set_id",
            "resource_id",
            "tenant_id",
            "feature_type",
            "features",
            "feature_version",
            "computed_at",
            "expires_at",
            "quality_score",
            "completeness",
        ],
    ),
    (
        "ml_drift_metrics",
        &[
            "id",
            "metric_id",
            "resource_id",
            "tenant_id",
            "model_id",
            "drift_type",
            "drift_score",
            "drift_velocity",
            "reconstruction_error",
            "psi_score",
            "ks_statistic",
            "wasserstein_distance",
            "alert_triggered",
            "alert_level",
            "time_to_violation_hours",
            "measured_at",
            "baseline_comparison",
            "feature_contributions",
        ],
    ),
];

/// Business ids that must be unique per tenant, and only per tenant.
const BUSINESS_IDS: [(&str, &str); 6] = [
    ("ml_models", "model_id"),
    ("ml_predictions", "prediction_id"),
    ("ml_feedback", "feedback_id"),
    ("ml_training_jobs", "job_id"),
    ("ml_feature_store", "feature_set_id"),
    ("ml_drift_metrics", "metric_id"),
];

/// Foreign keys that must carry the tenant: (table, columns, referenced table, referenced columns).
const TENANT_FOREIGN_KEYS: [(&str, &str, &str, &str); 3] = [
    (
        "ml_feedback",
        "tenant_id,prediction_id",
        "ml_predictions",
        "tenant_id,prediction_id",
    ),
    (
        "ml_predictions",
        "tenant_id,model_id",
        "ml_models",
        "tenant_id,model_id",
    ),
    (
        "ml_drift_metrics",
        "tenant_id,model_id",
        "ml_models",
        "tenant_id,model_id",
    ),
];

const VIEWS: [&str; 2] = ["v_recent_predictions", "v_model_performance"];
const TRIGGERS: [(&str, &str); 2] = [
    ("update_ml_configurations_updated_at", "ml_configurations"),
    ("update_ml_models_updated_at", "ml_models"),
];
const UPDATED_AT_FUNCTION: &str = "update_updated_at_column";

#[derive(Debug, Clone)]
struct Index {
    table: String,
    name: String,
    unique: bool,
    partial: bool,
    columns: Vec<String>,
}

#[derive(Debug, Clone)]
struct ForeignKey {
    table: String,
    columns: String,
    ref_table: String,
    ref_columns: String,
}

#[derive(Debug, Clone)]
struct RlsState {
    enabled: bool,
    forced: bool,
    policies: Vec<String>,
}

#[derive(Debug, Default)]
struct Catalog {
    columns: BTreeMap<String, Vec<String>>,
    indexes: Vec<Index>,
    foreign_keys: Vec<ForeignKey>,
    /// View name → whether it is `security_invoker` (None where the backend has no such thing).
    views: BTreeMap<String, Option<bool>>,
    /// None where the backend has no stored functions.
    functions: Option<Vec<String>>,
    /// (trigger, table)
    triggers: Vec<(String, String)>,
    /// None where the backend has no row-level security.
    rls: Option<BTreeMap<String, RlsState>>,
    /// (superuser, bypasses RLS) of the gateway role; None where not applicable.
    gateway_role: Option<Option<GatewayRole>>,
}

/// The outcome: what was found, and what is missing or wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let _ = writeln!(out, "{line}");
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "schema OK");
        } else {
            let _ = writeln!(out, "{} problem(s):", self.problems.len());
            for problem in &self.problems {
                let _ = writeln!(out, "  MISSING/WRONG: {problem}");
            }
        }
        out
    }
}

/// What the gateway role may do that matters for isolation and bulk loads.
#[derive(Debug, Clone, Copy)]
struct GatewayRole {
    superuser: bool,
    bypass_rls: bool,
    /// `TEMP` on the database: bulk loads stage rows in a temporary table.
    temp: bool,
}

/// The gateway's own tables, which its migrations create beside the
/// spec's: keys, thresholds, the alert outbox, monitors and webhooks and
/// (PostgreSQL) the rollups.
const GATEWAY_TABLES: [(&str, bool); 17] = [
    ("mlgate_api_keys", false),
    ("mlgate_monitors", false),
    ("mlgate_webhooks", false),
    ("mlgate_webhook_deliveries", false),
    ("mlgate_drift_thresholds", false),
    ("mlgate_alert_sequences", false),
    ("mlgate_alert_events", false),
    ("mlgate_prediction_hours", true),
    ("mlgate_prediction_latency_hours", true),
    ("mlgate_shap_hours", true),
    ("mlgate_feedback_hours", true),
    ("mlgate_distribution_hours", true),
    ("mlgate_prediction_days", true),
    ("mlgate_prediction_latency_days", true),
    ("mlgate_shap_days", true),
    ("mlgate_feedback_days", true),
    ("mlgate_distribution_days", true),
];

pub async fn verify(db: &Database) -> Result<Report, DbErr> {
    let postgres = db.backend() == DbBackend::Postgres;
    let catalog = if postgres {
        postgres_catalog(db).await?
    } else {
        sqlite_catalog(db).await?
    };
    let mut report = check(&catalog);
    // What the gateway's own migrations create: every one applied, and
    // their tables there.
    let pending = db.pending_migrations().await?;
    report.lines.push(format!(
        "migrations: {}",
        if pending.is_empty() {
            "all applied".to_owned()
        } else {
            format!("{} pending", pending.len())
        }
    ));
    for name in pending {
        report
            .problems
            .push(format!("migration {name} (run `mlgate migrate up`)"));
    }
    for (table, postgres_only) in GATEWAY_TABLES {
        if (postgres || !postgres_only) && !catalog.columns.contains_key(table) {
            report.problems.push(format!("table {table}"));
        }
    }
    Ok(report)
}

/// `--deep`: every rollup against a fresh aggregation of each tenant's
/// rows (PostgreSQL; SQLite keeps none).
pub async fn deep(db: &Database, report: &mut Report) -> anyhow::Result<()> {
    if db.backend() != DbBackend::Postgres {
        report
            .lines
            .push("rollups: none on SQLite (analytics read the rows)".into());
        return Ok(());
    }
    let tenants = crate::ops::keys::known_tenants(db, i64::MAX as u64).await?;
    let mut checked = 0;
    for tenant in &tenants {
        for d in crate::ops::rollups::differences(db, tenant).await? {
            checked += 1;
            if d.differing != 0 {
                report.problems.push(format!(
                    "{}: {} rows of tenant {tenant} differ from its predictions and feedback \
                     (run `mlgate rollups rebuild --tenant {tenant}`)",
                    d.rollup, d.differing
                ));
            }
        }
    }
    report.lines.push(format!(
        "rollups: {checked} checked across {} tenant(s), {}",
        tenants.len(),
        if report.problems.is_empty() {
            "all consistent with the rows"
        } else {
            "some inconsistent"
        }
    ));
    Ok(())
}

fn check(catalog: &Catalog) -> Report {
    let mut report = Report::default();
    let lines = &mut report.lines;
    let problems = &mut report.problems;

    lines.push("tables:".into());
    for (table, expected) in SPEC_TABLES {
        match catalog.columns.get(table) {
            None => problems.push(format!("table {table}")),
            Some(actual) => {
                let missing: Vec<&str> = expected
                    .iter()
                    .copied()
                    .filter(|c| !actual.iter().any(|a| a == c))
                    .collect();
                lines.push(format!(
                    "  {table}: {} columns (spec: {})",
                    actual.len(),
                    expected.len()
                ));
                for column in missing {
                    problems.push(format!("column {table}.{column}"));
                }
            }
        }
    }

    lines.push("indexes:".into());
    for (table, _) in SPEC_TABLES {
        let indexes: Vec<&Index> = catalog
            .indexes
            .iter()
            .filter(|i| i.table == table)
            .collect();
        for index in &indexes {
            lines.push(format!(
                "  {table}.{} ({}){}{}",
                index.name,
                index.columns.join(", "),
                if index.unique { " unique" } else { "" },
                if index.partial { " partial" } else { "" }
            ));
        }
        if !indexes
            .iter()
            .any(|i| i.columns.first().is_some_and(|c| c == "tenant_id"))
        {
            problems.push(format!("an index on {table}.tenant_id"));
        }
    }
    for (table, column) in BUSINESS_IDS {
        let per_tenant = catalog.indexes.iter().any(|i| {
            i.table == table && i.unique && !i.partial && i.columns == ["tenant_id", column]
        });
        if !per_tenant {
            problems.push(format!("unique ({table}.tenant_id, {column})"));
        }
        let global = catalog
            .indexes
            .iter()
            .any(|i| i.table == table && i.unique && i.columns == [column]);
        if global {
            problems.push(format!(
                "{table}.{column} is unique across tenants (must be unique per tenant only)"
            ));
        }
    }
    let partial = |table: &str, lead: &[&str]| {
        catalog.indexes.iter().any(|i| {
            i.table == table
                && i.partial
                && i.columns.len() >= lead.len()
                && i.columns[..lead.len()] == *lead
        })
    };
    if !partial(
        "ml_predictions",
        &["tenant_id", "risk_level", "prediction_timestamp"],
    ) {
        problems.push("partial index on recent high-risk predictions (tenant_id, risk_level, prediction_timestamp)".into());
    }
    if !partial(
        "ml_drift_metrics",
        &["tenant_id", "alert_triggered", "measured_at"],
    ) {
        problems.push(
            "partial index on triggered drift alerts (tenant_id, alert_triggered, measured_at)"
                .into(),
        );
    }

    lines.push("foreign keys:".into());
    for fk in &catalog.foreign_keys {
        lines.push(format!(
            "  {}({}) -> {}({})",
            fk.table, fk.columns, fk.ref_table, fk.ref_columns
        ));
    }
    for (table, columns, ref_table, ref_columns) in TENANT_FOREIGN_KEYS {
        let found = catalog.foreign_keys.iter().any(|fk| {
            fk.table == table
                && fk.columns == columns
                && fk.ref_table == ref_table
                && fk.ref_columns == ref_columns
        });
        if !found {
            problems.push(format!(
                "foreign key {table}({columns}) -> {ref_table}({ref_columns})"
            ));
        }
    }

    lines.push("views:".into());
    for view in VIEWS {
        match catalog.views.get(view) {
            None => problems.push(format!("view {view}")),
            Some(invoker) => {
                lines.push(format!(
                    "  {view}{}",
                    match invoker {
                        Some(true) => " (security_invoker)",
                        Some(false) => " (security definer!)",
                        None => "",
                    }
                ));
                if *invoker == Some(false) {
                    problems.push(format!("view {view} must be security_invoker"));
                }
            }
        }
    }

    match &catalog.functions {
        Some(functions) => {
            let found = functions.iter().any(|f| f == UPDATED_AT_FUNCTION);
            lines.push(format!(
                "functions:\n  {UPDATED_AT_FUNCTION}(){}",
                if found { "" } else { " missing" }
            ));
            if !found {
                problems.push(format!("function {UPDATED_AT_FUNCTION}()"));
            }
        }
        None => lines.push("functions: none on this backend (the triggers carry the logic)".into()),
    }

    lines.push("triggers:".into());
    for (name, table) in &catalog.triggers {
        lines.push(format!("  {name} on {table}"));
    }
    for (name, table) in TRIGGERS {
        if !catalog
            .triggers
            .iter()
            .any(|(n, t)| n == name && t == table)
        {
            problems.push(format!("trigger {name} on {table}"));
        }
    }

    match &catalog.rls {
        Some(rls) => {
            lines.push("row-level security:".into());
            for (table, _) in SPEC_TABLES {
                match rls.get(table) {
                    Some(state) => {
                        lines.push(format!(
                            "  {table}: {}, {}, policies: {}",
                            if state.enabled { "enabled" } else { "DISABLED" },
                            if state.forced { "forced" } else { "NOT FORCED" },
                            if state.policies.is_empty() {
                                "none".to_owned()
                            } else {
                                state.policies.join(", ")
                            }
                        ));
                        if !state.enabled || !state.forced {
                            problems
                                .push(format!("row-level security enabled and forced on {table}"));
                        }
                        if state.policies.is_empty() {
                            problems.push(format!("a row-level security policy on {table}"));
                        }
                    }
                    None => problems.push(format!("row-level security on {table}")),
                }
            }
        }
        None => lines.push(
            "row-level security: not available on this backend (the application filters by tenant)"
                .into(),
        ),
    }
    if let Some(role) = &catalog.gateway_role {
        match role {
            Some(role) => {
                lines.push(format!(
                    "gateway role {}: superuser={}, bypassrls={}, temp={}",
                    migration::GATEWAY_ROLE,
                    role.superuser,
                    role.bypass_rls,
                    role.temp
                ));
                if role.superuser || role.bypass_rls {
                    problems.push(format!(
                        "gateway role {} must be neither superuser nor BYPASSRLS",
                        migration::GATEWAY_ROLE
                    ));
                }
                if !role.temp {
                    problems.push(format!(
                        "gateway role {} needs TEMP on this database: bulk loads \
                         (recordPredictions, /ingest) stage rows in a temporary table \
                         (GRANT TEMP ON DATABASE … TO {})",
                        migration::GATEWAY_ROLE,
                        migration::GATEWAY_ROLE
                    ));
                }
            }
            None => problems.push(format!("gateway role {}", migration::GATEWAY_ROLE)),
        }
    }
    report
}

async fn rows(db: &Database, sql: &str) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let conn = db.unscoped();
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
}

fn split_list(list: String) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn postgres_catalog(db: &Database) -> Result<Catalog, DbErr> {
    let mut catalog = Catalog::default();
    for row in rows(db, "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").await? {
        catalog.columns.entry(row.try_get("", "t")?).or_default().push(row.try_get("", "c")?);
    }
    for row in rows(db, "SELECT t.relname::text AS t, i.relname::text AS name, ix.indisunique AS is_unique, \
            (ix.indpred IS NOT NULL) AS is_partial, \
            COALESCE((SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
                      FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum), '') AS cols \
        FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema() ORDER BY 1, 2").await? {
        catalog.indexes.push(Index {
            table: row.try_get("", "t")?,
            name: row.try_get("", "name")?,
            unique: row.try_get("", "is_unique")?,
            partial: row.try_get("", "is_partial")?,
            columns: split_list(row.try_get("", "cols")?),
        });
    }
    for row in rows(db, "SELECT t.relname::text AS t, rt.relname::text AS rt, \
            (SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS cols, \
            (SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS ref_cols \
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class rt ON rt.oid = c.confrelid \
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f' AND n.nspname = current_schema() ORDER BY 1, 2").await? {
        catalog.foreign_keys.push(ForeignKey {
            table: row.try_get("", "t")?,
            columns: row.try_get("", "cols")?,
            ref_table: row.try_get("", "rt")?,
            ref_columns: row.try_get("", "ref_cols")?,
        });
    }
    for row in rows(
        db,
        "SELECT c.relname::text AS name, \
            COALESCE(array_to_string(c.reloptions, ','), '') AS options \
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind = 'v' AND n.nspname = current_schema()",
    )
    .await?
    {
        let options: String = row.try_get("", "options")?;
        let invoker = options
            .split(',')
            .any(|o| o == "security_invoker=true" || o == "security_invoker=on");
        catalog
            .views
            .insert(row.try_get("", "name")?, Some(invoker));
    }
    let mut functions = Vec::new();
    for row in rows(db, "SELECT p.proname::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                         WHERE n.nspname = current_schema()").await? {
        functions.push(row.try_get("", "name")?);
    }
    catalog.functions = Some(functions);
    for row in rows(
        db,
        "SELECT tg.tgname::text AS name, c.relname::text AS t FROM pg_trigger tg \
            JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
            WHERE NOT tg.tgisinternal AND n.nspname = current_schema() ORDER BY 1",
    )
    .await?
    {
        catalog
            .triggers
            .push((row.try_get("", "name")?, row.try_get("", "t")?));
    }
    let mut rls = BTreeMap::new();
    for row in rows(db, "SELECT c.relname::text AS t, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, \
            COALESCE((SELECT string_agg(p.policyname::text, ',') FROM pg_policies p \
                      WHERE p.schemaname = n.nspname AND p.tablename = c.relname), '') AS policies \
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind = 'r' AND n.nspname = current_schema()").await? {
        rls.insert(
            row.try_get::<String>("", "t")?,
            RlsState {
                enabled: row.try_get("", "enabled")?,
                forced: row.try_get("", "forced")?,
                policies: split_list(row.try_get("", "policies")?),
            },
        );
    }
    catalog.rls = Some(rls);
    let role = rows(
        db,
        &format!(
            "SELECT rolsuper, rolbypassrls, \
             has_database_privilege(rolname, current_database(), 'TEMP') AS temp \
             FROM pg_roles WHERE rolname = '{}'",
            migration::GATEWAY_ROLE
        ),
    )
    .await?;
    catalog.gateway_role = Some(match role.first() {
        Some(row) => Some(GatewayRole {
            superuser: row.try_get("", "rolsuper")?,
            bypass_rls: row.try_get("", "rolbypassrls")?,
            temp: row.try_get("", "temp")?,
        }),
        None => None,
    });
    Ok(catalog)
}

async fn sqlite_catalog(db: &Database) -> Result<Catalog, DbErr> {
    let mut catalog = Catalog::default();
    let objects = rows(
        db,
        "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name",
    )
    .await?;
    let mut tables = Vec::new();
    for row in &objects {
        let kind: String = row.try_get("", "type")?;
        let name: String = row.try_get("", "name")?;
        match kind.as_str() {
            "table" if !name.starts_with("sqlite_") => tables.push(name),
            "view" => {
                catalog.views.insert(name, None);
            }
            "trigger" => catalog.triggers.push((name, row.try_get("", "tbl_name")?)),
            _ => {}
        }
    }
    for table in tables {
        let columns = rows(
            db,
            &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        )
        .await?;
        let columns = columns
            .iter()
            .map(|r| r.try_get("", "name"))
            .collect::<Result<Vec<String>, _>>()?;
        catalog.columns.insert(table.clone(), columns);
        for index in rows(
            db,
            &format!(
                "SELECT name, \"unique\" AS is_unique, partial FROM pragma_index_list('{table}')"
            ),
        )
        .await?
        {
            let name: String = index.try_get("", "name")?;
            let columns = rows(
                db,
                &format!("SELECT name FROM pragma_index_info('{name}') ORDER BY seqno"),
            )
            .await?;
            catalog.indexes.push(Index {
                table: table.clone(),
                unique: index.try_get::<i32>("", "is_unique")? != 0,
                partial: index.try_get::<i32>("", "partial")? != 0,
                columns: columns
                    .iter()
                    .map(|r| r.try_get("", "name"))
                    .collect::<Result<_, _>>()?,
                name,
            });
        }
        let mut keys: BTreeMap<i32, ForeignKey> = BTreeMap::new();
        for fk in rows(db, &format!("SELECT id, \"table\" AS rt, \"from\" AS col, \"to\" AS ref_col FROM pragma_foreign_key_list('{table}') ORDER BY id, seq")).await? {
            let entry = keys.entry(fk.try_get("", "id")?).or_insert_with(|| ForeignKey {
                table: table.clone(),
                columns: String::new(),
                ref_table: String::new(),
                ref_columns: String::new(),
            });
            entry.ref_table = fk.try_get("", "rt")?;
            for (list, column) in [(&mut entry.columns, "col"), (&mut entry.ref_columns, "ref_col")] {
                if !list.is_empty() {
                    list.push(',');
                }
                list.push_str(&fk.try_get::<String>("", column)?);
            }
        }
        catalog.foreign_keys.extend(keys.into_values());
    }
    Ok(catalog)
}
