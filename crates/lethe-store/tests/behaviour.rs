//! The behavioural suite: every test runs on SQLite and on PostgreSQL. Each
//! deletion test checks the rows, the audit entry and the outbox together.

mod common;

use common::*;
use lethe_store::{DeleteRequest, StoreError};
use serde_json::json;

async fn delete_user_cascades_and_records(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let done = engine
        .delete(
            &DeleteRequest::new("users", "1")
                .actor("alice")
                .reason("account closed"),
        )
        .await
        .expect("delete");
    let id = done.deletion_id.clone();

    // Rows: the user, its orders and their items carry the deletion id; cart
    // and wishlist rows (hard) are gone; reviews keep existing with user_id NULL.
    assert_eq!(mark(&engine, "users", "id = 1").await, id);
    assert_eq!(mark(&engine, "orders", "id = 100").await, id);
    assert_eq!(mark(&engine, "orders", "id = 101").await, id);
    assert_eq!(
        mark(&engine, "order_items", "order_id = 100 AND product_id = 11").await,
        id
    );
    assert_eq!(mark(&engine, "order_items", "order_id = 101").await, id);
    assert_eq!(active_ids(&engine, "users", "id").await, vec!["2", "3"]);
    assert_eq!(active_ids(&engine, "orders", "id").await, vec!["102"]);
    assert_eq!(all_ids(&engine, "cart_items", "id").await, vec!["1002"]);
    assert_eq!(
        all_ids(&engine, "wishlist_items", "id").await,
        vec!["2001", "2002"]
    );
    assert_eq!(
        one(&engine, "SELECT CAST(count(*) AS TEXT) FROM reviews WHERE user_id IS NULL AND deleted_at IS NULL").await,
        "2"
    );
    // Untouched: other users' rows.
    assert_eq!(mark(&engine, "orders", "id = 102").await, "");

    // Outcome counts.
    let counts: Vec<(String, u64)> = done
        .affected
        .iter()
        .map(|c| (c.entity.clone(), c.rows))
        .collect();
    for (e, n) in [
        ("users", 1),
        ("orders", 2),
        ("order_items", 3),
        ("cart_items", 2),
        ("wishlist_items", 1),
    ] {
        assert!(
            counts.contains(&(e.to_string(), n)),
            "{e}={n} missing in {counts:?}"
        );
    }
    assert_eq!(
        done.nullified
            .iter()
            .map(|n| (n.entity.as_str(), n.rows))
            .collect::<Vec<_>>(),
        vec![("reviews", 2)]
    );

    // Audit: one entry for this deletion, no PII value in it.
    let audit = q(
        &engine,
        &format!("SELECT action, entry FROM {} ORDER BY seq", own(b, "audit")),
    )
    .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0][0], "delete");
    let entry: serde_json::Value = serde_json::from_str(&audit[0][1]).unwrap();
    assert_eq!(entry["deletion_id"], json!(id));
    assert_eq!(entry["actor"], json!("alice"));
    assert_eq!(entry["reason"], json!("account closed"));
    assert_eq!(entry["counts"]["order_items"], json!(3));
    assert!(!audit[0][1].contains("ann@example.com") && !audit[0][1].contains("Ann"));

    // Outbox: one record per entity with exactly the affected keys.
    let outbox = engine.outbox(&id).await.unwrap();
    let keys = |entity: &str| -> serde_json::Value {
        let mut v: Vec<serde_json::Value> = outbox
            .iter()
            .filter(|o| o.entity == entity && o.event == "deleted")
            .flat_map(|o| o.key_objects())
            .collect();
        v.sort_by_key(|k| k.to_string());
        serde_json::Value::Array(v)
    };
    assert_eq!(keys("users"), json!([{"id": 1}]));
    assert_eq!(keys("orders"), json!([{"id": 100}, {"id": 101}]));
    assert_eq!(keys("cart_items"), json!([{"id": 1000}, {"id": 1001}]));
    assert_eq!(
        keys("order_items"),
        json!([{"order_id": 100, "product_id": 10}, {"order_id": 100, "product_id": 11}, {"order_id": 101, "product_id": 12}])
    );
    assert_eq!(outbox.iter().filter(|o| o.event == "deleted").count(), 5);
    // Rows whose reference was set to NULL changed too: announced as updated.
    let updated: Vec<_> = outbox.iter().filter(|o| o.event == "updated").collect();
    assert_eq!(updated.len(), 1, "{outbox:?}");
    assert_eq!(updated[0].entity, "reviews");
    let mut ids: Vec<i64> = updated[0]
        .keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![3000, 3002]);

    // The deletion record.
    let rec = engine.deletion(&id).await.unwrap();
    assert_eq!(rec.entity, "users");
    assert_eq!(rec.actor.as_deref(), Some("alice"));
    assert!(rec.restored_at.is_none());
    assert_eq!(rec.total_rows(), 9);
    db.cleanup().await;
}
on_both!(
    delete_user_cascades_and_records,
    delete_user_cascades_and_records
);

