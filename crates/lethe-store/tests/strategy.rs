//! `lethe migrate-strategy`: an entity's deleted rows move between the
//! table (soft), the archive store (archive) and snapshots (hard), and
//! restore still finds them. While rows move, a reader through the active
//! view never sees a deleted row and a writer's rows are never touched
//! (the incident of seed 003: a migration of deleted seat claims that let
//! deleted rows be read as live). On SQLite and PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use lethe_core::Strategy;
use lethe_store::{DeleteRequest, Engine, StoreError, StrategyOptions};

fn opts(entity: &str, to: Strategy) -> StrategyOptions {
    StrategyOptions {
        entity: entity.into(),
        to,
        dry_run: false,
        batch_size: 2,
        max_rows_per_second: None,
        actor: Some("ops".into()),
    }
}

async fn count(engine: &Engine, sql: &str) -> u64 {
    one(engine, sql).await.parse().unwrap()
}

async fn rows_move_between_strategies_and_restore_finds_them(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let before_orders = q(&engine, "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), CAST(total AS TEXT) FROM orders ORDER BY id").await;
    let d = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    let stored = |kind: &str, entity: &str| {
        format!(
            "SELECT CAST(count(*) AS TEXT) FROM {} WHERE kind = '{kind}' AND entity = '{entity}'",
            own(b, "archive")
        )
    };

    // Orders are still referenced by their marked items: they wait.
    let r = engine
        .migrate_strategy(&opts("orders", Strategy::Archive), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(r.moves[0].from, "table");
    assert_eq!((r.moves[0].moved, r.moves[0].referenced), (0, 2), "{r:?}");
    assert_eq!(r.policy_strategy.as_deref(), Some("soft"));
    // Dry run: counts only.
    let mut dry = opts("order_items", Strategy::Archive);
    dry.dry_run = true;
    let r = engine.migrate_strategy(&dry, &mut |_, _| {}).await.unwrap();
    assert_eq!((r.moves[0].due, r.moves[0].moved), (3, 0));
    assert_eq!(count(&engine, &stored("archive", "order_items")).await, 0);

    let mut progress = Vec::new();
    let r = engine
        .migrate_strategy(&opts("order_items", Strategy::Archive), &mut |m, due| {
            progress.push((m, due))
        })
        .await
        .unwrap();
    assert_eq!((r.moves[0].moved, r.batches), (3, 2));
    assert_eq!(progress.last(), Some(&(3, 3)));
    let r = engine
        .migrate_strategy(&opts("orders", Strategy::Archive), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(r.moves[0].moved, 2);
    assert_eq!(all_ids(&engine, "orders", "id").await, ["102"]);
    assert_eq!(count(&engine, &stored("archive", "orders")).await, 2);
    // Audited, announced, recorded as a migration that is not itself undone.
    let run = r.run_id.clone().unwrap();
    let outbox = engine.outbox(&run).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .map(|o| (o.event.as_str(), o.rows))
            .collect::<Vec<_>>(),
        [("archived", 2)]
    );
    assert!(matches!(
        engine.restore(&run, None).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(engine.deletion(&run).await.unwrap().kind, "migrate");

    // To hard: the archived rows become snapshots; then back to soft: into
    // the table, still deleted by the same deletion.
    let r = engine
        .migrate_strategy(&opts("orders", Strategy::Hard), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(r.moves.iter().map(|m| m.moved).sum::<u64>(), 2);
    assert_eq!(count(&engine, &stored("snapshot", "orders")).await, 2);
    let r = engine
        .migrate_strategy(&opts("orders", Strategy::Soft), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!((r.moves[0].moved, r.moves[0].to.as_str()), (2, "table"));
    assert_eq!(mark(&engine, "orders", "id = 100").await, d.deletion_id);
    assert_eq!(active_ids(&engine, "orders", "id").await, ["102"]);

    // The deletion comes back whole, from the table and from the archive.
    engine.restore(&d.deletion_id, None).await.unwrap();
    let after_orders = q(&engine, "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), CAST(total AS TEXT) FROM orders ORDER BY id").await;
    assert_eq!(after_orders, before_orders);
    assert_eq!(
        active_ids(&engine, "order_items", "order_id").await.len(),
        4
    );
    assert_eq!(
        count(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "archive"))
        )
        .await,
        0
    );
    assert!(engine.audit_verify(None).await.unwrap().ok);

    // Back to soft needs the marker columns.
    let err = engine
        .migrate_strategy(&opts("cart_items", Strategy::Soft), &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotMigrated(_)) && err.to_string().contains("lethe migrate"),
        "{err}"
    );
    db.cleanup().await;
}
on_both!(
    strategy_round_trip,
    rows_move_between_strategies_and_restore_finds_them
);

const SEATS: &str = r#"
[entities.events]
key = ["id"]

[entities.claims]
key = ["id"]
strategy = "STRATEGY"

[[relations]]
child = "claims"
columns = ["event_id"]
parent = "events"
on_delete = "cascade"
"#;

/// 3 events of 2,000 seat claims each.
async fn seats(b: Backend) -> Option<TestDb> {
    let db = TestDb::new(b).await?;
    let big = if b == Backend::Postgres {
        "bigint"
    } else {
        "INTEGER"
    };
    let series = match b {
        Backend::Postgres => "SELECT g, 1 + (g - 1) / 2000, 'seat ' || g, 'buyer' FROM generate_series(1, 6000) g".to_string(),
        Backend::Sqlite => "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 6000) SELECT g, 1 + (g - 1) / 2000, 'seat ' || g, 'buyer' FROM s".to_string(),
    };
    db.exec(&format!(
        "CREATE TABLE events (id {big} PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE claims (id {big} PRIMARY KEY, event_id {big} NOT NULL REFERENCES events (id), seat TEXT NOT NULL, buyer TEXT NOT NULL);
         CREATE INDEX claims_event ON claims (event_id);
         INSERT INTO events (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
         INSERT INTO claims (id, event_id, seat, buyer) {series}"
    ))
    .await;
    Some(db)
}

async fn readers_never_see_deleted_rows_while_they_move(b: Backend) {
    let Some(db) = seats(b).await else {
        return;
    };
    // The claims were soft-deleted for two events...
    let mut soft = Engine::connect(policy(&SEATS.replace("STRATEGY", "soft")), &db.url)
        .await
        .unwrap();
    soft.migrate(false).await.unwrap();
    let mut deleted = Vec::new();
    for ev in ["1", "2"] {
        deleted.push(
            soft.delete(&DeleteRequest::new("events", ev))
                .await
                .unwrap()
                .deletion_id,
        );
    }
    soft.db().close().await;
    // ...then the application switches the claims to archive, and the
    // existing deleted rows are moved while it keeps running.
    let engine = Arc::new(
        Engine::connect(policy(&SEATS.replace("STRATEGY", "archive")), &db.url)
            .await
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let deleted_ids: BTreeSet<u64> = (1..=4000).collect();
    let stable: BTreeSet<u64> = (4001..=6000).collect();
    let reader = {
        let (engine, stop, reads) = (engine.clone(), stop.clone(), reads.clone());
        let (deleted_ids, stable) = (deleted_ids.clone(), stable.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let seen: BTreeSet<u64> = q(&engine, "SELECT CAST(id AS TEXT) FROM claims_active")
                    .await
                    .into_iter()
                    .map(|r| r[0].parse().unwrap())
                    .collect();
                let leaked: Vec<&u64> = seen.intersection(&deleted_ids).take(5).collect();
                assert!(
                    leaked.is_empty(),
                    "a deleted claim was read as live: {leaked:?}"
                );
                let lost: Vec<&u64> = stable.difference(&seen).take(5).collect();
                assert!(lost.is_empty(), "an active claim vanished: {lost:?}");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let writer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut removed = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let id = 100_000 + i;
                let mut tx = engine.db().begin_write().await.unwrap();
                tx.exec(&format!("INSERT INTO claims (id, event_id, seat, buyer) VALUES ({id}, 3, 'new', 'late')"), &[]).await.unwrap();
                tx.exec(
                    &format!(
                        "UPDATE claims SET buyer = 'changed {i}' WHERE id = {}",
                        4001 + i % 2000
                    ),
                    &[],
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                if i.is_multiple_of(3) {
                    engine
                        .delete(&DeleteRequest::new("claims", id.to_string()))
                        .await
                        .unwrap();
                    removed.push(id);
                }
                i += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            (i, removed)
        })
    };
    let mut o = opts("claims", Strategy::Archive);
    o.batch_size = 250;
    o.max_rows_per_second = Some(4000);
    let report = engine.migrate_strategy(&o, &mut |_, _| {}).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    let (written, removed) = writer.await.unwrap();
    assert!(
        reads.load(Ordering::Relaxed) >= 3,
        "the reader ran during the move"
    );
    assert!(written > 10);
    assert_eq!(report.moves[0].moved, 4000);
    assert_eq!(report.policy_strategy, None);
    // Nothing is left marked; every deleted claim is in the archive under
    // its own deletion; no active row moved.
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM claims WHERE deleted_at IS NOT NULL"
        )
        .await,
        0
    );
    for id in &deleted {
        assert_eq!(
            count(&engine, &format!("SELECT CAST(count(*) AS TEXT) FROM {} WHERE deletion_id = '{id}' AND entity = 'claims'", own(b, "archive"))).await,
            2000
        );
    }
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM claims WHERE id BETWEEN 4001 AND 6000"
        )
        .await,
        2000
    );
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM claims WHERE id >= 100000"
        )
        .await,
        written - removed.len() as u64
    );
    // The writer's own deletes went straight to the archive.
    assert_eq!(
        count(&engine, &format!("SELECT CAST(count(*) AS TEXT) FROM {} WHERE entity = 'claims' AND deletion_id NOT IN ('{}', '{}')", own(b, "archive"), deleted[0], deleted[1])).await,
        removed.len() as u64
    );
    // And a moved deletion comes back.
    engine.restore(&deleted[0], None).await.unwrap();
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM claims_active WHERE event_id = 1"
        )
        .await,
        2000
    );
    assert!(engine.audit_verify(None).await.unwrap().ok);
    db.cleanup().await;
}
on_both!(
    online_migration,
    readers_never_see_deleted_rows_while_they_move
);
