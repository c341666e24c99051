//! Erasure requests on SQLite and PostgreSQL: every row of the subject is
//! found through every relation, in its table (active or deleted) and in
//! the archive store, and deleted or anonymized there in one transaction
//! with its deletion record, audit entry, outbox records and ledger entry;
//! the scan finds nothing left; a second run changes nothing.

mod common;

use common::*;
use lethe_store::erasure::EraseRequest;
use lethe_store::{DeleteRequest, Engine, StoreError};

/// The shop with users as subjects: users anonymized, orders kept for tax
/// law, everything else of theirs deleted.
pub fn erasure_policy() -> String {
    SHOP_POLICY
        .replace(
            "pii = { email = \"hash\", name = \"redact\" }",
            "pii = { email = \"fake\", name = \"redact\" }\nerase = \"anonymize\"",
        )
        .replace(
            "[entities.orders]\nkey = [\"id\"]",
            "[entities.orders]\nkey = [\"id\"]\nerase = \"keep\"\nlegal_basis = \"invoices: 10 years (tax law)\"",
        )
        + "\n[erasure]\nsubject = \"users\"\n"
}

fn req(key: &str) -> EraseRequest {
    EraseRequest {
        entity: "users".into(),
        key: key.into(),
        request_id: Some(format!("ticket-{key}")),
        actor: Some("dpo".into()),
        reason: Some("GDPR Art. 17 request".into()),
    }
}

/// The erasure's outbox announces user 1's two reviews as erased.
async fn assert_reviews_erased(engine: &Engine, deletion_id: &str) {
    let outbox = engine.outbox(deletion_id).await.unwrap();
    assert!(
        outbox
            .iter()
            .any(|r| r.event == "erased" && r.entity == "reviews" && r.rows == 2),
        "{outbox:?}"
    );
}

/// Deletion records of kind `erase`.
async fn erase_records(engine: &Engine) -> usize {
    engine
        .deletions(None, 100)
        .await
        .unwrap()
        .iter()
        .filter(|d| d.kind == "erase")
        .count()
}

async fn count(engine: &Engine, sql: &str) -> i64 {
    one(engine, sql).await.parse().unwrap_or(-1)
}

