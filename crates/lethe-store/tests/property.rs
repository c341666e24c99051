//! Property: for random trees with random earlier deletions, deleting a node and
//! restoring that deletion leaves every table exactly as before — the active
//! rows, and the marks of rows that earlier deletions removed. Soft, hard and
//! archive entities take part, and between the delete and the restore the
//! deleted leaves may be moved to the archive store (and back to their table
//! after the restore): restore finds rows wherever they are.

mod common;

use common::*;
use lethe_store::{DeleteRequest, Engine, StoreError};
use proptest::prelude::*;
use proptest::sample::Index;

const POLICY: &str = r#"
[entities.nodes]
key = ["id"]
[entities.leaves]
key = ["id"]
[entities.tags]
key = ["id"]
strategy = "hard"
[entities.notes]
key = ["id"]
[entities.docs]
key = ["id"]
strategy = "archive"

[[relations]]
child = "nodes"
columns = ["parent_id"]
parent = "nodes"
on_delete = "cascade"
[[relations]]
child = "leaves"
columns = ["node_id"]
parent = "nodes"
on_delete = "cascade"
[[relations]]
child = "tags"
columns = ["node_id"]
parent = "nodes"
on_delete = "cascade"
[[relations]]
child = "notes"
columns = ["node_id"]
parent = "nodes"
on_delete = "set_null"
[[relations]]
child = "docs"
columns = ["node_id"]
parent = "nodes"
on_delete = "cascade"
"#;

#[derive(Debug, Clone)]
struct World {
    /// For node i, the index of its parent among nodes 0..i, or None.
    parents: Vec<Option<Index>>,
    leaves: Vec<Index>,
    tags: Vec<Index>,
    notes: Vec<Index>,
    docs: Vec<Index>,
    earlier_nodes: Vec<Index>,
    earlier_leaves: Vec<Index>,
    root: Index,
    /// Move the deleted leaves to the archive store between the delete and
    /// the restore, and back after.
    move_leaves: bool,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(prop::option::weighted(0.8, any::<Index>()), 1..20),
        prop::collection::vec(any::<Index>(), 0..30),
        prop::collection::vec(any::<Index>(), 0..15),
        prop::collection::vec(any::<Index>(), 0..15),
        prop::collection::vec(any::<Index>(), 0..10),
        prop::collection::vec(any::<Index>(), 0..4),
        prop::collection::vec(any::<Index>(), 0..4),
        any::<Index>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                parents,
                leaves,
                tags,
                notes,
                docs,
                earlier_nodes,
                earlier_leaves,
                root,
                move_leaves,
            )| World {
                parents,
                leaves,
                tags,
                notes,
                docs,
                earlier_nodes,
                earlier_leaves,
                root,
                move_leaves,
            },
        )
}

fn data_sql(w: &World) -> String {
    let n = w.parents.len();
    let mut s = String::new();
    for (i, p) in w.parents.iter().enumerate() {
        let parent = match p {
            Some(ix) if i > 0 => (ix.index(i) + 1).to_string(),
            _ => "NULL".to_string(),
        };
        s.push_str(&format!(
            "INSERT INTO nodes (id, parent_id, label) VALUES ({}, {parent}, 'n{i}');",
            i + 1
        ));
    }
    for (i, ix) in w.leaves.iter().enumerate() {
        s.push_str(&format!(
            "INSERT INTO leaves (id, node_id, v) VALUES ({}, {}, {i});",
            i + 1,
            ix.index(n) + 1
        ));
    }
    for (i, ix) in w.tags.iter().enumerate() {
        s.push_str(&format!(
            "INSERT INTO tags (id, node_id, t) VALUES ({}, {}, 't{i}');",
            i + 1,
            ix.index(n) + 1
        ));
    }
    for (i, ix) in w.notes.iter().enumerate() {
        s.push_str(&format!(
            "INSERT INTO notes (id, node_id, body) VALUES ({}, {}, 'b{i}');",
            i + 1,
            ix.index(n) + 1
        ));
    }
    for (i, ix) in w.docs.iter().enumerate() {
        s.push_str(&format!(
            "INSERT INTO docs (id, node_id, d) VALUES ({}, {}, 'd{i}');",
            i + 1,
            ix.index(n) + 1
        ));
    }
    s
}