async fn restore_undoes_exactly_one_deletion(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    // An order deleted on its own first keeps its own deletion.
    let first = engine
        .delete(&DeleteRequest::new("orders", "101"))
        .await
        .unwrap();
    let before_users = active_ids(&engine, "users", "id").await;
    let user = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    assert_eq!(
        mark(&engine, "orders", "id = 101").await,
        first.deletion_id,
        "already-deleted row keeps its id"
    );
    assert!(
        !user
            .affected
            .iter()
            .any(|c| c.entity == "orders" && c.rows != 1)
    );

    let restored = engine
        .restore(&user.deletion_id, Some("carol"))
        .await
        .expect("restore");
    assert_eq!(restored.deletion_id, user.deletion_id);
    assert_eq!(active_ids(&engine, "users", "id").await, before_users);
    assert_eq!(
        active_ids(&engine, "orders", "id").await,
        vec!["100", "102"]
    );
    assert_eq!(
        mark(&engine, "orders", "id = 101").await,
        first.deletion_id,
        "the earlier deletion stays"
    );
    assert_eq!(
        all_ids(&engine, "cart_items", "id").await,
        vec!["1000", "1001", "1002"]
    );
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(qty AS TEXT) FROM cart_items WHERE id = 1001"
        )
        .await,
        vec![vec!["3".to_string()]],
        "snapshotted columns come back"
    );
    assert_eq!(
        all_ids(&engine, "wishlist_items", "id").await,
        vec!["2000", "2001", "2002"]
    );
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(id AS TEXT) FROM reviews WHERE user_id = 1 ORDER BY id"
        )
        .await,
        vec![vec!["3000".to_string()], vec!["3002".to_string()]],
        "set_null columns are put back"
    );
    // Restore is audited and announced.
    let actions = q(
        &engine,
        &format!("SELECT action FROM {} ORDER BY seq", own(b, "audit")),
    )
    .await;
    assert_eq!(
        actions,
        vec![
            vec!["delete".to_string()],
            vec!["delete".to_string()],
            vec!["restore".to_string()]
        ]
    );
    let outbox = engine.outbox(&user.deletion_id).await.unwrap();
    let restored_users: Vec<_> = outbox
        .iter()
        .filter(|o| o.event == "restored" && o.entity == "users")
        .collect();
    assert_eq!(restored_users.len(), 1);
    assert_eq!(restored_users[0].key_objects(), vec![json!({"id": 1})]);
    assert_eq!(
        restored_users[0].keys,
        json!([1]),
        "one-column keys are stored as plain values"
    );
    assert!(
        outbox
            .iter()
            .any(|o| o.event == "restored" && o.entity == "cart_items" && o.rows == 2)
    );
    assert_eq!(
        outbox
            .iter()
            .filter(|o| o.event == "updated" && o.entity == "reviews")
            .count(),
        2,
        "set_null on delete and its undo on restore"
    );
    // No copies left behind.
    assert_eq!(
        one(
            &engine,
            &format!(
                "SELECT CAST(count(*) AS TEXT) FROM {} WHERE deletion_id = '{}'",
                own(b, "archive"),
                user.deletion_id
            )
        )
        .await,
        "0"
    );
    // Twice is an error and changes nothing.
    let err = engine.restore(&user.deletion_id, None).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyRestored { .. }), "{err}");
    assert!(
        engine
            .deletion(&user.deletion_id)
            .await
            .unwrap()
            .restored_at
            .is_some()
    );
    db.cleanup().await;
}
on_both!(
    restore_undoes_exactly_one_deletion,
    restore_undoes_exactly_one_deletion
);

async fn restrict_blocks_and_changes_nothing(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let plan = engine.plan("products", "10").await.unwrap();
    assert_eq!(plan.blocked_by.len(), 1);
    assert_eq!(
        plan.blocked_by[0].relation,
        "order_items.product_id -> products"
    );
    assert_eq!(plan.blocked_by[0].rows, 2);
    let err = engine
        .delete(&DeleteRequest::new("products", "10"))
        .await
        .unwrap_err();
    match &err {
        StoreError::Blocked { relation, count } => {
            assert_eq!(relation, "order_items.product_id -> products");
            assert_eq!(*count, 2);
        }
        other => panic!("expected Blocked, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("order_items.product_id -> products")
            && err.to_string().contains('2')
    );
    assert_eq!(
        active_ids(&engine, "products", "id").await,
        vec!["10", "11", "12"]
    );
    assert_eq!(all_ids(&engine, "cart_items", "id").await.len(), 3);
    assert_eq!(active_ids(&engine, "reviews", "id").await.len(), 4);
    for t in ["deletions", "audit", "outbox", "archive"] {
        assert_eq!(
            one(
                &engine,
                &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, t))
            )
            .await,
            "0",
            "{t}"
        );
    }
    // Once the blocking order items are gone (their orders deleted), it passes.
    engine
        .delete(&DeleteRequest::new("orders", "100"))
        .await
        .unwrap();
    engine
        .delete(&DeleteRequest::new("orders", "102"))
        .await
        .unwrap();
    let done = engine
        .delete(&DeleteRequest::new("products", "10"))
        .await
        .expect("no active children now");
    assert!(
        done.affected
            .iter()
            .any(|c| c.entity == "reviews" && c.rows == 2)
    );
    db.cleanup().await;
}
on_both!(
    restrict_blocks_and_changes_nothing,
    restrict_blocks_and_changes_nothing
);

async fn dry_run_plans_without_changing(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let plan = engine.plan("users", "1").await.unwrap();
    let rows: Vec<(String, String, u64)> = plan
        .affected
        .iter()
        .map(|c| (c.entity.clone(), c.strategy.clone(), c.rows))
        .collect();
    assert_eq!(rows[0], ("users".to_string(), "soft".to_string(), 1));
    assert!(rows.contains(&("cart_items".to_string(), "hard".to_string(), 2)));
    assert!(rows.contains(&("order_items".to_string(), "soft".to_string(), 3)));
    assert_eq!(plan.nullified[0].entity, "reviews");
    assert_eq!(plan.total_rows(), 9);
    assert_eq!(
        active_ids(&engine, "users", "id").await,
        vec!["1", "2", "3"]
    );
    assert_eq!(all_ids(&engine, "cart_items", "id").await.len(), 3);
    assert_eq!(
        one(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "outbox"))
        )
        .await,
        "0"
    );
    // The plan and the delete agree.
    let done = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    assert_eq!(
        done.affected.iter().map(|c| c.rows).sum::<u64>(),
        plan.total_rows()
    );
    db.cleanup().await;
}
on_both!(
    dry_run_plans_without_changing,
    dry_run_plans_without_changing
);

