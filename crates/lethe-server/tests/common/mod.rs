//! A real `lethe serve` (in this process, on a free port) on a PostgreSQL
//! database of the test's own, and an HTTP client for it.
//!
//! PostgreSQL is `LETHE_TEST_PG` (default
//! `postgres://postgres@127.0.0.1/postgres`); when it cannot be reached the
//! test is skipped locally and fails under CI (`CI=true`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use lethe_server::ServeOptions;
use lethe_store::{Engine, Role};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection as _, Executor, PgConnection, PgPool};

/// A small shop: categories (restrict), products (soft, unique sku,
/// 30 days), cart items (hard, cascade), users (the erasure subject),
/// reviews (cascade from products, set_null from users), a file sink.
pub const SCHEMA: &str = "
CREATE TABLE categories (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (id bigint PRIMARY KEY, category_id bigint REFERENCES categories (id), sku text NOT NULL, name text NOT NULL);
CREATE TABLE cart_items (id bigint PRIMARY KEY, product_id bigint NOT NULL REFERENCES products (id), qty int NOT NULL);
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL);
CREATE TABLE reviews (id bigint PRIMARY KEY, product_id bigint NOT NULL REFERENCES products (id), user_id bigint REFERENCES users (id), body text NOT NULL);
CREATE INDEX ON products (category_id);
CREATE INDEX ON cart_items (product_id);
CREATE INDEX ON reviews (product_id);
CREATE INDEX ON reviews (user_id);
INSERT INTO categories VALUES (1, 'Books'), (2, 'Music'), (3, 'Empty');
INSERT INTO products SELECT g, 1 + g % 2, 'SKU-' || g, 'Product ' || g FROM generate_series(1, 20) g;
INSERT INTO cart_items SELECT 100 + g, g, 1 FROM generate_series(1, 20) g;
INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'Bob');
INSERT INTO reviews VALUES (500, 1, 1, 'Great'), (501, 2, 2, 'Fine');
";

pub const POLICY: &str = r#"
[defaults]
strategy = "soft"

[entities.categories]
key = ["id"]

[entities.products]
key = ["id"]
unique = [["sku"]]
retention = "30d"
publish = ["events"]

[entities.cart_items]
key = ["id"]
strategy = "hard"
retention = "7d"
publish = ["events"]

[entities.users]
key = ["id"]
unique = [["email"]]
pii = { email = "hash", name = "redact" }
erase = "anonymize"

[entities.reviews]
key = ["id"]

[erasure]
subject = "users"

[sinks.events]
kind = "file"
path = "events.jsonl"

[[relations]]
child = "products"
columns = ["category_id"]
parent = "categories"
on_delete = "restrict"

[[relations]]
child = "cart_items"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["user_id"]
parent = "users"
on_delete = "set_null"
"#;

pub fn pg_base_url() -> String {
    std::env::var("LETHE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".to_string())
}

pub fn skip<T>(why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: PostgreSQL tests must run)");
    }
    eprintln!("skipped: {why}");
    None
}

fn run_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A database of the test's own, dropped (with its connections) on drop.
pub struct PgDb {
    pub name: String,
    pub url: String,
    pub dir: PathBuf,
}

impl PgDb {
    pub async fn create(schema: &str) -> Option<PgDb> {
        let base = pg_base_url();
        let mut admin = match PgConnection::connect(&base).await {
            Ok(c) => c,
            Err(e) => return skip(&format!("PostgreSQL at {base} is unreachable: {e}")),
        };
        let name = format!("lethe_api_{}", run_id());
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let _ = admin.close().await;
        let url = match base.rfind('/') {
            Some(i) if base[..i].ends_with(|c: char| c != '/') => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        let pool = PgPool::connect(&url).await.expect("connect");
        pool.execute(AssertSqlSafe(schema.to_string()))
            .await
            .expect("schema");
        pool.close().await;
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Some(PgDb { name, url, dir })
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.expect("connect")
    }

    /// An engine on this database with `policy` (relative sink paths in the
    /// test's directory), migrated.
    pub async fn engine(&self, policy: &str) -> Engine {
        let path = self.dir.join("lethe.toml");
        std::fs::write(&path, policy).expect("policy");
        let mut p = lethe_core::parse_policy(policy, &path.display().to_string()).expect("policy");
        for s in p.sinks.values_mut() {
            if let lethe_core::SinkKind::File { path } = &mut s.kind {
                *path = self.dir.join(&*path).display().to_string();
            }
        }
        let mut engine = Engine::connect(p, &self.url).await.expect("engine");
        engine.migrate(false).await.expect("migrate");
        engine
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    if let Ok(mut admin) = PgConnection::connect(&pg_base_url()).await {
                        let _ = admin
                            .execute(AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A running server; stopped (gracefully) by [`Server::stop`].
pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    client: reqwest::Client,
}

impl Server {
    pub async fn start(engine: Engine, opts: ServeOptions) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(lethe_server::serve(
            engine,
            lethe_erasure::Places::default(),
            opts,
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            base,
            stop: Some(tx),
            handle: Some(handle),
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when
    /// the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Stops the server and waits until it and its workers are done.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stopped in time")
                .expect("server task")
                .expect("server result");
        }
    }
}

/// Tokens of each role, made through the engine.
pub struct Tokens {
    pub viewer: String,
    pub operator: String,
    pub admin: String,
}

impl Tokens {
    pub async fn create(engine: &Engine) -> Tokens {
        Tokens {
            viewer: engine
                .token_create("dashboard", Role::Viewer, Some("test"))
                .await
                .expect("token"),
            operator: engine
                .token_create("shop-backend", Role::Operator, Some("test"))
                .await
                .expect("token"),
            admin: engine
                .token_create("dpo@example.test", Role::Admin, Some("test"))
                .await
                .expect("token"),
        }
    }
}

/// Waits until `f` is true (the relay runs in the background).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}