async fn erase_reaches_every_copy(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    // A soft-deleted review and a hard-deleted (snapshotted) cart line of
    // user 1, before the request.
    engine
        .delete(&DeleteRequest::new("reviews", "3002"))
        .await
        .unwrap();
    engine
        .delete(&DeleteRequest::new("cart_items", "1001"))
        .await
        .unwrap();

    let preview = engine.erasure_preview("users", "1").await.unwrap();
    let get = |e: &str| {
        preview
            .entities
            .iter()
            .find(|x| x.entity == e)
            .unwrap()
            .clone()
    };
    assert_eq!((get("reviews").active, get("reviews").deleted), (1, 1));
    assert_eq!((get("cart_items").active, get("cart_items").stored), (1, 1));
    assert_eq!(get("orders").action, "keep");
    assert_eq!(get("orders").active, 2);
    assert_eq!(get("order_items").active, 3);
    assert_eq!(get("users").action, "anonymize");
    assert_eq!(
        preview
            .rows
            .iter()
            .filter(|r| r.entity == "reviews")
            .count(),
        2
    );
    // The preview changed nothing.
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM reviews WHERE user_id = 1"
        )
        .await,
        2
    );

    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    assert_eq!(rec.state, "pending");
    assert!(rec.steps.iter().all(|s| s.state == "pending"));
    let rec = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    assert_eq!(rec.state, "in_progress");
    for s in rec.steps.iter().filter(|s| s.kind != "verify") {
        assert_eq!(s.state, "done", "{s:?}");
    }

    // Rows: user 1's copies gone, other users' rows untouched.
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3001", "3003"]
    );
    assert_eq!(all_ids(&engine, "cart_items", "id").await, vec!["1002"]);
    assert_eq!(
        all_ids(&engine, "wishlist_items", "id").await,
        vec!["2001", "2002"]
    );
    assert_eq!(
        all_ids(&engine, "orders", "id").await,
        vec!["100", "101", "102"]
    );
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(order_id AS TEXT) FROM order_items ORDER BY order_id"
        )
        .await,
        vec![vec!["102".to_string()]]
    );
    assert_eq!(
        q(&engine, "SELECT email, name FROM users WHERE id = 1").await,
        vec![vec![
            "erased-1@example.invalid".to_string(),
            "[redacted]".to_string()
        ]]
    );
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 2").await,
        "bob@example.com"
    );
    let archive = own(b, "archive");
    assert_eq!(
        count(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {archive} WHERE entity = 'cart_items'")
        )
        .await,
        0
    );

    // Record, audit and outbox, together.
    let deletion = rec.deletion_id.clone().unwrap();
    let d = engine.deletion(&deletion).await.unwrap();
    assert_eq!(d.kind, "erase");
    let entry = one(
        &engine,
        &format!(
            "SELECT entry FROM {} WHERE deletion_id = '{deletion}'",
            own(b, "audit")
        ),
    )
    .await;
    assert!(entry.contains("\"action\":\"erase\""), "{entry}");
    assert!(entry.contains("ticket-1"), "{entry}");
    assert!(
        !entry.contains("ann@example.com") && !entry.contains("Ann"),
        "{entry}"
    );
    let outbox = engine.outbox(&deletion).await.unwrap();
    let erased: Vec<(&str, u64)> = outbox.iter().map(|o| (o.entity.as_str(), o.rows)).collect();
    assert!(outbox.iter().all(|o| o.event == "erased"));
    for (entity, rows) in [
        ("reviews", 2),
        ("cart_items", 2),
        ("wishlist_items", 1),
        ("order_items", 3),
        ("users", 1),
    ] {
        assert_eq!(
            erased
                .iter()
                .filter(|(e, _)| *e == entity)
                .map(|(_, n)| n)
                .sum::<u64>(),
            rows,
            "{entity}: {erased:?}"
        );
    }
    assert!(!erased.iter().any(|(e, _)| *e == "orders"));
    assert_eq!(engine.erasure_ledger().await.unwrap().len(), 1);
    engine.audit_verify(None).await.unwrap();

    // Nothing left to find; a second run changes nothing; restore refused.
    let scan = engine.erasure_scan(&rec.id).await.unwrap();
    assert!(scan.residue.is_empty(), "{:?}", scan.residue);
    assert_eq!(scan.kept.len(), 1);
    assert_eq!(scan.kept[0].entity, "orders");
    let again = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    assert_eq!(again.deletion_id, rec.deletion_id);
    let (same, _) = engine.erasure_create(&req("1")).await.unwrap();
    assert_eq!(same.id, rec.id);
    assert!(matches!(
        engine.restore(&deletion, None).await,
        Err(StoreError::Invalid(_))
    ));
    db.cleanup().await;
}
on_both!(erase_reaches_every_copy, erase_reaches_every_copy);

async fn scan_finds_what_was_left(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    // Someone copies the e-mail into another user's row behind Lethe's
    // back, and a review of user 1 comes back from a stale replica.
    db.exec("UPDATE users SET name = 'ann@example.com' WHERE id = 3")
        .await;
    db.exec("INSERT INTO reviews (id, product_id, user_id, body) VALUES (3999, 10, 1, 'again')")
        .await;
    let scan = engine.erasure_scan(&rec.id).await.unwrap();
    let places: Vec<(String, String)> = scan
        .residue
        .iter()
        .map(|r| (r.place.clone(), r.what.clone()))
        .collect();
    assert!(
        places.contains(&("table users".into(), "original values".into())),
        "{places:?}"
    );
    assert!(
        places.contains(&("table reviews".into(), "subject rows".into())),
        "{places:?}"
    );
    db.cleanup().await;
}
on_both!(scan_finds_what_was_left, scan_finds_what_was_left);

