//! The read API against real Postgres and a running engine: events, decisions with their
//! events, dead letters and tenants, filtered, paged by cursor, scoped by token; and dead letters
//! replayed through the API.

use portcullis::runtime::block_on;

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{cloudtrail_by, request, Api, TestEnv, ACME_ACCOUNT};
use portcullis::sinks::postgres::add_tenant;
use portcullis_engine::TenantId;
use serde_json::{json, Value};

const GLOBEX_ACCOUNT: &str = "222222222222";
const UNMAPPED_ACCOUNT: &str = "999999999999";

async fn get(to: &Api, path: &str) -> (u16, Value) {
    let (status, text) = request(to, "GET", path, &[], b"").await;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn post(to: &Api, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = request(to, "POST", path, &[], &serde_json::to_vec(body).unwrap()).await;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Follows `next_cursor` from `path` (which has a query string) to the end.
async fn all_pages(to: &Api, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let url = match &next {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let (status, page) = get(to, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        out.extend(page["result"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

#[test]
fn the_read_api_filters_pages_and_scopes_records() {
    block_on(async {
        let env = TestEnv::new("read_api").await;
        add_tenant(
            &env.pool,
            &TenantId::parse("globex").unwrap(),
            Some("Globex"),
            &[GLOBEX_ACCOUNT.into()],
        )
        .await
        .unwrap();
        let engine = env.start().await;
        let admin = env.api(engine.http_addr());
        let acme = admin.with_token(Some(&env.token(&["read:acme"]).await));

        let mut messages = Vec::new();
        for i in 0..5 {
            messages.push((
                ACME_ACCOUNT,
                cloudtrail_by(
                    &format!("a-login-{i}"),
                    "ConsoleLogin",
                    Some("No"),
                    ACME_ACCOUNT,
                    "alice",
                ),
            ));
        }
        for i in 0..2 {
            messages.push((
                ACME_ACCOUNT,
                cloudtrail_by(
                    &format!("a-get-{i}"),
                    "GetObject",
                    None,
                    ACME_ACCOUNT,
                    "bob",
                ),
            ));
        }
        for i in 0..3 {
            messages.push((
                GLOBEX_ACCOUNT,
                cloudtrail_by(
                    &format!("g-login-{i}"),
                    "ConsoleLogin",
                    Some("No"),
                    GLOBEX_ACCOUNT,
                    "gina",
                ),
            ));
        }
        messages.push((
            UNMAPPED_ACCOUNT,
            cloudtrail_by("u-1", "GetObject", None, UNMAPPED_ACCOUNT, "ursula"),
        ));
        messages.push(("junk", b"{not json".to_vec()));
        env.produce(&messages).await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", 10, Duration::from_secs(60))
                .await,
            10
        );
        env.wait_at_least(
            "SELECT count(*) FROM dead_letters",
            2,
            Duration::from_secs(30),
        )
        .await;

        // Events, three at a time, newest first, each once.
        let events = all_pages(&admin, "/v1/events?limit=3").await;
        assert_eq!(events.len(), 10);
        let ids: HashSet<_> = events
            .iter()
            .map(|e| (e["tenant_id"].to_string(), e["event_id"].to_string()))
            .collect();
        assert_eq!(ids.len(), 10, "a row on two pages");
        let times: Vec<&str> = events
            .iter()
            .map(|e| e["event_time"].as_str().unwrap())
            .collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(times, sorted, "not newest first");
        assert!(
            events[0].get("raw").is_none(),
            "listings leave the raw record out"
        );

        // Filters, and the tenant token's view.
        let mine = all_pages(&acme, "/v1/events?limit=2").await;
        assert_eq!(mine.len(), 7);
        assert!(mine.iter().all(|e| e["tenant_id"] == "acme"));
        let (status, body) = get(&acme, "/v1/events?tenant_id=globex").await;
        assert_eq!(status, 403, "{body}");
        // Principals are ARNs; the query string carries them percent-encoded.
        let bobs = all_pages(
            &admin,
            &format!(
                "/v1/events?principal=arn%3Aaws%3Aiam%3A%3A{ACME_ACCOUNT}%3Auser%2Fbob&limit=50"
            ),
        )
        .await;
        assert_eq!(bobs.len(), 2, "{bobs:?}");
        let logins = all_pages(
            &admin,
            "/v1/events?action=ConsoleLogin&tenant_id=globex&limit=50",
        )
        .await;
        assert_eq!(logins.len(), 3);
        let later = all_pages(&admin, "/v1/events?from=2999-01-01T00:00:00Z&limit=50").await;
        assert!(later.is_empty());

        // One event in full.
        let (status, one) = get(&acme, "/v1/events/acme/a-get-0").await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["result"]["raw"]["eventID"], "a-get-0");
        let (status, _) = get(&acme, "/v1/events/globex/g-login-0").await;
        assert_eq!(status, 403);
        let (status, _) = get(&acme, "/v1/events/acme/nope").await;
        assert_eq!(status, 404);

        // Decisions with their events; denials only; drill-down with reasons and raw record.
        let denied = all_pages(&acme, "/v1/decisions?outcome=deny&limit=2").await;
        assert!(!denied.is_empty());
        assert!(
            denied
                .iter()
                .all(|d| d["outcome"] == "deny" && d["tenant_id"] == "acme"),
            "{denied:?}"
        );
        assert!(denied
            .iter()
            .all(|d| d["principal"].is_string() && d["action"].is_string()));
        let all_decisions = all_pages(&admin, "/v1/decisions?limit=4").await;
        let ids: HashSet<_> = all_decisions
            .iter()
            .map(|d| d["decision_id"].to_string())
            .collect();
        assert_eq!(ids.len(), all_decisions.len());
        let acme_login = denied
            .iter()
            .find(|d| d["action"] == "ConsoleLogin")
            .expect("a denied login");
        let (status, detail) = get(
            &acme,
            &format!(
                "/v1/decisions/{}",
                acme_login["decision_id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(status, 200, "{detail}");
        assert!(detail["result"]["raw"]["eventID"]
            .as_str()
            .unwrap()
            .starts_with("a-login-"));
        assert!(detail["result"]["result"].is_object(), "{detail}");
        assert!(
            !detail["result"]["reasons"].as_array().unwrap().is_empty(),
            "{detail}"
        );
        let globex_decision = all_decisions
            .iter()
            .find(|d| d["tenant_id"] == "globex")
            .unwrap();
        let (status, _) = get(
            &acme,
            &format!(
                "/v1/decisions/{}",
                globex_decision["decision_id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(status, 404, "another tenant's decision is not found");

        // Tenants: the token's own only; the admin sees bundle-only tenants too.
        let (_, tenants) = get(&acme, "/v1/tenants").await;
        let names: Vec<&str> = tenants["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant_id"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["acme"]);
        assert_eq!(tenants["result"][0]["accounts"], json!([ACME_ACCOUNT]));
        assert!(tenants["result"][0]["bundle"]["revision"].is_string());
        let (_, tenants) = get(&admin, "/v1/tenants").await;
        let initech = tenants["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant_id"] == "initech")
            .unwrap();
        assert_eq!(initech["registered"], false);

        // Dead letters: tenantless ones only for the admin scope.
        let (status, dl) = get(&admin, "/v1/dead-letters").await;
        assert_eq!(status, 200);
        let letters = dl["result"].as_array().unwrap();
        assert_eq!(letters.len(), 2, "{dl}");
        assert!(letters
            .iter()
            .all(|d| !d["reason"].as_str().unwrap().is_empty()));
        let (_, dl) = get(&acme, "/v1/dead-letters").await;
        assert_eq!(dl["result"], json!([]));

        // Bad parameters say what is wrong; none widens a filter.
        for (path, says) in [
            ("/v1/events?limit=abc", "limit"),
            ("/v1/events?tenantid=acme", "tenantid"),
            ("/v1/events?cursor=garbage", "cursor"),
            ("/v1/events?from=yesterday", "from"),
            ("/v1/events?source=ftp", "ftp"),
            ("/v1/decisions?outcome=maybe", "maybe"),
            ("/v1/decisions/not-a-uuid", "UUID"),
            ("/v1/events?principal=a%00b", "NUL"),
            ("/v1/events/acme/a%00b", "NUL"),
            ("/v1/events?tenant_id=Robert');DROP", "tenant id"),
        ] {
            let (status, body) = get(&admin, path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains(says),
                "{path}: {body}"
            );
        }

        // Replay through the API: refused outside the caller's scopes, stored once fixed.
        let unmapped: String = sqlx::query_scalar("SELECT dead_letter_id FROM dead_letters WHERE strpos(convert_from(payload, 'UTF8'), 'ursula') > 0")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        let acme_admin = admin.with_token(Some(&env.token(&["admin:acme"]).await));
        // Outside the caller's tenants a dead letter is "not found", as a missing one: ids
        // follow Kafka offsets, and a refusal would say which exist and whose they are.
        for who in [&acme, &acme_admin] {
            let (status, body) =
                post(who, "/v1/dead-letters/replay", &json!({"ids": [unmapped]})).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["result"],
                json!([{"id": unmapped, "outcome": "not_found"}])
            );
            assert!(!body.to_string().contains("globex"), "{body}");
        }
        assert_eq!(
            env.count("SELECT count(*) FROM dead_letters WHERE replay_attempts > 0")
                .await,
            0,
            "nothing was replayed"
        );
        env.map_account("acme", UNMAPPED_ACCOUNT).await;
        let (status, body) = post(
            &admin,
            "/v1/dead-letters/replay",
            &json!({"ids": [unmapped, "no-such", unmapped]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"][0]["outcome"], "stored", "{body}");
        assert_eq!(body["result"][0]["events"], 1);
        assert_eq!(body["result"][1]["outcome"], "not_found");
        assert_eq!(
            body["result"].as_array().unwrap().len(),
            2,
            "each id once: {body}"
        );
        assert_eq!(
            env.count("SELECT count(*) FROM events WHERE event_id = 'u-1'")
                .await,
            1
        );
        let (_, again) = post(
            &admin,
            "/v1/dead-letters/replay",
            &json!({"ids": [unmapped]}),
        )
        .await;
        assert_eq!(again["result"][0]["outcome"], "already_resolved");
        let (_, open) = get(&admin, "/v1/dead-letters").await;
        assert_eq!(
            open["result"].as_array().unwrap().len(),
            1,
            "the replayed one left the open list"
        );
        let (_, bad) = post(&admin, "/v1/dead-letters/replay", &json!({"ids": []})).await;
        assert!(bad["message"].as_str().unwrap().contains("ids"));

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
