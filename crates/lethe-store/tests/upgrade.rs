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
