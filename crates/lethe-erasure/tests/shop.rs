//! Erasure end to end against real services: PostgreSQL (and SQLite where
//! the behaviour is the database's), the machine's Redis, an embedded
//! tantivy index, cold-storage files and a webhook third party (a local
//! HTTP server standing in for a CRM; no real CRM runs here).
//!
//! - `complete_shop_erasure`: the issue's complete scenario on PostgreSQL:
//!   kept orders (legal basis), order items, reviews (one soft-deleted), a
//!   cart (one line snapshotted by a hard delete), addresses (one archived
//!   and exported), cache keys, search documents, a webhook; after the
//!   erasure, verification is clean and a raw scan of every table and
//!   exported file finds none of the subject's e-mail, name or phone, while
//!   another subject's sealed values in the same file still open.
//! - `third_party_must_acknowledge`: a webhook answering 500 keeps the
//!   request open until an operator confirms the step with a reason.
//! - `reapply_after_restore_from_backup`: pg_dump, erase, restore the dump
//!   into a new database, reapply the ledger, verify clean.

#[path = "../../lethe-store/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, TempDir, TestDb, q};
use lethe_cold::keys::{Keys, kek};
use lethe_cold::{ExportOptions, Location, S3Settings};
use lethe_erasure::Places;
use lethe_relay::sinks::tantivy::TantivySink;
use lethe_relay::{Relay, RelayOptions, SearchOp};
use lethe_store::erasure::EraseRequest;
use lethe_store::{DeleteRequest, Engine};
use serde_json::{Value, json};

const ANN: [&str; 3] = ["ann@example.com", "Ann Example", "+1 555 0101"];
const BOB_PHONE: &str = "+1 555 0202";

fn schema() -> &'static str {
    "
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text, phone text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), total bigint NOT NULL);
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders (id), sku text NOT NULL, qty bigint NOT NULL, PRIMARY KEY (order_id, sku));
CREATE TABLE reviews (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id), sku text NOT NULL, body text NOT NULL, author_name text);
CREATE TABLE carts (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), sku text NOT NULL);
CREATE TABLE addresses (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), city text NOT NULL, phone text);
INSERT INTO users VALUES (1, 'ann@example.com', 'Ann Example', '+1 555 0101'), (2, 'bob@example.com', 'Bob Other', '+1 555 0202');
INSERT INTO orders VALUES (10, 1, 30), (11, 1, 12), (12, 2, 7);
INSERT INTO order_items VALUES (10, 'A', 1), (10, 'B', 2), (11, 'A', 1), (12, 'A', 3);
INSERT INTO reviews VALUES (20, 1, 'A', 'great', 'Ann Example'), (21, 1, 'B', 'bad', 'Ann Example'), (22, 2, 'A', 'ok', 'Bob Other');
INSERT INTO carts VALUES (30, 1, 'A'), (31, 1, 'B'), (32, 2, 'A');
INSERT INTO addresses VALUES (40, 1, 'Berlin', '+1 555 0101'), (41, 1, 'Paris', NULL), (42, 2, 'Rome', '+1 555 0202');
"
}

