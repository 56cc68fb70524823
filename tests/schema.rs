//! The schema: migrations both ways, `verify-schema`, per-tenant keys,
//! triggers and (PostgreSQL) row-level security.

mod common;

use common::fixtures::{feedback, insert, model, prediction, scoped_for};
use common::{count, TestDb};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};

backend_tests! {
    async fn verify_schema_accepts_a_freshly_migrated_database(test_db: TestDb) {
        let db = test_db.connect().await;
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(report.problems.is_empty(), "{}", report.render());
        let text = report.render();
        for (table, columns) in [
            ("ml_configurations", 9), ("ml_models", 17), ("ml_predictions", 24), ("ml_training_jobs", 18),
            ("ml_feedback", 14), ("ml_feature_store", 11), ("ml_drift_metrics", 18),
        ] {
            assert!(text.contains(&format!("  {table}: {columns} columns (spec: {columns})")), "{text}");
        }
        for expected in [
            "ml_feedback(tenant_id,prediction_id) -> ml_predictions(tenant_id,prediction_id)",
            "ml_predictions(tenant_id,model_id) -> ml_models(tenant_id,model_id)",
            "ml_drift_metrics(tenant_id,model_id) -> ml_models(tenant_id,model_id)",
            "update_ml_models_updated_at on ml_models",
            "update_ml_configurations_updated_at on ml_configurations",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        if test_db.backend == DbBackend::Postgres {
            assert!(text.contains("v_recent_predictions (security_invoker)"), "{text}");
            assert!(text.contains("v_model_performance (security_invoker)"), "{text}");
            assert!(text.contains("update_updated_at_column()\n"), "{text}");
            assert_eq!(text.matches("enabled, forced, policies: tenant_isolation").count(), 7, "{text}");
        }
    }

    async fn verify_schema_fails_on_a_database_missing_parts(test_db: TestDb) {
        let raw = test_db.raw().await;
        let drop_trigger = match test_db.backend {
            DbBackend::Postgres => "DROP TRIGGER update_ml_models_updated_at ON ml_models",
            _ => "DROP TRIGGER update_ml_models_updated_at",
        };
        raw.execute_unprepared(drop_trigger).await.unwrap();
        raw.execute_unprepared("DROP VIEW v_model_performance").await.unwrap();
        let db = test_db.connect().await;
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(report.problems.iter().any(|p| p.contains("trigger update_ml_models_updated_at")), "{:?}", report.problems);
        assert!(report.problems.iter().any(|p| p == "view v_model_performance"), "{:?}", report.problems);

        // The command exits non-zero on it.
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_mlgate"))
            .args(["verify-schema"])
            .env("DATABASE_URL", &test_db.url)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success());
    }

    async fn migrations_go_down_and_up_again(test_db: TestDb) {
        let db = test_db.connect().await;
        let applied = db.migration_status().await.unwrap();
        assert!(applied.iter().all(|m| m.applied));
        db.migrate_down(applied.len() as u32).await.unwrap();
        assert!(db.migration_status().await.unwrap().iter().all(|m| !m.applied));
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(report.problems.iter().any(|p| p == "table ml_predictions"), "tables are gone after down");
        db.migrate_up().await.unwrap();
        let report = server::ops::verify::verify(&db).await.unwrap();
        assert!(report.problems.is_empty(), "{}", report.render());
        // And down/up once more, now that the tables held no data.
        db.migrate_down(1).await.unwrap();
        db.migrate_up().await.unwrap();
    }

    async fn the_same_business_id_can_exist_in_two_tenants(test_db: TestDb) {
        let db = test_db.connect().await;
        let acme = scoped_for(&test_db, &db, "acme").await;
        let globex = scoped_for(&test_db, &db, "globex").await;
        insert(&acme, model("acme", "m-1")).await.unwrap();
        insert(&globex, model("globex", "m-1")).await.unwrap();
        insert(&acme, prediction("acme", "p-1", "m-1")).await.unwrap();
        insert(&globex, prediction("globex", "p-1", "m-1")).await.unwrap();
        // Within one tenant the id stays unique.
        assert!(insert(&acme, model("acme", "m-1")).await.is_err());
        assert!(insert(&acme, prediction("acme", "p-1", "m-1")).await.is_err());
        let raw = test_db.raw().await;
        assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_models WHERE model_id = 'm-1'").await, 2);
    }

    async fn keys_carry_the_tenant(test_db: TestDb) {
        let db = test_db.connect().await;
        let acme = scoped_for(&test_db, &db, "acme").await;
        let globex = scoped_for(&test_db, &db, "globex").await;
        insert(&acme, model("acme", "m-acme")).await.unwrap();
        insert(&acme, prediction("acme", "p-acme", "m-acme")).await.unwrap();
        insert(&globex, model("globex", "m-globex")).await.unwrap();
        // Feedback in globex cannot point at acme's prediction…
        assert!(insert(&globex, feedback("globex", "f-1", "p-acme")).await.is_err());
        // …nor a globex prediction at acme's model.
        assert!(insert(&globex, prediction("globex", "p-2", "m-acme")).await.is_err());
        // The same rows within one tenant are fine.
        insert(&acme, feedback("acme", "f-1", "p-acme")).await.unwrap();
    }

    async fn string_lists_and_decimals_round_trip(test_db: TestDb) {
        let db = test_db.connect().await;
        let acme = scoped_for(&test_db, &db, "acme").await;
        insert(&acme, model("acme", "m-1")).await.unwrap();
        insert(&acme, prediction("acme", "p-1", "m-1")).await.unwrap();
        let txn = acme.begin().await.unwrap();
        let row = entity::prediction::Entity::find()
            .filter(entity::prediction::Column::TenantId.eq(txn.tenant()))
            .one(txn.conn())
            .await
            .unwrap()
            .unwrap();
        txn.commit().await.unwrap();
        assert_eq!(row.recommendations.unwrap().0, vec!["rotate keys".to_owned(), "say \"hi\"".to_owned()]);
        assert_eq!(row.violation_probability.normalize().to_string(), "0.8123");
        assert_eq!(row.shap_values.unwrap()["b"], serde_json::json!(-0.25));
    }

    async fn updated_at_is_kept_current_by_the_trigger(test_db: TestDb) {
        let db = test_db.connect().await;
        let acme = scoped_for(&test_db, &db, "acme").await;
        let mut row = model("acme", "m-1");
        let old = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap().to_utc();
        row.updated_at = sea_orm::ActiveValue::Set(Some(old));
        insert(&acme, row).await.unwrap();
        let txn = acme.begin().await.unwrap();
        entity::model::Entity::update_many()
            .col_expr(entity::model::Column::ModelName, "renamed".into())
            .filter(entity::model::Column::TenantId.eq("acme"))
            .exec(txn.conn())
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let txn = acme.begin().await.unwrap();
        let updated = entity::model::Entity::find().one(txn.conn()).await.unwrap().unwrap();
        txn.commit().await.unwrap();
        let updated_at = updated.updated_at.unwrap();
        assert!(updated_at > old + chrono::Duration::days(365), "updated_at moved: {updated_at}");
    }
}