async fn bad_requests_change_nothing(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let before = q(
        &engine,
        "SELECT CAST(id AS TEXT), email FROM users ORDER BY id",
    )
    .await;
    let not_subject = engine.erasure_preview("orders", "100").await.unwrap_err();
    assert!(
        not_subject.to_string().contains("subject entity \"users\""),
        "{not_subject}"
    );
    let bad_key = engine.erasure_preview("users", "abc").await.unwrap_err();
    assert_eq!(bad_key.code(), "bad_key", "{bad_key}");
    let unknown = engine.erasure_preview("nope", "1").await.unwrap_err();
    assert_eq!(unknown.code(), "unknown_entity");
    // A rule the column cannot take: null on NOT NULL e-mail.
    let strict = Engine::connect(
        policy(&erasure_policy().replace("email = \"fake\"", "email = \"null\"")),
        &db.url,
    )
    .await
    .unwrap();
    let e = strict.erasure_create(&req("2")).await.unwrap_err();
    assert!(e.to_string().contains("users.email"), "{e}");
    // `lethe check` says so before any request.
    let findings = strict.check();
    assert!(
        findings
            .iter()
            .any(|f| f.key == "entities.users.pii" && f.message.contains("users.email")),
        "{findings:?}"
    );
    assert!(engine.check().iter().all(|f| f.key != "entities.users.pii"));
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(id AS TEXT), email FROM users ORDER BY id"
        )
        .await,
        before
    );
    // A key that matches nothing anywhere: not found, the request failed
    // with that reason, nothing written.
    let (nobody, key) = engine.erasure_create(&req("424242")).await.unwrap();
    let e = engine
        .erasure_run_tables(&nobody, Some(&key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    let nobody = engine.erasure(&nobody.id).await.unwrap();
    assert_eq!(nobody.state, "failed");
    assert!(nobody.deletion_id.is_none());
    assert!(engine.erasure_ledger().await.unwrap().is_empty());
    // A ledger entry from a database with another hash key matches no
    // one here: refused before anything runs.
    let (rec, key) = engine.erasure_create(&req("2")).await.unwrap();
    engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    let after_2 = q(
        &engine,
        "SELECT CAST(id AS TEXT), email FROM users ORDER BY id",
    )
    .await;
    let requests = engine.erasures(None, 100).await.unwrap().len();
    let mut entry = engine.erasure_ledger().await.unwrap().remove(0);
    entry.key_check = "0".repeat(64);
    let e = engine.erasure_reapply(&entry, None).await.unwrap_err();
    assert!(e.to_string().contains("another hash key"), "{e}");
    assert_eq!(engine.erasures(None, 100).await.unwrap().len(), requests);
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(id AS TEXT), email FROM users ORDER BY id"
        )
        .await,
        after_2
    );
    // No row left anywhere, but a data key that still opens the subject's
    // exported values: not "nobody", the key is destroyed.
    let (key_only, key) = engine.erasure_create(&req("424243")).await.unwrap();
    let keys = own(b, "subject_keys");
    let mut tx = engine.db().begin_write().await.unwrap();
    tx.exec(
        &format!(
            "INSERT INTO {keys} (subject, wrapped_key, created_at) VALUES ($1, 'wrapped', CURRENT_TIMESTAMP)"
        ),
        &[Some(key_only.data_key.clone())],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let done = engine
        .erasure_run_tables(&key_only, Some(&key))
        .await
        .unwrap();
    assert!(done.deletion_id.is_some());
    assert_eq!(
        one(
            &engine,
            &format!(
                "SELECT wrapped_key FROM {keys} WHERE subject = '{}'",
                key_only.data_key
            )
        )
        .await,
        ""
    );
    db.cleanup().await;
}
on_both!(bad_requests_change_nothing, bad_requests_change_nothing);

async fn a_legal_hold_stops_the_erasure(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    // A hold on one of user 1's reviews (active) and on a cart line in the
    // archive store.
    engine
        .delete(&DeleteRequest::new("cart_items", "1001"))
        .await
        .unwrap();
    let review = engine
        .hold("reviews", "3000", "litigation 2026-17", Some("legal"))
        .await
        .unwrap();
    let cart = engine
        .hold("cart_items", "1001", "tax audit", Some("legal"))
        .await
        .unwrap();
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    let err = engine
        .erasure_run_tables(&rec, Some(&key))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.code(), "legal_hold", "{msg}");
    assert!(
        msg.contains("litigation 2026-17") && msg.contains("tax audit"),
        "{msg}"
    );
    // Nothing changed; the request failed with the reason.
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "ann@example.com"
    );
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3000", "3001", "3002", "3003"]
    );
    let failed = engine.erasure(&rec.id).await.unwrap();
    assert_eq!(failed.state, "failed");
    assert!(failed.error.unwrap().contains("legal hold"));
    assert!(failed.deletion_id.is_none());
    // Released, the request resumes (by the subject's hash: no key needed).
    for h in [review.id, cart.id] {
        engine
            .release_hold(&lethe_store::HoldRef::Id(h), Some("settled"), Some("legal"))
            .await
            .unwrap();
    }
    let done = engine.erasure_run_tables(&rec, None).await.unwrap();
    assert!(done.deletion_id.is_some());
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3001", "3003"]
    );
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "erased-1@example.invalid"
    );
    db.cleanup().await;
}
on_both!(
    a_legal_hold_stops_the_erasure,
    a_legal_hold_stops_the_erasure
);

