//! The relay end to end on SQLite and PostgreSQL, against the machine's real
//! Redis (and Redis servers the tests start themselves where one must go
//! down), an embedded tantivy index and a JSON Lines event file.

#[path = "../../lethe-store/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TempDir, TestDb, own, q, shop_with};
use lethe_relay::sinks::tantivy::TantivySink;
use lethe_relay::{Relay, RelayOptions, RelayStats, SearchOp};
use lethe_store::{DeleteRequest, Engine};
use serde_json::Value;

/// The shop policy with product deletions cascading to order items, a Redis
/// cache, a tantivy index and an event file.
fn relay_policy(prefix: &str, redis_url: &str, dir: &Path, retry: &str) -> String {
    let base = common::SHOP_POLICY.replace(
        "child = \"order_items\"\ncolumns = [\"product_id\"]\nparent = \"products\"\non_delete = \"restrict\"",
        "child = \"order_items\"\ncolumns = [\"product_id\"]\nparent = \"products\"\non_delete = \"cascade\"",
    );
    let base = base.replace(
        "[entities.products]\nkey = [\"id\"]\n",
        &format!(
            "[entities.products]\nkey = [\"id\"]\ncache_keys = [\"{prefix}:product:{{id}}\", \"{prefix}:product:sku:{{sku}}\"]\nsearch = {{ sink = \"search\", index = \"products\", fields = [\"name\", \"sku\"] }}\npublish = [\"events\"]\n"
        ),
    );
    let base = base.replace(
        "[entities.reviews]\nkey = [\"id\"]\n",
        &format!("[entities.reviews]\nkey = [\"id\"]\ncache_keys = [\"{prefix}:review:{{id}}:{{product_id}}\"]\npublish = [\"events\"]\n"),
    );
    let base = base.replace(
        "[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"\n",
        &format!("[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"\ncache_keys = [\"{prefix}:cart:{{user_id}}\"]\npublish = [\"events\"]\n"),
    );
    format!(
        "{base}
[sinks.cache]
kind = \"redis\"
url = \"{redis_url}\"
{retry}

[sinks.search]
kind = \"tantivy\"
path = \"{}\"

[sinks.events]
kind = \"file\"
path = \"{}\"
",
        dir.join("index").display(),
        dir.join("events.jsonl").display()
    )
}

fn unique() -> String {
    format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..])
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required: {e}"))
}

