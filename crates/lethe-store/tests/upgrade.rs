//! A database migrated by an earlier Lethe (internal schema v1 only) is
//! refused with "run lethe migrate" until it is upgraded, and works after.

mod common;

use common::*;
use lethe_store::{DeleteRequest, Engine, StoreError};

async fn v1_database_is_upgraded_by_migrate(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    // Take the database back to what the first release installed.
    let undo = match b {
        Backend::Postgres => {
            "DROP TABLE lethe.deliveries; DROP TABLE lethe.delivery_queues; DROP INDEX lethe.outbox_undispatched; \
             ALTER TABLE lethe.outbox DROP COLUMN columns; ALTER TABLE lethe.outbox DROP COLUMN dispatched; \
             DELETE FROM lethe.migrations WHERE id = 'lethe:internal:v2'"
        }
        Backend::Sqlite => {
            "DROP TABLE lethe_deliveries; DROP TABLE lethe_delivery_queues; DROP INDEX lethe_outbox_undispatched; \
             ALTER TABLE lethe_outbox DROP COLUMN columns; ALTER TABLE lethe_outbox DROP COLUMN dispatched; \
             DELETE FROM lethe_migrations WHERE id = 'lethe:internal:v2'"
        }
    };
    db.exec(undo).await;
    engine.db().close().await;
    let mut engine = Engine::connect(policy(SHOP_POLICY), &db.url).await.unwrap();
    let err = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated(_)), "{err}");
    assert!(matches!(engine.queue(), Err(StoreError::NotMigrated(_))));
    let report = engine.migrate(true).await.unwrap();
    let ids: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["lethe:internal:v2"], "only the missing version");
    engine.migrate(false).await.unwrap();
    let done = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    assert_eq!(engine.outbox(&done.deletion_id).await.unwrap().len(), 3);
    let undispatched = engine.queue().unwrap().undispatched().await.unwrap();
    assert_eq!(undispatched, 3, "the new deletion waits for the relay");
    assert!(engine.migrate(true).await.unwrap().steps.is_empty());
    db.cleanup().await;
}
on_both!(v1_upgrade, v1_database_is_upgraded_by_migrate);

/// A database of the delivery release (internal v2): hard-delete snapshots
/// in their own table. `lethe migrate` moves them into the archive store,
/// and a deletion made before the upgrade is restored after it.
async fn v2_snapshots_move_into_the_archive_store(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let done = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    let p = |n: &str| own(b, n);
    let (uuid, json) = match b {
        Backend::Postgres => ("uuid", "jsonb"),
        Backend::Sqlite => ("TEXT", "TEXT"),
    };
    // Back to v2: snapshots in their v1 table, none of v3's objects.
    let mut undo = vec![
        format!(
            "CREATE TABLE {} (deletion_id {uuid} NOT NULL, entity TEXT NOT NULL, key {json} NOT NULL, row {json} NOT NULL)",
            p("snapshots")
        ),
        format!(
            "INSERT INTO {} (deletion_id, entity, key, row) SELECT deletion_id, entity, key, row FROM {}",
            p("snapshots"),
            p("archive")
        ),
        format!("DROP TABLE {}", p("archive")),
        format!("DROP TABLE {}", p("fingerprints")),
        format!("DROP TABLE {}", p("holds")),
        format!("DROP TABLE {}", p("job_runs")),
        format!("DROP TABLE {}", p("job_locks")),
        format!("DROP TABLE {}", p("exports")),
        format!("DROP TABLE {}", p("subject_keys")),
        format!("ALTER TABLE {} DROP COLUMN purged_at", p("deletions")),
        format!("DELETE FROM {} WHERE name = 'holds'", p("settings")),
        format!(
            "DELETE FROM {} WHERE id = 'lethe:internal:v3'",
            p("migrations")
        ),
    ];
    if b == Backend::Postgres {
        undo.push("DROP FUNCTION lethe.castable(text, text)".into());
    }
    db.exec(&undo.join(";\n")).await;
    engine.db().close().await;
    let mut engine = Engine::connect(policy(SHOP_POLICY), &db.url).await.unwrap();
    let err = engine.restore(&done.deletion_id, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated(_)), "{err}");
    let report = engine.migrate(true).await.unwrap();
    let ids: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["lethe:internal:v3"]);
    engine.migrate(false).await.unwrap();
    let moved = one(
        &engine,
        &format!(
            "SELECT CAST(count(*) AS TEXT) FROM {} WHERE kind = 'snapshot' AND fingerprint IS NULL AND deletion_id = '{}'",
            p("archive"),
            done.deletion_id
        ),
    )
    .await;
    assert_eq!(
        moved, "3",
        "the cart and wishlist snapshots, with their deletion's time"
    );
    engine.restore(&done.deletion_id, None).await.unwrap();
    assert_eq!(
        all_ids(&engine, "cart_items", "id").await,
        ["1000", "1001", "1002"]
    );
    assert!(engine.audit_verify(None).await.unwrap().ok);
    db.cleanup().await;
}
on_both!(v2_upgrade, v2_snapshots_move_into_the_archive_store);