async fn missing_deleted_and_bad_roots_are_clear_errors(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let err = engine
        .delete(&DeleteRequest::new("users", "99"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let done = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    let err = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap_err();
    match err {
        StoreError::AlreadyDeleted { by, .. } => {
            assert_eq!(by.as_deref(), Some(done.deletion_id.as_str()))
        }
        other => panic!("{other}"),
    }
    let err = engine
        .delete(&DeleteRequest::new("nope", "1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown entity \"nope\""), "{err}");
    let err = engine
        .delete(&DeleteRequest::new("users", "abc"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not an integer"), "{err}");
    let err = engine
        .delete(&DeleteRequest::new("order_items", "order_id=100"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("missing key column \"product_id\""),
        "{err}"
    );
    let err = engine
        .delete(&DeleteRequest::new("order_items", "order_id=100,color=1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a key column"), "{err}");
    let err = engine
        .restore("0190b5a4-0000-7000-8000-000000000000", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DeletionNotFound(_)), "{err}");
    // Only the one successful deletion was recorded.
    assert_eq!(engine.deletions(None, 100).await.unwrap().len(), 1);
    assert_eq!(
        one(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "audit"))
        )
        .await,
        "1"
    );
    db.cleanup().await;
}
on_both!(
    missing_deleted_and_bad_roots_are_clear_errors,
    missing_deleted_and_bad_roots_are_clear_errors
);

async fn composite_and_hard_roots(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let d = engine
        .delete(&DeleteRequest::new(
            "order_items",
            "order_id=100,product_id=11",
        ))
        .await
        .unwrap();
    assert_eq!(
        mark(&engine, "order_items", "order_id = 100 AND product_id = 11").await,
        d.deletion_id
    );
    assert_eq!(
        mark(&engine, "order_items", "order_id = 100 AND product_id = 10").await,
        ""
    );
    assert_eq!(d.key, json!({"order_id": 100, "product_id": 11}));
    let h = engine
        .delete(&DeleteRequest::new("cart_items", "1001"))
        .await
        .unwrap();
    assert_eq!(
        all_ids(&engine, "cart_items", "id").await,
        vec!["1000", "1002"]
    );
    let err = engine
        .delete(&DeleteRequest::new("cart_items", "1001"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    engine.restore(&h.deletion_id, None).await.unwrap();
    assert_eq!(
        all_ids(&engine, "cart_items", "id").await,
        vec!["1000", "1001", "1002"]
    );
    engine.restore(&d.deletion_id, None).await.unwrap();
    assert_eq!(
        mark(&engine, "order_items", "order_id = 100 AND product_id = 11").await,
        ""
    );
    db.cleanup().await;
}
on_both!(composite_and_hard_roots, composite_and_hard_roots);

async fn self_referencing_tree(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    // books(2) > novels(3) > crime(4); products in them get category_id NULL.
    let d = engine
        .delete(&DeleteRequest::new("categories", "2"))
        .await
        .unwrap();
    assert_eq!(
        active_ids(&engine, "categories", "id").await,
        vec!["1", "5"]
    );
    for id in [2, 3, 4] {
        assert_eq!(
            mark(&engine, "categories", &format!("id = {id}")).await,
            d.deletion_id
        );
    }
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(id AS TEXT) FROM products WHERE category_id IS NULL ORDER BY id"
        )
        .await,
        vec![vec!["10".to_string()], vec!["12".to_string()]]
    );
    // A subtree deleted first keeps its own id through the parent's restore.
    engine.restore(&d.deletion_id, None).await.unwrap();
    let crime = engine
        .delete(&DeleteRequest::new("categories", "4"))
        .await
        .unwrap();
    let all = engine
        .delete(&DeleteRequest::new("categories", "1"))
        .await
        .unwrap();
    assert_eq!(
        all.affected[0].rows, 4,
        "1, 2, 3, 5: crime was already deleted"
    );
    engine.restore(&all.deletion_id, None).await.unwrap();
    assert_eq!(
        active_ids(&engine, "categories", "id").await,
        vec!["1", "2", "3", "5"]
    );
    assert_eq!(
        mark(&engine, "categories", "id = 4").await,
        crime.deletion_id
    );
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(category_id AS TEXT) FROM products ORDER BY id"
        )
        .await,
        vec![
            vec!["".to_string()],
            vec!["5".to_string()],
            vec!["3".to_string()]
        ],
        "product 10 stays detached: its category (crime) is still deleted"
    );
    db.cleanup().await;
}
on_both!(self_referencing_tree, self_referencing_tree);

async fn row_reachable_twice_is_touched_once(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE a (id INTEGER PRIMARY KEY);
         CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL);
         CREATE TABLE c (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL);
         CREATE TABLE d (id INTEGER PRIMARY KEY, b_id INTEGER NOT NULL, c_id INTEGER NOT NULL);
         INSERT INTO a VALUES (1), (2);
         INSERT INTO b VALUES (10, 1), (11, 2);
         INSERT INTO c VALUES (20, 1), (21, 2);
         INSERT INTO d VALUES (30, 10, 20), (31, 10, 21), (32, 11, 21)",
    )
    .await;
    let text = r#"
        [entities.a]
        key = ["id"]
        [entities.b]
        key = ["id"]
        [entities.c]
        key = ["id"]
        [entities.d]
        key = ["id"]
        [[relations]]
        child = "b"
        columns = ["a_id"]
        parent = "a"
        on_delete = "cascade"
        [[relations]]
        child = "c"
        columns = ["a_id"]
        parent = "a"
        on_delete = "cascade"
        [[relations]]
        child = "d"
        columns = ["b_id"]
        parent = "b"
        on_delete = "cascade"
        [[relations]]
        child = "d"
        columns = ["c_id"]
        parent = "c"
        on_delete = "cascade"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    let done = engine.delete(&DeleteRequest::new("a", "1")).await.unwrap();
    let d = done.affected.iter().find(|c| c.entity == "d").unwrap();
    assert_eq!(d.rows, 2, "30 via both b and c, 31 via b");
    let outbox = engine.outbox(&done.deletion_id).await.unwrap();
    let dkeys: Vec<_> = outbox
        .iter()
        .filter(|o| o.entity == "d")
        .flat_map(|o| o.key_objects())
        .collect();
    assert_eq!(dkeys.len(), 2);
    assert_eq!(active_ids(&engine, "d", "id").await, vec!["32"]);
    engine.restore(&done.deletion_id, None).await.unwrap();
    assert_eq!(active_ids(&engine, "d", "id").await, vec!["30", "31", "32"]);
    db.cleanup().await;
}
on_both!(
    row_reachable_twice_is_touched_once,
    row_reachable_twice_is_touched_once
);

async fn unique_conflict_refuses_restore(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let gone = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    // The email is free again among active rows.
    db.exec("INSERT INTO users (id, email, name) VALUES (4, 'cy@example.com', 'Cy again')")
        .await;
    let preview = engine.restore_preview(&gone.deletion_id).await.unwrap();
    assert_eq!(preview.conflicts.len(), 1);
    let err = engine.restore(&gone.deletion_id, None).await.unwrap_err();
    match &err {
        StoreError::RestoreConflict { conflicts } => {
            assert_eq!(conflicts[0].entity, "users");
            assert_eq!(conflicts[0].columns, "email");
            assert!(
                conflicts[0].restored == json!({"id": 3})
                    && conflicts[0].active == json!({"id": 4}),
                "{conflicts:?}"
            );
        }
        other => panic!("{other}"),
    }
    // Nothing changed: still deleted, not marked restored, no audit entry.
    assert_eq!(mark(&engine, "users", "id = 3").await, gone.deletion_id);
    assert!(
        engine
            .deletion(&gone.deletion_id)
            .await
            .unwrap()
            .restored_at
            .is_none()
    );
    assert_eq!(
        one(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "audit"))
        )
        .await,
        "1"
    );
    assert_eq!(
        all_ids(&engine, "wishlist_items", "id").await,
        vec!["2000"],
        "hard rows not re-inserted"
    );
    // Free the value and the restore goes through.
    engine
        .delete(&DeleteRequest::new("users", "4"))
        .await
        .unwrap();
    engine.restore(&gone.deletion_id, None).await.unwrap();
    assert_eq!(
        active_ids(&engine, "users", "id").await,
        vec!["1", "2", "3"]
    );
    db.cleanup().await;
}
on_both!(
    unique_conflict_refuses_restore,
    unique_conflict_refuses_restore
);

