//! SQLite: several processes' worth of engines writing one database file at
//! once. Writers take the lock up front (BEGIN IMMEDIATE) and wait for each
//! other; overlapping deletions succeed or fail cleanly.

mod common;

use std::sync::Arc;

use common::*;
use lethe_store::{DeleteRequest, Engine, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_engines_on_one_file() {
    let Some((db, engine)) = shop(Backend::Sqlite).await else {
        return;
    };
    drop(engine);
    // Four independent engines (separate pools, as separate processes would
    // have), each deleting users and their orders in a different order.
    let mut handles = Vec::new();
    for t in 0..4usize {
        let url = db.url.clone();
        handles.push(tokio::spawn(async move {
            let engine = Arc::new(Engine::connect(policy(SHOP_POLICY), &url).await.unwrap());
            let mut jobs = vec![
                ("users", "1"),
                ("orders", "100"),
                ("orders", "101"),
                ("users", "2"),
                ("orders", "102"),
                ("users", "3"),
            ];
            jobs.rotate_left(t);
            let mut ok = 0usize;
            for (e, k) in jobs {
                match engine.delete(&DeleteRequest::new(e, k)).await {
                    Ok(_) => ok += 1,
                    Err(StoreError::AlreadyDeleted { .. }) | Err(StoreError::NotFound { .. }) => {}
                    Err(other) => panic!("{e} {k}: {other}"),
                }
            }
            ok
        }));
    }
    let mut successes = 0;
    for h in handles {
        successes += h.await.unwrap();
    }
    let engine = Engine::connect(policy(SHOP_POLICY), &db.url).await.unwrap();
    assert!(active_ids(&engine, "users", "id").await.is_empty());
    assert!(active_ids(&engine, "orders", "id").await.is_empty());
    assert!(
        active_ids(&engine, "order_items", "order_id")
            .await
            .is_empty()
    );
    assert_eq!(engine.deletions(None, 100).await.unwrap().len(), successes);
    let v = engine.audit_verify(None).await.unwrap();
    assert!(v.ok && v.entries as usize == successes, "{v:?}");
    db.cleanup().await;
}
