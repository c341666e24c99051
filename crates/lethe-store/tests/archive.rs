//! The archive strategy: rows move out of their table into Lethe's archive
//! store with their deletion id and the fingerprint of the table's columns,
//! and come back by restore, also after the table changed. Every test runs
//! on SQLite and PostgreSQL.

mod common;

use common::*;
use lethe_store::{DeleteRequest, Engine, RestoreOptions, SetValue, StoreError};
use serde_json::json;

fn schema(b: Backend) -> String {
    let big = if b == Backend::Postgres {
        "bigint"
    } else {
        "INTEGER"
    };
    format!(
        "
CREATE TABLE customers (id {big} PRIMARY KEY, email TEXT NOT NULL, name TEXT);
CREATE TABLE invoices (id {big} PRIMARY KEY, customer_id {big} NOT NULL REFERENCES customers (id), number TEXT NOT NULL, total {big} NOT NULL, note TEXT);
CREATE TABLE invoice_lines (id {big} PRIMARY KEY, invoice_id {big} NOT NULL REFERENCES invoices (id), item TEXT NOT NULL, qty {big} NOT NULL);
INSERT INTO customers (id, email, name) VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob');
INSERT INTO invoices (id, customer_id, number, total, note) VALUES (10, 1, '1010', 300, 'rush'), (11, 1, '1011', 40, NULL), (12, 2, 'INV-12', 7, NULL), (13, 2, '1013', 9, NULL);
INSERT INTO invoice_lines (id, invoice_id, item, qty) VALUES (100, 10, 'desk', 1), (101, 10, 'lamp', 2), (110, 11, 'pen', 4), (120, 12, 'ink', 1), (130, 13, 'cap', 3);
"
    )
}

const POLICY: &str = r#"
[entities.customers]
key = ["id"]
pii = { email = "hash", name = "redact" }

[entities.invoices]
key = ["id"]
strategy = "archive"

[entities.invoice_lines]
key = ["id"]
strategy = "archive"

[[relations]]
child = "invoices"
columns = ["customer_id"]
parent = "customers"
on_delete = "cascade"

[[relations]]
child = "invoice_lines"
columns = ["invoice_id"]
parent = "invoices"
on_delete = "cascade"
"#;