async fn deleted_parent_refuses_restore(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let order = engine
        .delete(&DeleteRequest::new("orders", "100"))
        .await
        .unwrap();
    let user = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    let err = engine.restore(&order.deletion_id, None).await.unwrap_err();
    match &err {
        StoreError::ParentDeleted { parents } => {
            assert_eq!(parents[0].relation, "orders.user_id -> users");
            assert_eq!(
                parents[0].deletion_id.as_deref(),
                Some(user.deletion_id.as_str())
            );
            assert_eq!(parents[0].status, "deleted");
            assert_eq!(parents[0].child, json!({"id": 100}));
            assert_eq!(parents[0].parent, json!({"id": 1}));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&user.deletion_id));
    assert_eq!(mark(&engine, "orders", "id = 100").await, order.deletion_id);
    engine.restore(&user.deletion_id, None).await.unwrap();
    engine.restore(&order.deletion_id, None).await.unwrap();
    assert_eq!(
        active_ids(&engine, "orders", "id").await,
        vec!["100", "101", "102"]
    );
    db.cleanup().await;
}
on_both!(
    deleted_parent_refuses_restore,
    deleted_parent_refuses_restore
);

async fn guards_view_and_partial_unique(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    // The active view hides the deleted user.
    let ids: Vec<String> = q(
        &engine,
        "SELECT CAST(id AS TEXT) FROM users_active ORDER BY id",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert_eq!(ids, vec!["1", "3"]);
    // A raw DELETE is refused, with a message that says to use Lethe.
    let raw = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut tx = raw.begin_write().await.unwrap();
    let err = tx
        .exec("DELETE FROM users WHERE id = 3", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lethe delete users"), "{err}");
    drop(tx);
    // Lethe's own purge path passes the guard.
    let mut tx = raw.begin_write().await.unwrap();
    tx.exec(engine.dialect().enable_bypass(), &[])
        .await
        .unwrap();
    tx.exec("DELETE FROM reviews WHERE id = 3003", &[])
        .await
        .expect("bypass passes the guard");
    tx.rollback().await.unwrap();
    raw.close().await;
    assert_eq!(active_ids(&engine, "users", "id").await, vec!["1", "3"]);
    // The soft-deleted user's email can be registered again.
    db.exec("INSERT INTO users (id, email, name) VALUES (5, 'bob@example.com', 'Bob 2')")
        .await;
    // But not twice among active rows.
    let raw = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut tx = raw.begin_write().await.unwrap();
    assert!(
        tx.exec(
            "INSERT INTO users (id, email, name) VALUES (6, 'bob@example.com', 'x')",
            &[]
        )
        .await
        .is_err()
    );
    drop(tx);
    raw.close().await;
    db.cleanup().await;
}
on_both!(
    guards_view_and_partial_unique,
    guards_view_and_partial_unique
);

async fn migrate_is_idempotent_and_dry_run_changes_nothing(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(&shop_schema(b)).await;
    let mut engine = lethe_store::Engine::connect(policy(SHOP_POLICY), &db.url)
        .await
        .unwrap();
    let dry = engine.migrate(true).await.unwrap();
    assert!(dry.steps.len() > 10);
    assert!(dry.steps.iter().any(|s| s.id == "users:unique:email"
        && s.description.contains("replace plain unique users_email")));
    engine.refresh().await.unwrap();
    assert!(
        !engine
            .schema()
            .table("users")
            .unwrap()
            .has_column("deleted_at"),
        "dry run changed nothing"
    );
    let applied = engine.migrate(false).await.unwrap();
    assert_eq!(applied.steps.len(), dry.steps.len());
    assert!(
        engine
            .schema()
            .table("users")
            .unwrap()
            .has_column("deleted_at")
    );
    let again = engine.migrate(false).await.unwrap();
    assert!(
        again.steps.is_empty(),
        "second run: {:?}",
        again.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    // Applied steps are recorded.
    let n: usize = one(
        &engine,
        &format!(
            "SELECT CAST(count(*) AS TEXT) FROM {}",
            own(b, "migrations")
        ),
    )
    .await
    .parse()
    .unwrap();
    assert_eq!(n, applied.steps.len());
    // A fresh engine on the same database sees nothing to do either.
    let mut fresh = lethe_store::Engine::connect(policy(SHOP_POLICY), &db.url)
        .await
        .unwrap();
    assert!(fresh.migrate(true).await.unwrap().steps.is_empty());
    db.cleanup().await;
}
on_both!(
    migrate_is_idempotent_and_dry_run_changes_nothing,
    migrate_is_idempotent_and_dry_run_changes_nothing
);

async fn not_migrated_is_refused(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(&shop_schema(b)).await;
    db.exec(SHOP_DATA).await;
    let engine = lethe_store::Engine::connect(policy(SHOP_POLICY), &db.url)
        .await
        .unwrap();
    let err = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated(_)), "{err}");
    assert_eq!(active_ids_unmigrated(&engine).await, 3);
    db.cleanup().await;
}
async fn active_ids_unmigrated(engine: &lethe_store::Engine) -> usize {
    q(
        engine,
        "SELECT CAST(id AS TEXT) FROM users WHERE id IS NOT NULL",
    )
    .await
    .len()
}
on_both!(not_migrated_is_refused, not_migrated_is_refused);

async fn audit_chain_detects_tampering(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    for id in ["1", "2", "3"] {
        let d = engine
            .delete(&DeleteRequest::new("users", id))
            .await
            .unwrap();
        engine.restore(&d.deletion_id, None).await.unwrap();
    }
    let ok = engine.audit_verify(None).await.unwrap();
    assert!(ok.ok && ok.entries == 6, "{ok:?}");
    let (seq, head) = engine.audit_head().await.unwrap();
    assert_eq!((seq, head.clone()), (6, ok.head.clone()));
    assert!(engine.audit_verify(Some(&head)).await.unwrap().ok);
    let audit = own(b, "audit");
    // The append-only trigger refuses edits; an attacker with DDL rights
    // removes it first.
    let raw = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut tx = raw.begin_write().await.unwrap();
    assert!(
        tx.exec(
            &format!("UPDATE {audit} SET action = 'x' WHERE seq = 2"),
            &[]
        )
        .await
        .is_err()
    );
    drop(tx);
    raw.close().await;
    let untrigger = match b {
        Backend::Postgres => "ALTER TABLE lethe.audit DISABLE TRIGGER USER".to_string(),
        Backend::Sqlite => {
            "DROP TRIGGER lethe_audit_no_update; DROP TRIGGER lethe_audit_no_delete".to_string()
        }
    };
    db.exec(&untrigger).await;

    // Edited entry.
    db.exec(&format!(
        "UPDATE {audit} SET entry = replace(entry, '\"users\"', '\"orders\"') WHERE seq = 3"
    ))
    .await;
    let r = engine.audit_verify(None).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.broken_at, Some(3), "{r:?}");
    assert!(r.problem.unwrap().contains("edited"));
    // Deleted entry (after undoing the edit by restoring from a copy is not
    // possible: start over on a fresh chain view by checking a later break).
    db.exec(&format!("DELETE FROM {audit} WHERE seq = 3")).await;
    let r = engine.audit_verify(None).await.unwrap();
    assert_eq!(r.broken_at, Some(3), "{r:?}");
    assert!(r.problem.unwrap().contains("deleted"));
    // Cut-off tail: remove the last entries and move the head back, as a
    // careful attacker would. Only the kept head hash reveals it.
    db.exec(&format!("DELETE FROM {audit} WHERE seq >= 3"))
        .await;
    let (_, h2) = (
        2,
        q(&engine, &format!("SELECT hash FROM {audit} WHERE seq = 2")).await[0][0].clone(),
    );
    db.exec(&format!(
        "UPDATE {} SET seq = 2, hash = '{h2}'",
        own(b, "audit_head")
    ))
    .await;
    let r = engine.audit_verify(None).await.unwrap();
    assert!(
        r.ok,
        "a consistent but truncated chain verifies without the head: {r:?}"
    );
    let r = engine.audit_verify(Some(&head)).await.unwrap();
    assert!(!r.ok && r.problem.unwrap().contains("not in the log"));
    db.cleanup().await;
}
on_both!(audit_chain_detects_tampering, audit_chain_detects_tampering);