/// A subject already deleted with the archive strategy: its row lives only
/// in the archive store, and is anonymized there (its children, archived
/// with it, are deleted from the store).
async fn archived_subject_is_erased_in_the_store(b: Backend) {
    // Only users (archived) and their wishlists (hard) are managed here.
    let policy = r#"
[entities.users]
key = ["id"]
strategy = "archive"
pii = { email = "fake", name = "redact" }
erase = "anonymize"

[entities.wishlist_items]
key = ["id"]
strategy = "hard"

[[relations]]
child = "wishlist_items"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[erasure]
subject = "users"
"#;
    let Some((db, engine)) = shop_with(b, policy).await else {
        return;
    };
    // Cy's review is not managed here: the application removes it.
    db.exec("DELETE FROM reviews WHERE user_id = 3").await;
    let archive = own(b, "archive");
    // Cy has wishlist lines (hard, cascade).
    engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    assert!(all_ids(&engine, "users", "id").await == vec!["1", "2"]);
    let preview = engine.erasure_preview("users", "3").await.unwrap();
    let users = preview
        .entities
        .iter()
        .find(|e| e.entity == "users")
        .unwrap();
    assert_eq!((users.active, users.stored), (0, 1));
    let wl = preview
        .entities
        .iter()
        .find(|e| e.entity == "wishlist_items")
        .unwrap();
    assert_eq!(wl.stored, 2);
    let (rec, key) = engine.erasure_create(&req("3")).await.unwrap();
    let rec = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    let stored = q(
        &engine,
        &format!("SELECT entity, CAST(row AS TEXT) FROM {archive} ORDER BY entity"),
    )
    .await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0][0], "users");
    let row: serde_json::Value = serde_json::from_str(&stored[0][1]).unwrap();
    assert_eq!(row["email"], "erased-3@example.invalid");
    assert_eq!(row["name"], "[redacted]");
    assert_eq!(row["id"], 3);
    let scan = engine.erasure_scan(&rec.id).await.unwrap();
    assert!(scan.residue.is_empty(), "{:?}", scan.residue);
    db.cleanup().await;
}
on_both!(
    archived_subject_is_erased_in_the_store,
    archived_subject_is_erased_in_the_store
);

/// Erasing a subject again (a second request, or a ledger reapplied to the
/// same database) changes nothing and finds nothing: placeholders and fakes
/// are not taken for original values, and a hash is not hashed again.
async fn erasing_twice_is_harmless(b: Backend) {
    let policy = erasure_policy().replace(
        "pii = { email = \"fake\", name = \"redact\" }",
        "pii = { email = \"hash\", name = \"redact\" }",
    );
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    let after_first = q(&engine, "SELECT email, name FROM users WHERE id = 1").await;
    assert_eq!(after_first[0][0], engine.keyed_hash("ann@example.com"));
    let mut second = req("1");
    second.request_id = Some("ticket-1-again".into());
    let (rec2, key2) = engine.erasure_create(&second).await.unwrap();
    assert_ne!(rec2.id, rec.id);
    let rec2 = engine.erasure_run_tables(&rec2, Some(&key2)).await.unwrap();
    assert_eq!(
        q(&engine, "SELECT email, name FROM users WHERE id = 1").await,
        after_first
    );
    assert!(rec2.pii_hashes.is_empty(), "{:?}", rec2.pii_hashes);
    for id in [&rec.id, &rec2.id] {
        let scan = engine.erasure_scan(id).await.unwrap();
        assert!(scan.residue.is_empty(), "{:?}", scan.residue);
    }
    db.cleanup().await;
}
on_both!(erasing_twice_is_harmless, erasing_twice_is_harmless);

