//! `lethe purge` killed with SIGKILL in the middle of its batches, while
//! another program keeps writing, then run again: it finishes the job, and
//! at no point is an active, recently deleted or held row removed. On
//! PostgreSQL (`LETHE_TEST_PG`) and SQLite; PostgreSQL is skipped locally
//! when unreachable, never under `CI=true`.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lethe_store::{DeleteRequest, Engine};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn pg_base_url() -> String {
    std::env::var("LETHE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".to_string())
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh database: `(url, PostgreSQL database name to drop)`.
async fn database(pg: bool, dir: &Path) -> Option<(String, Option<String>)> {
    if !pg {
        let path = dir.join("purge.db");
        std::fs::File::create(&path).unwrap();
        return Some((format!("sqlite://{}", path.display()), None));
    }
    let base = pg_base_url();
    let mut admin = match PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if !in_ci() => {
            eprintln!("skipping PostgreSQL test: cannot connect to {base}: {e}");
            return None;
        }
        Err(e) => panic!("PostgreSQL required under CI: {e}"),
    };
    let name = format!("lethe_purge_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(i) if base[..i].ends_with(|c: char| c != '/') => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    Some((url, Some(name)))
}

async fn drop_database(name: Option<String>) {
    if let Some(name) = name
        && let Ok(mut admin) = PgConnection::connect(&pg_base_url()).await
    {
        let _ = admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}

const POLICY: &str = r#"
[entities.folders]
key = ["id"]
retention = "30d"

[entities.notes]
key = ["id"]
retention = "30d"

[[relations]]
child = "notes"
columns = ["folder_id"]
parent = "folders"
on_delete = "cascade"
"#;

async fn count(engine: &Engine, sql: &str) -> u64 {
    let rows = engine.db().rows(sql, &[]).await.unwrap();
    rows[0][0].clone().unwrap_or_default().parse().unwrap()
}

/// A SIGKILLed client leaves its PostgreSQL backend running: a COMMIT it
/// had sent still lands after the kill (CI once counted the rows left
/// before the last batch's commit did). Wait until no other backend of this
/// database is inside a statement or a transaction, so what is counted next
/// is final.
async fn settle_killed_backends(engine: &Engine) {
    const BUSY: &str = "SELECT CAST(count(*) AS TEXT) FROM pg_stat_activity \
        WHERE datname = current_database() AND pid <> pg_backend_pid() \
        AND backend_type = 'client backend' AND state <> 'idle'";
    for _ in 0..300 {
        if count(engine, BUSY).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the killed purge's backend is still busy after 30 s");
}

async fn purge_survives_sigkill(pg: bool) {
    let dir = Dir(std::env::temp_dir().join(format!(
        "lethe-purge-faults-{}",
        uuid::Uuid::now_v7().simple()
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let Some((url, pg_name)) = database(pg, &dir.0).await else {
        return;
    };
    let policy_path = dir.0.join("lethe.toml");
    std::fs::write(&policy_path, POLICY).unwrap();
    let big = if pg { "bigint" } else { "INTEGER" };
    let db = lethe_store::Db::connect(&url, Default::default())
        .await
        .unwrap();
    {
        let mut tx = db.begin_write().await.unwrap();
        for s in [
            format!("CREATE TABLE folders (id {big} PRIMARY KEY, name TEXT NOT NULL)"),
            format!(
                "CREATE TABLE notes (id {big} PRIMARY KEY, folder_id {big} NOT NULL REFERENCES folders (id), body TEXT NOT NULL)"
            ),
            "CREATE INDEX notes_folder ON notes (folder_id)".into(),
            "INSERT INTO folders (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'held'), (4, 'active')"
                .into(),
        ] {
            tx.exec(&s, &[]).await.unwrap();
        }
        // 3,000 notes in each folder.
        let series = if pg {
            "SELECT g, 1 + (g - 1) / 3000, 'note ' || g FROM generate_series(1, 12000) g"
                .to_string()
        } else {
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 12000) SELECT g, 1 + (g - 1) / 3000, 'note ' || g FROM s".to_string()
        };
        tx.exec(
            &format!("INSERT INTO notes (id, folder_id, body) {series}"),
            &[],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    db.close().await;
    let policy = lethe_core::parse_policy(POLICY, "lethe.toml").unwrap();
    let mut engine = Engine::connect(policy, &url).await.unwrap();
    engine.migrate(false).await.unwrap();
    let mut expired = Vec::new();
    for f in ["1", "2", "3"] {
        expired.push(
            engine
                .delete(&DeleteRequest::new("folders", f))
                .await
                .unwrap()
                .deletion_id,
        );
    }
    let old = if pg {
        "'2020-01-01T00:00:00Z'"
    } else {
        "'2020-01-01T00:00:00.000000Z'"
    };
    {
        let mut tx = engine.db().begin_write().await.unwrap();
        for t in ["folders", "notes"] {
            tx.exec(
                &format!("UPDATE {t} SET deleted_at = {old} WHERE deleted_at IS NOT NULL"),
                &[],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    engine
        .hold("folders", "3", "audit of folder 3", Some("legal"))
        .await
        .unwrap();

    let spawn = |rate: &str| {
        Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args([
                "--policy",
                policy_path.to_str().unwrap(),
                "purge",
                "--batch-size",
                "100",
                "--max-rows-per-second",
                rate,
                "--json",
            ])
            .env("LETHE_DATABASE_URL", &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lethe purge")
    };
    // About 3 s of work at this rate; killed after 1 s, with a writer
    // adding, deleting (recently: not expired) and reading meanwhile.
    let mut child = spawn("2000");
    let writer = async {
        for i in 0..40u64 {
            let id = 20_000 + i;
            let mut tx = engine.db().begin_write().await.unwrap();
            tx.exec(
                &format!("INSERT INTO notes (id, folder_id, body) VALUES ({id}, 4, 'new')"),
                &[],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            if i % 2 == 0 {
                engine
                    .delete(&DeleteRequest::new("notes", (9_001 + i).to_string()))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ((), ()) = tokio::join!(writer, tokio::time::sleep(Duration::from_millis(1000)));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed mid-purge: {status:?}");
    if pg {
        settle_killed_backends(&engine).await;
    }

    const EXPIRED_NOTES: &str =
        "SELECT CAST(count(*) AS TEXT) FROM notes WHERE folder_id IN (1, 2)";
    let left = count(&engine, EXPIRED_NOTES).await;
    assert!(
        left > 0 && left < 6000,
        "the kill came mid-purge: {left} left"
    );
    // Never an active, recent or held row.
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM notes WHERE folder_id = 4"
        )
        .await,
        3040
    );
    assert_eq!(
        count(&engine, "SELECT CAST(count(*) AS TEXT) FROM notes WHERE folder_id = 4 AND deleted_at IS NOT NULL").await,
        20,
        "recent deletions stay"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM notes WHERE folder_id = 3"
        )
        .await,
        3000,
        "held"
    );

    // Run again: it finishes.
    let out = spawn("1000000").wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The first run never reached the folders: their notes were not gone.
    assert_eq!(report["done"].as_u64().unwrap(), left + 2);
    assert_eq!(count(&engine, EXPIRED_NOTES).await, 0);
    assert_eq!(
        count(&engine, "SELECT CAST(count(*) AS TEXT) FROM folders").await,
        2,
        "the held folder and the active one"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT CAST(count(*) AS TEXT) FROM notes WHERE folder_id IN (3, 4)"
        )
        .await,
        6040
    );
    assert_eq!(report["held"].as_u64(), Some(3001));
    // Every purged row was announced exactly once, over both runs.
    let announced = count(
        &engine,
        if pg {
            "SELECT CAST(COALESCE(sum(row_count), 0) AS TEXT) FROM lethe.outbox WHERE event = 'purged'"
        } else {
            "SELECT CAST(COALESCE(sum(row_count), 0) AS TEXT) FROM lethe_outbox WHERE event = 'purged'"
        },
    )
    .await;
    assert_eq!(announced, 6002);
    for id in &expired[..2] {
        assert!(engine.deletion(id).await.unwrap().purged_at.is_some());
    }
    assert!(
        engine
            .deletion(&expired[2])
            .await
            .unwrap()
            .purged_at
            .is_none()
    );
    assert!(engine.audit_verify(None).await.unwrap().ok);
    engine.db().close().await;
    drop_database(pg_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_survives_sigkill_postgres() {
    purge_survives_sigkill(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_survives_sigkill_sqlite() {
    purge_survives_sigkill(false).await;
}
