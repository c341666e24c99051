//! `lethe lint` through the binary: findings in files, exit codes, JSON,
//! SARIF checked against the SARIF 2.1.0 schema, and the statements a
//! PostgreSQL instance (started by the test, with pg_stat_statements
//! preloaded) has actually run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let p =
            std::env::temp_dir().join(format!("lethe-lint-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lethe(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(args)
        .current_dir(dir)
        .env_remove("LETHE_DATABASE_URL")
        .output()
        .expect("run lethe");
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
        o.status.code().unwrap_or(-1),
    )
}

const POLICY: &str = r#"
[defaults]
strategy = "soft"

[entities.users]
key = ["id"]
unique = [["email"]]

[entities.orders]
key = ["id"]

[entities.sessions]
key = ["id"]
strategy = "hard"

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"
"#;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

#[test]
fn lint_files_exit_codes_json_and_sarif() {
    let d = Dir::new();
    d.write("lethe.toml", POLICY);
    d.write(
        "app/orders.py",
        "def history(cur, uid):\n    cur.execute(\"SELECT o.id FROM orders o \"\n                \"WHERE o.user_id = %s\", (uid,))\n",
    );
    d.write(
        "app/clean.sql",
        "-- the active-rows view and an explicit filter\nSELECT * FROM users_active;\nSELECT id FROM orders WHERE deleted_at IS NULL AND user_id = $1;\n",
    );
    d.write(
        "app/node_modules/dep.js",
        "const q = 'SELECT * FROM orders';\n",
    );

    // Findings: exit 1, the file's own line and column, the fixed query.
    let (out, err, code) = lethe(&d.0, &["lint", "app"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("app/orders.py:2:35: error[unfiltered-read] reads orders (as o) without `o.deleted_at IS NULL`"), "{out}");
    assert!(
        out.contains(
            "fixed: SELECT o.id FROM orders o WHERE o.user_id = $1 AND o.deleted_at IS NULL"
        ),
        "{out}"
    );
    assert!(
        out.contains("1 finding (1 unfiltered-read), 0 skipped"),
        "{out}"
    );
    assert!(
        !out.contains("node_modules"),
        "dependencies are not linted: {out}"
    );

    // Clean: exit 0.
    let (out, _, code) = lethe(&d.0, &["lint", "app/clean.sql"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 findings, 0 skipped"), "{out}");

    // JSON.
    let (out, _, code) = lethe(&d.0, &["lint", "app", "--format", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["findings"], 1);
    assert_eq!(v["summary"]["statements"], 3);
    let f = &v["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["entity"].as_str()),
        (Some("unfiltered-read"), Some("orders"))
    );
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(2), Some(35))
    );

    // SARIF, written to a file, valid against the SARIF 2.1.0 schema.
    d.write("app/broken.sql", "SELEC id FROM orders;\n");
    let (out, err, code) = lethe(
        &d.0,
        &["lint", "app", "--format", "sarif", "--output", "out.sarif"],
    );
    assert_eq!(code, 1, "{out}{err}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.0.join("out.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), 1);
    assert_eq!(run["results"][0]["ruleId"], "unfiltered-read");
    let loc = &run["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "app/orders.py");
    assert_eq!(loc["region"]["startLine"], 2);
    let notes = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert_eq!(
        notes.len(),
        1,
        "the unparseable statement is reported: {notes:?}"
    );
    validate_sarif(&d.0.join("out.sarif"));

    // A statement the parser cannot read: skipped with the reason, exit 0;
    // --strict makes it exit 1.
    let (out, _, code) = lethe(&d.0, &["lint", "app/broken.sql"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("app/broken.sql:1:1: skipped:") && out.contains("SELEC"),
        "{out}"
    );
    let (_, _, code) = lethe(&d.0, &["lint", "app/broken.sql", "--strict"]);
    assert_eq!(code, 1);

    // Usage errors: exit 2 and a message.
    let (_, err, code) = lethe(&d.0, &["lint", "no/such/dir"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no/such/dir: no such file or directory"),
        "{err}"
    );
    d.write("bad.toml", "[entities.users\nkey = 1\n");
    let (_, err, code) = lethe(&d.0, &["--policy", "bad.toml", "lint", "app"]);
    assert_eq!(code, 2);
    assert!(err.contains("error:") && err.contains("bad.toml"), "{err}");
    let (_, err, code) = lethe(&d.0, &["lint", "app", "--format", "xml"]);
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = lethe(
        &d.0,
        &["lint", "--pg-stat-statements", "--database", "sqlite:x.db"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("postgres://"), "{err}");
}

/// Checks a SARIF file against the official 2.1.0 schema (vendored in
/// tests/fixtures from the MIT-licensed npm package @microsoft/jest-sarif)
/// with Python's jsonschema, which this machine has.
fn validate_sarif(path: &Path) {
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif-2.1.0-rtm.5.json");
    let script = "import json,sys,jsonschema\nschema=json.load(open(sys.argv[1]))\ndoc=json.load(open(sys.argv[2]))\njsonschema.Draft4Validator(schema).validate(doc)\nprint('valid')\n";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            schema.to_str().unwrap(),
            path.to_str().unwrap(),
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("No module named 'jsonschema'") && !in_ci() {
                eprintln!("skipping the SARIF schema check: python3 has no jsonschema");
                return;
            }
            panic!("SARIF does not validate: {err}");
        }
        Err(e) if !in_ci() => eprintln!("skipping the SARIF schema check: {e}"),
        Err(e) => panic!("python3 is needed for the SARIF schema check: {e}"),
    }
}

/// A PostgreSQL instance of the test's own, with pg_stat_statements
/// preloaded (the machine's shared server is not restarted for it).
struct OwnPostgres {
    dir: Dir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = Dir::new();
        let data = dir.0.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // initdb refuses to run as root: run the server as `postgres` then.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        if root {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres", dir.0.to_str().unwrap()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let run = |prog: &str, args: &[&str]| {
            let p = bin.join(prog);
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(p);
                c
            } else {
                Command::new(p)
            };
            let o = c.args(args).output().unwrap();
            assert!(
                o.status.success(),
                "{prog} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c shared_preload_libraries=pg_stat_statements -c fsync=off",
            dir.0.display()
        );
        run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                dir.0.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        Some(OwnPostgres { dir, bin, port })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.0.join("data");
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"));
        let _ = c
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_pg_stat_statements_from_an_instance_of_its_own() {
    let Some(pg) = OwnPostgres::start() else {
        assert!(!in_ci(), "PostgreSQL's server binaries are needed under CI");
        eprintln!("skipping: no PostgreSQL server binaries in /usr/lib/postgresql");
        return;
    };
    let url = pg.url();
    let d = Dir::new();
    d.write("lethe.toml", POLICY);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for s in [
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)",
        "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), total numeric NOT NULL)",
        "CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint)",
        "INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com')",
        "INSERT INTO orders VALUES (10, 1, 5), (11, 2, 7)",
    ] {
        sqlx::query(s).execute(&pool).await.unwrap();
    }

    // Before the extension exists: a clear error, exit 2.
    let (_, err, code) = lethe(&d.0, &["--database", &url, "lint", "--pg-stat-statements"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CREATE EXTENSION pg_stat_statements"), "{err}");

    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&pool)
        .await
        .unwrap();
    // Lethe's own work: migrate and a delete (their statements are left out).
    let (out, err, code) = lethe(&d.0, &["--database", &url, "migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    let (out, err, code) = lethe(&d.0, &["--database", &url, "delete", "users", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&pool)
        .await
        .unwrap();
    let (out, err, code) = lethe(&d.0, &["--database", &url, "delete", "users", "1"]);
    assert_eq!(code, 0, "{out}{err}");

    // The application's statements: one leaks deleted orders, one looks a
    // user up by e-mail without the filter, two are clean.
    for s in [
        "SELECT o.id, o.total FROM orders o WHERE o.user_id = 1",
        "SELECT id FROM users WHERE email = 'a@example.com'",
        "SELECT id FROM users WHERE deleted_at IS NULL AND id = 2",
        "SELECT count(*) FROM orders_active",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let (out, err, code) = lethe(
        &d.0,
        &[
            "--database",
            &url,
            "lint",
            "--pg-stat-statements",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut got: Vec<(String, String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["entity"].as_str().unwrap().to_string(),
                f["query"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "unfiltered-read".into(),
                "orders".into(),
                "SELECT o.id, o.total FROM orders o WHERE o.user_id = $1".into()
            ),
            (
                "unique-lookup".into(),
                "users".into(),
                "SELECT id FROM users WHERE email = $1".into()
            ),
        ],
        "{out}"
    );
    assert!(
        v["findings"][0]["file"]
            .as_str()
            .unwrap()
            .starts_with("pg_stat_statements#")
    );
    let m = live_note_counts(&err);
    assert!(
        m.1 > 0,
        "Lethe's own statements are counted as left out: {err}"
    );
    assert!(m.0 >= 4, "{err}");
}

/// `(statements read, Lethe's own left out)` from the note on stderr.
fn live_note_counts(err: &str) -> (usize, usize) {
    let line = err
        .lines()
        .find(|l| l.contains("statements read from pg_stat_statements"))
        .unwrap_or("");
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
    )
}