/// Rows the erasure does not take that reference rows it deletes (here
/// cart lines whose relation to users is marked as not carrying
/// ownership, through a cascade) stop it with the relation and the count;
/// nothing changes.
async fn rows_outside_the_erasure_block_its_deletes(b: Backend) {
    let policy = SHOP_POLICY.replace(
        "child = \"cart_items\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"cascade\"",
        "child = \"cart_items\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"cascade\"\nerasure = false",
    ) + "\n[erasure]\nsubject = \"users\"\n";
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    let err = engine
        .erasure_run_tables(&rec, Some(&key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "blocked", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("cart_items.user_id -> users") && msg.contains("2 active row(s)"),
        "{msg}"
    );
    assert_eq!(all_ids(&engine, "users", "id").await, vec!["1", "2", "3"]);
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3000", "3001", "3002", "3003"]
    );
    let failed = engine.erasure(&rec.id).await.unwrap();
    assert_eq!(failed.state, "failed");
    assert!(failed.deletion_id.is_none());
    db.cleanup().await;
}
on_both!(
    rows_outside_the_erasure_block_its_deletes,
    rows_outside_the_erasure_block_its_deletes
);

/// A review detached from its author by a set_null relation when the
/// account was deleted (its `user_id` is NULL now) is still the author's:
/// erasure finds it through Lethe's nullified values and deletes it.
async fn rows_detached_by_set_null_are_found(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    assert_eq!(
        one(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM reviews WHERE id = 3003 AND user_id IS NULL"
        )
        .await,
        "1"
    );
    let preview = engine.erasure_preview("users", "3").await.unwrap();
    assert!(
        preview
            .rows
            .iter()
            .any(|r| r.entity == "reviews" && r.key["id"] == 3003),
        "{:?}",
        preview.rows
    );
    let (rec, key) = engine.erasure_create(&req("3")).await.unwrap();
    let (seq_before, _) = engine.audit_head().await.unwrap();
    let rec = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    // The row, its `erased` outbox record and the audit entry, together.
    let deletion = rec.deletion_id.clone().unwrap();
    let outbox = engine.outbox(&deletion).await.unwrap();
    assert!(
        outbox.iter().any(|r| r.event == "erased"
            && r.entity == "reviews"
            && r.keys.to_string().contains("3003")),
        "{outbox:?}"
    );
    assert_eq!(engine.deletion(&deletion).await.unwrap().kind, "erase");
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before + 1);
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM reviews WHERE id = 3003"
        )
        .await,
        0
    );
    // Other people's reviews stay.
    assert_eq!(
        count(&engine, "SELECT CAST(count(*) AS TEXT) FROM reviews").await,
        3
    );
    let scan = engine.erasure_scan(&rec.id).await.unwrap();
    assert!(scan.residue.is_empty(), "{:?}", scan.residue);
    db.cleanup().await;
}
on_both!(
    rows_detached_by_set_null_are_found,
    rows_detached_by_set_null_are_found
);

