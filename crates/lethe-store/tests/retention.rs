//! Retention, legal holds and purge on SQLite and PostgreSQL: expired rows
//! are removed or archived in batches, held and still-referenced rows stay,
//! every batch is audited and announced in the outbox, and a purged
//! deletion can no longer be restored.

mod common;

use common::*;
use lethe_store::{DeleteRequest, Engine, HoldRef, PurgeOptions, PurgeReport, StoreError};
use serde_json::json;

/// The shop with retention: soft tables purge after 30 days, hard cart
/// snapshots after 7, hard wishlist snapshots and soft reviews move to the
/// archive.
fn retention_policy() -> String {
    SHOP_POLICY
        .replace(
            "[entities.users]\nkey = [\"id\"]",
            "[entities.users]\nkey = [\"id\"]\nretention = \"30d\"",
        )
        .replace(
            "[entities.orders]\nkey = [\"id\"]",
            "[entities.orders]\nkey = [\"id\"]\nretention = \"30d\"",
        )
        .replace(
            "[entities.order_items]\nkey = [\"order_id\", \"product_id\"]",
            "[entities.order_items]\nkey = [\"order_id\", \"product_id\"]\nretention = \"30d\"",
        )
        .replace(
            "[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"",
            "[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"\nretention = \"7d\"",
        )
        .replace(
            "[entities.wishlist_items]\nkey = [\"id\"]\nstrategy = \"hard\"",
            "[entities.wishlist_items]\nkey = [\"id\"]\nstrategy = \"hard\"\nretention = \"7d\"\nthen = \"archive\"",
        )
        .replace(
            "[entities.reviews]\nkey = [\"id\"]",
            "[entities.reviews]\nkey = [\"id\"]\nretention = \"30d\"\nthen = \"archive\"",
        )
}

/// A time in 2020 as a SQL literal, in the format Lethe writes.
fn long_ago(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "'2020-01-01T00:00:00Z'",
        Backend::Sqlite => "'2020-01-01T00:00:00.000000Z'",
    }
}

/// Moves a deletion's time back to 2020: its rows, marked or stored.
async fn backdate(engine: &Engine, b: Backend, deletion: &str) {
    let old = long_ago(b);
    let mut tx = engine.db().begin_write().await.unwrap();
    for e in engine.policy().entities.values().filter(|e| e.is_soft()) {
        tx.exec(
            &format!(
                "UPDATE {} SET deleted_at = {old} WHERE deletion_id = '{deletion}'",
                e.table
            ),
            &[],
        )
        .await
        .unwrap();
    }
    tx.exec(
        &format!(
            "UPDATE {} SET deleted_at = {old} WHERE deletion_id = '{deletion}'",
            own(b, "archive")
        ),
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn task<'a>(r: &'a PurgeReport, entity: &str, source: &str) -> &'a lethe_store::PurgeTask {
    r.tasks
        .iter()
        .find(|t| t.entity == entity && t.source == source)
        .unwrap_or_else(|| panic!("no task {entity}/{source} in {:?}", r.tasks))
}

/// What a purge run left besides the rows: its outbox events as `(event,
/// entity, key)` and its audit entries as `[action, entry]`.
async fn trail(
    engine: &Engine,
    b: Backend,
    purge_id: &str,
) -> (Vec<(String, String, serde_json::Value)>, Vec<Vec<String>>) {
    let outbox = engine.outbox(purge_id).await.unwrap();
    let events = outbox
        .iter()
        .flat_map(|o| {
            o.key_objects()
                .into_iter()
                .map(move |k| (o.event.clone(), o.entity.clone(), k))
        })
        .collect();
    let audit = q(
        engine,
        &format!(
            "SELECT action, entry FROM {} WHERE CAST(deletion_id AS TEXT) = '{purge_id}' ORDER BY seq",
            own(b, "audit")
        ),
    )
    .await;
    (events, audit)
}

async fn count(engine: &Engine, sql: &str) -> u64 {
    one(engine, sql).await.parse().unwrap()
}

