//! Cold storage end to end on SQLite and PostgreSQL (`LETHE_TEST_PG`; skipped
//! locally when unreachable, never under `CI=true`): deleted rows exported
//! to a directory and to S3 (a local moto server), purged from the
//! database, imported back and restored value for value; personal data
//! sealed per subject (a shredded subject's values do not come back, the
//! others' do); a file that does not match its manifest is refused.

#[path = "../../lethe-store/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::path::Path;

use common::*;
use lethe_cold::{ExportOptions, ImportOptions, Location, S3Settings};
use lethe_store::{DeleteRequest, Engine, PurgeOptions};
use serde_json::json;

fn cold_policy(dir: &str) -> String {
    format!(
        "[erasure]\nsubject = \"users\"\n\n[export]\nto = \"{dir}\"\n{}",
        SHOP_POLICY
            .replace(
                "[entities.users]\nkey = [\"id\"]",
                "[entities.users]\nkey = [\"id\"]\nretention = \"30d\"",
            )
            .replace(
                "[entities.orders]\nkey = [\"id\"]",
                "[entities.orders]\nkey = [\"id\"]\nretention = \"30d\"\npii = { total = \"null\" }",
            )
            .replace(
                "[entities.order_items]\nkey = [\"order_id\", \"product_id\"]",
                "[entities.order_items]\nkey = [\"order_id\", \"product_id\"]\nretention = \"30d\"",
            )
            .replace(
                "[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"",
                "[entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"\nretention = \"7d\"\npii = { qty = \"null\" }",
            )
    )
}

async fn backdate(engine: &Engine, b: Backend, deletion: &str, day: &str) {
    let t = match b {
        Backend::Postgres => format!("'{day}T10:00:00Z'"),
        Backend::Sqlite => format!("'{day}T10:00:00.000000Z'"),
    };
    let mut tx = engine.db().begin_write().await.unwrap();
    for e in engine.policy().entities.values().filter(|e| e.is_soft()) {
        tx.exec(
            &format!(
                "UPDATE {} SET deleted_at = {t} WHERE deletion_id = '{deletion}'",
                e.table
            ),
            &[],
        )
        .await
        .unwrap();
    }
    tx.exec(
        &format!(
            "UPDATE {} SET deleted_at = {t} WHERE deletion_id = '{deletion}'",
            own(b, "archive")
        ),
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Every exported file's text, decompressed.
fn exported_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".jsonl.zst") {
                let mut s = String::new();
                zstd::stream::read::Decoder::new(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                out.push_str(&s);
            }
        }
    }
    out
}

async fn dump(engine: &Engine, sql: &str) -> Vec<Vec<String>> {
    q(engine, sql).await
}