/// A deleted subject's rows that erasure keeps (reviews whose relation to
/// their author carries no ownership, `erasure = false`) lose their
/// reference through set_null, and caches hear of the change: `updated`
/// outbox records in the erasure's transaction.
async fn references_erasure_clears_are_sent_as_updated(b: Backend) {
    let policy = SHOP_POLICY
        .replace(
            "pii = { email = \"hash\", name = \"redact\" }",
            "pii = { email = \"hash\", name = \"redact\" }\nerase = \"delete\"",
        )
        .replace(
            "child = \"reviews\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"set_null\"",
            "child = \"reviews\"\ncolumns = [\"user_id\"]\nparent = \"users\"\non_delete = \"set_null\"\nerasure = false",
        )
        // A cache key made of the reference: the record must carry the
        // value it had, the one the cache entry was stored under.
        .replace(
            "[entities.reviews]\nkey = [\"id\"]",
            "[entities.reviews]\nkey = [\"id\"]\ncache_keys = [\"review:{user_id}:{id}\"]",
        )
        + "\n[erasure]\nsubject = \"users\"\n\n[sinks.cache]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379/\"\n";
    assert!(policy.contains("erasure = false") && policy.contains("cache_keys"));
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    let rec = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM users WHERE id = 1"
        )
        .await,
        0
    );
    // User 1's reviews stay, detached.
    assert_eq!(
        q(&engine, "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT) FROM reviews WHERE id IN (3000, 3002) ORDER BY id").await,
        vec![vec!["3000".to_string(), String::new()], vec!["3002".to_string(), String::new()]]
    );
    let outbox = engine
        .outbox(rec.deletion_id.as_deref().unwrap())
        .await
        .unwrap();
    let updated: Vec<_> = outbox.iter().filter(|r| r.event == "updated").collect();
    assert_eq!(updated.len(), 1, "{outbox:?}");
    assert_eq!(updated[0].entity, "reviews");
    assert_eq!(updated[0].rows, 2);
    // Key and captured columns as they were before the reference was
    // cleared.
    assert_eq!(updated[0].columns, vec!["user_id".to_string()]);
    let mut rows: Vec<serde_json::Value> = updated[0].keys.as_array().cloned().unwrap();
    rows.sort_by_key(|r| r[0].as_i64());
    assert_eq!(
        rows,
        vec![serde_json::json!([3000, 1]), serde_json::json!([3002, 1])]
    );
    assert!(
        outbox
            .iter()
            .any(|r| r.event == "erased" && r.entity == "users"),
        "{outbox:?}"
    );
    db.cleanup().await;
}
on_both!(
    references_erasure_clears_are_sent_as_updated,
    references_erasure_clears_are_sent_as_updated
);

/// A hold on another person's review does not stop the erasure: on
/// PostgreSQL the one-statement table step sees an active hold on an entity
/// it changes, rolls back and runs as statements, which check the holds row
/// by row and find none on the subject's rows.
async fn a_hold_on_someone_elses_row_does_not_stop_the_erasure(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let hold = engine
        .hold("reviews", "3001", "litigation 2026-18", Some("legal"))
        .await
        .unwrap();
    let (seq_before, _) = engine.audit_head().await.unwrap();
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    let rec = engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    assert!(rec.deletion_id.is_some());
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3001", "3003"]
    );
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "erased-1@example.invalid"
    );
    assert_reviews_erased(&engine, rec.deletion_id.as_deref().unwrap()).await;
    // One audit entry, one deletion record; the hold stays, on its row.
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before + 1);
    assert_eq!(erase_records(&engine).await, 1);
    let holds = engine.holds(false).await.unwrap();
    assert!(holds.iter().any(|h| h.id == hold.id), "{holds:?}");
    db.cleanup().await;
}
on_both!(
    a_hold_on_someone_elses_row_does_not_stop_the_erasure,
    a_hold_on_someone_elses_row_does_not_stop_the_erasure
);

/// A table erasure anonymizes that also loses a reference through a
/// set_null relation from a table it deletes: two writes of the same rows,
/// which one PostgreSQL statement would not both apply. Both happen.
async fn anonymized_rows_also_detached_keep_both_changes(b: Backend) {
    let policy = SHOP_POLICY
        .replace(
            "pii = { email = \"hash\", name = \"redact\" }",
            "pii = { email = \"hash\", name = \"redact\" }\nerase = \"delete\"",
        )
        .replace(
            "[entities.reviews]\nkey = [\"id\"]",
            "[entities.reviews]\nkey = [\"id\"]\npii = { body = \"redact\" }\nerase = \"anonymize\"",
        )
        + "\n[erasure]\nsubject = \"users\"\n";
    assert!(policy.contains("body = \"redact\""));
    let Some((db, engine)) = shop_with(b, &policy).await else {
        return;
    };
    let (rec, key) = engine.erasure_create(&req("1")).await.unwrap();
    engine.erasure_run_tables(&rec, Some(&key)).await.unwrap();
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM users WHERE id = 1"
        )
        .await,
        0
    );
    // User 1's reviews: redacted and detached, both.
    assert_eq!(
        q(
            &engine,
            "SELECT CAST(id AS TEXT), body, CAST(user_id AS TEXT) FROM reviews WHERE id IN (3000, 3002) ORDER BY id"
        )
        .await,
        vec![
            vec!["3000".to_string(), "[redacted]".to_string(), String::new()],
            vec!["3002".to_string(), "[redacted]".to_string(), String::new()]
        ]
    );
    // Others' untouched.
    assert_eq!(
        one(&engine, "SELECT body FROM reviews WHERE id = 3001").await,
        "meh"
    );
    db.cleanup().await;
}
on_both!(
    anonymized_rows_also_detached_keep_both_changes,
    anonymized_rows_also_detached_keep_both_changes
);