async fn setup(b: Backend) -> Option<(TestDb, Engine)> {
    let db = TestDb::new(b).await?;
    db.exec(&schema(b)).await;
    let mut engine = Engine::connect(policy(POLICY), &db.url).await.unwrap();
    let errors: Vec<_> = engine
        .check()
        .into_iter()
        .filter(|f| f.level == lethe_core::Level::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    engine.migrate(false).await.unwrap();
    Some((db, engine))
}

/// Every column of a table's rows as text, by key: to compare a restored
/// table with the original, value for value.
async fn dump(engine: &Engine, table: &str, cols: &str) -> Vec<Vec<String>> {
    let casts: Vec<String> = cols
        .split(", ")
        .map(|c| format!("COALESCE(CAST({c} AS TEXT), '<null>')"))
        .collect();
    q(
        engine,
        &format!("SELECT {} FROM {table} ORDER BY id", casts.join(", ")),
    )
    .await
}

async fn stored(engine: &Engine, b: Backend, deletion: &str) -> Vec<Vec<String>> {
    q(
        engine,
        &format!(
            "SELECT kind, entity, CAST(key AS TEXT), COALESCE(fingerprint, '') FROM {} WHERE deletion_id = '{deletion}' ORDER BY entity, id",
            own(b, "archive")
        ),
    )
    .await
}

async fn archive_moves_rows_and_restore_brings_them_back(b: Backend) {
    let Some((db, engine)) = setup(b).await else {
        return;
    };
    let inv_cols = "id, customer_id, number, total, note";
    let line_cols = "id, invoice_id, item, qty";
    let invoices_before = dump(&engine, "invoices", inv_cols).await;
    let lines_before = dump(&engine, "invoice_lines", line_cols).await;

    let done = engine
        .delete(
            &DeleteRequest::new("invoices", "10")
                .actor("ops")
                .reason("duplicate"),
        )
        .await
        .unwrap();
    let id = done.deletion_id.clone();
    let counts: Vec<(&str, &str, u64)> = done
        .affected
        .iter()
        .map(|c| (c.entity.as_str(), c.strategy.as_str(), c.rows))
        .collect();
    assert_eq!(
        counts,
        [("invoices", "archive", 1), ("invoice_lines", "archive", 2)]
    );
    // Rows: out of their tables, in the archive store with the deletion id
    // and a registered fingerprint.
    assert_eq!(all_ids(&engine, "invoices", "id").await, ["11", "12", "13"]);
    assert_eq!(
        all_ids(&engine, "invoice_lines", "id").await,
        ["110", "120", "130"]
    );
    let rows = stored(&engine, b, &id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r[0] == "archive" && r[3].len() == 32));
    assert_eq!(rows[0][1], "invoice_lines");
    assert_eq!(rows[2][1], "invoices");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rows[2][2]).unwrap(),
        json!({"id": 10})
    );
    let fps = q(
        &engine,
        &format!(
            "SELECT entity, columns FROM {} ORDER BY entity",
            own(b, "fingerprints")
        ),
    )
    .await;
    assert_eq!(fps.len(), 2);
    assert!(fps[1][1].contains("\"note\""), "{fps:?}");
    // Audit and outbox, in the same transaction.
    let audit = q(
        &engine,
        &format!("SELECT action, entry FROM {} ORDER BY seq", own(b, "audit")),
    )
    .await;
    assert_eq!(audit.len(), 1);
    let entry: serde_json::Value = serde_json::from_str(&audit[0][1]).unwrap();
    assert_eq!(entry["counts"], json!({"invoices": 1, "invoice_lines": 2}));
    assert_eq!(entry["actor"], json!("ops"));
    let outbox = engine.outbox(&id).await.unwrap();
    let keys = |entity: &str| -> Vec<serde_json::Value> {
        outbox
            .iter()
            .filter(|o| o.entity == entity && o.event == "deleted")
            .flat_map(|o| o.key_objects())
            .collect()
    };
    assert_eq!(keys("invoices"), [json!({"id": 10})]);
    assert_eq!(keys("invoice_lines").len(), 2);
    // The guard still refuses a raw DELETE on an archive table.
    let err = engine
        .db()
        .begin_write()
        .await
        .unwrap()
        .exec("DELETE FROM invoices WHERE id = 13", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");

    // Archiving a soft parent's cascade: the customer is marked, its
    // remaining invoice and lines move to the archive.
    let cust = engine
        .delete(&DeleteRequest::new("customers", "1"))
        .await
        .unwrap();
    assert_eq!(mark(&engine, "customers", "id = 1").await, cust.deletion_id);
    assert_eq!(all_ids(&engine, "invoices", "id").await, ["12", "13"]);
    assert_eq!(stored(&engine, b, &cust.deletion_id).await.len(), 2);

    // Restore in reverse order: every value comes back as it was.
    engine.restore(&cust.deletion_id, None).await.unwrap();
    let r = engine.restore(&id, Some("ops")).await.unwrap();
    assert_eq!(r.restored.iter().map(|c| c.rows).sum::<u64>(), 3);
    assert_eq!(dump(&engine, "invoices", inv_cols).await, invoices_before);
    assert_eq!(
        dump(&engine, "invoice_lines", line_cols).await,
        lines_before
    );
    assert!(stored(&engine, b, &id).await.is_empty(), "copies removed");
    let restored: Vec<_> = engine
        .outbox(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.event == "restored")
        .collect();
    assert_eq!(restored.len(), 2);
    assert!(engine.audit_verify(None).await.unwrap().ok);

    // A row inserted since under the same key blocks the restore.
    let again = engine
        .delete(&DeleteRequest::new("invoices", "13"))
        .await
        .unwrap();
    db.exec("INSERT INTO invoices (id, customer_id, number, total) VALUES (13, 2, '2013', 1)")
        .await;
    let err = engine.restore(&again.deletion_id, None).await.unwrap_err();
    let StoreError::RestoreConflict { conflicts } = &err else {
        panic!("{err}");
    };
    assert_eq!(conflicts[0].entity, "invoices");
    assert_eq!(conflicts[0].active, json!({"id": 13}));
    assert_eq!(stored(&engine, b, &again.deletion_id).await.len(), 2);
    db.cleanup().await;
}
on_both!(
    archive_round_trip,
    archive_moves_rows_and_restore_brings_them_back
);

