//! The HTTP API end to end: a real server on a real PostgreSQL, called over
//! HTTP. Every change is checked in the database (rows, audit entry,
//! outbox), not only in the answer.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use lethe_server::ServeOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};

fn quick() -> ServeOptions {
    ServeOptions {
        token_cache: Duration::ZERO,
        relay_poll: Duration::from_millis(50),
        ..Default::default()
    }
}

async fn setup() -> Option<(PgDb, Tokens, Server)> {
    let db = PgDb::create(SCHEMA).await?;
    let engine = db.engine(POLICY).await;
    let tokens = Tokens::create(&engine).await;
    let server = Server::start(engine, quick()).await;
    Some((db, tokens, server))
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .expect("count")
        .get::<i64, _>(0)
}

/// The audit entry of a deletion, parsed.
async fn audit_entry(pool: &PgPool, action: &str, deletion_id: &str) -> Value {
    let row = sqlx::query(
        "SELECT entry FROM lethe.audit WHERE action = $1 AND deletion_id = $2::uuid ORDER BY seq DESC LIMIT 1",
    )
    .bind(action)
    .bind(deletion_id)
    .fetch_one(pool)
    .await
    .expect("audit entry");
    serde_json::from_str(&row.get::<String, _>(0)).expect("entry json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_tombstone_trash_and_restore_through_the_api() {
    let Some((db, t, s)) = setup().await else {
        return;
    };
    let pool = db.pool().await;

    // Active row: the tombstone says so.
    let (st, v) = s.get("/v1/entities/products/1", &t.viewer).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    assert_eq!(v["key"], json!({"id": 1}));

    // The plan shows the cascade and changes nothing.
    let (st, plan) = s.get("/v1/entities/products/1/plan", &t.viewer).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    let rows: BTreeSet<(String, u64)> = plan["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["entity"].as_str().unwrap().to_string(),
                c["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        BTreeSet::from([
            ("products".into(), 1),
            ("cart_items".into(), 1),
            ("reviews".into(), 1)
        ])
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE deleted_at IS NOT NULL"
        )
        .await,
        0
    );

    // Delete with a request id of the caller's: the token's name is the
    // actor, the request id is in the audit entry's context and comes back.
    let res = s
        .client()
        .post(format!("{}/v1/deletions", s.base))
        .bearer_auth(&t.operator)
        .header("x-request-id", "req-checkout-42")
        .json(&json!({"entity": "products", "key": "1", "reason": "discontinued"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-checkout-42");
    let done: Value = res.json().await.unwrap();
    let id = done["deletion_id"].as_str().unwrap().to_string();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE id = 1 AND deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM cart_items WHERE product_id = 1"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM reviews WHERE id = 500 AND deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    let entry = audit_entry(&pool, "delete", &id).await;
    assert_eq!(entry["actor"], "shop-backend");
    assert_eq!(entry["reason"], "discontinued");
    assert_eq!(entry["context"]["request_id"], "req-checkout-42");
    let outbox: Vec<String> = sqlx::query(
        "SELECT entity FROM lethe.outbox WHERE deletion_id = $1::uuid AND event = 'deleted' ORDER BY entity",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(outbox, ["cart_items", "products", "reviews"]);

    // Tombstones: the soft row in its table, the hard child in the archive
    // store, each with the deletion and its retention.
    let (_, v) = s.get("/v1/entities/products/1", &t.viewer).await;
    assert_eq!(v["status"], "deleted", "{v}");
    assert_eq!(v["deletion_id"], id.as_str());
    assert_eq!(v["place"], "table");
    let deleted_at = time::OffsetDateTime::parse(
        v["deleted_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until = time::OffsetDateTime::parse(
        v["restorable_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(until - deleted_at, time::Duration::days(30));
    let (_, v) = s.get("/v1/entities/cart_items/101", &t.viewer).await;
    assert_eq!(v["status"], "deleted", "{v}");
    assert_eq!(v["place"], "archive");
    assert_eq!(v["deletion_id"], id.as_str());
    let (_, v) = s.get("/v1/entities/products/999", &t.viewer).await;
    assert_eq!(v["status"], "unknown");

    // The same delete again is a 409 naming the deletion.
    let (st, v) = s
        .call(
            Method::DELETE,
            "/v1/entities/products/1",
            Some(&t.operator),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "already_deleted");
    assert_eq!(v["error"]["details"]["deletion_id"], id.as_str());

    // More deletions through the REST form, for the trash.
    for k in 2..=6 {
        let (st, v) = s
            .call(
                Method::DELETE,
                &format!("/v1/entities/products/{k}?reason=cleanup"),
                Some(&t.operator),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }

    // The trash, newest first, in keyset pages that cover every row once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, page) = s
            .get(
                &format!("/v1/trash/products?limit=4&cursor={cursor}"),
                &t.viewer,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        for it in page["items"].as_array().unwrap() {
            assert_eq!(it["place"], "table");
            assert!(it["restorable_until"].is_string());
            assert_eq!(it["row"]["id"], it["key"]["id"]);
            seen.push(it["key"]["id"].as_i64().unwrap());
        }
        match page["next"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1]);
    // Search on the row's values, and one deletion's rows.
    let (_, page) = s.get("/v1/trash/products?q=product%203", &t.viewer).await;
    let ids: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3]);
    let (_, page) = s
        .get(&format!("/v1/trash/cart_items?deletion_id={id}"), &t.viewer)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["place"], "archive");
    assert_eq!(items[0]["row"]["qty"], 1);

    // Deletions list and detail.
    let (_, list) = s
        .get("/v1/deletions?entity=products&limit=3", &t.viewer)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (st, detail) = s.get(&format!("/v1/deletions/{id}"), &t.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(detail["status"], "deleted");
    assert_eq!(detail["deletion"]["actor"], "shop-backend");
    assert_eq!(detail["outbox"].as_array().unwrap().len(), 3);

    // Restore: preview first (no body), then for real.
    let (st, p) = s
        .call(
            Method::POST,
            &format!("/v1/deletions/{id}/restore-preview"),
            Some(&t.viewer),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["conflicts"], json!([]));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE id = 1 AND deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    let res = s
        .client()
        .post(format!("{}/v1/deletions/{id}/restore", s.base))
        .bearer_auth(&t.operator)
        .header("x-request-id", "req-undo-7")
        .json(&json!({"reason": "customer asked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE id = 1 AND deleted_at IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM cart_items WHERE id = 101").await,
        1
    );
    let entry = audit_entry(&pool, "restore", &id).await;
    assert_eq!(entry["actor"], "shop-backend");
    assert_eq!(entry["context"]["request_id"], "req-undo-7");
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM lethe.outbox WHERE deletion_id = '{id}' AND event = 'restored'")
        )
        .await,
        3
    );
    let (_, v) = s.get("/v1/entities/products/1", &t.viewer).await;
    assert_eq!(v["status"], "active");
    let (st, v) = s
        .post(
            &format!("/v1/deletions/{id}/restore"),
            &t.operator,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "already_restored");

    // The audit log through the API, newest first, and its chain.
    let (_, page) = s.get("/v1/audit?limit=2", &t.viewer).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "restore");
    assert!(entries[0]["seq"].as_i64() > entries[1]["seq"].as_i64());
    let before = page["next_before"].as_i64().unwrap();
    let (_, older) = s
        .get(&format!("/v1/audit?limit=500&before={before}"), &t.viewer)
        .await;
    assert!(
        older["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["seq"].as_i64().unwrap() < before)
    );
    let (_, verify) = s.get("/v1/audit/verify", &t.viewer).await;
    assert_eq!(verify["ok"], true, "{verify}");

    // The relay running inside the server delivered the events.
    eventually("the relay delivered every outbox record", || async {
        let (_, d) = s.get("/v1/deliveries?sink=events", &t.viewer).await;
        d["undispatched"] == 0
            && d["summary"]
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["state"] == "delivered"))
    })
    .await;
    let events = std::fs::read_to_string(db.dir.join("events.jsonl")).unwrap();
    assert!(events.lines().any(|l| l.contains("lethe.deleted")));
    assert!(events.lines().any(|l| l.contains("lethe.restored")));

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_stable_codes_and_change_nothing() {
    let Some((db, t, s)) = setup().await else {
        return;
    };
    let pool = db.pool().await;
    let snapshot = || async {
        (
            count(
                &pool,
                "SELECT count(*) FROM products WHERE deleted_at IS NULL AND id <> 21",
            )
            .await,
            count(
                &pool,
                "SELECT count(*) FROM categories WHERE deleted_at IS NULL",
            )
            .await,
            count(&pool, "SELECT count(*) FROM lethe.audit").await,
            count(&pool, "SELECT count(*) FROM lethe.outbox").await,
        )
    };
    let before = snapshot().await;

    // A restrict relation blocks: 409 with the relation and the count.
    let (st, v) = s
        .post(
            "/v1/deletions",
            &t.operator,
            json!({"entity": "categories", "key": "1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "blocked");
    assert_eq!(
        v["error"]["details"]["relation"],
        "products.category_id -> categories"
    );
    assert_eq!(v["error"]["details"]["count"], 10);
    assert!(v["error"]["hint"].is_string());

    let cases: Vec<(Method, &str, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/v1/deletions",
            Some(json!({"entity": "nope", "key": "1"})),
            StatusCode::BAD_REQUEST,
            "unknown_entity",
        ),
        (
            Method::POST,
            "/v1/deletions",
            Some(json!({"entity": "products", "key": "abc"})),
            StatusCode::BAD_REQUEST,
            "bad_key",
        ),
        (
            Method::POST,
            "/v1/deletions",
            Some(json!({"entity": "products", "key": "9999"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/v1/deletions",
            Some(json!({"entity": "products"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::POST,
            "/v1/deletions",
            Some(json!({"entity": "products", "key": "1", "extra": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/entities/products/x=1",
            None,
            StatusCode::BAD_REQUEST,
            "bad_key",
        ),
        (
            Method::GET,
            "/v1/deletions/not-a-uuid",
            None,
            StatusCode::BAD_REQUEST,
            "bad_deletion_id",
        ),
        (
            Method::GET,
            "/v1/deletions/0190d5a0-0000-7000-8000-000000000000",
            None,
            StatusCode::NOT_FOUND,
            "deletion_not_found",
        ),
        (
            Method::POST,
            "/v1/deletions/0190d5a0-0000-7000-8000-000000000000/restore",
            None,
            StatusCode::NOT_FOUND,
            "deletion_not_found",
        ),
        (
            Method::GET,
            "/v1/trash/products?limit=0",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/trash/products?limit=abc",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/trash/products?cursor=zz",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/trash/products?deletion_id=x",
            None,
            StatusCode::BAD_REQUEST,
            "bad_deletion_id",
        ),
        (
            Method::GET,
            "/v1/deliveries?sink=nope",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/deliveries?state=nope",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::POST,
            "/v1/deliveries/424242/replay",
            None,
            StatusCode::NOT_FOUND,
            "delivery_not_found",
        ),
        (
            Method::GET,
            "/v1/nothing-here",
            None,
            StatusCode::NOT_FOUND,
            "no_route",
        ),
        (
            Method::PUT,
            "/v1/deletions",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/v1/erasures?state=nope",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Method::GET,
            "/v1/erasures/nope",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (st, v) = s.call(method.clone(), path, Some(&t.admin), body).await;
        assert_eq!(st, status, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }

    // A body that is not JSON, one too large, malformed JSON.
    let url = format!("{}/v1/deletions", s.base);
    let res = s
        .client()
        .post(&url)
        .bearer_auth(&t.operator)
        .header("content-type", "text/plain")
        .body("entity=products")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The server answers 413 without reading the body and then closes the
    // connection, so this request gets a client of its own: a pooled
    // connection closed under it would break the next request (a CI run hit
    // exactly that). The close can also race the client's write of a large
    // body, which is TCP, not the API; a transport error is retried.
    let big = format!(
        "{{\"entity\": \"products\", \"key\": \"{}\"}}",
        "1".repeat(2 << 20)
    );
    let mut too_large = None;
    for _ in 0..5 {
        let once = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let sent = once
            .post(&url)
            .bearer_auth(&t.operator)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        if let Ok(res) = sent {
            let status = res.status();
            if let Ok(v) = res.json::<Value>().await {
                too_large = Some((status, v));
                break;
            }
        }
    }
    let (status, v) = too_large.expect("no answer to the oversized body in 5 tries");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "body_too_large");
    let res = s
        .client()
        .post(&url)
        .bearer_auth(&t.operator)
        .header("content-type", "application/json")
        .body("{\"entity\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A restore conflict: the restored row's unique sku is taken by an
    // active row meanwhile; 409 lists the conflicting rows, nothing moves.
    let (_, d) = s
        .post(
            "/v1/deletions",
            &t.operator,
            json!({"entity": "products", "key": "20"}),
        )
        .await;
    let id = d["deletion_id"].as_str().unwrap().to_string();
    sqlx::query("INSERT INTO products VALUES (21, 1, 'SKU-20', 'Product 20 again')")
        .execute(&pool)
        .await
        .unwrap();
    let (st, v) = s
        .post(
            &format!("/v1/deletions/{id}/restore"),
            &t.operator,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "restore_conflict");
    let c = &v["error"]["details"]["conflicts"][0];
    assert_eq!(c["entity"], "products");
    assert_eq!(c["restored"], json!({"id": 20}));
    assert_eq!(c["active"], json!({"id": 21}));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE id = 20 AND deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    let (_, p) = s
        .post(
            &format!("/v1/deletions/{id}/restore-preview"),
            &t.viewer,
            json!({}),
        )
        .await;
    assert_eq!(p["conflicts"].as_array().unwrap().len(), 1);

    // Everything refused left the data as it was (the one delete aside).
    let after = snapshot().await;
    assert_eq!(after.1, before.1);
    assert_eq!(after.0, before.0 - 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_revocation() {
    let Some((db, t, s)) = setup().await else {
        return;
    };
    let pool = db.pool().await;
    // No token, a malformed header, an unknown token.
    let (st, v) = s.call(Method::GET, "/v1/deletions", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let res = s
        .client()
        .get(format!("{}/v1/deletions", s.base))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .get("/v1/deletions", &format!("lethe_{}", "0".repeat(64)))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Roles: a viewer reads but cannot delete; an operator deletes but
    // cannot purge or erase; an admin can.
    let (st, _) = s.get("/v1/whoami", &t.viewer).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .post(
            "/v1/deletions",
            &t.viewer,
            json!({"entity": "products", "key": "3"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "forbidden");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM products WHERE id = 3 AND deleted_at IS NOT NULL"
        )
        .await,
        0
    );
    let (st, _) = s
        .post("/v1/purge", &t.operator, json!({"dry_run": true}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post(
            "/v1/erasures",
            &t.operator,
            json!({"entity": "users", "key": "2"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .post("/v1/purge", &t.admin, json!({"dry_run": true}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Secrets are stored hashed only.
    let stored: Vec<String> = sqlx::query("SELECT hash FROM lethe.api_tokens")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 3);
    for secret in [&t.viewer, &t.operator, &t.admin] {
        assert!(!stored.contains(secret));
        assert!(stored.contains(&lethe_store::tokens::secret_hash(secret)));
    }

    // Revoked: refused at once (the test server remembers tokens for 0s),
    // and the revocation is audited.
    let engine = db.engine(POLICY).await;
    engine
        .token_revoke("shop-backend", Some("test"))
        .await
        .unwrap();
    let (st, _) = s
        .post(
            "/v1/deletions",
            &t.operator,
            json!({"entity": "products", "key": "3"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lethe.audit WHERE action = 'token_revoke'"
        )
        .await,
        1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_readiness_and_metrics() {
    let Some((_db, t, s)) = setup().await else {
        return;
    };
    let (st, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/deletions", "post"),
        ("/v1/deletions", "get"),
        ("/v1/entities/{entity}/{key}", "get"),
        ("/v1/entities/{entity}/{key}", "delete"),
        ("/v1/entities/{entity}/{key}/plan", "get"),
        ("/v1/trash/{entity}", "get"),
        ("/v1/deletions/{id}/restore", "post"),
        ("/v1/deletions/{id}/restore-preview", "post"),
        ("/v1/audit", "get"),
        ("/v1/audit/verify", "get"),
        ("/v1/deliveries", "get"),
        ("/v1/deliveries/{id}/replay", "post"),
        ("/v1/purge", "post"),
        ("/v1/holds", "post"),
        ("/v1/erasures", "post"),
        ("/v1/erasures/{id}", "get"),
        ("/v1/stats", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(paths[path].get(method).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "DeletionOutcome",
        "Tombstone",
        "TrashPage",
        "ErrorBody",
        "RestorePreview",
        "ErasureRecord",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );

    let (st, h) = s.call(Method::GET, "/health", None, None).await;
    assert_eq!((st, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, r) = s.call(Method::GET, "/ready", None, None).await;
    assert_eq!(
        (st, r["database"].as_str()),
        (StatusCode::OK, Some("postgres"))
    );

    // A request whose path holds a key, then the metrics: counted by route
    // template, never by the key itself.
    s.get("/v1/entities/users/ada%40example.com", &t.viewer)
        .await;
    s.get("/v1/entities/products/7", &t.viewer).await;
    let text = s
        .client()
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("lethe_http_requests_total"), "{text}");
    assert!(
        text.contains("route=\"/v1/entities/{entity}/{key}\""),
        "{text}"
    );
    assert!(!text.contains("ada"), "{text}");
    assert!(!text.contains("products/7"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_holds_and_erasure_through_the_api() {
    let Some((db, t, s)) = setup().await else {
        return;
    };
    let pool = db.pool().await;
    // A legal hold, listed, then released; both audited.
    let (st, h) = s
        .post(
            "/v1/holds",
            &t.admin,
            json!({"entity": "products", "key": "5", "reason": "case 12"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    let hold_id = h["id"].as_i64().unwrap();
    assert_eq!(h["actor"], "dpo@example.test");
    let (_, list) = s.get("/v1/holds", &t.viewer).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, _) = s
        .post(
            &format!("/v1/holds/{hold_id}/release"),
            &t.admin,
            json!({"reason": "closed"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, list) = s.get("/v1/holds", &t.viewer).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lethe.audit WHERE action IN ('hold', 'release_hold')"
        )
        .await,
        2
    );

    // Purge: product 19 (and its cart item, a hard snapshot) deleted 40
    // days ago is due; the purge removes both, and afterwards their
    // tombstones say purged: the product through its own deletion, the
    // cart item through the purge's outbox record.
    let (st, d) = s
        .post(
            "/v1/deletions",
            &t.operator,
            json!({"entity": "products", "key": "19"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    let id = d["deletion_id"].as_str().unwrap().to_string();
    for sql in [
        "UPDATE products SET deleted_at = deleted_at - interval '40 days' WHERE id = 19",
        "UPDATE lethe.archive SET deleted_at = deleted_at - interval '40 days' WHERE deletion_id = $1::uuid",
        "UPDATE lethe.deletions SET at = at - interval '40 days' WHERE id = $1::uuid",
    ] {
        sqlx::query(sql).bind(&id).execute(&pool).await.unwrap();
    }
    let due = |r: &Value, entity: &str, field: &str| -> u64 {
        r["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["entity"] == entity)
            .map(|t| t[field].as_u64().unwrap())
            .sum()
    };
    let (st, r) = s
        .post("/v1/purge", &t.admin, json!({"dry_run": true}))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (due(&r, "products", "due"), due(&r, "cart_items", "due")),
        (1, 1),
        "{r}"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM products WHERE id = 19").await,
        1
    );
    let (st, r) = s.post("/v1/purge", &t.admin, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (due(&r, "products", "done"), due(&r, "cart_items", "done")),
        (1, 1),
        "{r}"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM products WHERE id = 19").await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lethe.archive WHERE entity = 'cart_items'"
        )
        .await,
        0
    );
    let purge_entry: Value = serde_json::from_str(
        &sqlx::query(
            "SELECT entry FROM lethe.audit WHERE action LIKE 'purge%' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<String, _>(0),
    )
    .unwrap();
    assert_eq!(purge_entry["actor"], "dpo@example.test", "{purge_entry}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM lethe.outbox WHERE event = 'purged' AND entity IN ('products', 'cart_items')").await,
        2
    );
    let (_, tp) = s.get("/v1/entities/products/19", &t.viewer).await;
    assert_eq!(tp["status"], "purged", "{tp}");
    assert_eq!(tp["deletion_id"], id.as_str());
    assert!(tp["purged_at"].is_string());
    let (_, tc) = s.get("/v1/entities/cart_items/119", &t.viewer).await;
    assert_eq!(tc["status"], "purged", "{tc}");
    assert!(tc["purged_at"].is_string());
    let (st, j) = s.get("/v1/jobs", &t.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(j["jobs"], json!([]));
    let (st, st_) = s.get("/v1/stats", &t.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        st_.as_array()
            .unwrap()
            .iter()
            .any(|e| e["entity"] == "products" && e["active"] == 19)
    );

    // Erasure of user 1: preview, then the request, run to the end.
    let (st, p) = s
        .post(
            "/v1/erasures/preview",
            &t.admin,
            json!({"entity": "users", "key": "1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, rec) = s
        .post(
            "/v1/erasures",
            &t.admin,
            json!({"entity": "users", "key": "1", "request_id": "ticket-9", "reason": "Art. 17"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().unwrap().to_string();
    let email: String = sqlx::query("SELECT email FROM users WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_ne!(email, "ada@example.com");
    eventually("the erasure completed", || async {
        let (_, r) = s
            .post(&format!("/v1/erasures/{id}/resume"), &t.admin, json!({}))
            .await;
        r["state"] == "completed"
    })
    .await;
    let (_, by_ticket) = s.get("/v1/erasures/ticket-9", &t.viewer).await;
    assert_eq!(by_ticket["id"], id.as_str());
    let (st, cert) = s
        .get(&format!("/v1/erasures/{id}/certificate"), &t.viewer)
        .await;
    assert_eq!(st, StatusCode::OK, "{cert}");
    assert_eq!(cert["erasure_id"], id.as_str());
    // The API never wrote the subject's key or e-mail anywhere of Lethe's.
    let audit: Vec<String> = sqlx::query("SELECT entry FROM lethe.audit")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(audit.iter().all(|e| !e.contains("ada@example.com")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_delete_and_deliver_once() {
    let Some(db) = PgDb::create(SCHEMA).await else {
        return;
    };
    let engine = db.engine(POLICY).await;
    let t = Tokens::create(&engine).await;
    let a = Server::start(engine, quick()).await;
    let b = Server::start(db.engine(POLICY).await, quick()).await;
    // Both instances take deletes of the same rows at once: each row is
    // deleted exactly once, the other answer is a 409.
    let mut ok = 0;
    let mut conflict = 0;
    for k in 1..=10 {
        let body = json!({"entity": "products", "key": k.to_string()});
        let (ra, rb) = tokio::join!(
            a.post("/v1/deletions", &t.operator, body.clone()),
            b.post("/v1/deletions", &t.operator, body)
        );
        for (st, v) in [ra, rb] {
            match st {
                StatusCode::OK => ok += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(v["error"]["code"], "already_deleted", "{v}");
                    conflict += 1
                }
                other => panic!("unexpected {other}: {v}"),
            }
        }
    }
    assert_eq!((ok, conflict), (10, 10));
    let pool = db.pool().await;
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lethe.deletions WHERE kind = 'delete'"
        )
        .await,
        10
    );
    // Both relays run; every event reaches the file once.
    eventually("both relays delivered everything", || async {
        let (_, d) = a.get("/v1/deliveries", &t.viewer).await;
        d["undispatched"] == 0
            && d["summary"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|x| x["state"] == "delivered"))
    })
    .await;
    // Graceful stop of both: the workers end, nothing is left claimed.
    a.stop().await;
    b.stop().await;
    let events = std::fs::read_to_string(db.dir.join("events.jsonl")).unwrap();
    let ids: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "an event was delivered twice");
    // 10 products and 10 cart items (the reviews entity publishes nothing).
    assert_eq!(ids.len(), 20);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM lethe.delivery_queues WHERE owner IS NOT NULL AND lease_until > now()").await,
        0
    );
}
