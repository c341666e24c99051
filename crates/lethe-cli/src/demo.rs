//! `lethe demo`: the whole tour on an embedded SQLite shop, no server needed.

use std::net::SocketAddr;
use std::path::PathBuf;

use lethe_core::parse_policy;
use lethe_store::{ConnectOptions, Db, DeleteRequest, Engine, StoreError};

use crate::exit;
use crate::output::{describe_plan, key_text};
use crate::table;

const SCHEMA: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE TABLE categories (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES categories (id), name TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, category_id INTEGER REFERENCES categories (id), sku TEXT NOT NULL, name TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), placed_at TEXT NOT NULL);
CREATE TABLE order_items (order_id INTEGER NOT NULL REFERENCES orders (id), product_id INTEGER NOT NULL REFERENCES products (id), qty INTEGER NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE cart_items (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), product_id INTEGER NOT NULL REFERENCES products (id), qty INTEGER NOT NULL);
CREATE TABLE wishlist_items (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), product_id INTEGER NOT NULL REFERENCES products (id));
CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products (id), user_id INTEGER REFERENCES users (id), stars INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX categories_parent ON categories (parent_id);
CREATE INDEX products_category ON products (category_id);
CREATE INDEX orders_user ON orders (user_id);
CREATE INDEX order_items_product ON order_items (product_id);
CREATE INDEX cart_items_user ON cart_items (user_id);
CREATE INDEX cart_items_product ON cart_items (product_id);
CREATE INDEX wishlist_items_user ON wishlist_items (user_id);
CREATE INDEX wishlist_items_product ON wishlist_items (product_id);
CREATE INDEX reviews_product ON reviews (product_id);
CREATE INDEX reviews_user ON reviews (user_id);
INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'Bob'), (3, 'cleo@example.com', 'Cleo');
INSERT INTO categories VALUES (1, NULL, 'Books'), (2, 1, 'Fiction'), (3, 2, 'Science fiction'), (4, NULL, 'Music');
INSERT INTO products VALUES (1, 3, 'BK-DUNE', 'Dune', 1299), (2, 3, 'BK-SOLARIS', 'Solaris', 1099), (3, 4, 'LP-KIND', 'Kind of Blue', 2499);
INSERT INTO orders VALUES (10, 1, '2026-10-01'), (11, 2, '2026-10-03');
INSERT INTO order_items VALUES (10, 1, 1), (10, 3, 1), (11, 1, 2);
INSERT INTO cart_items VALUES (100, 1, 1, 1), (101, 3, 1, 2), (102, 2, 2, 1);
INSERT INTO wishlist_items VALUES (200, 1, 1), (201, 3, 3);
INSERT INTO reviews VALUES (300, 1, 1, 5, 'A classic.'), (301, 1, 3, 4, 'Long but good.'), (302, 3, 2, 5, 'Timeless.')
";