async fn set_keys(url: &str, keys: &[String]) {
    let mut c = redis_conn(url).await;
    for k in keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("cached")
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

async fn existing(url: &str, keys: &[String]) -> Vec<String> {
    let mut c = redis_conn(url).await;
    let mut out = Vec::new();
    for k in keys {
        let n: i64 = redis::cmd("EXISTS")
            .arg(k)
            .query_async(&mut c)
            .await
            .unwrap();
        if n > 0 {
            out.push(k.clone());
        }
    }
    out
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

async fn relay_once(engine: &Engine, workers: usize) -> RelayStats {
    let relay = Arc::new(Relay::new(
        engine.queue().expect("queue"),
        Arc::new(engine.policy().clone()),
    ));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = RelayOptions {
        once: true,
        workers,
        ..RelayOptions::default()
    };
    relay.run(opts, rx).await.expect("relay")
}

/// `(state, count)` of the deliveries.
async fn states(engine: &Engine, b: Backend) -> Vec<(String, String)> {
    q(
        engine,
        &format!(
            "SELECT state, CAST(count(*) AS TEXT) FROM {} GROUP BY state ORDER BY state",
            own(b, "deliveries")
        ),
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

fn delete(entity: &str, key: &str) -> DeleteRequest {
    let mut r = DeleteRequest::new(entity.to_string(), key.to_string());
    r.actor = Some("tester".into());
    r.reason = Some("relay test".into());
    r
}

const REDIS: &str = "redis://127.0.0.1:6379/";

/// What the application indexed before the test: products 10 and 11.
async fn index_products(dir: &Path) {
    let mut index = TantivySink::new(&dir.join("index").display().to_string());
    let doc = |name: &str| {
        serde_json::json!({"name": name})
            .as_object()
            .unwrap()
            .clone()
    };
    let ops = [
        SearchOp::Upsert {
            id: "10".into(),
            doc: doc("Dune"),
        },
        SearchOp::Upsert {
            id: "11".into(),
            doc: doc("Vinyl"),
        },
    ];
    index.apply("products", &ops).await.unwrap();
}

async fn delete_then_restore_reaches_every_sink_in_order(b: Backend) {
    let dir = TempDir::new();
    let p = unique();
    let Some((db, engine)) = shop_with(b, &relay_policy(&p, REDIS, &dir.0, "")).await else {
        return;
    };
    // What the application cached and indexed.
    let keys: Vec<String> = [
        "product:10",
        "product:sku:B-10",
        "product:11",
        "review:3000:10",
        "review:3002:12",
        "cart:2",
    ]
    .iter()
    .map(|k| format!("{p}:{k}"))
    .collect();
    set_keys(REDIS, &keys).await;
    index_products(&dir.0).await;

    let done = engine.delete(&delete("products", "10")).await.unwrap();
    // The outbox carries the key and the columns the sinks need.
    let outbox = engine.outbox(&done.deletion_id).await.unwrap();
    let product = outbox.iter().find(|o| o.entity == "products").unwrap();
    assert_eq!(product.columns, vec!["sku", "name"]);
    assert_eq!(product.key_objects(), vec![serde_json::json!({"id": 10})]);
    assert_eq!(
        product.captured_objects(),
        vec![serde_json::json!({"sku": "B-10", "name": "Dune"})]
    );
    let stats = relay_once(&engine, 2).await;
    assert!(stats.delivered > 0 && stats.failed == 0, "{stats:?}");
    // Cache: every key of the deleted rows is gone (cart_items 1002 was
    // hard-deleted: its user_id came from the outbox's captured columns);
    // other rows' keys stay.
    assert_eq!(
        existing(REDIS, &keys).await,
        vec![format!("{p}:product:11"), format!("{p}:review:3002:12")]
    );
    let mut index = TantivySink::new(&dir.0.join("index").display().to_string());
    assert_eq!(
        index
            .contains("products", &["10".into(), "11".into()])
            .await
            .unwrap(),
        vec![false, true]
    );
    drop(index);
    let ev = events(&dir.0);
    let subjects: Vec<&str> = ev.iter().map(|e| e["subject"].as_str().unwrap()).collect();
    for s in [
        "products/10",
        "reviews/3000",
        "reviews/3001",
        "cart_items/1002",
    ] {
        assert!(subjects.contains(&s), "{s} in {subjects:?}");
    }
    let e = ev.iter().find(|e| e["subject"] == "products/10").unwrap();
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "lethe.deleted");
    assert_eq!(e["data"]["deletion_id"], done.deletion_id.as_str());
    assert_eq!(e["data"]["actor"], "tester");
    assert_eq!(e["data"]["reason"], "relay test");
    assert_eq!(e["data"]["key"], serde_json::json!({"id": 10}));
    assert_eq!(
        states(&engine, b).await,
        vec![("delivered".into(), "7".into())],
        "products: 3 sinks; reviews, cart_items: 2 each"
    );

    // The application cached the row again; the restore invalidates again
    // and re-indexes the document from the values captured at delete time.
    set_keys(REDIS, &keys[..2]).await;
    engine
        .restore(&done.deletion_id, Some("tester"))
        .await
        .unwrap();
    let stats = relay_once(&engine, 1).await;
    assert!(stats.delivered > 0 && stats.failed == 0, "{stats:?}");
    assert_eq!(existing(REDIS, &keys[..2]).await, Vec::<String>::new());
    let mut index = TantivySink::new(&dir.0.join("index").display().to_string());
    let hits = index.search("products", "dune", 5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, "10");
    assert_eq!(hits[0].1["sku"], "B-10");
    assert_eq!(
        index
            .search("products", "doc.name:dune", 5)
            .await
            .unwrap()
            .len(),
        1
    );
    let ev = events(&dir.0);
    let order: Vec<&str> = ev
        .iter()
        .filter(|e| e["subject"] == "products/10")
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["lethe.deleted", "lethe.restored"]);
    let ids: std::collections::BTreeSet<&str> =
        ev.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), ev.len(), "every event has its own id");
    assert_eq!(
        states(&engine, b).await,
        vec![("delivered".into(), "14".into())]
    );
    db.cleanup().await;
}
on_both!(
    delete_then_restore,
    delete_then_restore_reaches_every_sink_in_order
);

