//! Shared test support: a fresh database per test on each backend, the shop
//! schema, and helpers to read rows back.
//!
//! PostgreSQL tests use `LETHE_TEST_PG` (default
//! `postgres://postgres@127.0.0.1/postgres`) to create a database of their own.
//! When the server is unreachable they are skipped locally but fail under CI
//! (`CI=true`): CI must never pass by skipping.

#![allow(dead_code)]

use lethe_core::{Policy, parse_policy};
use lethe_store::{Db, Engine};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("lethe-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pg_base_url() -> String {
    std::env::var("LETHE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".to_string())
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "false" && v != "0")
        .unwrap_or(false)
}

impl TestDb {
    /// A fresh, empty database, or `None` when PostgreSQL is unreachable
    /// outside CI.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new();
                let url = format!("sqlite://{}", dir.0.join("test.db").display());
                // Create the file.
                let o = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true);
                let c = sqlx::SqliteConnection::connect_with(&o)
                    .await
                    .expect("sqlite");
                c.close().await.unwrap();
                Some(TestDb {
                    backend,
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let base = pg_base_url();
                let mut admin = match PgConnection::connect(&base).await {
                    Ok(c) => c,
                    Err(e) if !in_ci() => {
                        eprintln!("skipping PostgreSQL test: cannot connect to {base}: {e}");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL required under CI: cannot connect to {base}: {e}"),
                };
                let name = format!("lethe_test_{}", uuid::Uuid::now_v7().simple());
                admin
                    .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create database");
                admin.close().await.unwrap();
                let url = match base.rfind('/') {
                    Some(i) if base[..i].ends_with(|c: char| c != '/') => {
                        format!("{}/{name}", &base[..i])
                    }
                    _ => format!("{base}/{name}"),
                };
                Some(TestDb {
                    backend,
                    url,
                    pg_name: Some(name),
                    _dir: None,
                })
            }
        }
    }

    /// Drops the PostgreSQL database (SQLite's directory goes on drop).
    pub async fn cleanup(self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = PgConnection::connect(&pg_base_url()).await
        {
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }

    /// Runs one statement (which may contain `;`, e.g. a function body).
    pub async fn exec_one(&self, sql: &str) {
        let db = Db::connect(&self.url, Default::default())
            .await
            .expect("connect");
        let mut tx = db.begin_write().await.expect("begin");
        tx.exec(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        tx.commit().await.expect("commit");
        db.close().await;
    }

    /// Runs a batch of statements (`;`-separated, no params) outside Lethe.
    pub async fn exec(&self, sql: &str) {
        let db = Db::connect(&self.url, Default::default())
            .await
            .expect("connect");
        let mut tx = db.begin_write().await.expect("begin");
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.exec(stmt, &[])
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        tx.commit().await.expect("commit");
        db.close().await;
    }
}

/// The shop used by most tests. `{id}` columns are integers on both backends.
pub fn shop_schema(b: Backend) -> String {
    let big = if b == Backend::Postgres {
        "bigint"
    } else {
        "INTEGER"
    };
    format!(
        "
CREATE TABLE users (id {big} PRIMARY KEY, email TEXT NOT NULL, name TEXT);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE TABLE categories (id {big} PRIMARY KEY, parent_id {big} REFERENCES categories (id), name TEXT NOT NULL);
CREATE TABLE products (id {big} PRIMARY KEY, category_id {big} REFERENCES categories (id), sku TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE orders (id {big} PRIMARY KEY, user_id {big} NOT NULL REFERENCES users (id), total {big} NOT NULL DEFAULT 0);
CREATE TABLE order_items (order_id {big} NOT NULL REFERENCES orders (id), product_id {big} NOT NULL REFERENCES products (id), qty {big} NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE cart_items (id {big} PRIMARY KEY, user_id {big} NOT NULL REFERENCES users (id), product_id {big} NOT NULL REFERENCES products (id), qty {big} NOT NULL);
CREATE TABLE wishlist_items (id {big} PRIMARY KEY, user_id {big} NOT NULL REFERENCES users (id), product_id {big} NOT NULL REFERENCES products (id));
CREATE TABLE reviews (id {big} PRIMARY KEY, product_id {big} NOT NULL REFERENCES products (id), user_id {big} REFERENCES users (id), body TEXT NOT NULL);
"
    )
}

pub const SHOP_DATA: &str = "
INSERT INTO users (id, email, name) VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob'), (3, 'cy@example.com', 'Cy');
INSERT INTO categories (id, parent_id, name) VALUES (1, NULL, 'all'), (2, 1, 'books'), (3, 2, 'novels'), (4, 3, 'crime'), (5, 1, 'music');
INSERT INTO products (id, category_id, sku, name) VALUES (10, 4, 'B-10', 'Dune'), (11, 5, 'M-11', 'Vinyl'), (12, 3, 'B-12', 'Emma');
INSERT INTO orders (id, user_id, total) VALUES (100, 1, 30), (101, 1, 12), (102, 2, 7);
INSERT INTO order_items (order_id, product_id, qty) VALUES (100, 10, 1), (100, 11, 2), (101, 12, 1), (102, 10, 1);
INSERT INTO cart_items (id, user_id, product_id, qty) VALUES (1000, 1, 11, 1), (1001, 1, 12, 3), (1002, 2, 10, 1);
INSERT INTO wishlist_items (id, user_id, product_id) VALUES (2000, 1, 10), (2001, 3, 10), (2002, 3, 12);
INSERT INTO reviews (id, product_id, user_id, body) VALUES (3000, 10, 1, 'great'), (3001, 10, 2, 'meh'), (3002, 12, 1, 'fine'), (3003, 11, 3, 'loud');
";

pub const SHOP_POLICY: &str = r#"
[entities.users]
key = ["id"]
unique = [["email"]]
pii = { email = "hash", name = "redact" }

[entities.categories]
key = ["id"]

[entities.products]
key = ["id"]

[entities.orders]
key = ["id"]

[entities.order_items]
key = ["order_id", "product_id"]

[entities.cart_items]
key = ["id"]
strategy = "hard"

[entities.wishlist_items]
key = ["id"]
strategy = "hard"

[entities.reviews]
key = ["id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "order_items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"

[[relations]]
child = "order_items"
columns = ["product_id"]
parent = "products"
on_delete = "restrict"

[[relations]]
child = "cart_items"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "cart_items"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]
child = "wishlist_items"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "wishlist_items"
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

[[relations]]
child = "products"
columns = ["category_id"]
parent = "categories"
on_delete = "set_null"

[[relations]]
child = "categories"
columns = ["parent_id"]
parent = "categories"
on_delete = "cascade"
"#;

pub fn policy(text: &str) -> Policy {
    parse_policy(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A migrated shop with data, and an engine on it.
pub async fn shop(b: Backend) -> Option<(TestDb, Engine)> {
    shop_with(b, SHOP_POLICY).await
}

/// The shop's schema and data under another policy.
pub async fn shop_with(b: Backend, policy_text: &str) -> Option<(TestDb, Engine)> {
    let db = TestDb::new(b).await?;
    db.exec(&shop_schema(b)).await;
    db.exec(SHOP_DATA).await;
    let mut engine = Engine::connect(policy(policy_text), &db.url)
        .await
        .expect("connect");
    let findings = engine.check();
    assert!(
        findings.iter().all(|f| f.level != lethe_core::Level::Error),
        "{findings:?}"
    );
    engine.migrate(false).await.expect("migrate");
    Some((db, engine))
}

/// Rows of a query as text.
pub async fn q(engine: &Engine, sql: &str) -> Vec<Vec<String>> {
    engine
        .db()
        .rows(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.into_iter().map(|c| c.unwrap_or_default()).collect())
        .collect()
}

/// A single text value.
pub async fn one(engine: &Engine, sql: &str) -> String {
    q(engine, sql)
        .await
        .first()
        .and_then(|r| r.first().cloned())
        .unwrap_or_default()
}

/// Keys (first column, as text) of the active rows of a soft table, sorted.
pub async fn active_ids(engine: &Engine, table: &str, key: &str) -> Vec<String> {
    let sql =
        format!("SELECT CAST({key} AS TEXT) FROM {table} WHERE deleted_at IS NULL ORDER BY {key}");
    q(engine, &sql)
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// All ids (first column) of a table, sorted.
pub async fn all_ids(engine: &Engine, table: &str, key: &str) -> Vec<String> {
    let sql = format!("SELECT CAST({key} AS TEXT) FROM {table} ORDER BY {key}");
    q(engine, &sql)
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// The deletion id marked on a row (empty when active).
pub async fn mark(engine: &Engine, table: &str, cond: &str) -> String {
    one(
        engine,
        &format!("SELECT COALESCE(CAST(deletion_id AS TEXT), '') FROM {table} WHERE {cond}"),
    )
    .await
}

/// Lethe's own table name on this backend.
pub fn own(b: Backend, name: &str) -> String {
    match b {
        Backend::Postgres => format!("lethe.{name}"),
        Backend::Sqlite => format!("lethe_{name}"),
    }
}

/// Runs `$body` (an async fn taking a Backend) on SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body($crate::common::Backend::Postgres).await;
            }
        }
    };
}

/// Runs statements one by one on a plain SQLite connection, outside any
/// transaction (PRAGMAs such as `foreign_keys` only work there): an
/// application's own migration.
pub async fn raw_sqlite(url: &str, statements: &[&str]) {
    let mut c = sqlx::SqliteConnection::connect(url)
        .await
        .expect("sqlite connect");
    for s in statements {
        c.execute(AssertSqlSafe(s.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    c.close().await.unwrap();
}