async fn inserted_audit_entry_is_detected(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    for id in ["1", "2"] {
        engine
            .delete(&DeleteRequest::new("users", id))
            .await
            .unwrap();
    }
    let audit = own(b, "audit");
    let untrigger = match b {
        Backend::Postgres => "ALTER TABLE lethe.audit DISABLE TRIGGER USER".to_string(),
        Backend::Sqlite => {
            "DROP TRIGGER lethe_audit_no_update; DROP TRIGGER lethe_audit_no_delete".to_string()
        }
    };
    db.exec(&untrigger).await;
    // Shift entry 2 to 3 and insert a forged entry 2 that links to entry 1.
    db.exec(&format!("UPDATE {audit} SET seq = 3 WHERE seq = 2"))
        .await;
    let h1 = q(&engine, &format!("SELECT hash FROM {audit} WHERE seq = 1")).await[0][0].clone();
    let entry =
        r#"{"action":"delete","at":"2026-01-01T00:00:00.000000Z","deletion_id":null,"seq":2}"#;
    let forged = lethe_store::audit::chain_hash(&h1, entry);
    db.exec(&format!(
        "INSERT INTO {audit} (seq, at, action, deletion_id, entry, prev_hash, hash) VALUES (2, '2026-01-01T00:00:00.000000Z', 'delete', NULL, '{entry}', '{h1}', '{forged}')"
    ))
    .await;
    let r = engine.audit_verify(None).await.unwrap();
    assert!(!r.ok);
    assert_eq!(
        r.broken_at,
        Some(3),
        "the entry after the insertion no longer links: {r:?}"
    );
    db.cleanup().await;
}
on_both!(
    inserted_audit_entry_is_detected,
    inserted_audit_entry_is_detected
);

async fn hard_snapshots_round_trip_column_types(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let (blob, real, boolean, ts) = match b {
        Backend::Postgres => ("bytea", "double precision", "boolean", "timestamptz"),
        Backend::Sqlite => ("BLOB", "REAL", "BOOLEAN", "TEXT"),
    };
    db.exec(&format!(
        "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE files (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners (id), data {blob}, size {real} NOT NULL, flag {boolean} NOT NULL, created {ts} NOT NULL, note TEXT)"
    ))
    .await;
    let (bytes, yes) = match b {
        Backend::Postgres => ("'\\x00ff10'::bytea", "true"),
        Backend::Sqlite => ("x'00ff10'", "1"),
    };
    db.exec(&format!(
        "INSERT INTO owners VALUES (1, 'o');
         INSERT INTO files VALUES (1, 1, {bytes}, 1.5, {yes}, '2026-01-02 03:04:05.123456+00', NULL), (2, 1, NULL, 0.1, {yes}, '2026-01-02 03:04:05+00', 'it''s \"quoted\"')"
    ))
    .await;
    let text = r#"
        [entities.owners]
        key = ["id"]
        [entities.files]
        key = ["id"]
        strategy = "hard"
        [[relations]]
        child = "files"
        columns = ["owner_id"]
        parent = "owners"
        on_delete = "cascade"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    let hex = match b {
        Backend::Postgres => "COALESCE(encode(data, 'hex'), '~')",
        Backend::Sqlite => "COALESCE(hex(data), '~')",
    };
    let sql = format!(
        "SELECT CAST(id AS TEXT), {hex}, CAST(size AS TEXT), CAST(flag AS TEXT), CAST(created AS TEXT), COALESCE(note, '~') FROM files ORDER BY id"
    );
    let before = q(&engine, &sql).await;
    assert_eq!(before[0][1].to_lowercase(), "00ff10");
    let done = engine
        .delete(&DeleteRequest::new("owners", "1"))
        .await
        .unwrap();
    assert!(q(&engine, &sql).await.is_empty());
    engine.restore(&done.deletion_id, None).await.unwrap();
    assert_eq!(q(&engine, &sql).await, before);
    db.cleanup().await;
}
on_both!(
    hard_snapshots_round_trip_column_types,
    hard_snapshots_round_trip_column_types
);