/// Every row of every table, all columns as text.
async fn state(engine: &Engine) -> Vec<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (t, cols) in [
        ("nodes", "id, parent_id, label, deleted_at, deletion_id"),
        ("leaves", "id, node_id, v, deleted_at, deletion_id"),
        ("tags", "id, node_id, t"),
        ("notes", "id, node_id, body, deleted_at, deletion_id"),
        ("docs", "id, node_id, d"),
    ] {
        let list: Vec<String> = cols
            .split(", ")
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '~')"))
            .collect();
        out.push(
            q(
                engine,
                &format!("SELECT {} FROM {t} ORDER BY id", list.join(", ")),
            )
            .await,
        );
    }
    out
}

async fn check(b: Backend, w: World) -> Result<(), TestCaseError> {
    let Some(db) = TestDb::new(b).await else {
        return Ok(());
    };
    let int = if b == Backend::Postgres {
        "bigint"
    } else {
        "INTEGER"
    };
    db.exec(&format!(
        "CREATE TABLE nodes (id {int} PRIMARY KEY, parent_id {int} REFERENCES nodes (id), label TEXT NOT NULL);
         CREATE TABLE leaves (id {int} PRIMARY KEY, node_id {int} NOT NULL REFERENCES nodes (id), v {int} NOT NULL);
         CREATE TABLE tags (id {int} PRIMARY KEY, node_id {int} NOT NULL REFERENCES nodes (id), t TEXT NOT NULL);
         CREATE TABLE notes (id {int} PRIMARY KEY, node_id {int} REFERENCES nodes (id), body TEXT NOT NULL);
         CREATE TABLE docs (id {int} PRIMARY KEY, node_id {int} NOT NULL REFERENCES nodes (id), d TEXT NOT NULL)"
    ))
    .await;
    db.exec(&data_sql(&w)).await;
    let mut engine = Engine::connect(policy(POLICY), &db.url).await.unwrap();
    engine.migrate(false).await.unwrap();
    let n = w.parents.len();
    for ix in &w.earlier_leaves {
        if !w.leaves.is_empty() {
            let id = ix.index(w.leaves.len()) + 1;
            ignore_gone(
                engine
                    .delete(&DeleteRequest::new("leaves", id.to_string()))
                    .await,
            )?;
        }
    }
    for ix in &w.earlier_nodes {
        let id = ix.index(n) + 1;
        ignore_gone(
            engine
                .delete(&DeleteRequest::new("nodes", id.to_string()))
                .await,
        )?;
    }
    let active = active_ids(&engine, "nodes", "id").await;
    if active.is_empty() {
        db.cleanup().await;
        return Ok(());
    }
    let root = active[w.root.index(active.len())].clone();
    let before = state(&engine).await;
    let done = engine
        .delete(&DeleteRequest::new("nodes", root.clone()))
        .await
        .unwrap();
    let during = state(&engine).await;
    prop_assert_ne!(&before, &during, "the delete changed something");
    let moving = |to| lethe_store::StrategyOptions {
        entity: "leaves".into(),
        to,
        dry_run: false,
        batch_size: 3,
        max_rows_per_second: None,
        actor: None,
    };
    if w.move_leaves {
        engine
            .migrate_strategy(&moving(lethe_core::Strategy::Archive), &mut |_, _| {})
            .await
            .unwrap();
    }
    engine.restore(&done.deletion_id, None).await.unwrap();
    if w.move_leaves {
        // Leaves of earlier deletions go back to where they were.
        engine
            .migrate_strategy(&moving(lethe_core::Strategy::Soft), &mut |_, _| {})
            .await
            .unwrap();
    }
    let after = state(&engine).await;
    prop_assert_eq!(
        &before,
        &after,
        "delete {} then restore is not the identity",
        root
    );
    prop_assert!(engine.audit_verify(None).await.unwrap().ok);
    db.cleanup().await;
    Ok(())
}

fn ignore_gone<T>(r: Result<T, StoreError>) -> Result<(), TestCaseError> {
    match r {
        Ok(_) | Err(StoreError::AlreadyDeleted { .. }) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("earlier deletion failed: {e}"))),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn delete_then_restore_is_identity_sqlite(w in world()) {
        runtime().block_on(check(Backend::Sqlite, w))?;
    }

    #[test]
    fn delete_then_restore_is_identity_postgres(w in world()) {
        runtime().block_on(check(Backend::Postgres, w))?;
    }
}