/// The request `erasure_create` returns (built without reading it back) is
/// the one the database holds, field for field; and a second create with
/// the same request id returns it as stored.
async fn a_created_request_is_what_the_database_holds(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let (created, _) = engine.erasure_create(&req("2")).await.unwrap();
    let stored = engine.erasure(&created.id).await.unwrap();
    assert_eq!(created, stored);
    assert!(created.steps.len() > 3, "{:?}", created.steps);
    // No actor or reason: None on both sides, not empty text.
    let bare = EraseRequest {
        actor: None,
        reason: Some(String::new()),
        request_id: Some("ticket-bare".into()),
        ..req("3")
    };
    let (created, _) = engine.erasure_create(&bare).await.unwrap();
    assert_eq!(created, engine.erasure(&created.id).await.unwrap());
    let (again, _) = engine.erasure_create(&bare).await.unwrap();
    assert_eq!(again, created);
    // A started request, its table step done: what `erasure_start` returns
    // (built in memory) is what the database holds, steps, summary and
    // hashes included.
    let started = engine.erasure_start(&req("1")).await.unwrap();
    assert!(started.deletion_id.is_some());
    assert!(!started.pii_hashes.is_empty());
    assert!(started.steps.iter().any(|s| s.state == "done"));
    assert_eq!(started, engine.erasure(&started.id).await.unwrap());
    db.cleanup().await;
}
on_both!(
    a_created_request_is_what_the_database_holds,
    a_created_request_is_what_the_database_holds
);

/// `erasure_start` creates the request and runs its table step in one
/// transaction. When the step is refused (a legal hold), nothing changes,
/// and the request is there all the same, failed with the reason; the same
/// request id, once the hold is released, continues it.
async fn a_started_erasure_that_fails_is_recorded(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let hold = engine
        .hold("reviews", "3000", "litigation 2026-19", Some("legal"))
        .await
        .unwrap();
    let (seq_before, _) = engine.audit_head().await.unwrap();
    let err = engine.erasure_start(&req("1")).await.unwrap_err();
    assert_eq!(err.code(), "legal_hold", "{err}");
    // Refused: no audit entry, no deletion record.
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before);
    assert_eq!(erase_records(&engine).await, 0);
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "ann@example.com"
    );
    let failed = engine.erasure("ticket-1").await.unwrap();
    assert_eq!(failed.state, "failed");
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or("")
            .contains("litigation 2026-19")
    );
    assert!(failed.deletion_id.is_none());
    assert!(failed.steps.iter().all(|s| s.state == "pending"));
    engine
        .release_hold(
            &lethe_store::HoldRef::Id(hold.id),
            Some("settled"),
            Some("legal"),
        )
        .await
        .unwrap();
    let done = engine.erasure_start(&req("1")).await.unwrap();
    assert_eq!(done.id, failed.id);
    assert!(done.deletion_id.is_some());
    assert_eq!(done.state, "in_progress");
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "erased-1@example.invalid"
    );
    // One request, one deletion record of kind erase, and the erased rows
    // announced.
    assert_eq!(engine.erasures(None, 10).await.unwrap().len(), 1);
    assert_eq!(erase_records(&engine).await, 1);
    // The hold's release, then the erasure.
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before + 2);
    assert_reviews_erased(&engine, done.deletion_id.as_deref().unwrap()).await;
    db.cleanup().await;
}
on_both!(
    a_started_erasure_that_fails_is_recorded,
    a_started_erasure_that_fails_is_recorded
);