async fn inline_unique_constraint_is_replaced(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    // The common real-world shape: UNIQUE written on the column, children
    // with ON DELETE CASCADE, the application's own index, trigger and view.
    db.exec(
        "CREATE TABLE members (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, nick TEXT CHECK (length(nick) < 20), UNIQUE (nick));
         CREATE TABLE posts (id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE, body TEXT NOT NULL);
         CREATE INDEX members_nick_idx ON members (nick);
         CREATE VIEW member_emails AS SELECT email FROM members;
         INSERT INTO members VALUES (1, 'a@x.io', 'a'), (2, 'b@x.io', 'b');
         INSERT INTO posts VALUES (10, 1, 'hi'), (11, 2, 'yo'), (12, 2, 'again')",
    )
    .await;
    let text = r#"
        [entities.members]
        key = ["id"]
        unique = [["email"]]
        [entities.posts]
        key = ["id"]
        [[relations]]
        child = "posts"
        columns = ["member_id"]
        parent = "members"
        on_delete = "cascade"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    let plan = engine.migrate(true).await.unwrap();
    assert!(
        plan.steps.iter().all(|s| s.blocked.is_none()),
        "{:?}",
        plan.steps
    );
    engine
        .migrate(false)
        .await
        .expect("migrate replaces the inline unique");
    // Data, children, the application's index, view and CHECK survive.
    assert_eq!(all_ids(&engine, "members", "id").await, vec!["1", "2"]);
    assert_eq!(
        all_ids(&engine, "posts", "id").await,
        vec!["10", "11", "12"]
    );
    assert_eq!(
        q(&engine, "SELECT email FROM member_emails ORDER BY email")
            .await
            .len(),
        2
    );
    assert!(
        engine
            .schema()
            .table("members")
            .unwrap()
            .indexes
            .contains("members_nick_idx")
    );
    let raw = lethe_store::Db::connect(&db.url, Default::default())
        .await
        .unwrap();
    let mut tx = raw.begin_write().await.unwrap();
    assert!(
        tx.exec(
            "INSERT INTO members VALUES (3, 'c@x.io', 'a-very-long-nickname-indeed')",
            &[]
        )
        .await
        .is_err(),
        "the CHECK constraint is kept"
    );
    drop(tx);
    let mut tx = raw.begin_write().await.unwrap();
    assert!(
        tx.exec("INSERT INTO members VALUES (3, 'c@x.io', 'a')", &[])
            .await
            .is_err(),
        "the other UNIQUE is kept"
    );
    drop(tx);
    raw.close().await;
    // The email is now unique among active rows only, and the guard is on.
    engine
        .delete(&DeleteRequest::new("members", "2"))
        .await
        .unwrap();
    assert_eq!(active_ids(&engine, "posts", "id").await, vec!["10"]);
    db.exec("INSERT INTO members (id, email, nick) VALUES (3, 'b@x.io', 'b2')")
        .await;
    let mut again = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    assert!(
        again.migrate(true).await.unwrap().steps.is_empty(),
        "idempotent after the rebuild"
    );
    db.cleanup().await;
}
on_both!(
    inline_unique_constraint_is_replaced,
    inline_unique_constraint_is_replaced
);

async fn composite_relations_and_text_keys(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE shelves (code TEXT PRIMARY KEY, label TEXT NOT NULL);
         CREATE TABLE slots (shelf TEXT NOT NULL REFERENCES shelves (code), pos INTEGER NOT NULL, PRIMARY KEY (shelf, pos));
         CREATE TABLE labels (id INTEGER PRIMARY KEY, shelf TEXT, pos INTEGER, txt TEXT NOT NULL, FOREIGN KEY (shelf, pos) REFERENCES slots (shelf, pos));
         CREATE TABLE stickers (id INTEGER PRIMARY KEY, shelf TEXT, pos INTEGER, FOREIGN KEY (shelf, pos) REFERENCES slots (shelf, pos));
         INSERT INTO shelves VALUES ('A-1', 'first'), ('B,2', 'comma');
         INSERT INTO slots VALUES ('A-1', 1), ('A-1', 2), ('B,2', 1);
         INSERT INTO labels VALUES (1, 'A-1', 1, 'x'), (2, 'A-1', 2, 'y'), (3, 'B,2', 1, 'z');
         INSERT INTO stickers VALUES (1, 'A-1', 2), (2, 'B,2', 1)",
    )
    .await;
    let text = r#"
        [entities.shelves]
        key = ["code"]
        [entities.slots]
        key = ["shelf", "pos"]
        [entities.labels]
        key = ["id"]
        strategy = "hard"
        [entities.stickers]
        key = ["id"]
        [[relations]]
        child = "slots"
        columns = ["shelf"]
        parent = "shelves"
        on_delete = "cascade"
        [[relations]]
        child = "labels"
        columns = ["shelf", "pos"]
        parent = "slots"
        on_delete = "cascade"
        [[relations]]
        child = "stickers"
        columns = ["shelf", "pos"]
        parent = "slots"
        on_delete = "set_null"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    // A text key with a comma in it, given bare.
    let done = engine
        .delete(&DeleteRequest::new("shelves", "B,2"))
        .await
        .unwrap();
    assert_eq!(active_ids(&engine, "shelves", "code").await, vec!["A-1"]);
    assert_eq!(all_ids(&engine, "labels", "id").await, vec!["1", "2"]);
    assert_eq!(
        q(&engine, "SELECT COALESCE(shelf, '~'), COALESCE(CAST(pos AS TEXT), '~') FROM stickers WHERE id = 2").await,
        vec![vec!["~".to_string(), "~".to_string()]],
        "both columns of a composite set_null are cleared"
    );
    let outbox = engine.outbox(&done.deletion_id).await.unwrap();
    let slots: Vec<_> = outbox.iter().filter(|o| o.entity == "slots").collect();
    assert_eq!(
        slots[0].key_objects(),
        vec![json!({"shelf": "B,2", "pos": 1})]
    );
    assert_eq!(slots[0].keys, json!([["B,2", 1]]));
    // A composite key given by name.
    let one_slot = engine
        .delete(&DeleteRequest::new("slots", "shelf=A-1,pos=2"))
        .await
        .unwrap();
    assert_eq!(all_ids(&engine, "labels", "id").await, vec!["1"]);
    engine.restore(&done.deletion_id, None).await.unwrap();
    engine.restore(&one_slot.deletion_id, None).await.unwrap();
    assert_eq!(all_ids(&engine, "labels", "id").await, vec!["1", "2", "3"]);
    assert_eq!(
        q(
            &engine,
            "SELECT shelf, CAST(pos AS TEXT) FROM stickers ORDER BY id"
        )
        .await,
        vec![
            vec!["A-1".to_string(), "2".to_string()],
            vec!["B,2".to_string(), "1".to_string()]
        ]
    );
    db.cleanup().await;
}
on_both!(
    composite_relations_and_text_keys,
    composite_relations_and_text_keys
);

