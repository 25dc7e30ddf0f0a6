//! Anomaly training sessions in real Postgres, through the store, the API and the CLI: one
//! active session per tenant and scope, enforced by the database; stopping trains the next model
//! version from the session's rows (or fails, saying why); force-close; a session outlives the
//! process that started it.

use futures::future::join_all;
use portcullis::anomaly::{
    active_session, close_session, current_model, start_session, stop_session, PgModelStore,
    TrainingError,
};
use portcullis::runtime::block_on;
use portcullis::sinks::postgres::add_tenant;
use portcullis_actors::ModelStore;
use portcullis_engine::anomaly::features::{schema, FeatureKind, RawFeatures};
use portcullis_engine::anomaly::{ForestParams, ModelKey, ModelScope};
use portcullis_engine::TenantId;
use serde_json::json;
use uuid::Uuid;

use crate::common::{post_json, request, TestEnv};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// Features of a scope's shape: categorical values common or rare, numbers on a grid.
fn features(scope: ModelScope, i: usize) -> RawFeatures {
    let (categorical, numeric) = FeatureKind::counts(schema(scope));
    let value = if i % 5 == 0 { "rare" } else { "common" };
    RawFeatures {
        categorical: vec![value.to_owned(); categorical],
        numeric: (0..numeric).map(|k| ((i + k) % 10) as f64).collect(),
    }
}

/// Rows for `session` as the event path collects them.
async fn collect(env: &TestEnv, session: Uuid, scope: ModelScope, rows: usize) {
    for i in 0..rows {
        let f = features(scope, i);
        sqlx::query(
            "INSERT INTO training_rows (session_id, event_id, categorical, numeric)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session)
        .bind(format!("ev-{i}"))
        .bind(&f.categorical)
        .bind(&f.numeric)
        .execute(&env.pool)
        .await
        .unwrap();
    }
}

#[test]
fn one_active_session_per_tenant_and_scope_enforced_by_the_database() {
    block_on(async {
        let env = TestEnv::new("train_one").await;
        add_tenant(&env.pool, &TenantId::parse("globex").unwrap(), None, &[])
            .await
            .unwrap();
        let first = start_session(&env.pool, &acme(), ModelScope::Cloudtrail, "test")
            .await
            .unwrap();
        assert_eq!(first.state, "active");

        // Again: refused, naming the session in the way.
        match start_session(&env.pool, &acme(), ModelScope::Cloudtrail, "test").await {
            Err(TrainingError::AlreadyActive { session, .. }) => {
                assert_eq!(session, first.session_id)
            }
            other => panic!("expected AlreadyActive, got {other:?}"),
        }
        // With that one closed, eight starts at once on separate connections (as several engines
        // or a retrying tool would): exactly one gets through, the rest are told which one.
        let tenant = acme();
        close_session(&env.pool, &tenant, ModelScope::Cloudtrail, "test")
            .await
            .unwrap();
        let tries =
            (0..8).map(|_| start_session(&env.pool, &tenant, ModelScope::Cloudtrail, "race"));
        let results = join_all(tries).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        let winner = results
            .iter()
            .find_map(|r| r.as_ref().ok())
            .unwrap()
            .session_id;
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(e, TrainingError::AlreadyActive { session, .. } if *session == winner),
                "{e}"
            );
        }
        // Not through the store either: the database itself refuses a second active row.
        let raw = sqlx::query(
            "INSERT INTO training_sessions (session_id, tenant_id, scope, started_by)
             VALUES ($1, 'acme', 'cloudtrail', 'sql')",
        )
        .bind(Uuid::now_v7())
        .execute(&env.pool)
        .await;
        assert!(raw.is_err(), "a second active session was accepted");

        // Another scope and another tenant are independent.
        start_session(&env.pool, &acme(), ModelScope::Device, "test")
            .await
            .unwrap();
        start_session(
            &env.pool,
            &TenantId::parse("globex").unwrap(),
            ModelScope::Cloudtrail,
            "t",
        )
        .await
        .unwrap();
        // An unknown tenant is refused by name.
        let err = start_session(
            &env.pool,
            &TenantId::parse("nobody").unwrap(),
            ModelScope::Device,
            "t",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TrainingError::UnknownTenant(_)), "{err}");
        assert_eq!(
            env.count("SELECT count(*) FROM training_sessions WHERE state = 'active'")
                .await,
            3
        );
        env.cleanup().await;
    });
}