/// A transaction that takes its outbox id early and commits after later
/// records were delivered: a relay reading by position would skip it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_delivered() {
    let dir = TempDir::new();
    let p = unique();
    let Some((db, engine)) =
        shop_with(Backend::Postgres, &relay_policy(&p, REDIS, &dir.0, "")).await
    else {
        return;
    };
    let held_db = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut held = held_db.begin_write().await.unwrap();
    held.exec(
        "INSERT INTO lethe.outbox (deletion_id, event, entity, part, keys, row_count, created_at, key_columns, columns) \
         VALUES ('01900000-0000-7000-8000-000000000001', 'deleted', 'products', 0, '[[12, \"B-12\", \"Emma\"]]', 1, now(), '[\"id\"]', '[\"sku\",\"name\"]')",
        &[],
    )
    .await
    .unwrap();
    let early: i64 = q(&engine, "SELECT last_value::text FROM lethe.outbox_id_seq").await[0][0]
        .parse()
        .unwrap();
    engine.delete(&delete("products", "11")).await.unwrap();
    let later: i64 = common::one(&engine, "SELECT CAST(min(id) AS TEXT) FROM lethe.outbox")
        .await
        .parse()
        .unwrap();
    assert!(later > early, "the held record took the earlier position");
    relay_once(&engine, 1).await;
    assert!(events(&dir.0).iter().all(|e| e["subject"] != "products/12"));
    held.commit().await.unwrap();
    relay_once(&engine, 1).await;
    let ev = events(&dir.0);
    assert!(
        ev.iter().any(|e| e["subject"] == "products/12"),
        "the late commit was delivered"
    );
    assert!(ev.iter().any(|e| e["subject"] == "products/11"));
    held_db.close().await;
    db.cleanup().await;
}

/// Two relays (separate pools, two workers each) over one PostgreSQL: every
/// event arrives exactly once (no crash, so no redelivery), nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_deliver_everything_once() {
    let dir = TempDir::new();
    let p = unique();
    let Some((db, engine)) =
        shop_with(Backend::Postgres, &relay_policy(&p, REDIS, &dir.0, "")).await
    else {
        return;
    };
    db.exec(
        "INSERT INTO products (id, category_id, sku, name) SELECT g, 5, 'S-' || g, 'item ' || g FROM generate_series(20, 79) g;
         INSERT INTO reviews (id, product_id, user_id, body) SELECT 5000 + g, g, 1, 'ok' FROM generate_series(20, 79) g",
    )
    .await;
    for id in 20..80 {
        let done = engine
            .delete(&delete("products", &id.to_string()))
            .await
            .unwrap();
        // Every third one is restored before any relay runs: its restore
        // must still reach every sink after its delete.
        if id % 3 == 0 {
            engine
                .restore(&done.deletion_id, Some("tester"))
                .await
                .unwrap();
        }
    }
    let other = Engine::connect(engine.policy().clone(), &db.url)
        .await
        .unwrap();
    let (a, b) = tokio::join!(relay_once(&engine, 2), relay_once(&other, 2));
    assert_eq!(a.failed + b.failed, 0);
    let ev = events(&dir.0);
    let mut ids: Vec<&str> = ev.iter().map(|e| e["id"].as_str().unwrap()).collect();
    // 60 products and 60 reviews deleted, 20 of each restored.
    assert_eq!(ev.len(), 160);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 160, "no event delivered twice");
    for id in (20..80).filter(|i| i % 3 == 0) {
        let subject = format!("products/{id}");
        let order: Vec<&str> = ev
            .iter()
            .filter(|e| e["subject"] == subject.as_str())
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(order, vec!["lethe.deleted", "lethe.restored"], "{subject}");
    }
    assert_eq!(
        states(&engine, Backend::Postgres).await,
        vec![("delivered".into(), "400".into())]
    );
    // The search index ends in the state of the rows: restored products are
    // found, deleted ones are not.
    let mut index = TantivySink::new(&dir.0.join("index").display().to_string());
    let keys: Vec<String> = (20..80).map(|i: i32| i.to_string()).collect();
    let present = index.contains("products", &keys).await.unwrap();
    for (i, p) in (20..80).zip(present) {
        assert_eq!(p, i % 3 == 0, "product {i} in the index");
    }
    db.cleanup().await;
}