async fn pii_keys_are_hashed_with_a_database_key_in_the_audit(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE subscribers (email TEXT PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO subscribers VALUES ('ann@example.com', 'Ann'), ('bob@example.com', 'Bob')",
    )
    .await;
    let text = r#"
        [entities.subscribers]
        key = ["email"]
        pii = { email = "hash", name = "redact" }
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    let done = engine
        .delete(&DeleteRequest::new("subscribers", "ann@example.com").reason("unsubscribed"))
        .await
        .unwrap();
    let entries = q(&engine, &format!("SELECT entry FROM {}", own(b, "audit"))).await;
    let entry = &entries[0][0];
    assert!(
        !entry.contains("ann@example.com") && !entry.contains("Ann"),
        "{entry}"
    );
    let v: serde_json::Value = serde_json::from_str(entry).unwrap();
    let hashed = v["key"]["email"].as_str().unwrap();
    assert!(hashed.starts_with("keyed-sha256:"), "{hashed}");
    // Not the plain SHA-256 of the address: a guessed value cannot be checked
    // without the database's key.
    assert_ne!(
        &hashed["keyed-sha256:".len()..],
        lethe_store::audit::chain_hash("", "ann@example.com")
    );
    // The deletion record holds the same hashed key; the restore works by id.
    let rec = engine.deletion(&done.deletion_id).await.unwrap();
    assert_eq!(rec.key["email"], json!(hashed));
    engine.restore(&done.deletion_id, None).await.unwrap();
    assert_eq!(active_ids(&engine, "subscribers", "email").await.len(), 2);
    db.cleanup().await;
}
on_both!(
    pii_keys_are_hashed_with_a_database_key_in_the_audit,
    pii_keys_are_hashed_with_a_database_key_in_the_audit
);

async fn restrict_under_a_hard_parent_is_reported_before_the_database_refuses(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE carts (id INTEGER PRIMARY KEY);
         CREATE TABLE lines (id INTEGER PRIMARY KEY, cart_id INTEGER NOT NULL REFERENCES carts (id));
         CREATE INDEX lines_cart ON lines (cart_id);
         INSERT INTO carts VALUES (1), (2);
         INSERT INTO lines VALUES (10, 1)",
    )
    .await;
    let text = r#"
        [entities.carts]
        key = ["id"]
        strategy = "hard"
        [entities.lines]
        key = ["id"]
        strategy = "hard"
        [[relations]]
        child = "lines"
        columns = ["cart_id"]
        parent = "carts"
        on_delete = "restrict"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    assert!(
        engine
            .check()
            .iter()
            .all(|f| f.level != lethe_core::Level::Error),
        "{:?}",
        engine.check()
    );
    engine.migrate(false).await.unwrap();
    let err = engine
        .delete(&DeleteRequest::new("carts", "1"))
        .await
        .unwrap_err();
    match err {
        StoreError::Blocked { relation, count } => {
            assert_eq!(relation, "lines.cart_id -> carts");
            assert_eq!(count, 1);
        }
        other => panic!("expected Blocked, got {other}"),
    }
    assert_eq!(all_ids(&engine, "carts", "id").await, vec!["1", "2"]);
    engine
        .delete(&DeleteRequest::new("carts", "2"))
        .await
        .expect("no children");
    engine
        .delete(&DeleteRequest::new("lines", "10"))
        .await
        .unwrap();
    engine
        .delete(&DeleteRequest::new("carts", "1"))
        .await
        .expect("child gone");
    assert!(all_ids(&engine, "carts", "id").await.is_empty());
    db.cleanup().await;
}
on_both!(
    restrict_under_a_hard_parent_is_reported_before_the_database_refuses,
    restrict_under_a_hard_parent_is_reported_before_the_database_refuses
);

async fn adopted_text_deletion_id_column_round_trips(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, removed_at TIMESTAMP, del_ref VARCHAR(64));
         CREATE TABLE pages (id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, removed_at TIMESTAMP, del_ref VARCHAR(64));
         INSERT INTO docs (id) VALUES (1), (2);
         INSERT INTO pages (id, doc_id) VALUES (10, 1), (11, 1), (12, 2)",
    )
    .await;
    let text = r#"
        [defaults]
        deleted_at = "removed_at"
        deletion_id = "del_ref"
        [entities.docs]
        key = ["id"]
        [entities.pages]
        key = ["id"]
        [[relations]]
        child = "pages"
        columns = ["doc_id"]
        parent = "docs"
        on_delete = "cascade"
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    assert!(
        engine
            .check()
            .iter()
            .all(|f| f.level != lethe_core::Level::Error),
        "{:?}",
        engine.check()
    );
    engine.migrate(false).await.unwrap();
    let page = engine
        .delete(&DeleteRequest::new("pages", "11"))
        .await
        .unwrap();
    let doc = engine
        .delete(&DeleteRequest::new("docs", "1"))
        .await
        .unwrap();
    let ids = q(
        &engine,
        "SELECT CAST(id AS TEXT) FROM pages WHERE removed_at IS NULL ORDER BY id",
    )
    .await;
    assert_eq!(ids, vec![vec!["12".to_string()]]);
    engine
        .restore(&doc.deletion_id, None)
        .await
        .expect("restore compares the text column as text");
    let ids = q(
        &engine,
        "SELECT CAST(id AS TEXT) FROM pages WHERE removed_at IS NULL ORDER BY id",
    )
    .await;
    assert_eq!(ids, vec![vec!["10".to_string()], vec!["12".to_string()]]);
    engine.restore(&page.deletion_id, None).await.unwrap();
    db.cleanup().await;
}
on_both!(
    adopted_text_deletion_id_column_round_trips,
    adopted_text_deletion_id_column_round_trips
);

async fn unique_backing_a_foreign_key_blocks_migration(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, code TEXT NOT NULL);
         CREATE UNIQUE INDEX acct_code ON acct (code);
         CREATE TABLE ledger (id INTEGER PRIMARY KEY, acct_code TEXT NOT NULL REFERENCES acct (code))",
    )
    .await;
    let text = r#"
        [entities.acct]
        key = ["id"]
        unique = [["code"]]
    "#;
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    let dry = engine.migrate(true).await.unwrap();
    let step = dry
        .steps
        .iter()
        .find(|s| s.id == "acct:unique:code")
        .unwrap();
    assert!(
        step.blocked
            .as_deref()
            .unwrap_or("")
            .contains("foreign key ledger.(acct_code)"),
        "{step:?}"
    );
    let err = engine.migrate(false).await.unwrap_err();
    assert!(matches!(err, StoreError::MigrationBlocked { .. }), "{err}");
    // Nothing was applied.
    engine.refresh().await.unwrap();
    assert!(
        !engine
            .schema()
            .table("acct")
            .unwrap()
            .has_column("deleted_at")
    );
    db.cleanup().await;
}
on_both!(
    unique_backing_a_foreign_key_blocks_migration,
    unique_backing_a_foreign_key_blocks_migration
);