#[test]
fn stopping_trains_the_next_version_from_the_sessions_rows_or_says_why_not() {
    block_on(async {
        let env = TestEnv::new("train_stop").await;
        let scope = ModelScope::Cloudtrail;

        // Nothing collected: the session fails, saying why, and a new one may start.
        start_session(&env.pool, &acme(), scope, "test")
            .await
            .unwrap();
        let done = stop_session(&env.pool, &acme(), scope, ForestParams::default(), "test")
            .await
            .unwrap();
        assert!(done.model.is_none());
        assert_eq!(done.session.state, "failed");
        let failure = done.session.failure.unwrap();
        assert!(
            failure.contains("at least 2 rows") && failure.contains("got 0"),
            "{failure}"
        );

        // Two sessions with rows: versions 1 and 2, each recorded on its session.
        for (n, rows) in [(1, 300), (2, 120)] {
            let s = start_session(&env.pool, &acme(), scope, "test")
                .await
                .unwrap();
            collect(&env, s.session_id, scope, rows).await;
            let loaded = PgModelStore::new(env.pool.clone())
                .load(ModelKey {
                    tenant: acme(),
                    scope,
                })
                .await
                .unwrap();
            assert_eq!(
                loaded.session,
                Some(s.session_id),
                "the actor collects for it"
            );
            let status = active_session(&env.pool, &acme(), scope)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(status.rows_collected, rows as i64);
            let done = stop_session(
                &env.pool,
                &acme(),
                scope,
                ForestParams::default(),
                "stopper",
            )
            .await
            .unwrap();
            let model = done.model.expect("a model");
            assert_eq!(model.version, n);
            assert_eq!(model.summary["rows"], rows);
            assert_eq!(done.session.state, "trained");
            assert_eq!(done.session.model_version, Some(n));
            assert_eq!(done.session.ended_by.as_deref(), Some("stopper"));
        }
        assert!(active_session(&env.pool, &acme(), scope)
            .await
            .unwrap()
            .is_none());

        // The latest version is what scores: read back, checked, and it tells a usual row from
        // one with values never seen and numbers past the training range.
        let (version, model) = current_model(&env.pool, &acme(), scope)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(version, 2);
        let usual = model.score(&features(scope, 4)).unwrap();
        let mut odd = features(scope, 4);
        odd.categorical.fill("never-seen".into());
        odd.numeric.fill(50.0);
        let unusual = model.score(&odd).unwrap();
        assert!(unusual > usual + 0.05, "unusual {unusual}, usual {usual}");
        // What an anomaly-model actor loads: the latest version, and no session now.
        let loaded = PgModelStore::new(env.pool.clone())
            .load(ModelKey {
                tenant: acme(),
                scope,
            })
            .await
            .unwrap();
        assert_eq!(loaded.model.map(|(v, _)| v), Some(2));
        assert_eq!(loaded.session, None);
        assert!(current_model(&env.pool, &acme(), ModelScope::Device)
            .await
            .unwrap()
            .is_none());
        env.cleanup().await;
    });
}