fn policy_text(url: &str) -> String {
    format!(
        r#"# lethe.toml for the demo shop. Reference: docs/policy.md.
[database]
url = "{url}"

[defaults]
strategy = "soft"            # rows stay, marked with deleted_at + deletion_id

[entities.users]
key = ["id"]
unique = [["email"]]         # unique among active rows: a deleted user's email is free again
pii = {{ email = "hash", name = "redact" }}
erase = "anonymize"          # GDPR erasure (lethe erase) keeps the row, applies the pii rules
retention = "90d"            # restorable for 90 days, then purged (lethe purge)

[entities.categories]
key = ["id"]

[entities.products]
key = ["id"]
unique = [["sku"]]
# cache_keys = ["product:{{id}}", "product:sku:{{sku}}"]  # with a cache sink (below)
search = {{ sink = "search", index = "products", fields = ["name", "sku"] }}
publish = ["events"]         # one CloudEvent per deleted or restored row

[entities.orders]
key = ["id"]
retention = "90d"
then = "archive"             # after 90 days: out of the table, into Lethe's archive store
erase = "keep"               # erasure keeps invoices, and says why
legal_basis = "invoices: 10 years (tax law)"

[entities.order_items]
key = ["order_id", "product_id"]
retention = "90d"
then = "archive"
erase = "keep"
legal_basis = "invoice lines: 10 years (tax law)"

[entities.cart_items]
key = ["id"]
strategy = "hard"            # ephemeral: removed, with a snapshot kept for restore
retention = "30d"            # ... for 30 days
publish = ["events"]

[entities.wishlist_items]
key = ["id"]
strategy = "hard"
retention = "30d"

[entities.reviews]
key = ["id"]

# GDPR erasure: whose rows are people's. Every entity whose rows belong to a
# user is erased with it (delete unless its `erase` says otherwise).
[erasure]
subject = "users"

# Where deletions are delivered by `lethe relay`. Relative paths are relative
# to this file. Add a Redis cache (and uncomment cache_keys above) with:
#   [sinks.cache]
#   kind = "redis"
#   url = "redis://127.0.0.1:6379"
[sinks.search]
kind = "tantivy"             # an embedded full-text index
path = "search-index"

[sinks.events]
kind = "file"                # CloudEvents as JSON Lines
path = "events.jsonl"

[[relations]]                # sub-categories go with their parent
child = "categories"
columns = ["parent_id"]
parent = "categories"
on_delete = "cascade"

[[relations]]                # a category with products cannot be deleted
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
child = "wishlist_items"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[[relations]]                # order history keeps pointing at the (soft-deleted) product
child = "order_items"
columns = ["product_id"]
parent = "products"
on_delete = "keep"

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
child = "cart_items"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "wishlist_items"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]                # reviews outlive their author, anonymously
child = "reviews"
columns = ["user_id"]
parent = "users"
on_delete = "set_null"
"#
    )
}

async fn relay_once(engine: &Engine) -> Result<lethe_relay::RelayStats, StoreError> {
    let relay = std::sync::Arc::new(lethe_relay::Relay::new(
        engine.queue()?,
        std::sync::Arc::new(engine.policy().clone()),
    ));
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let opts = lethe_relay::RelayOptions {
        once: true,
        ..Default::default()
    };
    relay.run(opts, rx).await.map_err(StoreError::from)
}