#[tokio::test]
async fn sqlite_rebuild_keeps_the_autoincrement_counter() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    db.exec(
        "CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE);
         INSERT INTO u (email) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
         DELETE FROM u WHERE id >= 3",
    )
    .await;
    let text = "[entities.u]\nkey = [\"id\"]\nunique = [[\"email\"]]\n";
    let mut engine = lethe_store::Engine::connect(policy(text), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    db.exec("INSERT INTO u (email) VALUES ('z')").await;
    assert_eq!(
        one(&engine, "SELECT CAST(id AS TEXT) FROM u WHERE email = 'z'").await,
        "6",
        "ids 3 to 5 were handed out before the rebuild"
    );
    db.cleanup().await;
}

async fn audit_columns_beside_the_entry_are_checked(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    assert!(
        engine.audit_verify(None).await.unwrap().ok,
        "times read back exactly as hashed"
    );
    let untrigger = match b {
        Backend::Postgres => "ALTER TABLE lethe.audit DISABLE TRIGGER USER".to_string(),
        Backend::Sqlite => "DROP TRIGGER lethe_audit_no_update".to_string(),
    };
    db.exec(&untrigger).await;
    // Back-date the first entry's time column, leaving the hashed text alone.
    db.exec(&format!(
        "UPDATE {} SET at = '2020-01-01T00:00:00Z' WHERE seq = 1",
        own(b, "audit")
    ))
    .await;
    let r = engine.audit_verify(None).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.broken_at, Some(1), "{r:?}");
    assert!(r.problem.unwrap().contains("columns do not match"));
    db.cleanup().await;
}
on_both!(
    audit_columns_beside_the_entry_are_checked,
    audit_columns_beside_the_entry_are_checked
);

/// A cascade of more keys than one outbox record holds is split into parts
/// of at most 10,000 keys, numbered from 0, each key in exactly one part.
async fn large_cascades_are_sent_in_parts(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    db.exec_one(
        "INSERT INTO wishlist_items (id, user_id, product_id) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25001) \
         SELECT 100000 + i, 1, 10 FROM n",
    )
    .await;
    let done = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .expect("delete");
    let mut parts: Vec<(i64, u64, usize)> = engine
        .outbox(&done.deletion_id)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.entity == "wishlist_items")
        .map(|r| (r.part, r.rows, r.keys.as_array().map_or(0, Vec::len)))
        .collect();
    parts.sort();
    // The fixture's wishlist line of user 1 and the 25,001 added.
    assert_eq!(
        parts,
        vec![(0, 10_000, 10_000), (1, 10_000, 10_000), (2, 5_002, 5_002)]
    );
    let mut keys: Vec<i64> = engine
        .outbox(&done.deletion_id)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.entity == "wishlist_items")
        .flat_map(|r| r.keys.as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_i64())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 25_002);
    assert_eq!(
        all_ids(&engine, "wishlist_items", "id").await,
        vec!["2001", "2002"]
    );
    db.cleanup().await;
}
on_both!(
    large_cascades_are_sent_in_parts,
    large_cascades_are_sent_in_parts
);

/// What `lethe serve` shows callers: tombstones, the trash in keyset pages,
/// the audit log newest first; all following a delete and its restore.
async fn trash_and_tombstones_follow_deletions(b: Backend) {
    let Some((db, engine)) = shop(b).await else {
        return;
    };
    let done = engine
        .delete(&DeleteRequest::new("users", "1").actor("alice"))
        .await
        .expect("delete");
    let id = done.deletion_id.clone();

    let t = engine.tombstone("users", "1").await.unwrap();
    assert_eq!(
        (
            t.status.as_str(),
            t.place.as_deref(),
            t.deletion_id.as_deref()
        ),
        ("deleted", Some("table"), Some(id.as_str()))
    );
    assert!(t.deleted_at.is_some() && t.restorable_until.is_none());
    let t = engine.tombstone("cart_items", "1000").await.unwrap();
    assert_eq!(
        (
            t.status.as_str(),
            t.place.as_deref(),
            t.deletion_id.as_deref()
        ),
        ("deleted", Some("archive"), Some(id.as_str()))
    );
    let t = engine
        .tombstone("order_items", "order_id=100,product_id=11")
        .await
        .unwrap();
    assert_eq!(t.status, "deleted");
    assert_eq!(t.key, json!({"order_id": 100, "product_id": 11}));
    assert_eq!(
        engine.tombstone("users", "2").await.unwrap().status,
        "active"
    );
    assert_eq!(
        engine.tombstone("users", "99").await.unwrap().status,
        "unknown"
    );
    assert!(matches!(
        engine.tombstone("users", "x").await,
        Err(StoreError::Core(_))
    ));

    // The trash: marked rows with their values, stored rows with theirs.
    let page = |search: Option<&str>, cursor: Option<String>, limit| lethe_store::TrashQuery {
        deletion_id: None,
        search: search.map(str::to_string),
        cursor,
        limit,
    };
    let users = engine.trash("users", &page(None, None, 50)).await.unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(users.items[0].key, json!({"id": 1}));
    assert_eq!(users.items[0].row["email"], "ann@example.com");
    assert_eq!(users.items[0].deletion_id, id);
    let found = engine
        .trash("users", &page(Some("ANN@"), None, 50))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let none = engine
        .trash("users", &page(Some("%"), None, 50))
        .await
        .unwrap();
    assert_eq!(none.items.len(), 0, "LIKE wildcards are taken literally");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = engine
            .trash("cart_items", &page(None, cursor.clone(), 1))
            .await
            .unwrap();
        for it in &p.items {
            assert_eq!(it.place, "archive");
            assert_eq!(it.row["user_id"], 1);
            seen.push(it.key["id"].as_i64().unwrap());
        }
        match p.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, vec![1000, 1001]);
    assert!(matches!(
        engine
            .trash("users", &page(None, Some("zz".into()), 5))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        engine.trash("users", &page(None, None, 0)).await,
        Err(StoreError::Invalid(_))
    ));

    // Restored: active again, the trash empty, the audit log newest first.
    engine.restore(&id, Some("bob")).await.unwrap();
    assert_eq!(
        engine.tombstone("users", "1").await.unwrap().status,
        "active"
    );
    assert_eq!(
        engine.tombstone("cart_items", "1000").await.unwrap().status,
        "active"
    );
    assert!(
        engine
            .trash("cart_items", &page(None, None, 50))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let log = engine.audit_list(None, None, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["restore", "delete"]
    );
    assert_eq!(log[0].entry["actor"], "bob");
    let older = engine
        .audit_list(Some(log[0].seq), Some("delete"), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].deletion_id.as_deref(), Some(id.as_str()));
    db.cleanup().await;
}
on_both!(
    trash_and_tombstones_follow_deletions,
    trash_and_tombstones_follow_deletions
);