/// The shop's policy; `sinks` adds cache, search and the CRM webhook.
fn policy_text(
    prefix: &str,
    sinks: Option<(&str, &Path, u16, &str)>,
    export: Option<&Path>,
) -> String {
    let mut p = format!(
        r#"
[entities.users]
key = ["id"]
pii = {{ email = "fake", name = "redact", phone = "hash" }}
erase = "anonymize"
cache_keys = ["{prefix}:user:{{id}}", "{prefix}:user:email:{{email}}"]

[entities.orders]
key = ["id"]
erase = "keep"
legal_basis = "invoices: 10 years (tax law)"

[entities.order_items]
key = ["order_id", "sku"]
erase = "keep"
legal_basis = "invoice lines: 10 years (tax law)"

[entities.reviews]
key = ["id"]
pii = {{ author_name = "redact" }}
cache_keys = ["{prefix}:review:{{id}}"]

[entities.carts]
key = ["id"]
strategy = "hard"
cache_keys = ["{prefix}:cart:{{user_id}}"]

[entities.addresses]
key = ["id"]
strategy = "archive"
pii = {{ phone = "null" }}

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "restrict"

[[relations]]
child = "order_items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["user_id"]
parent = "users"
on_delete = "set_null"

[[relations]]
child = "carts"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "addresses"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[erasure]
subject = "users"
"#
    );
    if let Some((redis, index, port, secret_env)) = sinks {
        let review = format!("cache_keys = [\"{prefix}:review:{{id}}\"]");
        p = p.replace(
            &review,
            &format!("{review}\nsearch = {{ sink = \"search\", index = \"reviews\", fields = [\"body\", \"author_name\"] }}\npublish = [\"crm\"]"),
        );
        let user =
            format!("cache_keys = [\"{prefix}:user:{{id}}\", \"{prefix}:user:email:{{email}}\"]");
        p = p.replace(&user, &format!("{user}\npublish = [\"crm\"]"));
        p.push_str(&format!(
            r#"
[sinks.cache]
kind = "redis"
url = "{redis}"

[sinks.search]
kind = "tantivy"
path = "{}"

[sinks.crm]
kind = "webhook"
url = "http://127.0.0.1:{port}/lethe"
secret_env = "{secret_env}"
"#,
            index.display()
        ));
    }
    if sinks.is_none() {
        p = p
            .lines()
            .filter(|l| !l.starts_with("cache_keys"))
            .collect::<Vec<_>>()
            .join("\n");
    }
    if let Some(dir) = export {
        p.push_str(&format!("\n[export]\nto = \"{}\"\n", dir.display()));
    }
    p
}

/// A webhook receiver: answers every request with `status`, keeps the
/// bodies.
struct Webhook {
    port: u16,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<String>>>,
}

