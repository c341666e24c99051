//! PostgreSQL only: concurrent overlapping deletions, a connection killed in
//! the middle of a large delete, and row-level security.

mod common;

use std::sync::Arc;

use common::*;
use lethe_store::{DeleteRequest, Engine, StoreError};

const TREE_POLICY: &str = r#"
[entities.users]
key = ["id"]
[entities.orders]
key = ["id"]
[entities.items]
key = ["id"]
[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"
[[relations]]
child = "items"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"
"#;

async fn tree(users: i64, orders_per_user: i64, items_per_order: i64) -> Option<(TestDb, Engine)> {
    let db = TestDb::new(Backend::Postgres).await?;
    db.exec(&format!(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id));
         CREATE TABLE items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), sku text NOT NULL);
         INSERT INTO users SELECT u, 'u' || u FROM generate_series(1, {users}) u;
         INSERT INTO orders SELECT (u - 1) * {orders_per_user} + o, u FROM generate_series(1, {users}) u, generate_series(1, {orders_per_user}) o;
         INSERT INTO items SELECT (ord - 1) * {items_per_order} + i, ord, 's' FROM generate_series(1, {users} * {orders_per_user}) ord, generate_series(1, {items_per_order}) i"
    ))
    .await;
    let mut engine = Engine::connect(policy(TREE_POLICY), &db.url).await.unwrap();
    engine.migrate(false).await.unwrap();
    Some((db, engine))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_deletions_succeed_or_fail_cleanly() {
    let Some((db, engine)) = tree(12, 4, 5).await else {
        return;
    };
    let engine = Arc::new(engine);
    // Users and their own orders deleted at once from several tasks, in
    // different orders, so trees overlap and rows are contended.
    let mut jobs: Vec<(String, String)> = Vec::new();
    for u in 1..=12i64 {
        jobs.push(("users".into(), u.to_string()));
        for o in 1..=4i64 {
            jobs.push(("orders".into(), ((u - 1) * 4 + o).to_string()));
        }
    }
    let mut handles = Vec::new();
    for t in 0..6usize {
        let engine = engine.clone();
        let mut mine: Vec<(String, String)> = jobs.iter().skip(t % 3).step_by(1).cloned().collect();
        if t % 2 == 1 {
            mine.reverse();
        }
        handles.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for (e, k) in mine {
                match engine
                    .delete(&DeleteRequest::new(e.clone(), k.clone()))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(StoreError::AlreadyDeleted { .. }) | Err(StoreError::NotFound { .. }) => {}
                    Err(other) => panic!("{e} {k}: unexpected error surfaced to the user: {other}"),
                }
            }
            ok
        }));
    }
    let mut successes = 0;
    for h in handles {
        successes += h.await.expect("task");
    }
    // Everything is deleted exactly once.
    assert!(active_ids(&engine, "users", "id").await.is_empty());
    assert!(active_ids(&engine, "orders", "id").await.is_empty());
    assert!(active_ids(&engine, "items", "id").await.is_empty());
    assert_eq!(engine.deletions(None, 1000).await.unwrap().len(), successes);
    assert_eq!(
        one(&engine, "SELECT count(*)::text FROM lethe.audit").await,
        successes.to_string()
    );
    // No order was announced twice.
    let dup = one(
        &engine,
        "SELECT count(*)::text FROM (SELECT k FROM lethe.outbox o, json_array_elements_text(o.keys) k WHERE o.entity = 'orders' GROUP BY k HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dup, "0");
    assert_eq!(
        one(
            &engine,
            "SELECT sum(row_count)::text FROM lethe.outbox WHERE entity = 'items'"
        )
        .await,
        "240"
    );
    let v = engine.audit_verify(None).await.unwrap();
    assert!(v.ok, "{v:?}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_killed_mid_delete_leaves_no_partial_marks() {
    let Some((db, engine)) = tree(1, 500, 200).await else {
        return;
    };
    // Hold the delete statement open long enough to kill it for certain.
    db.exec_one("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$")
        .await;
    db.exec("CREATE TRIGGER slow AFTER UPDATE ON items FOR EACH STATEMENT EXECUTE FUNCTION slow()")
        .await;
    let engine = Arc::new(engine);
    let e2 = engine.clone();
    let task = tokio::spawn(async move { e2.delete(&DeleteRequest::new("users", "1")).await });
    let killer = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut killed = false;
    for _ in 0..300 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let rows = killer
            .rows(
                "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE application_name = 'lethe' AND state = 'active' AND query LIKE '/* lethe */ WITH RECURSIVE%'",
                &[],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            killed = true;
            break;
        }
    }
    assert!(killed, "the delete was never seen running");
    let result = task.await.unwrap();
    assert!(result.is_err(), "a killed delete must fail, got {result:?}");
    killer.close().await;
    for t in ["users", "orders", "items"] {
        assert_eq!(
            one(&engine, &format!("SELECT count(*)::text FROM {t} WHERE deleted_at IS NOT NULL OR deletion_id IS NOT NULL")).await,
            "0",
            "{t} has partial marks"
        );
    }
    for t in ["deletions", "audit", "outbox"] {
        assert_eq!(
            one(&engine, &format!("SELECT count(*)::text FROM lethe.{t}")).await,
            "0",
            "{t}"
        );
    }
    // Once the fault is gone the same delete goes through completely.
    db.exec("DROP TRIGGER slow ON items").await;
    let done = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .expect("delete after the fault");
    assert_eq!(
        done.affected.iter().map(|c| c.rows).sum::<u64>(),
        1 + 500 + 100_000
    );
    assert_eq!(
        one(
            &engine,
            "SELECT count(*)::text FROM items WHERE deleted_at IS NULL"
        )
        .await,
        "0"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_security_hides_deleted_rows_from_application_roles() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.exec(&shop_schema(Backend::Postgres)).await;
    db.exec(SHOP_DATA).await;
    let text = format!("[database]\nrow_security = true\n{SHOP_POLICY}");
    let mut engine = Engine::connect(policy(&text), &db.url).await.unwrap();
    engine.migrate(false).await.unwrap();
    engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    let role = format!("lethe_app_{}", uuid::Uuid::now_v7().simple());
    db.exec(&format!(
        "CREATE ROLE {role}; GRANT SELECT, UPDATE ON users TO {role}"
    ))
    .await;
    let app = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut tx = app.begin_read().await.unwrap();
    tx.exec(&format!("SET LOCAL ROLE {role}"), &[])
        .await
        .unwrap();
    tx.exec("SET LOCAL lethe.include_deleted = 'off'", &[])
        .await
        .unwrap();
    let n = tx
        .rows("SELECT count(*)::text FROM users", &[])
        .await
        .unwrap();
    assert_eq!(
        n[0][0].as_deref(),
        Some("2"),
        "the application role sees active rows only"
    );
    tx.exec("SET LOCAL lethe.include_deleted = 'on'", &[])
        .await
        .unwrap();
    let n = tx
        .rows("SELECT count(*)::text FROM users", &[])
        .await
        .unwrap();
    assert_eq!(
        n[0][0].as_deref(),
        Some("3"),
        "unless it asks for deleted rows"
    );
    tx.rollback().await.unwrap();
    app.close().await;
    // Lethe itself still sees everything (it restores).
    let d = engine.deletions(Some("users"), 1).await.unwrap();
    engine.restore(&d[0].id, None).await.unwrap();
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_waits_for_a_concurrent_restore_of_its_children() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.exec(
        "CREATE TABLE cat (id bigint PRIMARY KEY, parent_id bigint REFERENCES cat (id));
         CREATE TABLE prod (id bigint PRIMARY KEY, cat_id bigint NOT NULL REFERENCES cat (id));
         CREATE INDEX cat_parent ON cat (parent_id);
         CREATE INDEX prod_cat ON prod (cat_id);
         INSERT INTO cat VALUES (1, NULL), (2, 1), (3, 2);
         INSERT INTO prod VALUES (10, 3)",
    )
    .await;
    let text = r#"
        [entities.cat]
        key = ["id"]
        [entities.prod]
        key = ["id"]
        [[relations]]
        child = "cat"
        columns = ["parent_id"]
        parent = "cat"
        on_delete = "cascade"
        [[relations]]
        child = "prod"
        columns = ["cat_id"]
        parent = "cat"
        on_delete = "cascade"
    "#;
    let mut engine = Engine::connect(policy(text), &db.url).await.unwrap();
    engine.migrate(false).await.unwrap();
    let engine = Arc::new(engine);
    let sub = engine
        .delete(&DeleteRequest::new("cat", "2"))
        .await
        .unwrap();
    // Another session holds prod 10, so the restore stops half-way: after its
    // checks (and its lock on cat 1), before it can unmark prod 10.
    let holder = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut hold = holder.begin_write().await.unwrap();
    hold.rows("SELECT id::text FROM prod WHERE id = 10 FOR UPDATE", &[])
        .await
        .unwrap();
    let e1 = engine.clone();
    let id = sub.deletion_id.clone();
    let restore = tokio::spawn(async move { e1.restore(&id, None).await });
    // Wait until the restore is stuck on prod 10 (past its checks and locks).
    wait_for_lock_waiters(&holder, 1).await;
    let e2 = engine.clone();
    let delete = tokio::spawn(async move { e2.delete(&DeleteRequest::new("cat", "1")).await });
    // And until the delete waits for the restore's lock on cat 1.
    wait_for_lock_waiters(&holder, 2).await;
    hold.rollback().await.unwrap();
    restore.await.unwrap().expect("restore");
    let all = delete.await.unwrap().expect("delete");
    // The delete saw the restored subtree and took it with it.
    assert_eq!(
        all.affected.iter().map(|c| c.rows).sum::<u64>(),
        4,
        "{:?}",
        all.affected
    );
    assert!(active_ids(&engine, "cat", "id").await.is_empty());
    assert!(active_ids(&engine, "prod", "id").await.is_empty());
    holder.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_outside_the_current_schema_get_their_own_active_view() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.exec(
        "CREATE SCHEMA app;
         CREATE TABLE app.users (id bigint PRIMARY KEY, name text);
         CREATE TABLE public.unrelated (x int);
         CREATE VIEW public.users_active AS SELECT x FROM public.unrelated;
         INSERT INTO app.users VALUES (1, 'a'), (2, 'b')",
    )
    .await;
    let text = "[entities.users]\ntable = \"app.users\"\nkey = [\"id\"]\n";
    let mut engine = Engine::connect(policy(text), &db.url).await.unwrap();
    engine.migrate(false).await.expect("migrate");
    engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    assert_eq!(
        one(
            &engine,
            "SELECT string_agg(id::text, ',') FROM app.users_active"
        )
        .await,
        "1"
    );
    assert_eq!(
        one(&engine, "SELECT count(*)::text FROM public.users_active").await,
        "0",
        "left alone"
    );
    let mut again = Engine::connect(policy(text), &db.url).await.unwrap();
    assert!(again.migrate(true).await.unwrap().steps.is_empty());
    db.cleanup().await;
}

/// Waits (up to 30 s) until `n` of Lethe's sessions are blocked on a lock.
async fn wait_for_lock_waiters(db: &lethe_store::Db, n: usize) {
    for _ in 0..600 {
        let rows = db
            .rows(
                "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'lethe' AND wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        if rows[0][0].as_deref().and_then(|v| v.parse::<usize>().ok()) >= Some(n) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never saw {n} Lethe session(s) waiting on a lock");
}