#[test]
fn concurrent_stops_train_once_and_force_close_ends_without_training() {
    block_on(async {
        let env = TestEnv::new("train_close").await;
        let scope = ModelScope::Device;
        let s = start_session(&env.pool, &acme(), scope, "test")
            .await
            .unwrap();
        collect(&env, s.session_id, scope, 50).await;
        let tenant = acme();
        let stops =
            (0..4).map(|_| stop_session(&env.pool, &tenant, scope, ForestParams::default(), "t"));
        let results = join_all(stops).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, TrainingError::NoneActive { .. })));
        assert_eq!(env.count("SELECT count(*) FROM anomaly_models").await, 1);

        // A session nobody will stop: closed, not trained; its rows stay for analysts.
        let s = start_session(&env.pool, &acme(), scope, "test")
            .await
            .unwrap();
        collect(&env, s.session_id, scope, 10).await;
        let closed = close_session(&env.pool, &acme(), scope, "ops")
            .await
            .unwrap();
        assert_eq!(
            (closed.state.as_str(), closed.model_version),
            ("closed", None)
        );
        assert_eq!(closed.rows_collected, 10);
        let err = stop_session(&env.pool, &acme(), scope, ForestParams::default(), "t")
            .await
            .unwrap_err();
        assert!(matches!(err, TrainingError::NoneActive { .. }), "{err}");
        assert_eq!(env.count("SELECT count(*) FROM anomaly_models").await, 1);
        env.cleanup().await;
    });
}

#[test]
fn the_api_and_cli_run_sessions_with_scopes_and_a_session_outlives_its_engine() {
    block_on(async {
        let env = TestEnv::new("train_api").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let path = "/v1/anomaly/acme/cloudtrail/training";

        // A reader may look but not start; bad names are 400s.
        assert_eq!(post_json(&reader, path, &json!({})).await.0, 403);
        assert_eq!(
            post_json(&api, "/v1/anomaly/acme/firewall/training", &json!({}))
                .await
                .0,
            400
        );
        assert_eq!(
            post_json(&api, "/v1/anomaly/ACME!/device/training", &json!({}))
                .await
                .0,
            400
        );
        assert_eq!(request(&reader, "GET", path, &[], b"").await.0, 404);

        let (status, started) = post_json(&api, path, &json!({})).await;
        assert_eq!(status, 201, "{started}");
        let id = started["result"]["session_id"].as_str().unwrap().to_owned();
        let (status, again) = post_json(&api, path, &json!({})).await;
        assert_eq!(status, 409, "{again}");
        assert!(again["message"].as_str().unwrap().contains(&id), "{again}");

        // The engine goes away; the session does not.
        engine.stop().await.unwrap();
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let reader = api.with_token(reader.token.as_deref());
        let (status, body) = request(&reader, "GET", path, &[], b"").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&id), "{body}");

        // The CLI sees it, and stops it (nothing collected: it says why no model came of it).
        let (code, out, _) = env.cli(&[
            "model",
            "train",
            "status",
            "--tenant",
            "acme",
            "--scope",
            "cloudtrail",
        ]);
        assert_eq!(code, 0);
        assert!(out.contains(&id) && out.contains("active"), "{out}");
        let (code, out, err) = env.cli(&[
            "model",
            "train",
            "stop",
            "--tenant",
            "acme",
            "--scope",
            "cloudtrail",
        ]);
        assert_ne!(code, 0, "{out}");
        assert!(
            err.contains("no model was trained") && err.contains("got 0"),
            "{err}"
        );
        let (code, _, err) = env.cli(&[
            "model", "train", "start", "--tenant", "acme", "--scope", "fridge",
        ]);
        assert_ne!(code, 0);
        assert!(err.contains("scope must be cloudtrail or device"), "{err}");

        // Through the API again: start, force-close, and both listed.
        assert_eq!(post_json(&api, path, &json!({})).await.0, 201);
        let (status, closed) = post_json(&api, &format!("{path}/close"), &json!({})).await;
        assert_eq!(status, 200, "{closed}");
        assert_eq!(closed["result"]["state"], "closed");
        assert_eq!(
            post_json(&api, &format!("{path}/stop"), &json!({})).await.0,
            404
        );
        let (status, list) = request(
            &reader,
            "GET",
            "/v1/training-sessions?tenant_id=acme",
            &[],
            b"",
        )
        .await;
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let states: Vec<&str> = list["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["closed", "failed"]);
        let (status, models) = request(&reader, "GET", "/v1/anomaly-models", &[], b"").await;
        assert_eq!(
            (status, models.contains("\"result\":[]")),
            (200, true),
            "{models}"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
