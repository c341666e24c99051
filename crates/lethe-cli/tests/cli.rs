//! The `lethe` binary end to end on SQLite: output, --json and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let p =
            std::env::temp_dir().join(format!("lethe-cli-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lethe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(args)
        .current_dir(dir)
        .env_remove("LETHE_DATABASE_URL")
        .env_remove("LETHE_ACTOR")
        .output()
        .expect("run lethe")
}

fn text(o: &Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
        o.status.code().unwrap_or(-1),
    )
}

/// A demo shop in `dir` (the demo leaves its database and policy there).
fn demo_shop(dir: &Dir) -> PathBuf {
    let shop = dir.0.join("shop");
    let o = lethe(&dir.0, &["demo", "--dir", shop.to_str().unwrap()]);
    let (out, err, code) = text(&o);
    assert_eq!(code, 0, "demo failed:\n{out}\n{err}");
    shop
}

#[test]
fn help_documents_exit_codes() {
    let d = Dir::new();
    let (out, _, code) = text(&lethe(&d.0, &["--help"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit codes:") && out.contains("3  delete blocked"),
        "{out}"
    );
    for cmd in [
        "init",
        "check",
        "migrate",
        "delete",
        "restore",
        "deletions",
        "show",
        "audit",
        "relay",
        "deliveries",
        "replay",
        "reconcile",
        "purge",
        "hold",
        "stats",
        "migrate-strategy",
        "archive",
        "worker",
        "jobs",
        "demo",
    ] {
        assert!(out.contains(cmd), "{cmd} missing from --help");
    }
}

#[test]
fn demo_walks_through_everything() {
    let d = Dir::new();
    let shop = d.0.join("shop");
    let (out, err, code) = text(&lethe(&d.0, &["demo", "--dir", shop.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}\n{err}");
    for phrase in [
        "mark deleted",
        "remove (snapshot kept)",
        "SELECT name FROM products_active  ->  Solaris, Kind of Blue",
        "raw DELETE on products is refused",
        "ok: the unique index only covers active rows",
        "delete blocked by relation products.category_id -> categories",
        "SELECT name FROM products_active  ->  Dune, Solaris, Kind of Blue",
        "search \"dune\"  ->  no match",
        "search \"dune\"  ->  product 1 (Dune) (re-indexed",
        "lethe.deleted products/1",
        "lethe.restored products/1",
        "1 purged from users (table after 90d)",
        "1 archived from orders (table after 90d)",
        "cannot be restored: rows of it were purged at",
        "purge of *",
        "erasure gdpr-2026-001: completed",
        "keep: 1 row(s) (invoices: 10 years (tax law))",
        "intact: 9 entries",
    ] {
        assert!(out.contains(phrase), "demo output lacks {phrase:?}:\n{out}");
    }
    // Running it again in the same place refuses instead of mixing data.
    let (_, err, code) = text(&lethe(&d.0, &["demo", "--dir", shop.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn commands_on_the_demo_shop() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    // Plan: blocked by nothing, changes nothing.
    let (out, _, code) = text(&lethe(&shop, &["delete", "users", "3", "--dry-run"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("plan: delete users 3") && out.contains("nothing was changed"),
        "{out}"
    );
    // Blocked delete: exit 3, names the relation and the count.
    let (_, err, code) = text(&lethe(&shop, &["delete", "categories", "4"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("products.category_id -> categories: 1 active row(s)"),
        "{err}"
    );
    // Delete with --json.
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "delete", "users", "3", "--actor", "ops", "--reason", "test", "--json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["deletion_id"].as_str().unwrap().to_string();
    assert_eq!(v["affected"]["users"], 1);
    assert_eq!(v["affected"]["cart_items"], 1);
    assert_eq!(v["nullified"]["reviews"], 1);
    // Again: already deleted, exit 5. Unknown: exit 4. Bad key: exit 2.
    let (_, err, code) = text(&lethe(&shop, &["delete", "users", "3"]));
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("already deleted") && err.contains(&id),
        "{err}"
    );
    let (_, err, code) = text(&lethe(&shop, &["delete", "users", "77"]));
    assert_eq!(code, 4, "{err}");
    let (_, err, code) = text(&lethe(&shop, &["delete", "users", "x"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not an integer"), "{err}");
    let (_, err, code) = text(&lethe(&shop, &["delete", "ghosts", "1"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown entity \"ghosts\""), "{err}");
    // Listing and showing.
    let (out, _, code) = text(&lethe(&shop, &["deletions", "--json"]));
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["actor"], "ops");
    let (out, _, code) = text(&lethe(&shop, &["deletions", "--entity", "users"]));
    assert_eq!(code, 0);
    assert!(out.contains(&id) && out.contains("ops"), "{out}");
    let (out, _, code) = text(&lethe(&shop, &["show", &id]));
    assert_eq!(code, 0);
    assert!(out.contains("deleted users (1 key)"), "{out}");
    // Restore: dry run, for real, then twice (exit 5).
    let (out, _, code) = text(&lethe(&shop, &["restore", &id, "--dry-run"]));
    assert_eq!(code, 0, "{out}");
    let (out, err, code) = text(&lethe(&shop, &["restore", &id, "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id));
    let (_, err, code) = text(&lethe(&shop, &["restore", &id]));
    assert_eq!(code, 5);
    assert!(err.contains("already restored"), "{err}");
    // Audit.
    let (head, _, code) = text(&lethe(&shop, &["audit", "head"]));
    assert_eq!(code, 0);
    let (out, _, code) = text(&lethe(
        &shop,
        &["audit", "verify", "--expect-head", head.trim()],
    ));
    assert_eq!(code, 0, "{out}");
    let (out, _, code) = text(&lethe(
        &shop,
        &["audit", "verify", "--expect-head", "feedface"],
    ));
    assert_eq!(code, 6, "{out}");
    // Migrate again: nothing to do.
    let (out, _, code) = text(&lethe(&shop, &["migrate"]));
    assert_eq!(code, 0);
    assert!(out.contains("nothing to do"), "{out}");
}

#[test]
fn delivery_commands_on_the_demo_shop() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let events = || {
        std::fs::read_to_string(shop.join("events.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    let before = events();
    let (_, err, code) = text(&lethe(&shop, &["delete", "products", "3", "--json"]));
    assert_eq!(code, 0, "{err}");
    // Nothing delivered yet: the deliveries list says the outbox waits.
    let (out, _, code) = text(&lethe(&shop, &["deliveries"]));
    assert_eq!(code, 0);
    assert!(out.contains("not yet dispatched"), "{out}");
    // The search index still holds the product: reconcile finds it and
    // exits 1; --fix repairs it.
    let (out, _, code) = text(&lethe(&shop, &["reconcile", "--json"]));
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["found"], 1);
    assert_eq!(v["checks"][0]["examples"][0], "3");
    let (out, err, code) = text(&lethe(&shop, &["relay", "--once", "--json"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stats"]["failed"], 0);
    assert_eq!(v["open"], 0);
    assert!(events() > before, "the relay appended the events");
    let (out, _, code) = text(&lethe(&shop, &["reconcile"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("in sync"), "{out}");
    let (out, _, code) = text(&lethe(
        &shop,
        &["deliveries", "--state", "delivered", "--json"],
    ));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = v["deliveries"][0]["id"].as_i64().unwrap();
    assert!(
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
    );
    // Replay one: delivered again, with the same event ids.
    let (_, err, code) = text(&lethe(&shop, &["replay", &first.to_string()]));
    assert_eq!(code, 0, "{err}");
    let (_, _, code) = text(&lethe(&shop, &["relay", "--once"]));
    assert_eq!(code, 0);
    // Bad input: unknown delivery (4), bad state (2), nothing to replay (2),
    // unknown sink for reconcile (2).
    assert_eq!(text(&lethe(&shop, &["replay", "987654"])).2, 4);
    assert_eq!(text(&lethe(&shop, &["deliveries", "--state", "lost"])).2, 2);
    assert_eq!(text(&lethe(&shop, &["replay"])).2, 2);
    let (_, err, code) = text(&lethe(&shop, &["reconcile", "--sink", "nope"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no sink named \"nope\""), "{err}");
    let (_, err, code) = text(&lethe(&shop, &["replay", "--dead", "--json"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn policy_errors_name_file_line_and_key() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let policy = std::fs::read_to_string(shop.join("lethe.toml")).unwrap();
    let bad = policy.replacen("strategy = \"hard\"", "strategy = \"hardd\"", 1);
    std::fs::write(shop.join("bad.toml"), &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("hardd")).unwrap() + 1;
    let (_, err, code) = text(&lethe(&shop, &["--policy", "bad.toml", "check"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("bad.toml:{line}: entities.cart_items.strategy")),
        "{err}"
    );
    assert!(err.contains("unknown strategy \"hardd\""), "{err}");
    // A policy naming a column that does not exist: check exits 6.
    let unknown = policy.replacen("unique = [[\"sku\"]]", "unique = [[\"skew\"]]", 1);
    std::fs::write(shop.join("unknown.toml"), unknown).unwrap();
    let (out, _, code) = text(&lethe(&shop, &["--policy", "unknown.toml", "check"]));
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("unknown column \"products.skew\""), "{out}");
    // A missing policy file.
    let (_, err, code) = text(&lethe(&d.0, &["check"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read the policy") && err.contains("lethe init"),
        "{err}"
    );
}

#[test]
fn init_writes_a_policy_and_refuses_to_overwrite() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let url = format!("sqlite://{}", shop.join("shop.db").display());
    let (out, err, code) = text(&lethe(
        &d.0,
        &["--database", &url, "init", "--out", "new.toml"],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote new.toml"));
    let written = std::fs::read_to_string(d.0.join("new.toml")).unwrap();
    assert!(
        written.contains("[entities.order_items]\nkey = [\"order_id\", \"product_id\"]"),
        "{written}"
    );
    assert!(
        written
            .contains("child = \"categories\"\ncolumns = [\"parent_id\"]\nparent = \"categories\""),
        "{written}"
    );
    assert!(
        !written.contains("lethe_audit"),
        "Lethe's own tables are not entities"
    );
    // It parses and checks clean against the same database.
    let (out, err, code) = text(&lethe(&d.0, &["--policy", "new.toml", "check"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (_, err, code) = text(&lethe(
        &d.0,
        &["--database", &url, "init", "--out", "new.toml"],
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    let (_, _, code) = text(&lethe(
        &d.0,
        &["--database", &url, "init", "--out", "new.toml", "--force"],
    ));
    assert_eq!(code, 0);
}

#[test]
fn missing_database_and_unknown_table_are_clear_errors() {
    let d = Dir::new();
    let db = d.0.join("plain.db");
    let url = format!("sqlite://{}", db.display());
    // Create a table with the demo's own machinery: init on an empty file
    // fails cleanly first.
    let (_, err, code) = text(&lethe(&d.0, &["--database", &url, "init"]));
    assert_ne!(code, 0);
    assert!(err.contains("error:"), "{err}");
    let shop = demo_shop(&d);
    let policy = std::fs::read_to_string(shop.join("lethe.toml")).unwrap();
    // A fresh copy of the schema without Lethe's tables: use a new table name.
    let extra = format!("{policy}\n[entities.coupons]\nkey = [\"id\"]\n");
    std::fs::write(shop.join("extra.toml"), extra).unwrap();
    let (out, _, code) = text(&lethe(&shop, &["--policy", "extra.toml", "check"]));
    assert_eq!(code, 6);
    assert!(out.contains("unknown table \"coupons\""), "{out}");
}

/// Output a person reads, pinned: a change to it shows up in review.
#[test]
fn human_output_snapshots() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let run = |args: &[&str]| {
        let (out, err, code) = text(&lethe(&shop, args));
        format!("$ lethe {}\nexit {code}\n{out}{err}", args.join(" "))
    };
    insta::assert_snapshot!("dry_run_user", run(&["delete", "users", "3", "--dry-run"]));
    insta::assert_snapshot!(
        "dry_run_blocked",
        run(&["delete", "categories", "4", "--dry-run"])
    );
    insta::assert_snapshot!("check_clean", run(&["check"]));
    insta::assert_snapshot!("not_found", run(&["delete", "users", "77"]));
    insta::assert_snapshot!("bad_key", run(&["delete", "order_items", "order_id=10"]));
}

/// Runs SQL on the demo shop's SQLite file, outside Lethe.
fn sql(shop: &Path, statements: &[&str]) {
    let db = shop.join("shop.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        for s in statements {
            c.execute(sqlx::AssertSqlSafe(s.to_string())).await.unwrap();
        }
        c.close().await.unwrap();
    });
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn retention_commands_on_the_demo_shop() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let policy_path = shop.join("lethe.toml");
    // The demo's policy has retentions (users 90d, orders archived after
    // 90d, carts 30d); add a subject, an export location and a job.
    let policy = std::fs::read_to_string(&policy_path).unwrap();
    let policy = format!(
        "{policy}\n[export]\nto = \"cold\"\n\n[jobs.nightly]\nrun = \"purge\"\nschedule = \"0 3 * * *\"\n"
    );
    std::fs::write(&policy_path, policy).unwrap();
    let (out, err, code) = text(&lethe(&shop, &["delete", "users", "3", "--json"]));
    assert_eq!(code, 0, "{err}");
    let id = json_of(&out)["deletion_id"].as_str().unwrap().to_string();
    // Forty days pass (the deletion's time moves back).
    sql(
        &shop,
        &[
            &format!(
                "UPDATE users SET deleted_at = '2020-01-01T00:00:00.000000Z' WHERE deletion_id = '{id}'"
            ),
            &format!(
                "UPDATE lethe_archive SET deleted_at = '2020-01-01T00:00:00.000000Z' WHERE deletion_id = '{id}'"
            ),
        ],
    );
    let (out, _, code) = text(&lethe(&shop, &["stats", "--json", "--entity", "users"]));
    assert_eq!(code, 0);
    let s = json_of(&out);
    // The demo deleted one user today; ours is the one due.
    assert!(s[0]["deleted"].as_u64().unwrap() >= 1);
    assert_eq!(s[0]["due_for_purge"].as_u64(), Some(1), "{out}");
    let (out, _, code) = text(&lethe(&shop, &["stats"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("DUE FOR PURGE") && out.contains("1 (90d)"),
        "{out}"
    );

    // A hold keeps it.
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "hold",
            "add",
            "users",
            "3",
            "--reason",
            "legal case 7",
            "--json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["reason"], "legal case 7");
    let (out, _, code) = text(&lethe(&shop, &["purge", "--dry-run", "--json"]));
    assert_eq!(code, 0);
    let dry = json_of(&out);
    // The whole deletion is held: the user and her cart and wishlist.
    assert_eq!(dry["due"].as_u64(), Some(0), "{out}");
    assert!(dry["held"].as_u64().unwrap() >= 1, "{out}");
    let (out, _, code) = text(&lethe(&shop, &["hold", "list"]));
    assert_eq!(code, 0);
    assert!(out.contains("legal case 7"), "{out}");
    let (_, err, code) = text(&lethe(
        &shop,
        &["hold", "add", "users", "99", "--reason", "x"],
    ));
    assert_eq!(code, 4, "{err}");
    let (_, err, code) = text(&lethe(&shop, &["hold", "remove", "nope"]));
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = text(&lethe(&shop, &["hold", "remove", "4242"]));
    assert_eq!(code, 4, "{err}");
    let (out, err, code) = text(&lethe(
        &shop,
        &["hold", "remove", "users", "3", "--reason", "closed"],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("released hold"), "{out}");

    // Export, purge, import, restore.
    let (out, err, code) = text(&lethe(&shop, &["archive", "export", "--json"]));
    assert_eq!(code, 0, "{err}");
    let exp = json_of(&out);
    assert!(exp["rows"].as_u64().unwrap() >= 1, "{out}");
    assert!(
        shop.join("cold")
            .join(exp["manifest"].as_str().unwrap())
            .is_file()
    );
    let (out, _, code) = text(&lethe(&shop, &["archive", "list"]));
    assert_eq!(code, 0);
    assert!(out.contains("2020-01-01"), "{out}");
    let (out, err, code) = text(&lethe(&shop, &["purge"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("purged "), "{out}");
    let (_, err, code) = text(&lethe(&shop, &["restore", &id]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("purged"), "{err}");
    let (out, err, code) = text(&lethe(&shop, &["archive", "import", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        json_of(&out)["reopened"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == id.as_str()),
        "{out}"
    );
    let (_, err, code) = text(&lethe(&shop, &["restore", &id]));
    assert_eq!(code, 0, "{err}");

    // Strategy migration, the worker, and bad input.
    let (_, err, code) = text(&lethe(&shop, &["delete", "users", "1"]));
    assert_eq!(code, 0, "{err}");
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "migrate-strategy",
            "order_items",
            "--to",
            "archive",
            "--json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(
        json_of(&out)["moves"][0]["moved"].as_u64().unwrap() >= 1,
        "{out}"
    );
    let (out, _, code) = text(&lethe(
        &shop,
        &["migrate-strategy", "orders", "--to", "archive"],
    ));
    assert_eq!(code, 0);
    assert!(
        out.contains("deleted row")
            && out.contains("of orders")
            && out.contains("the policy still says"),
        "{out}"
    );
    let (out, err, code) = text(&lethe(&shop, &["worker", "--once", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["ran"].as_u64(), Some(1));
    let (out, _, code) = text(&lethe(&shop, &["jobs"]));
    assert_eq!(code, 0);
    assert!(out.contains("nightly") && out.contains("done"), "{out}");
    for (args, want) in [
        (vec!["purge", "--entity", "products"], 2),
        (vec!["purge", "--entity", "ghosts"], 2),
        (vec!["purge", "--batch-size", "0"], 2),
        (vec!["migrate-strategy", "ghosts", "--to", "archive"], 2),
        (vec!["migrate-strategy", "orders", "--to", "paper"], 2),
        (vec!["migrate-strategy", "cart_items", "--to", "soft"], 5),
        (vec!["archive", "export", "--day", "2999-01-01"], 2),
        (vec!["archive", "import", "--from", "empty-dir"], 2),
        (vec!["restore", &id, "--set", "no equals sign"], 2),
    ] {
        let (_, err, code) = text(&lethe(&shop, &args));
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

/// `lethe erase` and `lethe erasures` on the demo shop: dry run, a request
/// waiting for a sink until the relay ran, verification, certificate,
/// ledger, and the ledger reapplied to a copy of the database taken
/// before the erasure (a restored backup).
#[test]
fn erasure_commands_on_the_demo_shop() {
    let d = Dir::new();
    let shop = demo_shop(&d);
    let policy_path = shop.join("lethe.toml");
    // The demo's policy erases users: anonymized, orders and their lines
    // kept for tax law, the rest deleted.
    let policy = std::fs::read_to_string(&policy_path).unwrap();
    assert!(
        policy.contains("[erasure]\nsubject = \"users\""),
        "{policy}"
    );
    std::fs::write(&policy_path, policy).unwrap();
    let email = |db: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::{Connection, Row};
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{db}"))
                .await
                .unwrap();
            let r = sqlx::query("SELECT email FROM users WHERE id = 3")
                .fetch_one(&mut c)
                .await
                .unwrap();
            let e: String = r.get(0);
            c.close().await.unwrap();
            e
        })
    };
    let original = email(shop.join("shop.db").to_str().unwrap());

    // A dry run lists every row and changes nothing.
    let (out, err, code) = text(&lethe(
        &shop,
        &["erase", "users", "3", "--dry-run", "--json"],
    ));
    assert_eq!(code, 0, "{err}");
    let dry = json_of(&out);
    let users = dry["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "users")
        .unwrap();
    assert_eq!(users["action"], "anonymize");
    assert!(dry["rows"].as_array().unwrap().len() >= 3, "{out}");
    let (out, _, code) = text(&lethe(&shop, &["erase", "users", "3", "--dry-run"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("keep (invoices: 10 years (tax law))") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_eq!(email(shop.join("shop.db").to_str().unwrap()), original);

    // A backup before the erasure (the demo's database is closed now).
    let backup = d.0.join("backup.db");
    std::fs::copy(shop.join("shop.db"), &backup).unwrap();
    if shop.join("shop.db-wal").exists() {
        std::fs::copy(shop.join("shop.db-wal"), d.0.join("backup.db-wal")).unwrap();
    }

    // The request: the events sink waits for the relay.
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "erase",
            "users",
            "3",
            "--request-id",
            "T-9",
            "--reason",
            "GDPR Art. 17",
            "--json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let rec = json_of(&out);
    assert_eq!(rec["state"], "in_progress", "{out}");
    assert_ne!(email(shop.join("shop.db").to_str().unwrap()), original);
    let (out, _, code) = text(&lethe(&shop, &["erasures", "show", "T-9"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("sink:events") && out.contains("waiting") && out.contains("lethe relay"),
        "{out}"
    );
    let (_, err, code) = text(&lethe(&shop, &["relay", "--once"]));
    assert_eq!(code, 0, "{err}");
    let (out, err, code) = text(&lethe(&shop, &["erasures", "resume", "T-9"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("(request T-9): completed") && out.contains("certificate"),
        "{out}"
    );
    let (out, _, code) = text(&lethe(&shop, &["erasures", "verify", "T-9"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("clean:"), "{out}");
    let (out, _, code) = text(&lethe(&shop, &["erasures", "certificate", "T-9"]));
    assert_eq!(code, 0);
    let cert = json_of(&out);
    assert_eq!(cert["request_id"], "T-9");
    assert_eq!(cert["verification"]["clean"], true);
    let (out, _, code) = text(&lethe(&shop, &["erasures", "list"]));
    assert_eq!(code, 0);
    assert!(out.contains("T-9") && out.contains("completed"), "{out}");
    let (out, _, code) = text(&lethe(&shop, &["audit", "verify"]));
    assert_eq!(code, 0, "{out}");

    // Bad input.
    let (_, err, code) = text(&lethe(&shop, &["erase", "orders", "1"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("subject entity \"users\""), "{err}");
    let (_, err, code) = text(&lethe(&shop, &["erase", "users", "abc"]));
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = text(&lethe(&shop, &["erasures", "show", "nope"]));
    assert_eq!(code, 4, "{err}");
    let (_, err, code) = text(&lethe(
        &shop,
        &[
            "erasures", "confirm", "T-9", "--step", "nope", "--reason", "x",
        ],
    ));
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = text(&lethe(&shop, &["erasures", "list", "--state", "done"]));
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = text(&lethe(
        &shop,
        &["restore", rec["deletion_id"].as_str().unwrap()],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("erasure"), "{err}");
    // A key that matches nothing anywhere is refused, not certified.
    let (_, err, code) = text(&lethe(&shop, &["erase", "users", "999999"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("users 999999") && err.contains("not found"),
        "{err}"
    );
    // The erasure's deletion record reads as an erasure, not a deletion.
    let deletion = rec["deletion_id"].as_str().unwrap();
    let (out, _, code) = text(&lethe(&shop, &["show", deletion]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("status     erased") && !out.contains("lethe restore"),
        "{out}"
    );

    // The backup comes back: the ledger, kept outside, erases user 3 again.
    let ledger = d.0.join("ledger.jsonl");
    let (_, err, code) = text(&lethe(
        &shop,
        &["erasures", "ledger", "--out", ledger.to_str().unwrap()],
    ));
    assert_eq!(code, 0, "{err}");
    let lines = std::fs::read_to_string(&ledger).unwrap();
    // The demo's own erasure of user 1, and ours.
    assert_eq!(lines.lines().count(), 2);
    assert!(!lines.contains(&original));
    assert_eq!(email(backup.to_str().unwrap()), original);
    let restored = format!("sqlite:{}", backup.display());
    // A ledger from a database with another hash key cannot find anyone:
    // refused, and nothing changes.
    let foreign = d.0.join("foreign.jsonl");
    let entries: Vec<String> = lines
        .lines()
        .map(|l| {
            let mut v = json_of(l);
            v["key_check"] = "0".repeat(64).into();
            v.to_string()
        })
        .collect();
    std::fs::write(&foreign, entries.join("\n")).unwrap();
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "--database",
            &restored,
            "erasures",
            "reapply",
            "--ledger",
            foreign.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("another hash key"), "{err}");
    assert_eq!(email(backup.to_str().unwrap()), original);
    let (out, err, code) = text(&lethe(
        &shop,
        &[
            "--database",
            &restored,
            "erasures",
            "reapply",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 ledger entries reapplied") && out.contains("in_progress"),
        "{out}"
    );
    assert_ne!(email(backup.to_str().unwrap()), original);
    // The restored database's sinks hear of it too, then it completes.
    let (_, err, code) = text(&lethe(&shop, &["--database", &restored, "relay", "--once"]));
    assert_eq!(code, 0, "{err}");
    let again = format!("reapply:{}", rec["id"].as_str().unwrap());
    let (out, err, code) = text(&lethe(
        &shop,
        &["--database", &restored, "erasures", "resume", &again],
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("completed"), "{out}");
}