/// Row-level security, proven with hand-written SQL that has no tenant filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rls_hides_other_tenants_rows_from_the_gateway_role() {
    let Some(test_db) = TestDb::postgres().await else {
        return;
    };
    let db = test_db.connect().await;
    let acme = scoped_for(&test_db, &db, "acme").await;
    let globex = scoped_for(&test_db, &db, "globex").await;
    insert(&acme, model("acme", "m-1")).await.unwrap();
    insert(&acme, prediction("acme", "p-1", "m-1"))
        .await
        .unwrap();
    insert(&acme, prediction("acme", "p-2", "m-1"))
        .await
        .unwrap();
    insert(&globex, model("globex", "m-1")).await.unwrap();
    insert(&globex, prediction("globex", "p-1", "m-1"))
        .await
        .unwrap();

    let raw = test_db.raw().await;
    let as_gateway = |tenant: Option<&str>, sql: &str| {
        let set_tenant = tenant
            .map(|t| format!("SELECT set_config('app.tenant_id', '{t}', true);"))
            .unwrap_or_default();
        format!("BEGIN; SET LOCAL ROLE mlgate_gateway; {set_tenant} {sql}")
    };
    let gateway_count = |tenant: Option<&str>, sql: &str| {
        let raw = raw.clone();
        let script = as_gateway(tenant, "");
        let sql = sql.to_owned();
        async move {
            raw.execute_unprepared(&script).await.unwrap();
            let n = count(&raw, &sql).await;
            raw.execute_unprepared("ROLLBACK").await.unwrap();
            n
        }
    };
    // A single connection keeps BEGIN … ROLLBACK on one session.
    assert_eq!(
        gateway_count(Some("acme"), "SELECT COUNT(*) FROM ml_predictions").await,
        2
    );
    assert_eq!(
        gateway_count(Some("globex"), "SELECT COUNT(*) FROM ml_predictions").await,
        1
    );
    assert_eq!(
        gateway_count(
            Some("acme"),
            "SELECT COUNT(*) FROM ml_predictions WHERE tenant_id = 'globex'"
        )
        .await,
        0
    );
    assert_eq!(
        gateway_count(Some("globex"), "SELECT COUNT(*) FROM v_recent_predictions").await,
        1
    );
    assert_eq!(
        gateway_count(Some("globex"), "SELECT COUNT(*) FROM v_model_performance").await,
        1
    );
    // No tenant set: fail closed, on every table and view.
    for table in [
        "ml_models",
        "ml_predictions",
        "ml_feedback",
        "ml_training_jobs",
        "ml_feature_store",
        "ml_drift_metrics",
        "ml_configurations",
        "v_recent_predictions",
        "v_model_performance",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        assert_eq!(
            gateway_count(None, &sql).await,
            0,
            "{table} without a tenant"
        );
    }
    // The owner sees everything (it is a superuser here): RLS is what limits the gateway.
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM ml_predictions").await, 3);

    // WITH CHECK: the gateway cannot write a row for another tenant…
    raw.execute_unprepared(&as_gateway(Some("acme"), ""))
        .await
        .unwrap();
    let smuggled = raw
        .execute_unprepared(
            "INSERT INTO ml_models (model_id, tenant_id, model_name, model_type, version, parameters, metrics) \
             VALUES ('m-x', 'globex', 'x', 'lstm', '1', '{}', '{}')",
        )
        .await;
    raw.execute_unprepared("ROLLBACK").await.unwrap();
    assert!(
        smuggled.is_err(),
        "RLS WITH CHECK refuses another tenant's row"
    );
    // …nor move its own rows to another tenant.
    raw.execute_unprepared(&as_gateway(Some("acme"), ""))
        .await
        .unwrap();
    let moved = raw
        .execute_unprepared("UPDATE ml_feedback SET tenant_id = 'globex'")
        .await;
    let moved_models = raw
        .execute_unprepared("UPDATE ml_models SET tenant_id = 'globex' WHERE model_id = 'm-1'")
        .await;
    raw.execute_unprepared("ROLLBACK").await.unwrap();
    assert!(moved.is_ok(), "no feedback rows to move is fine");
    assert!(
        moved_models.is_err(),
        "RLS refuses moving a row to another tenant"
    );
}