/// Two `erasure_start`s of the same new request id at once: one creates the
/// request and runs its table step, the other continues that request; both
/// return it, and the subject is erased once.
async fn concurrent_starts_of_one_request_erase_once(b: Backend) {
    let Some((db, engine)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    let (seq_before, _) = engine.audit_head().await.unwrap();
    let (r1, r2) = (req("1"), req("1"));
    let (a, b2) = tokio::join!(engine.erasure_start(&r1), engine.erasure_start(&r2));
    let (a, b2) = (a.unwrap(), b2.unwrap());
    assert_eq!(a.id, b2.id);
    assert!(a.deletion_id.is_some() && a.deletion_id == b2.deletion_id);
    // Erased once: one request, one deletion record, one audit entry, and
    // each entity's rows announced once.
    assert_eq!(engine.erasures(None, 10).await.unwrap().len(), 1);
    assert_eq!(erase_records(&engine).await, 1);
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before + 1);
    let outbox = engine
        .outbox(a.deletion_id.as_deref().unwrap())
        .await
        .unwrap();
    let reviews: Vec<_> = outbox
        .iter()
        .filter(|r| r.event == "erased" && r.entity == "reviews")
        .collect();
    assert_eq!(reviews.len(), 1, "{outbox:?}");
    assert_eq!(reviews[0].rows, 2);
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 1").await,
        "erased-1@example.invalid"
    );
    db.cleanup().await;
}
on_both!(
    concurrent_starts_of_one_request_erase_once,
    concurrent_starts_of_one_request_erase_once
);

/// Erasures one after another on one connection: a dry run, a completed
/// erasure, one refused by a hold and another completed. SQLite keeps its
/// scope tables on the connection and empties them; whatever a refused or
/// previewed erasure collected must never reach the next one's changes.
async fn erasures_in_turn_on_one_connection_touch_only_their_subject(b: Backend) {
    let Some((db, setup)) = shop_with(b, &erasure_policy()).await else {
        return;
    };
    setup.db().close().await;
    let engine = Engine::connect_with(
        policy(&erasure_policy()),
        &db.url,
        lethe_store::ConnectOptions {
            max_connections: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let hold = engine
        .hold("reviews", "3001", "litigation 2026-19", Some("legal"))
        .await
        .unwrap();
    let (seq_before, _) = engine.audit_head().await.unwrap();
    let preview = engine.erasure_preview("users", "2").await.unwrap();
    assert!(preview.rows.iter().any(|r| r.entity == "reviews"));
    engine.erasure_start(&req("1")).await.unwrap();
    assert_eq!(
        all_ids(&engine, "reviews", "id").await,
        vec!["3001", "3003"]
    );
    let err = engine.erasure_start(&req("2")).await.unwrap_err();
    assert_eq!(err.code(), "legal_hold", "{err}");
    let rec = engine.erasure_start(&req("3")).await.unwrap();
    // User 3's review only: user 2's (collected by the refused erasure and
    // the dry run) stays, and so does user 2.
    assert_eq!(all_ids(&engine, "reviews", "id").await, vec!["3001"]);
    assert_eq!(
        one(&engine, "SELECT email FROM users WHERE id = 2").await,
        "bob@example.com"
    );
    let outbox = engine
        .outbox(rec.deletion_id.as_deref().unwrap())
        .await
        .unwrap();
    assert!(
        outbox
            .iter()
            .any(|r| r.event == "erased" && r.entity == "reviews" && r.rows == 1),
        "{outbox:?}"
    );
    engine
        .release_hold(
            &lethe_store::HoldRef::Id(hold.id),
            Some("settled"),
            Some("legal"),
        )
        .await
        .unwrap();
    // Released, user 2's request continues: only their review goes.
    engine.erasure_start(&req("2")).await.unwrap();
    assert!(all_ids(&engine, "reviews", "id").await.is_empty());
    assert_eq!(
        q(&engine, "SELECT email FROM users ORDER BY id").await,
        vec![
            vec!["erased-1@example.invalid".to_string()],
            vec!["erased-2@example.invalid".to_string()],
            vec!["erased-3@example.invalid".to_string()],
        ]
    );
    assert_eq!(erase_records(&engine).await, 3);
    // One audit entry per completed erasure and one for the release; none
    // for the dry run or the refused start; the chain holds.
    assert_eq!(engine.audit_head().await.unwrap().0, seq_before + 4);
    assert!(engine.audit_verify(None).await.unwrap().ok);
    engine.db().close().await;
    db.cleanup().await;
}
on_both!(
    erasures_in_turn_on_one_connection_touch_only_their_subject,
    erasures_in_turn_on_one_connection_touch_only_their_subject
);