/// Applies DDL outside Lethe. SQLite cannot change a column's type or add a
/// NOT NULL column without a default in place: the tables are rebuilt, as
/// an application's migration would.
async fn change_schema(db: &TestDb, b: Backend) {
    match b {
        Backend::Postgres => {
            db.exec(
                "ALTER TABLE invoices ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';
                 ALTER TABLE invoices ADD COLUMN memo TEXT;
                 ALTER TABLE invoices DROP COLUMN note;
                 ALTER TABLE invoices ALTER COLUMN number TYPE bigint USING number::bigint;
                 ALTER TABLE invoice_lines ADD COLUMN sku TEXT NOT NULL DEFAULT 'x';
                 ALTER TABLE invoice_lines ALTER COLUMN sku DROP DEFAULT",
            )
            .await
        }
        Backend::Sqlite => {
            raw_sqlite(
                &db.url,
                &[
                    "PRAGMA foreign_keys = OFF",
                    "CREATE TABLE invoices_new (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id), number INTEGER NOT NULL, total INTEGER NOT NULL, currency TEXT NOT NULL DEFAULT 'EUR', memo TEXT)",
                    "INSERT INTO invoices_new (id, customer_id, number, total) SELECT id, customer_id, number, total FROM invoices",
                    "DROP TABLE invoices",
                    "ALTER TABLE invoices_new RENAME TO invoices",
                    "CREATE TABLE invoice_lines_new (id INTEGER PRIMARY KEY, invoice_id INTEGER NOT NULL REFERENCES invoices (id), item TEXT NOT NULL, qty INTEGER NOT NULL, sku TEXT NOT NULL)",
                    "INSERT INTO invoice_lines_new (id, invoice_id, item, qty, sku) SELECT id, invoice_id, item, qty, 'x' FROM invoice_lines",
                    "DROP TABLE invoice_lines",
                    "ALTER TABLE invoice_lines_new RENAME TO invoice_lines",
                ],
            )
            .await
        }
    }
}