async fn purge_removes_what_expired_and_keeps_what_is_held(b: Backend) {
    let Some((db, engine)) = shop_with(b, &retention_policy()).await else {
        return;
    };
    let del = |e: &str, k: &str| {
        let engine = &engine;
        let (e, k) = (e.to_string(), k.to_string());
        async move { engine.delete(&DeleteRequest::new(e, k)).await.unwrap() }
    };
    let a = del("users", "1").await; // orders 100, 101, their items, cart 1000, 1001, wishlist 2000
    let bb = del("users", "3").await; // wishlist 2001, 2002
    let c = del("users", "2").await; // recent: stays
    let d = del("reviews", "3003").await;
    for id in [&a.deletion_id, &bb.deletion_id, &d.deletion_id] {
        backdate(&engine, b, id).await;
    }
    // A legal hold on one order keeps its whole deletion.
    let hold = engine
        .hold("orders", "101", "litigation 2026-17", Some("legal"))
        .await
        .unwrap();
    assert_eq!(hold.key, json!({"id": 101}));
    assert!(matches!(
        engine.hold("orders", "999", "x", None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        engine.hold("orders", "101", " ", None).await,
        Err(StoreError::Invalid(_))
    ));

    // The dry run counts, changes nothing.
    let dry = engine
        .purge(
            &PurgeOptions {
                dry_run: true,
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (
            task(&dry, "users", "table").due,
            task(&dry, "users", "table").held
        ),
        (1, 1)
    );
    assert_eq!(task(&dry, "orders", "table").held, 2);
    assert_eq!(task(&dry, "order_items", "table").held, 3);
    assert_eq!(task(&dry, "cart_items", "snapshots").held, 2);
    assert_eq!(task(&dry, "wishlist_items", "snapshots").due, 2);
    assert_eq!(task(&dry, "wishlist_items", "snapshots").action, "archive");
    assert_eq!(task(&dry, "reviews", "table").due, 1);
    assert_eq!(dry.done(), 0);
    assert!(dry.purge_id.is_none());
    assert_eq!(
        active_ids(&engine, "users", "id").await,
        Vec::<String>::new()
    );
    assert_eq!(all_ids(&engine, "users", "id").await, ["1", "2", "3"]);

    // Small batches: keyset pagination over several transactions.
    let mut seen = Vec::new();
    let r = engine
        .purge(
            &PurgeOptions {
                batch_size: 1,
                actor: Some("retention-bot".into()),
                ..Default::default()
            },
            &mut |p| seen.push((p.task.entity.clone(), p.done)),
        )
        .await
        .unwrap();
    assert_eq!(r.done(), 4, "{:?}", r.tasks);
    assert_eq!(r.batches, 4);
    assert_eq!(seen.last().map(|s| s.1), Some(4));
    assert_eq!(r.held(), 1 + 2 + 3 + 2 + 1);
    // Rows: user 3 gone for good; the held deletion and the recent one stay.
    assert_eq!(all_ids(&engine, "users", "id").await, ["1", "2"]);
    assert_eq!(mark(&engine, "users", "id = 1").await, a.deletion_id);
    assert_eq!(mark(&engine, "users", "id = 2").await, c.deletion_id);
    // The review left its table for the archive, still restorable.
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        ["3000", "3001", "3002"]
    );
    let archived = q(
        &engine,
        &format!(
            "SELECT kind, entity, CAST(deletion_id AS TEXT) FROM {} WHERE kind = 'archive' ORDER BY entity, id",
            own(b, "archive")
        ),
    )
    .await;
    assert_eq!(
        archived,
        [
            ["archive", "reviews", d.deletion_id.as_str()],
            ["archive", "wishlist_items", bb.deletion_id.as_str()],
            ["archive", "wishlist_items", bb.deletion_id.as_str()],
        ]
    );
    // The purged deletion cannot come back; the archived one can.
    let err = engine.restore(&bb.deletion_id, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Purged { .. }), "{err}");
    assert!(
        engine
            .deletion(&bb.deletion_id)
            .await
            .unwrap()
            .purged_at
            .is_some()
    );
    assert!(
        engine
            .deletion(&a.deletion_id)
            .await
            .unwrap()
            .purged_at
            .is_none()
    );
    engine.restore(&d.deletion_id, None).await.unwrap();
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        ["3000", "3001", "3002", "3003"]
    );
    // Outbox and audit, per batch, under the purge's own record.
    let pid = r.purge_id.clone().unwrap();
    let rec = engine.deletion(&pid).await.unwrap();
    assert_eq!(rec.kind, "purge");
    assert_eq!(rec.total_rows(), 4);
    let (events, audit) = trail(&engine, b, &pid).await;
    assert!(
        events.contains(&("purged".into(), "users".into(), json!({"id": 3}))),
        "{events:?}"
    );
    assert!(
        events.contains(&("archived".into(), "reviews".into(), json!({"id": 3003}))),
        "{events:?}"
    );
    assert_eq!(
        events.len(),
        2,
        "snapshots that become archived rows send nothing: {events:?}"
    );
    assert_eq!(audit.len(), 4);
    assert!(audit.iter().all(|a| a[1].contains("retention-bot")));
    let err = engine.restore(&pid, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "a purge is not undone: {err}"
    );

    // Released, the held deletion goes too, children before parents.
    let released = engine
        .release_hold(
            &HoldRef::Row {
                entity: "orders".into(),
                key: "101".into(),
            },
            Some("case closed"),
            Some("legal"),
        )
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert!(engine.holds(false).await.unwrap().is_empty());
    assert_eq!(engine.holds(true).await.unwrap().len(), 1);
    assert!(matches!(
        engine.release_hold(&HoldRef::Id(hold.id), None, None).await,
        Err(StoreError::HoldNotFound(_))
    ));
    let r2 = engine
        .purge(&PurgeOptions::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(task(&r2, "order_items", "table").done, 3);
    assert_eq!(task(&r2, "orders", "table").done, 2);
    assert_eq!(task(&r2, "users", "table").done, 1);
    assert_eq!(task(&r2, "cart_items", "snapshots").done, 2);
    assert_eq!(task(&r2, "wishlist_items", "snapshots").done, 1);
    assert_eq!(r2.held(), 0);
    assert_eq!(all_ids(&engine, "users", "id").await, ["2"]);
    assert_eq!(all_ids(&engine, "orders", "id").await, ["102"]);
    assert_eq!(
        count(
            &engine,
            &format!(
                "SELECT CAST(count(*) AS TEXT) FROM {} WHERE kind = 'snapshot'",
                own(b, "archive")
            )
        )
        .await,
        1,
        "only user 2's recent cart snapshot is left"
    );
    // Nothing left to do: a third run is a no-op.
    let r3 = engine
        .purge(&PurgeOptions::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((r3.done(), r3.purge_id.is_none()), (0, true));
    assert!(engine.audit_verify(None).await.unwrap().ok);
    // The guard still refuses raw deletes after purges passed it.
    let mut tx = engine.db().begin_write().await.unwrap();
    let err = tx
        .exec("DELETE FROM orders WHERE id = 102", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    db.cleanup().await;
}
on_both!(
    purge_and_holds,
    purge_removes_what_expired_and_keeps_what_is_held
);

/// Rows marked deleted outside Lethe (no deletion id) expire too, and a
/// hold on such a row's key keeps it: there is no deletion to hold it by.
async fn holds_keep_rows_marked_outside_lethe(b: Backend) {
    let Some((db, engine)) = shop_with(b, &retention_policy()).await else {
        return;
    };
    let old = long_ago(b);
    let mut tx = engine.db().begin_write().await.unwrap();
    tx.exec(
        &format!("UPDATE reviews SET deleted_at = {old} WHERE id IN (3000, 3001)"),
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    engine
        .hold("reviews", "3001", "complaint under review", None)
        .await
        .unwrap();
    let only_reviews = PurgeOptions {
        entity: Some("reviews".into()),
        ..Default::default()
    };
    let dry = engine
        .purge(
            &PurgeOptions {
                dry_run: true,
                ..only_reviews.clone()
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    let t = task(&dry, "reviews", "table");
    assert_eq!((t.due, t.held), (1, 1), "{:?}", dry.tasks);

    let r = engine.purge(&only_reviews, &mut |_| {}).await.unwrap();
    assert_eq!(r.done(), 1, "{:?}", r.tasks);
    assert_eq!(r.held(), 1);
    // 3000 went to the archive store; the held 3001 is still in its table.
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        ["3001", "3002", "3003"]
    );
    let archived = q(
        &engine,
        &format!(
            "SELECT entity, kind FROM {} WHERE entity = 'reviews'",
            own(b, "archive")
        ),
    )
    .await;
    assert_eq!(archived, [["reviews", "archive"]]);
    // Announced and audited: the moved row only.
    let (events, audit) = trail(&engine, b, r.purge_id.as_deref().unwrap()).await;
    assert_eq!(
        events,
        [("archived".into(), "reviews".into(), json!({"id": 3000}))]
    );
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0][1].contains("reviews"), "{audit:?}");
    // Released, it goes on the next run.
    engine
        .release_hold(
            &HoldRef::Row {
                entity: "reviews".into(),
                key: "3001".into(),
            },
            None,
            None,
        )
        .await
        .unwrap();
    let r2 = engine.purge(&only_reviews, &mut |_| {}).await.unwrap();
    assert_eq!((r2.done(), r2.held()), (1, 0), "{:?}", r2.tasks);
    assert_eq!(all_ids(&engine, "reviews", "id").await, ["3002", "3003"]);
    db.cleanup().await;
}
on_both!(
    holds_on_rows_marked_outside_lethe,
    holds_keep_rows_marked_outside_lethe
);

/// Keys of types without a `max()` on PostgreSQL (uuid) page through a
/// purge like integer keys, both to removal and to the archive store.
async fn purge_pages_through_uuid_keys(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let uuid = match b {
        Backend::Postgres => "uuid",
        Backend::Sqlite => "TEXT",
    };
    let ids = [
        "0b6f1a9e-3f0c-4a57-9d39-2d2b8a1f0001",
        "5d0c7e42-8b1a-4c7e-a3f4-6a0e9c2f0002",
        "c3a9e1f0-1d2b-4e8f-9a6c-7b5d4e3f0003",
    ];
    let rows = ids
        .iter()
        .map(|i| format!("('{i}', 'x')"))
        .collect::<Vec<_>>()
        .join(", ");
    db.exec(&format!(
        "CREATE TABLE tokens (id {uuid} PRIMARY KEY, label TEXT NOT NULL);
         CREATE TABLE sessions (id {uuid} PRIMARY KEY, label TEXT NOT NULL);
         INSERT INTO tokens VALUES {rows};
         INSERT INTO sessions VALUES {rows}"
    ))
    .await;
    // The cache key reads a column beyond the key: the purge's outbox
    // records must carry it (the removed row is gone afterwards).
    let text = r#"
        [sinks.cache]
        kind = "redis"
        url = "redis://127.0.0.1:6379/"
        [entities.tokens]
        key = ["id"]
        retention = "30d"
        cache_keys = ["token:{label}"]
        [entities.sessions]
        key = ["id"]
        retention = "30d"
        then = "archive"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    for entity in ["tokens", "sessions"] {
        for id in ids {
            let d = engine
                .delete(&DeleteRequest::new(entity, id))
                .await
                .unwrap();
            backdate(&engine, b, &d.deletion_id).await;
        }
    }
    // One row per batch: every batch continues after the previous uuid.
    let r = engine
        .purge(
            &PurgeOptions {
                batch_size: 1,
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(task(&r, "tokens", "table").done, 3, "{:?}", r.tasks);
    assert_eq!(task(&r, "sessions", "table").done, 3, "{:?}", r.tasks);
    assert_eq!(all_ids(&engine, "tokens", "id").await, Vec::<String>::new());
    assert_eq!(
        all_ids(&engine, "sessions", "id").await,
        Vec::<String>::new()
    );
    let pid = r.purge_id.clone().unwrap();
    let (events, audit) = trail(&engine, b, &pid).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "purged" && e.1 == "tokens")
            .count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "archived" && e.1 == "sessions")
            .count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        audit.len() as u64,
        r.batches,
        "one audit entry per batch: {audit:?}"
    );
    let outbox = engine.outbox(&pid).await.unwrap();
    let purged: Vec<_> = outbox
        .iter()
        .filter(|o| o.entity == "tokens")
        .flat_map(|o| o.key_objects().into_iter().zip(o.captured_objects()))
        .collect();
    assert_eq!(purged.len(), 3, "{outbox:?}");
    for (key, captured) in &purged {
        assert!(ids.iter().any(|i| key["id"] == json!(i)), "{key}");
        assert_eq!(captured, &json!({"label": "x"}), "{key}");
    }
    let stored = q(
        &engine,
        &format!(
            "SELECT CAST(key AS TEXT) FROM {} WHERE entity = 'sessions' AND kind = 'archive' ORDER BY id",
            own(b, "archive")
        ),
    )
    .await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    for id in ids {
        assert!(
            stored.iter().any(|k| k[0].contains(id)),
            "{id} in {stored:?}"
        );
    }
    db.cleanup().await;
}
on_both!(purge_with_uuid_keys, purge_pages_through_uuid_keys);

async fn referenced_rows_wait_and_trees_go_leaves_first(b: Backend) {
    // Orders keep their user (keep), categories form a tree.
    let policy = retention_policy()
        .replace(
            "child = \"orders\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"cascade\"",
            "child = \"orders\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"keep\"",
        )
        .replace(
            "[entities.categories]\nkey = [\"id\"]",
            "[entities.categories]\nkey = [\"id\"]\nretention = \"1d\"",
        );
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    // User 2's order stays active and keeps pointing at the user.
    let u = engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    backdate(&engine, b, &u.deletion_id).await;
    // The whole category tree (products are set to NULL, not deleted).
    let t = engine
        .delete(&DeleteRequest::new("categories", "1"))
        .await
        .unwrap();
    assert_eq!(t.affected[0].rows, 5);
    backdate(&engine, b, &t.deletion_id).await;

    let r = engine
        .purge(
            &PurgeOptions {
                batch_size: 2,
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    let users = task(&r, "users", "table");
    assert_eq!(
        (users.done, users.referenced),
        (0, 1),
        "order 102 still points at user 2"
    );
    assert_eq!(all_ids(&engine, "users", "id").await, ["1", "2", "3"]);
    assert_eq!(
        task(&r, "categories", "table").done,
        5,
        "{:?} left: {:?}",
        r.tasks,
        all_ids(&engine, "categories", "id").await
    );
    assert_eq!(
        all_ids(&engine, "categories", "id").await,
        Vec::<String>::new()
    );
    db.cleanup().await;
}
on_both!(
    referenced_and_trees,
    referenced_rows_wait_and_trees_go_leaves_first
);

async fn purge_refuses_bad_input(b: Backend) {
    let Some((db, engine)) = shop_with(b, &retention_policy()).await else {
        return;
    };
    let err = engine
        .purge(
            &PurgeOptions {
                entity: Some("products".into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)) && err.to_string().contains("no retention"),
        "{err}"
    );
    let err = engine
        .purge(
            &PurgeOptions {
                entity: Some("nope".into()),
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_entity");
    let err = engine
        .purge(
            &PurgeOptions {
                batch_size: 0,
                ..Default::default()
            },
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    db.cleanup().await;
}
on_both!(purge_bad_input, purge_refuses_bad_input);

async fn stats_count_rows_where_they_are(b: Backend) {
    let Some((db, engine)) = shop_with(b, &retention_policy()).await else {
        return;
    };
    let a = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    backdate(&engine, b, &a.deletion_id).await;
    engine
        .delete(&DeleteRequest::new("reviews", "3001"))
        .await
        .unwrap();
    engine.hold("orders", "100", "dispute", None).await.unwrap();
    let stats = engine.stats(None).await.unwrap();
    let s = |name: &str| stats.iter().find(|s| s.entity == name).unwrap().clone();
    let users = s("users");
    assert_eq!((users.active, users.deleted), (2, 1));
    assert!(
        users
            .oldest_deletion
            .as_deref()
            .unwrap()
            .starts_with("2020-01-01"),
        "{users:?}"
    );
    assert_eq!(
        (users.due_for_purge, users.held),
        (0, 1),
        "held with its deletion"
    );
    let cart = s("cart_items");
    assert_eq!((cart.active, cart.snapshots, cart.archived), (1, 2, 0));
    assert!(cart.stored_bytes > 0);
    let reviews = s("reviews");
    assert_eq!(
        (reviews.active, reviews.deleted, reviews.due_for_purge),
        (3, 1, 0),
        "not expired"
    );
    assert_eq!(s("products").retention, None);
    match b {
        Backend::Postgres => {
            let space = users.space.expect("PostgreSQL reports space");
            assert!(
                space.deleted_bytes > 0 && space.deleted_bytes < space.table_bytes,
                "{space:?}"
            );
            assert!(
                space.deleted_index_bytes > 0 && space.deleted_index_bytes <= space.index_bytes
            );
        }
        Backend::Sqlite => assert!(users.space.is_none()),
    }
    let only = engine.stats(Some("orders")).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!((only[0].active, only[0].deleted, only[0].held), (1, 2, 2));
    assert_eq!(
        engine.stats(Some("nope")).await.unwrap_err().code(),
        "unknown_entity"
    );
    db.cleanup().await;
}
on_both!(stats, stats_count_rows_where_they_are);