/// A Redis server of the test's own, which it can stop and start again
/// (append-only file, so keys survive the restart).
struct OwnRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    fn new(dir: &Path) -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        OwnRedis {
            port,
            dir: dir.to_path_buf(),
            child: None,
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
    async fn start(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on {}", self.port);
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn cache_down_then_back(b: Backend) {
    let dir = TempDir::new();
    let mut redis = OwnRedis::new(&dir.0);
    redis.start().await;
    let p = unique();
    let retry = "backoff = \"50ms\"\nmax_backoff = \"200ms\"\nmax_attempts = 100";
    let Some((db, engine)) = shop_with(b, &relay_policy(&p, &redis.url(), &dir.0, retry)).await
    else {
        return;
    };
    let keys = vec![format!("{p}:product:10"), format!("{p}:product:sku:B-10")];
    set_keys(&redis.url(), &keys).await;
    redis.stop();
    // The delete does not depend on the cache.
    engine.delete(&delete("products", "10")).await.unwrap();
    let stats = relay_once(&engine, 1).await;
    assert!(stats.failed > 0, "{stats:?}");
    let s = states(&engine, b).await;
    assert!(
        s.contains(&("retrying".to_string(), "3".to_string())),
        "the three cache messages wait: {s:?}"
    );
    let err = common::one(
        &engine,
        &format!(
            "SELECT last_error FROM {} WHERE state = 'retrying' LIMIT 1",
            own(b, "deliveries")
        ),
    )
    .await;
    assert!(err.contains("unavailable"), "{err}");
    redis.start().await;
    assert_eq!(
        existing(&redis.url(), &keys).await,
        keys,
        "the keys survived the restart"
    );
    // Retries come due within the backoff.
    for _ in 0..50 {
        relay_once(&engine, 1).await;
        if !states(&engine, b)
            .await
            .iter()
            .any(|(s, _)| s == "retrying")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(existing(&redis.url(), &keys).await, Vec::<String>::new());
    let s = states(&engine, b).await;
    assert!(
        s.iter().all(|(st, _)| st == "delivered"),
        "nothing dead or open: {s:?}"
    );
    db.cleanup().await;
}
on_both!(cache_down, cache_down_then_back);

async fn dead_then_replay(b: Backend) {
    let dir = TempDir::new();
    let mut redis = OwnRedis::new(&dir.0);
    let p = unique();
    let retry = "backoff = \"10ms\"\nmax_backoff = \"20ms\"\nmax_attempts = 2";
    let Some((db, engine)) = shop_with(b, &relay_policy(&p, &redis.url(), &dir.0, retry)).await
    else {
        return;
    };
    engine.delete(&delete("products", "11")).await.unwrap();
    for _ in 0..50 {
        relay_once(&engine, 1).await;
        if !states(&engine, b)
            .await
            .iter()
            .any(|(s, _)| s == "retrying" || s == "pending")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let queue = engine.queue().unwrap();
    let dead = queue.list(Some("dead"), Some("cache"), 10).await.unwrap();
    assert_eq!(
        dead.len(),
        3,
        "the cache messages of products, reviews and cart_items are dead"
    );
    assert!(dead.iter().all(|d| d.attempts == 2), "{dead:?}");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("unavailable")
    );
    // The other sinks were not held up by the dead one.
    assert!(events(&dir.0).iter().any(|e| e["subject"] == "products/11"));

    redis.start().await;
    set_keys(&redis.url(), &[format!("{p}:product:11")]).await;
    assert_eq!(queue.replay_dead(Some("cache")).await.unwrap(), 3);
    let stats = relay_once(&engine, 1).await;
    assert_eq!(stats.failed, 0);
    assert_eq!(
        existing(&redis.url(), &[format!("{p}:product:11")]).await,
        Vec::<String>::new()
    );
    assert!(queue.list(Some("dead"), None, 10).await.unwrap().is_empty());
    db.cleanup().await;
}
on_both!(dead_replay, dead_then_replay);

#[allow(dead_code)]
fn unused(_: TestDb) {}

async fn reconcile_finds_and_repairs_drift(b: Backend) {
    let dir = TempDir::new();
    let p = unique();
    let Some((db, engine)) = shop_with(b, &relay_policy(&p, REDIS, &dir.0, "")).await else {
        return;
    };
    // Deleted without the relay running: the cache and the index still hold
    // the rows (cart_items is hard: its keys come from the snapshots).
    engine.delete(&delete("products", "10")).await.unwrap();
    let stale = vec![
        format!("{p}:product:10"),
        format!("{p}:product:sku:B-10"),
        format!("{p}:review:3000:10"),
        format!("{p}:cart:2"),
    ];
    let fresh = vec![format!("{p}:product:11"), format!("{p}:review:3003:11")];
    set_keys(REDIS, &stale).await;
    set_keys(REDIS, &fresh).await;
    index_products(&dir.0).await;

    let report = lethe_relay::reconcile(&engine, None, false).await.unwrap();
    let get = |check: &str, entity: &str| {
        report
            .checks
            .iter()
            .find(|c| c.check == check && c.entity == entity)
            .cloned()
            .unwrap_or_else(|| panic!("{check} {entity}: {report:?}"))
    };
    assert_eq!(get("deleted_cached", "products").found, 2);
    assert_eq!(get("deleted_cached", "reviews").found, 1);
    assert_eq!(get("deleted_cached", "cart_items").found, 1);
    assert_eq!(
        get("deleted_cached", "cart_items").examples,
        vec![format!("{p}:cart:2")]
    );
    assert_eq!(
        get("deleted_indexed", "products").examples,
        vec!["10".to_string()]
    );
    assert_eq!(
        get("active_missing", "products").examples,
        vec!["12".to_string()]
    );
    assert_eq!(report.found(), 6);
    assert_eq!(
        existing(REDIS, &stale).await.len(),
        4,
        "a report changes nothing"
    );

    let report = lethe_relay::reconcile(&engine, None, true).await.unwrap();
    assert_eq!(report.fixed(), 6);
    assert_eq!(existing(REDIS, &stale).await, Vec::<String>::new());
    assert_eq!(
        existing(REDIS, &fresh).await,
        fresh,
        "active rows' keys are left alone"
    );
    let mut index = TantivySink::new(&dir.0.join("index").display().to_string());
    assert_eq!(
        index
            .contains("products", &["10".into(), "11".into(), "12".into()])
            .await
            .unwrap(),
        vec![false, true, true]
    );
    assert_eq!(
        index.search("products", "emma", 3).await.unwrap()[0].1["sku"],
        "B-12"
    );
    drop(index);
    let again = lethe_relay::reconcile(&engine, Some("search"), false)
        .await
        .unwrap();
    assert_eq!(again.found(), 0, "{again:?}");
    assert!(
        lethe_relay::reconcile(&engine, Some("nope"), false)
            .await
            .is_err()
    );
    db.cleanup().await;
}
on_both!(reconcile, reconcile_finds_and_repairs_drift);

/// A relay that lost its queue's lease (it stalled past it and another relay
/// took the queue) records nothing: the new owner's record stands.
async fn lost_lease_records_nothing(b: Backend) {
    let dir = TempDir::new();
    let p = unique();
    let Some((db, engine)) = shop_with(b, &relay_policy(&p, REDIS, &dir.0, "")).await else {
        return;
    };
    engine.delete(&delete("products", "11")).await.unwrap();
    let queue = engine.queue().unwrap();
    let routes = engine.policy().routes();
    queue.ensure_queues(&routes).await.unwrap();
    queue.dispatch(&routes).await.unwrap();
    let sinks = vec!["events".to_string()];
    let lease = Duration::from_secs(1);
    let (sink, entity) = queue
        .claim("a", &sinks, lease)
        .await
        .unwrap()
        .expect("a queue");
    assert_eq!(
        queue
            .claim("b", &sinks, lease)
            .await
            .unwrap()
            .map(|q| q.1 == entity),
        Some(false),
        "b cannot take the leased queue, only another one"
    );
    let msgs = queue.messages(&sink, &entity, 10).await.unwrap();
    let ids: Vec<i64> = msgs.iter().map(|m| m.delivery_id).collect();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // a's lease ran out; c takes the queue over.
    let mut taken = None;
    for _ in 0..3 {
        if let Some(q) = queue.claim("c", &sinks, lease).await.unwrap()
            && q.1 == entity
        {
            taken = Some(q);
            break;
        }
    }
    assert!(taken.is_some(), "c took {entity} over");
    assert!(!queue.renew(&sink, &entity, "a", lease).await.unwrap());
    assert_eq!(
        queue.delivered(&ids, (&sink, &entity), "a").await.unwrap(),
        0
    );
    assert_eq!(
        queue
            .failed(&ids, (&sink, &entity), "a", lease, "late", 3)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        queue.delivered(&ids, (&sink, &entity), "c").await.unwrap(),
        ids.len() as u64
    );
    db.cleanup().await;
}
on_both!(lost_lease, lost_lease_records_nothing);

/// A webhook receiver that refuses (HTTP 400) any batch holding `poison`,
/// and records the subjects of the batches it accepts.
fn picky_receiver(poison: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let events: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
            let subjects: Vec<String> = events
                .iter()
                .map(|e| e["subject"].as_str().unwrap_or("").to_string())
                .collect();
            let refuse = subjects.iter().any(|s| s == poison);
            if !refuse {
                seen.lock().unwrap().extend(subjects);
            }
            let status = if refuse { "400 Bad Request" } else { "200 OK" };
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

/// One message a sink keeps refusing is found inside its batch: only it is
/// charged attempts and ends dead; the messages around it are delivered.
async fn one_refused_message_goes_dead_alone(b: Backend) {
    let dir = TempDir::new();
    let p = unique();
    let (port, got) = picky_receiver("products/11");
    let env = format!("LETHE_TEST_HOOK_{}", p.to_uppercase());
    // SAFETY: a variable of this test's own (unique name), set before any
    // thread reads it.
    unsafe { std::env::set_var(&env, "s3cret") };
    let policy = relay_policy(&p, REDIS, &dir.0, "").replace(
        "publish = [\"events\"]\n",
        "publish = [\"events\", \"hook\"]\n",
    ) + &format!(
        "\n[sinks.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nsecret_env = \"{env}\"\nmax_attempts = 2\nbackoff = \"10ms\"\nmax_backoff = \"20ms\"\n"
    );
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    for id in ["10", "11", "12"] {
        engine.delete(&delete("products", id)).await.unwrap();
    }
    for _ in 0..100 {
        relay_once(&engine, 1).await;
        let open = engine
            .queue()
            .unwrap()
            .list(Some("retrying"), None, 10)
            .await
            .unwrap()
            .len()
            + engine
                .queue()
                .unwrap()
                .list(Some("pending"), None, 10)
                .await
                .unwrap()
                .len();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = engine
        .queue()
        .unwrap()
        .list(Some("dead"), Some("hook"), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].entity, "products");
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("400"),
        "{dead:?}"
    );
    let got = got.lock().unwrap().clone();
    let products: Vec<&str> = got
        .iter()
        .filter(|s| s.starts_with("products/"))
        .map(String::as_str)
        .collect();
    assert_eq!(products, vec!["products/10", "products/12"]);
    db.cleanup().await;
}
on_both!(refused_message, one_refused_message_goes_dead_alone);