async fn restore_follows_the_table_as_it_is_now(b: Backend) {
    let Some((db, mut engine)) = setup(b).await else {
        return;
    };
    let ten = engine
        .delete(&DeleteRequest::new("invoices", "10"))
        .await
        .unwrap();
    let twelve = engine
        .delete(&DeleteRequest::new("invoices", "12"))
        .await
        .unwrap();
    change_schema(&db, b).await;
    engine.refresh().await.unwrap();
    engine.migrate(false).await.unwrap(); // guards of rebuilt tables

    // The dry run lists every change and what it would do.
    let p = engine.restore_preview(&ten.deletion_id).await.unwrap();
    let changes: Vec<(String, String, String)> = p
        .schema_changes
        .iter()
        .map(|c| {
            (
                format!("{}.{}", c.entity, c.column),
                c.change.clone(),
                c.outcome.clone(),
            )
        })
        .collect();
    let has = |col: &str, change: &str, outcome: &str| {
        changes
            .iter()
            .any(|(c, ch, o)| c == col && ch == change && o.contains(outcome))
    };
    assert!(has("invoices.currency", "added", "default"), "{changes:?}");
    assert!(has("invoices.memo", "added", "NULL"), "{changes:?}");
    assert!(
        has("invoices.note", "dropped", "1 value(s) would be lost"),
        "{changes:?}"
    );
    assert!(
        has("invoices.number", "retyped", "converted"),
        "{changes:?}"
    );
    assert!(
        has("invoice_lines.sku", "added", "needs a value"),
        "{changes:?}"
    );
    assert_eq!(p.problems.len(), 2, "{:?}", p.problems);

    // Refused, naming the column without a value and the value that would
    // be lost; nothing changes.
    let err = engine.restore(&ten.deletion_id, None).await.unwrap_err();
    let StoreError::RestoreShape { problems } = &err else {
        panic!("{err}");
    };
    let kinds: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.column.as_str(), p.problem.as_str()))
        .collect();
    assert!(kinds.contains(&("sku", "needs_value")), "{kinds:?}");
    assert!(kinds.contains(&("note", "values_lost")), "{kinds:?}");
    let lost = problems.iter().find(|p| p.column == "note").unwrap();
    assert_eq!(lost.examples[0].value, "rush");
    assert!(lost.message.contains("'rush'") && lost.message.contains("--drop-missing"));
    assert!(err.to_string().contains("sku") || err.to_string().contains("note"));
    assert_eq!(all_ids(&engine, "invoices", "id").await, ["11", "13"]);
    assert_eq!(stored(&engine, b, &ten.deletion_id).await.len(), 3);

    // A --set for a column that was not added is a usage error.
    let bad = RestoreOptions {
        set: vec!["nope=1".parse::<SetValue>().unwrap()],
        ..Default::default()
    };
    let err = engine
        .restore_with(&ten.deletion_id, &bad)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");

    // With a value for the new column and the loss accepted, it goes back.
    // The entity's own value wins over the one for any table.
    let opts = RestoreOptions {
        set: vec![
            "sku=OTHER".parse().unwrap(),
            "invoice_lines.sku=LEGACY".parse().unwrap(),
        ],
        drop_missing: true,
        ..Default::default()
    };
    engine.restore_with(&ten.deletion_id, &opts).await.unwrap();
    assert_eq!(
        dump(&engine, "invoices", "id, number, total, currency, memo").await[0],
        ["10", "1010", "300", "EUR", "<null>"]
    );
    assert_eq!(
        one(
            &engine,
            "SELECT CAST(number + 1 AS TEXT) FROM invoices WHERE id = 10"
        )
        .await,
        "1011",
        "number is a number now"
    );
    assert_eq!(
        q(
            &engine,
            "SELECT sku FROM invoice_lines WHERE invoice_id = 10"
        )
        .await,
        [["LEGACY"], ["LEGACY"]]
    );
    assert!(stored(&engine, b, &ten.deletion_id).await.is_empty());

    // A value the new type cannot take is named, with its row.
    let opts = RestoreOptions {
        set: vec!["sku=LEGACY".parse().unwrap()],
        ..Default::default()
    };
    let err = engine
        .restore_with(&twelve.deletion_id, &opts)
        .await
        .unwrap_err();
    let StoreError::RestoreShape { problems } = &err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].problem, "not_castable");
    assert_eq!(problems[0].column, "number");
    assert_eq!(problems[0].examples[0].value, "INV-12");
    assert_eq!(problems[0].examples[0].key, json!({"id": 12}));
    assert!(
        problems[0].message.contains("INV-12"),
        "{}",
        problems[0].message
    );
    assert_eq!(all_ids(&engine, "invoices", "id").await, ["10", "11", "13"]);
    assert!(engine.audit_verify(None).await.unwrap().ok);
    db.cleanup().await;
}
on_both!(
    restore_after_schema_change,
    restore_follows_the_table_as_it_is_now
);

async fn a_table_changed_behind_lethe_stops_the_delete(b: Backend) {
    let Some((db, mut engine)) = setup(b).await else {
        return;
    };
    // Another program adds a column after Lethe read the schema.
    db.exec("ALTER TABLE invoice_lines ADD COLUMN discount INTEGER")
        .await;
    let err = engine
        .delete(&DeleteRequest::new("invoices", "10"))
        .await
        .unwrap_err();
    let StoreError::SchemaChanged { entity, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(entity, "invoice_lines");
    // Nothing happened: rows in place, nothing stored, no audit entry.
    assert_eq!(
        all_ids(&engine, "invoices", "id").await,
        ["10", "11", "12", "13"]
    );
    assert_eq!(
        one(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "archive"))
        )
        .await,
        "0"
    );
    assert_eq!(
        one(
            &engine,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {}", own(b, "audit"))
        )
        .await,
        "0"
    );
    // Once Lethe has read the schema again, the row is stored whole.
    engine.refresh().await.unwrap();
    db.exec("UPDATE invoice_lines SET discount = 5 WHERE id = 100")
        .await;
    let done = engine
        .delete(&DeleteRequest::new("invoices", "10"))
        .await
        .unwrap();
    let row = one(
        &engine,
        &format!(
            "SELECT CAST(row AS TEXT) FROM {} WHERE deletion_id = '{}' AND entity = 'invoice_lines' AND key = {}",
            own(b, "archive"),
            done.deletion_id,
            match b {
                Backend::Postgres => "'{\"id\": 100}'::jsonb",
                Backend::Sqlite => "json_object('id', 100)",
            }
        ),
    )
    .await;
    let row: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(row["discount"], json!(5));
    db.cleanup().await;
}
on_both!(
    schema_changed_behind_lethe,
    a_table_changed_behind_lethe_stops_the_delete
);