async fn round_trip(b: Backend, location: &Location, local_dir: Option<&Path>, db: TestDb) {
    let mut engine = Engine::connect(policy(&cold_policy(&location.name)), &db.url)
        .await
        .unwrap();
    engine.migrate(false).await.unwrap();
    let users_before = dump(
        &engine,
        "SELECT CAST(id AS TEXT), email, name FROM users ORDER BY id",
    )
    .await;
    let orders_before = dump(&engine, "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), CAST(total AS TEXT) FROM orders ORDER BY id").await;
    let carts_before = dump(
        &engine,
        "SELECT CAST(id AS TEXT), CAST(qty AS TEXT) FROM cart_items ORDER BY id",
    )
    .await;
    let ann = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    let cy = engine
        .delete(&DeleteRequest::new("users", "3"))
        .await
        .unwrap();
    let bob = engine
        .delete(&DeleteRequest::new("users", "2"))
        .await
        .unwrap();
    backdate(&engine, b, &ann.deletion_id, "2020-01-01").await;
    backdate(&engine, b, &cy.deletion_id, "2020-01-01").await;
    backdate(&engine, b, &bob.deletion_id, "2020-01-02").await;

    let r = lethe_cold::export(&engine, location, &ExportOptions::default())
        .await
        .unwrap();
    let files: Vec<(String, String, u64)> = r
        .files
        .iter()
        .map(|f| (f.entity.clone(), f.day.clone(), f.rows))
        .collect();
    assert!(
        files.contains(&("users".into(), "2020-01-01".into(), 2)),
        "{files:?}"
    );
    assert!(
        files.contains(&("users".into(), "2020-01-02".into(), 1)),
        "{files:?}"
    );
    assert!(
        files.contains(&("orders".into(), "2020-01-01".into(), 2)),
        "{files:?}"
    );
    assert!(
        files.contains(&("cart_items".into(), "2020-01-01".into(), 2)),
        "snapshots too: {files:?}"
    );
    assert!(
        r.sealed >= 6,
        "emails, names, totals and quantities sealed: {}",
        r.sealed
    );
    let manifest = r.manifest.clone().unwrap();
    // Nothing personal in the files, in the clear.
    if let Some(dir) = local_dir {
        let text = exported_text(dir);
        for pii in [
            "ann@example.com",
            "\"Ann\"",
            "cy@example.com",
            "bob@example.com",
        ] {
            assert!(!text.contains(pii), "{pii} in an export file");
        }
        assert!(text.contains("$sealed"));
        assert!(dir.join(&manifest).is_file());
    }
    // Days are exported once per location.
    let again = lethe_cold::export(&engine, location, &ExportOptions::default())
        .await
        .unwrap();
    assert!(again.manifest.is_none() && again.files.is_empty());
    assert_eq!(again.skipped.len(), r.files.len());
    // A day that is not over is refused.
    let today = lethe_store::time_text(time::OffsetDateTime::now_utc())[..10].to_string();
    let err = lethe_cold::export(
        &engine,
        location,
        &ExportOptions {
            day: Some(today),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not over"), "{err}");

    // Cy is erased: his data key is shredded. Then retention purges all.
    let cy_subject = engine.subject_id("users", &[json!(3)]);
    let mut tx = engine.db().begin_write().await.unwrap();
    tx.exec(
        &lethe_sql::cold::shred_subject_key(engine.dialect()),
        &[
            Some(cy_subject),
            Some(lethe_store::time_text(time::OffsetDateTime::now_utc())),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let purged = engine
        .purge(&PurgeOptions::default(), &mut |_| {})
        .await
        .unwrap();
    assert!(purged.done() >= 10, "{:?}", purged.tasks);
    assert!(all_ids(&engine, "users", "id").await.is_empty());
    assert!(
        engine.restore(&ann.deletion_id, None).await.is_err(),
        "purged"
    );

    // Import: checked, opened, back in the archive store, restorable.
    let imp = lethe_cold::import(&engine, location, &ImportOptions::default())
        .await
        .unwrap();
    // Wishlist snapshots have no retention: still in the store, skipped.
    assert_eq!(imp.imported(), r.rows() - 3);
    assert!(
        imp.shredded >= 2,
        "Cy's email and name stay closed: {}",
        imp.shredded
    );
    assert!(
        imp.reopened.contains(&ann.deletion_id),
        "{:?}",
        imp.reopened
    );
    let again = lethe_cold::import(&engine, location, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(again.imported(), 0, "importing twice is harmless");
    let cy_row = one(
        &engine,
        &format!(
            "SELECT CAST(row AS TEXT) FROM {} WHERE entity = 'users' AND deletion_id = '{}'",
            own(b, "archive"),
            cy.deletion_id
        ),
    )
    .await;
    let cy_row: serde_json::Value = serde_json::from_str(&cy_row).unwrap();
    assert_eq!(cy_row["email"], serde_json::Value::Null, "shredded");
    assert_eq!(cy_row["id"], json!(3));

    engine.refresh().await.unwrap();
    engine.restore(&ann.deletion_id, None).await.unwrap();
    engine.restore(&bob.deletion_id, None).await.unwrap();
    let users_after = dump(
        &engine,
        "SELECT CAST(id AS TEXT), email, name FROM users ORDER BY id",
    )
    .await;
    assert_eq!(
        users_after,
        users_before
            .iter()
            .filter(|u| u[0] != "3")
            .cloned()
            .collect::<Vec<_>>()
    );
    let orders_after = dump(&engine, "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), CAST(total AS TEXT) FROM orders ORDER BY id").await;
    assert_eq!(
        orders_after, orders_before,
        "every value back, the sealed totals too"
    );
    let carts_after = dump(
        &engine,
        "SELECT CAST(id AS TEXT), CAST(qty AS TEXT) FROM cart_items ORDER BY id",
    )
    .await;
    assert_eq!(carts_after, carts_before);
    assert!(engine.audit_verify(None).await.unwrap().ok);
    db.cleanup().await;
}

async fn directory_round_trip(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    db.exec(&shop_schema(b)).await;
    db.exec(SHOP_DATA).await;
    let dir = TempDir::new();
    let loc = Location::open(
        dir.0.join("cold").to_str().unwrap(),
        &S3Settings::default(),
        Path::new("."),
        true,
    )
    .unwrap();
    round_trip(b, &loc, Some(&dir.0.join("cold")), db).await;
}
on_both!(directory, directory_round_trip);

async fn a_file_that_does_not_match_its_manifest_is_refused(b: Backend) {
    let Some((db, engine)) = shop_with(b, &cold_policy("unused")).await else {
        return;
    };
    let dir = TempDir::new();
    let loc = Location::open(
        dir.0.to_str().unwrap(),
        &S3Settings::default(),
        Path::new("."),
        true,
    )
    .unwrap();
    let d = engine
        .delete(&DeleteRequest::new("users", "1"))
        .await
        .unwrap();
    backdate(&engine, b, &d.deletion_id, "2020-03-01").await;
    let r = lethe_cold::export(&engine, &loc, &ExportOptions::default())
        .await
        .unwrap();
    let victim = dir.0.join(&r.files[0].path);
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let err = lethe_cold::import(&engine, &loc, &ImportOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, lethe_cold::ColdError::Corrupt(_))
            && err.to_string().contains(&r.files[0].path),
        "{err}"
    );
    db.cleanup().await;
}
on_both!(
    corrupt_file,
    a_file_that_does_not_match_its_manifest_is_refused
);

/// A moto S3 server of the test's own, stopped on drop.
struct Moto(std::process::Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

async fn moto() -> Option<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if !in_ci() => {
            eprintln!("skipping S3 test: moto_server not found ({e}); pip install 'moto[server]'");
            return None;
        }
        Err(e) => panic!("moto_server required under CI (pip install 'moto[server]'): {e}"),
    };
    let m = Moto(child, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(m);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start on port {port}");
}

async fn s3_round_trip(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let Some(server) = moto().await else {
        return;
    };
    db.exec(&shop_schema(b)).await;
    db.exec(SHOP_DATA).await;
    let endpoint = format!("http://127.0.0.1:{}", server.1);
    // CreateBucket: a PUT on the bucket (reqwest needs the process's TLS
    // provider, as the library installs it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let status = reqwest::Client::new()
        .put(format!("{endpoint}/lethe-cold"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "create bucket: {status}");
    let s3 = S3Settings {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        credentials: Some(("test".into(), "test".into())),
    };
    let loc = Location::open("s3://lethe-cold/shop/exports", &s3, Path::new("."), true).unwrap();
    round_trip(b, &loc, None, db).await;
}
on_both!(s3, s3_round_trip);