/// The ids and names the demo's search index finds for `query`.
async fn search(dir: &std::path::Path, query: &str) -> Result<String, StoreError> {
    let mut index = lethe_relay::sinks::tantivy::TantivySink::new(
        &dir.join("search-index").display().to_string(),
    );
    let hits = index
        .search("products", query, 5)
        .await
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(if hits.is_empty() {
        "no match".to_string()
    } else {
        hits.iter()
            .map(|(id, doc)| {
                format!(
                    "product {id} ({})",
                    doc.get("name").and_then(|v| v.as_str()).unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The event file as `type subject (deletion ...)` lines.
fn events(dir: &std::path::Path) -> Result<Vec<String>, StoreError> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| {
            format!(
                "{} {} (deletion {})",
                e["type"].as_str().unwrap_or(""),
                e["subject"].as_str().unwrap_or(""),
                e["data"]["deletion_id"].as_str().unwrap_or("")
            )
        })
        .collect())
}

fn heading(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

async fn names(db: &Db, sql: &str) -> Result<Vec<String>, StoreError> {
    Ok(db
        .rows(sql, &[])
        .await?
        .into_iter()
        .map(|r| r.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect())
}

pub async fn run(dir: Option<PathBuf>, serve: Option<SocketAddr>) -> Result<u8, StoreError> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lethe-demo-{}", uuid::Uuid::now_v7().simple()))
    });
    std::fs::create_dir_all(&dir)
        .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
    let db_path = dir.join("shop.db");
    if db_path.exists() {
        eprintln!("error: {} already exists", db_path.display());
        eprintln!("hint: pass an empty --dir, or leave --dir out to use a new temporary directory");
        return Ok(exit::USAGE);
    }
    let url = format!("sqlite://{}", db_path.display());
    let policy_path = dir.join("lethe.toml");

    println!("Lethe demo: a small shop in an embedded SQLite database.");
    println!("  database: {}", db_path.display());
    println!("  policy:   {}", policy_path.display());

    let db = Db::connect(
        &url,
        ConnectOptions {
            create_sqlite: true,
            max_connections: None,
        },
    )
    .await?;
    let mut tx = db.begin_write().await?;
    for stmt in SCHEMA.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        tx.exec(stmt, &[]).await?;
    }
    tx.commit().await?;
    let text = policy_text(&url);
    std::fs::write(&policy_path, &text)
        .map_err(|e| StoreError::Database(format!("cannot write the policy: {e}")))?;
    let mut policy = parse_policy(&text, &policy_path.display().to_string())?;
    crate::commands::resolve_sink_paths(&mut policy, &policy_path);
    let mut engine = Engine::from_db(policy, db.clone()).await?;

    heading(1, "Install the guards (lethe migrate)");
    let report = engine.migrate(false).await?;
    println!(
        "applied {} steps in one transaction, for example:",
        report.steps.len()
    );
    for s in report
        .steps
        .iter()
        .filter(|s| s.id.starts_with("products:") || s.id.starts_with("users:unique"))
    {
        println!("  - {}", s.description);
    }
    let db = engine.db().clone();
    let fixed = lethe_relay::reconcile(&engine, Some("search"), true)
        .await
        .map_err(StoreError::from)?;
    println!(
        "indexed {} active product(s) in the embedded search index (lethe reconcile --fix)",
        fixed.fixed()
    );
    println!("search \"dune\"  ->  {}", search(&dir, "dune").await?);

    heading(
        2,
        "Plan a delete before doing it (lethe delete products 1 --dry-run)",
    );
    let plan = engine.plan("products", "1").await?;
    print!("{}", describe_plan(&plan));
    println!(
        "order_items keep pointing at the product (on_delete = keep): order history stays intact."
    );

    heading(
        3,
        "Delete the product, with its cascade, in one transaction",
    );
    let done = engine
        .delete(
            &DeleteRequest::new("products", "1")
                .actor("demo")
                .reason("discontinued"),
        )
        .await?;
    println!("deletion {} by demo (\"discontinued\")", done.deletion_id);
    print!("{}", table::counts(&done.affected));
    let outbox = engine.outbox(&done.deletion_id).await?;
    println!(
        "the same transaction wrote the audit entry and {} outbox record(s) for caches, search and other services",
        outbox.len()
    );

    heading(
        4,
        "The relay tells the search index and the event stream (lethe relay --once)",
    );
    let stats = relay_once(&engine).await?;
    println!(
        "delivered {} message(s) covering {} row(s)",
        stats.delivered, stats.rows
    );
    println!("search \"dune\"  ->  {}", search(&dir, "dune").await?);
    for e in events(&dir)? {
        println!("  event: {e}");
    }

    heading(5, "The active view hides it; the table still has it");
    println!(
        "SELECT name FROM products_active  ->  {}",
        names(&db, "SELECT name FROM products_active ORDER BY id")
            .await?
            .join(", ")
    );
    println!(
        "SELECT name, deletion_id FROM products WHERE id = 1  ->  {}",
        names(
            &db,
            "SELECT name || ' ' || deletion_id FROM products WHERE id = 1"
        )
        .await?
        .join(", ")
    );
    println!(
        "cart items left for Dune: {} (hard strategy: removed, snapshot kept)",
        names(
            &db,
            "SELECT CAST(count(*) AS TEXT) FROM cart_items WHERE product_id = 1"
        )
        .await?
        .join("")
    );

    heading(6, "A raw DELETE is refused by the database guard");
    let mut tx = db.begin_write().await?;
    match tx.exec("DELETE FROM products WHERE id = 2", &[]).await {
        Err(e) => println!("DELETE FROM products WHERE id = 2\n  -> {e}"),
        Ok(_) => {
            println!("unexpected: the guard let a raw DELETE through");
            return Ok(exit::FAILURE);
        }
    }
    tx.rollback().await?;

    heading(7, "A soft-deleted user's email can be registered again");
    let bob = engine
        .delete(
            &DeleteRequest::new("users", "2")
                .actor("demo")
                .reason("account closed"),
        )
        .await?;
    println!(
        "deleted user 2 (bob@example.com): {} row(s) in {} table(s); their review stays, with user_id set to NULL",
        bob.affected.iter().map(|c| c.rows).sum::<u64>(),
        bob.affected.len()
    );
    let mut tx = db.begin_write().await?;
    tx.exec(
        "INSERT INTO users (id, email, name) VALUES (4, 'bob@example.com', 'Bob (new account)')",
        &[],
    )
    .await?;
    tx.commit().await?;
    println!(
        "INSERT INTO users (email) VALUES ('bob@example.com')  ->  ok: the unique index only covers active rows"
    );

    heading(8, "A restrict relation blocks a delete and says why");
    match engine.delete(&DeleteRequest::new("categories", "1")).await {
        Err(e @ StoreError::Blocked { .. }) => {
            println!("lethe delete categories 1\n  -> error: {e}")
        }
        Err(e) => return Err(e),
        Ok(_) => {
            println!("unexpected: the delete was not blocked");
            return Ok(exit::FAILURE);
        }
    }

    heading(9, "Restore exactly that deletion");
    let preview = engine.restore_preview(&done.deletion_id).await?;
    println!(
        "restore {} would bring back {} row(s); unique conflicts: {}, deleted parents: {}",
        done.deletion_id,
        preview.would_restore.iter().map(|c| c.rows).sum::<u64>(),
        preview.conflicts.len(),
        preview.deleted_parents.len()
    );
    let restored = engine.restore(&done.deletion_id, Some("demo")).await?;
    println!(
        "restored {} row(s)",
        restored.restored.iter().map(|c| c.rows).sum::<u64>()
    );
    println!(
        "SELECT name FROM products_active  ->  {}",
        names(&db, "SELECT name FROM products_active ORDER BY id")
            .await?
            .join(", ")
    );
    println!(
        "cart items for Dune: {} (re-inserted from the snapshot)",
        names(
            &db,
            "SELECT CAST(count(*) AS TEXT) FROM cart_items WHERE product_id = 1"
        )
        .await?
        .join("")
    );
    heading(10, "The restore reaches the sinks too");
    let stats = relay_once(&engine).await?;
    println!(
        "delivered {} message(s) covering {} row(s)",
        stats.delivered, stats.rows
    );
    println!(
        "search \"dune\"  ->  {} (re-indexed from the values captured at delete time)",
        search(&dir, "dune").await?
    );
    let dune: Vec<String> = events(&dir)?
        .into_iter()
        .filter(|e| e.contains("products/1 "))
        .collect();
    println!("events for products/1, in order:");
    for e in dune {
        println!("  {e}");
    }

    match engine.restore(&bob.deletion_id, Some("demo")).await {
        Err(StoreError::RestoreConflict { conflicts }) => println!(
            "restoring user 2 is refused: {} now belongs to active user {}",
            conflicts[0].columns, conflicts[0].active
        ),
        Err(e) => return Err(e),
        Ok(_) => {
            println!("unexpected: a restore that breaks a unique key went through");
            return Ok(exit::FAILURE);
        }
    }

    heading(
        11,
        "Retention: after the undo window, purge or archive (lethe purge)",
    );
    // The demo cannot wait 100 days: it moves the time of user 2's
    // deletion back instead.
    let mut tx = db.begin_write().await?;
    for t in ["users", "orders", "order_items", "reviews"] {
        tx.exec(
            &format!(
                "UPDATE {t} SET deleted_at = '2026-01-01T00:00:00.000000Z' WHERE deletion_id = '{}'",
                bob.deletion_id
            ),
            &[],
        )
        .await?;
    }
    tx.exec(
        &format!(
            "UPDATE lethe_archive SET deleted_at = '2026-01-01T00:00:00.000000Z' WHERE deletion_id = '{}'",
            bob.deletion_id
        ),
        &[],
    )
    .await?;
    tx.commit().await?;
    println!("(pretend 100 days pass: user 2's deletion is moved back to 2026-01-01)");
    let purged = engine
        .purge(
            &lethe_store::PurgeOptions {
                actor: Some("demo".into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .await?;
    for t in purged.tasks.iter().filter(|t| t.done > 0) {
        println!(
            "  {} {} from {} ({} after {})",
            t.done,
            if t.action == "purge" {
                "purged"
            } else {
                "archived"
            },
            t.entity,
            t.source,
            t.retention
        );
    }
    println!(
        "SELECT count(*) FROM orders WHERE id = 11  ->  {} (the archive store holds it now)",
        names(
            &db,
            "SELECT CAST(count(*) AS TEXT) FROM orders WHERE id = 11"
        )
        .await?
        .join("")
    );
    match engine.restore(&bob.deletion_id, Some("demo")).await {
        Err(e @ StoreError::Purged { .. }) => println!("lethe restore (user 2)\n  -> error: {e}"),
        Err(e) => return Err(e),
        Ok(_) => {
            println!("unexpected: a purged deletion came back");
            return Ok(exit::FAILURE);
        }
    }

    heading(
        12,
        "GDPR erasure: every copy of a person, tracked and verified (lethe erase users 1)",
    );
    let places = lethe_erasure::Places::default();
    let req = lethe_store::erasure::EraseRequest {
        entity: "users".into(),
        key: "1".into(),
        request_id: Some("gdpr-2026-001".into()),
        actor: Some("demo".into()),
        reason: Some("GDPR Art. 17 request".into()),
    };
    let rec = lethe_erasure::erase(&engine, &req, &places).await?;
    println!(
        "erasure {}: {} (the events sink has not heard yet)",
        rec.request_id, rec.state
    );
    relay_once(&engine).await?;
    let rec = lethe_erasure::advance(&engine, &rec.id, &places).await?;
    let rows: Vec<Vec<String>> = rec
        .steps
        .iter()
        .map(|s| {
            let what = match s.detail.get("action").and_then(|a| a.as_str()) {
                Some(a) => format!(
                    "{a}: {} row(s){}",
                    s.detail["active"].as_u64().unwrap_or(0)
                        + s.detail["deleted"].as_u64().unwrap_or(0)
                        + s.detail["stored"].as_u64().unwrap_or(0),
                    s.detail
                        .get("legal_basis")
                        .and_then(|b| b.as_str())
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                ),
                None => String::new(),
            };
            vec![s.name.clone(), s.state.clone(), what]
        })
        .collect();
    print!("{}", table::render(&["STEP", "STATE", ""], &rows));
    println!(
        "erasure {}: {}, certificate SHA-256 {} in the audit log",
        rec.request_id,
        rec.state,
        rec.certificate_hash.clone().unwrap_or_default()
    );
    println!(
        "SELECT email, name FROM users WHERE id = 1  ->  {}",
        names(&db, "SELECT email || ', ' || name FROM users WHERE id = 1")
            .await?
            .join("")
    );

    heading(13, "Check the hash-chained audit log (lethe audit verify)");
    let v = engine.audit_verify(None).await?;
    println!(
        "{}: {} entries, head {}",
        if v.ok { "intact" } else { "BROKEN" },
        v.entries,
        v.head
    );
    let list = engine.deletions(None, 10).await?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.actor.clone().unwrap_or_default(),
                d.root_text(&key_text(&d.key)),
                d.total_rows().to_string(),
                d.status().to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["DELETION", "ACTOR", "ROOT", "ROWS", "STATUS"], &rows)
    );

    println!("\nTry it yourself:");
    println!("  cd {}", dir.display());
    println!("  lethe deletions");
    println!("  lethe stats");
    println!("  lethe purge --dry-run");
    println!("  lethe delete users 3 --dry-run");
    println!("  lethe show {}", done.deletion_id);
    println!("  lethe audit verify");
    println!("  lethe erasures show gdpr-2026-001");
    println!("  lethe erase users 3 --dry-run");
    println!("  lethe deliveries");
    println!("  lethe reconcile");
    println!("  tail {}", dir.join("events.jsonl").display());
    if let Some(addr) = serve {
        heading(14, "Open the console (lethe serve)");
        let token = engine
            .token_create("demo-admin", lethe_store::Role::Admin, Some("demo"))
            .await?;
        let opts = lethe_server::ServeOptions {
            base_dir: dir.clone(),
            ..Default::default()
        };
        let banner = format!(
            "Sign in to the console with this admin token (also for curl: -H 'Authorization: Bearer {token}'):\n  {token}"
        );
        return crate::serve::run(
            engine,
            lethe_erasure::Places::default(),
            opts,
            addr,
            Some(banner),
        )
        .await;
    }
    engine.db().close().await;
    Ok(if v.ok { exit::OK } else { exit::VERIFY_FAILED })
}