fn webhook() -> Webhook {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let status = Arc::new(AtomicU16::new(200));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (s, b) = (status.clone(), bodies.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (s, b) = (s.clone(), b.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let code = s.load(Ordering::SeqCst);
                    if code < 300 {
                        b.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                    }
                    let _ = write!(w, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    Webhook {
        port,
        status,
        bodies,
    }
}

fn redis_url() -> String {
    std::env::var("LETHE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {} is required: {e}", redis_url()))
}

async fn relay_once(engine: &Engine) {
    let relay = Arc::new(Relay::new(
        engine.queue().expect("queue"),
        Arc::new(engine.policy().clone()),
    ));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = RelayOptions {
        once: true,
        ..RelayOptions::default()
    };
    relay.run(opts, rx).await.expect("relay");
}

async fn engine_on(db: &TestDb, policy: &str) -> Engine {
    db.exec(schema()).await;
    let mut engine = Engine::connect(common::policy(policy), &db.url)
        .await
        .unwrap();
    let errors: Vec<_> = engine
        .check()
        .into_iter()
        .filter(|f| f.level == lethe_core::Level::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    engine.migrate(false).await.unwrap();
    engine
}

fn ann(request: &str) -> EraseRequest {
    EraseRequest {
        entity: "users".into(),
        key: "1".into(),
        request_id: Some(request.into()),
        actor: Some("dpo@shop".into()),
        reason: Some("GDPR Art. 17 request".into()),
    }
}

/// Every row of every table of the `public` and `lethe` schemas as text.
async fn raw_tables(engine: &Engine) -> Vec<(String, String)> {
    let tables = q(
        engine,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema IN ('public', 'lethe') AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .await;
    let mut out = Vec::new();
    for t in tables {
        let text = q(
            engine,
            &format!(
                "SELECT coalesce(string_agg(x::text, E'\\n'), '') FROM {} x",
                t[0]
            ),
        )
        .await;
        out.push((t[0].clone(), text[0][0].clone()));
    }
    out
}

/// Every exported file under `dir`, decompressed.
fn raw_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let text = if p.extension().is_some_and(|x| x == "zst") {
                    String::from_utf8_lossy(&zstd::decode_all(&bytes[..]).unwrap()).into_owned()
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                };
                out.push((p.display().to_string(), text));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_shop_erasure() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let dir = TempDir::new();
    let (index, exports) = (dir.0.join("index"), dir.0.join("exports"));
    let hook = webhook();
    let secret = "LETHE_TEST_CRM_SECRET_SHOP";
    // SAFETY: this test's own variable; no other thread reads it yet.
    unsafe { std::env::set_var(secret, "crm-secret") };
    let prefix = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
    let redis = redis_url();
    let policy = policy_text(
        &prefix,
        Some((&redis, &index, hook.port, secret)),
        Some(&exports),
    );
    let engine = engine_on(&db, &policy).await;

    // Before the request: a soft-deleted review, a snapshotted cart line,
    // archived addresses (Ann's and Bob's), all of a day long past, and
    // exported.
    for (e, k) in [
        ("reviews", "21"),
        ("carts", "31"),
        ("addresses", "40"),
        ("addresses", "42"),
    ] {
        engine.delete(&DeleteRequest::new(e, k)).await.unwrap();
    }
    db.exec(
        "UPDATE reviews SET deleted_at = '2020-01-01T10:00:00Z' WHERE deleted_at IS NOT NULL;
         UPDATE lethe.archive SET deleted_at = '2020-01-01T10:00:00Z';",
    )
    .await;
    std::fs::create_dir_all(&exports).unwrap();
    let location = Location::open(
        exports.to_str().unwrap(),
        &S3Settings::default(),
        &dir.0,
        false,
    )
    .unwrap();
    let exported = lethe_cold::export(&engine, &location, &ExportOptions::default())
        .await
        .unwrap();
    assert!(exported.sealed >= 3, "{exported:?}");
    assert!(exported.files.iter().any(|f| f.entity == "addresses"));
    // What the sinks hold: cache keys and search documents of both users.
    let mut r = redis_conn().await;
    let keys: Vec<String> = [
        "user:1",
        "user:email:ann@example.com",
        "review:20",
        "cart:1",
        "user:2",
        "review:22",
    ]
    .iter()
    .map(|k| format!("{prefix}:{k}"))
    .collect();
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("cached")
            .query_async(&mut r)
            .await
            .unwrap();
    }
    let mut search = TantivySink::new(index.to_str().unwrap());
    let doc = |body: &str, name: &str| {
        json!({"body": body, "author_name": name})
            .as_object()
            .unwrap()
            .clone()
    };
    search
        .apply(
            "reviews",
            &[
                SearchOp::Upsert {
                    id: "20".into(),
                    doc: doc("great", "Ann Example"),
                },
                SearchOp::Upsert {
                    id: "22".into(),
                    doc: doc("ok", "Bob Other"),
                },
            ],
        )
        .await
        .unwrap();
    relay_once(&engine).await;

    // The request: the tables at once; the sinks wait for the relay.
    let places = Places {
        export: Some(location),
        temp_dir: None,
    };
    let rec = lethe_erasure::erase(&engine, &ann("REQ-1"), &places)
        .await
        .unwrap();
    assert_eq!(rec.state, "in_progress", "{:?}", rec.error);
    for s in &rec.steps {
        let expected = match s.kind.as_str() {
            "sink" | "third_party" => "waiting",
            "verify" => "pending",
            _ => "done",
        };
        assert_eq!(s.state, expected, "{s:?}");
    }
    assert_eq!(rec.step("sink:crm").unwrap().kind, "third_party");
    relay_once(&engine).await;
    let rec = lethe_erasure::advance(&engine, &rec.id, &places)
        .await
        .unwrap();
    assert_eq!(rec.state, "completed", "{:?} {:?}", rec.error, rec.steps);

    // Rows.
    let users = q(&engine, "SELECT email, name, phone FROM users ORDER BY id").await;
    assert_eq!(users[0][0], "erased-1@example.invalid");
    assert_eq!(users[0][1], "[redacted]");
    assert_eq!(
        users[0][2],
        engine.keyed_hash(ANN[2]),
        "hash: the keyed HMAC of the phone"
    );
    assert_eq!(users[1], vec!["bob@example.com", "Bob Other", BOB_PHONE]);
    let ids = |t: &str| format!("SELECT CAST(id AS TEXT) FROM {t} ORDER BY id");
    let col0 = |rows: Vec<Vec<String>>| rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(col0(q(&engine, &ids("orders")).await), ["10", "11", "12"]);
    assert_eq!(col0(q(&engine, &ids("reviews")).await), ["22"]);
    assert_eq!(col0(q(&engine, &ids("carts")).await), ["32"]);
    assert!(col0(q(&engine, &ids("addresses")).await).is_empty());
    assert_eq!(
        col0(
            q(
                &engine,
                "SELECT entity || ':' || (key->>'id') FROM lethe.archive ORDER BY 1"
            )
            .await
        ),
        ["addresses:42"]
    );
    assert_eq!(
        q(&engine, "SELECT CAST(count(*) AS TEXT) FROM order_items").await[0][0],
        "4"
    );

    // Sinks: Ann's keys and documents gone, Bob's there; the CRM heard.
    for (i, k) in keys.iter().enumerate() {
        let n: i64 = redis::cmd("EXISTS")
            .arg(k)
            .query_async(&mut r)
            .await
            .unwrap();
        assert_eq!(n, i64::from(i >= 4), "{k}");
    }
    let present = search
        .contains("reviews", &["20".into(), "22".into()])
        .await
        .unwrap();
    assert_eq!(present, vec![false, true]);
    let heard = hook.bodies.lock().unwrap().join("\n");
    assert!(heard.contains("\"type\":\"lethe.erased\""), "{heard}");
    assert!(heard.contains("\"subject\":\"users/1\""), "{heard}");

    // The certificate, and its hash in the audit chain.
    let cert = rec.certificate.clone().unwrap();
    assert_eq!(cert["request_id"], "REQ-1");
    assert_eq!(cert["verification"]["clean"], true);
    assert!(cert["verification"]["files"].as_u64().unwrap() >= 3);
    assert!(cert["verification"]["shredded_values"].as_u64().unwrap() >= 1);
    let hash = rec.certificate_hash.clone().unwrap();
    let entries = col0(q(&engine, "SELECT entry FROM lethe.audit ORDER BY seq").await);
    assert!(
        entries
            .iter()
            .any(|e| e.contains(&hash) && e.contains("erasure_complete"))
    );
    assert!(engine.audit_verify(None).await.unwrap().ok);

    // The raw scan: no table of the database, no exported file holds Ann's
    // e-mail, name or phone.
    for (t, text) in raw_tables(&engine).await {
        for v in ANN {
            assert!(!text.contains(v), "{v} found in table {t}");
        }
    }
    let files = raw_files(&exports);
    assert!(files.len() >= 4);
    for (f, text) in &files {
        for v in ANN {
            assert!(!text.contains(v), "{v} found in {f}");
        }
    }

    // Crypto-shredding: in the same export file, Ann's sealed phone no
    // longer opens and Bob's still does.
    let (k, _) = kek(&engine, engine.policy()).await.unwrap();
    let mut data_keys = Keys::new(k);
    let addresses = files
        .iter()
        .find(|(f, t)| f.ends_with(".zst") && t.contains("\"entity\":\"addresses\""))
        .unwrap();
    let mut sealed = Vec::new();
    for line in addresses.1.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let s = l["row"]["phone"]["$sealed"].as_str().unwrap().to_string();
        let subject = lethe_cold::crypto::parse_sealed(&s).unwrap().0.to_string();
        sealed.push((l["key"]["id"].as_i64().unwrap(), subject, s));
    }
    sealed.sort();
    let subjects: Vec<String> = sealed.iter().map(|s| s.1.clone()).collect();
    data_keys.load(&engine, &subjects, false).await.unwrap();
    let open = |i: usize| {
        data_keys
            .get(&sealed[i].1)
            .and_then(|k| k.open("phone", &sealed[i].2))
    };
    assert_eq!(sealed.iter().map(|s| s.0).collect::<Vec<_>>(), [40, 42]);
    assert_eq!(open(0), None, "Ann's phone must not open");
    assert_eq!(open(1), Some(json!(BOB_PHONE)), "Bob's phone still opens");
    db.cleanup().await;
}

async fn third_party_must_acknowledge(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let dir = TempDir::new();
    let hook = webhook();
    hook.status.store(500, Ordering::SeqCst);
    let secret = match b {
        Backend::Sqlite => "LETHE_TEST_CRM_SECRET_ACK_S",
        Backend::Postgres => "LETHE_TEST_CRM_SECRET_ACK_P",
    };
    // SAFETY: this test's own variable.
    unsafe { std::env::set_var(secret, "crm-secret") };
    let prefix = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
    let policy = policy_text(
        &prefix,
        Some((&redis_url(), &dir.0.join("index"), hook.port, secret)),
        None,
    );
    let schema = match b {
        Backend::Postgres => schema().to_string(),
        Backend::Sqlite => schema().replace("bigint", "INTEGER"),
    };
    db.exec(&schema).await;
    let mut engine = Engine::connect(common::policy(&policy), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    let places = Places::default();
    let rec = lethe_erasure::erase(&engine, &ann("REQ-ACK"), &places)
        .await
        .unwrap();
    relay_once(&engine).await;
    let rec = lethe_erasure::advance(&engine, &rec.id, &places)
        .await
        .unwrap();
    // The cache and index took it; the CRM answered 500: not completed.
    assert_eq!(rec.state, "in_progress");
    assert_eq!(rec.step("sink:cache").unwrap().state, "done");
    assert_eq!(rec.step("sink:crm").unwrap().state, "waiting");
    assert!(hook.bodies.lock().unwrap().is_empty());
    // A confirmation needs a reason; with one, the request completes.
    assert!(
        engine
            .erasure_confirm(&rec.id, "crm", " ", Some("ops"))
            .await
            .is_err()
    );
    assert!(
        engine
            .erasure_confirm(&rec.id, "table:users", "why", Some("ops"))
            .await
            .is_err()
    );
    engine
        .erasure_confirm(
            &rec.id,
            "crm",
            "CRM support confirmed deletion by e-mail, ticket 4711",
            Some("ops"),
        )
        .await
        .unwrap();
    let rec = lethe_erasure::advance(&engine, &rec.id, &places)
        .await
        .unwrap();
    assert_eq!(rec.state, "completed", "{:?}", rec.error);
    let step = rec.step("sink:crm").unwrap();
    assert_eq!(step.state, "confirmed");
    assert_eq!(
        step.detail["reason"],
        "CRM support confirmed deletion by e-mail, ticket 4711"
    );
    db.cleanup().await;
}
on_both!(third_party_must_acknowledge, third_party_must_acknowledge);

/// pg_dump, erase, restore the dump into a new database, reapply the
/// ledger there, verify clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapply_after_restore_from_backup() {
    let Some(a) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let policy = policy_text("unused", None, None);
    let engine_a = engine_on(&a, &policy).await;
    let dir = TempDir::new();
    let dump = dir.0.join("shop.dump");
    let out = std::process::Command::new("pg_dump")
        .args(["-Fc", "-f", dump.to_str().unwrap(), &a.url])
        .output()
        .expect("pg_dump on the PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let places = Places::default();
    let done = lethe_erasure::erase(&engine_a, &ann("REQ-B"), &places)
        .await
        .unwrap();
    assert_eq!(done.state, "completed", "{:?}", done.error);

    // The restore: the backup predates the erasure, so Ann is back.
    let b = TestDb::new(Backend::Postgres).await.unwrap();
    let out = std::process::Command::new("pg_restore")
        .args(["--no-owner", "-d", &b.url, dump.to_str().unwrap()])
        .output()
        .expect("pg_restore on the PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let engine_b = Engine::connect(common::policy(&policy), &b.url)
        .await
        .unwrap();
    assert_eq!(
        q(&engine_b, "SELECT email FROM users WHERE id = 1").await[0][0],
        ANN[0]
    );
    assert!(engine_b.erasure_ledger().await.unwrap().is_empty());

    let ledger = engine_a.erasure_ledger().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert!(!serde_json::to_string(&ledger).unwrap().contains("ann@"));
    let again = lethe_erasure::reapply(&engine_b, &ledger, Some("restore-runbook"), &places)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].state, "completed", "{:?}", again[0].error);
    assert_eq!(again[0].request_id, format!("reapply:{}", done.id));
    let v = lethe_erasure::verify(&engine_b, &again[0].id, &places)
        .await
        .unwrap();
    assert!(v.clean, "{:?}", v.residue);
    for (t, text) in raw_tables(&engine_b).await {
        for v in ANN {
            assert!(!text.contains(v), "{v} found in table {t} after reapply");
        }
    }
    assert_eq!(
        q(&engine_b, "SELECT email FROM users WHERE id = 2").await[0][0],
        "bob@example.com"
    );
    // The restored database's ledger has the entry again (same erasure
    // id), and reapplying once more changes nothing.
    let ledger_b = engine_b.erasure_ledger().await.unwrap();
    assert_eq!(ledger_b.len(), 1);
    assert_eq!(ledger_b[0].erasure_id, done.id);
    let twice = lethe_erasure::reapply(&engine_b, &ledger, None, &places)
        .await
        .unwrap();
    assert_eq!(twice[0].id, again[0].id);
    a.cleanup().await;
    b.cleanup().await;
}
