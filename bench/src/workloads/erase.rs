//! Workload 9: GDPR erasure of one data subject owning 10,001 rows in six
//! tables (the user, 1,000 orders kept for tax law, 4,000 order items,
//! 2,000 reviews, 1,000 cart lines, 2,000 wishlist entries), among other
//! users' rows. Lethe: `Engine::erasure_start` (the request created and its
//! table step run in one transaction), what `lethe erase` does before the
//! sinks.
//! Baseline: the same deletes and the same anonymizing update, hand-written,
//! in one transaction.
//!
//! Erasure cannot be undone, so every operation gets a subject of its own:
//! subjects `1..=2 * (repetitions + 1)` all own the same rows, and each
//! repetition (the first is a warm-up) erases two of them, one by Lethe and
//! one by the baseline, taking turns at going first.

use std::time::Instant;

use lethe_store::Engine;
use lethe_store::erasure::{EraseRequest, ErasureRecord};

use super::{Settings, expect_rows, progress};
use crate::Result;
use crate::report::{Figure, Target};
use crate::sql::{Dialect, Pool, Stmt};

pub const NAME: &str = "erase";
const TARGET: f64 = 2.0;
/// Order items per order.
const ITEMS_PER_ORDER: u64 = 4;
/// Besides the subjects, other users own this many subjects' worth of rows
/// in every table, so the tables are not made of subjects only.
const BACKGROUND: u64 = 10;
/// What the `fake` rule makes of an e-mail and `redact` of a name.
const FAKE_EMAIL: (&str, &str) = ("erased-", "@example.invalid");
const REDACTED: &str = "[redacted]";

/// A table of rows owned by users: `per_subject` rows for each subject,
/// then `BACKGROUND * per_subject` spread over the other users.
struct Owned {
    table: &'static str,
    /// The column after `id` and `user_id`, whether it holds text (or an
    /// integer), and its values (SQL over `g`).
    extra: &'static str,
    text: bool,
    values: &'static str,
    per_subject: u64,
}

/// The fixture's sizes.
struct Shop {
    /// Users in all; ids `1..=subjects` are the subjects.
    users: u64,
    subjects: u64,
    orders: u64,
    reviews: u64,
    cart_items: u64,
    wishlist_items: u64,
}

impl Shop {
    fn new(s: &Settings) -> Shop {
        let subjects = 2 * (s.repetitions as u64 + 1);
        Shop {
            users: s.scaled(1_000).max(subjects + 10),
            subjects,
            orders: s.scaled(1_000),
            reviews: s.scaled(2_000),
            cart_items: s.scaled(1_000),
            wishlist_items: s.scaled(2_000),
        }
    }

    /// The tables with rows owned straight by a user (order items belong
    /// to orders).
    fn owned(&self) -> [Owned; 4] {
        [
            Owned {
                table: "orders",
                extra: "total",
                text: false,
                values: "g % 97 + 1",
                per_subject: self.orders,
            },
            Owned {
                table: "reviews",
                extra: "body",
                text: true,
                values: "'review ' || g",
                per_subject: self.reviews,
            },
            Owned {
                table: "cart_items",
                extra: "qty",
                text: false,
                values: "g % 3 + 1",
                per_subject: self.cart_items,
            },
            Owned {
                table: "wishlist_items",
                extra: "note",
                text: true,
                values: "'wish ' || g",
                per_subject: self.wishlist_items,
            },
        ]
    }

    /// Rows one subject owns in the tables erasure deletes rows from.
    fn deleted_per_subject(&self) -> u64 {
        self.orders * ITEMS_PER_ORDER + self.reviews + self.cart_items + self.wishlist_items
    }

    /// Rows of one subject in the six tables: the user, its kept orders
    /// and the deleted rows.
    fn per_subject(&self) -> u64 {
        1 + self.orders + self.deleted_per_subject()
    }

    fn total_rows(&self) -> u64 {
        let owned: u64 = self
            .owned()
            .iter()
            .map(|o| o.per_subject * (self.subjects + BACKGROUND))
            .sum();
        let orders = self.orders * (self.subjects + BACKGROUND);
        self.users + owned + orders * ITEMS_PER_ORDER
    }

    /// Creates and fills the six tables set-based, foreign-key columns
    /// indexed. No marker columns: `lethe migrate` adds them.
    async fn load(&self, pool: &Pool) -> Result<()> {
        let d = pool.dialect();
        let key = d.key_type();
        let (subjects, users) = (self.subjects, self.users);
        pool.exec(&format!(
            "CREATE TABLE users (id {key} PRIMARY KEY, email TEXT NOT NULL, name TEXT)"
        ))
        .await?;
        pool.exec(&format!(
            "INSERT INTO users (id, email, name) SELECT g, 'user' || g || '@example.com', 'User ' || g FROM {}",
            d.series(users)
        ))
        .await?;
        for o in self.owned() {
            let (t, n) = (o.table, o.per_subject);
            // Reviews outlive their author (set_null), so the column takes NULL.
            let not_null = if t == "reviews" { "" } else { " NOT NULL" };
            let ty = if o.text { "TEXT" } else { key };
            pool.exec(&format!(
                "CREATE TABLE {t} (id {key} PRIMARY KEY, user_id {key}{not_null} REFERENCES users (id), {} {ty} NOT NULL)",
                o.extra
            ))
            .await?;
            pool.exec(&format!("CREATE INDEX {t}_user_id ON {t} (user_id)"))
                .await?;
            // Subject k owns ids (k - 1) * n + 1 ..= k * n; the rest go round
            // the other users.
            let mine = subjects * n;
            pool.exec(&format!(
                "INSERT INTO {t} (id, user_id, {}) SELECT g, \
                 CASE WHEN g <= {mine} THEN (g - 1) / {n} + 1 ELSE {subjects} + 1 + (g - {mine} - 1) % {} END, \
                 {} FROM {}",
                o.extra,
                users - subjects,
                o.values,
                d.series(mine + BACKGROUND * n)
            ))
            .await?;
        }
        pool.exec(&format!(
            "CREATE TABLE order_items (id {key} PRIMARY KEY, order_id {key} NOT NULL REFERENCES orders (id), qty {key} NOT NULL)"
        ))
        .await?;
        pool.exec("CREATE INDEX order_items_order_id ON order_items (order_id)")
            .await?;
        let orders = self.orders * (subjects + BACKGROUND);
        pool.exec(&format!(
            "INSERT INTO order_items (id, order_id, qty) SELECT g, (g - 1) / {ITEMS_PER_ORDER} + 1, g % 5 + 1 FROM {}",
            d.series(orders * ITEMS_PER_ORDER)
        ))
        .await?;
        Ok(())
    }
}

const TABLES: [&str; 6] = [
    "users",
    "orders",
    "order_items",
    "reviews",
    "cart_items",
    "wishlist_items",
];

/// Users are the subjects and are anonymized; orders are kept for tax law;
/// everything else of theirs is deleted. Cart lines are `hard`, the rest
/// `soft`; a review outlives its author (`set_null`).
fn policy_toml(url: &str) -> String {
    let mut s = format!(
        "[database]\nurl = \"{url}\"\n\n[erasure]\nsubject = \"users\"\n\n\
         [entities.users]\nkey = [\"id\"]\npii = {{ email = \"fake\", name = \"redact\" }}\nerase = \"anonymize\"\n\n\
         [entities.orders]\nkey = [\"id\"]\nerase = \"keep\"\nlegal_basis = \"invoices: 10 years (tax law)\"\n\n\
         [entities.order_items]\nkey = [\"id\"]\nerase = \"delete\"\n\n\
         [entities.reviews]\nkey = [\"id\"]\nerase = \"delete\"\n\n\
         [entities.cart_items]\nkey = [\"id\"]\nstrategy = \"hard\"\nerase = \"delete\"\n\n\
         [entities.wishlist_items]\nkey = [\"id\"]\nerase = \"delete\"\n"
    );
    for (child, column, parent, on_delete) in [
        ("orders", "user_id", "users", "cascade"),
        ("order_items", "order_id", "orders", "cascade"),
        ("reviews", "user_id", "users", "set_null"),
        ("cart_items", "user_id", "users", "cascade"),
        ("wishlist_items", "user_id", "users", "cascade"),
    ] {
        s.push_str(&format!(
            "\n[[relations]]\nchild = \"{child}\"\ncolumns = [\"{column}\"]\nparent = \"{parent}\"\non_delete = \"{on_delete}\"\n"
        ));
    }
    s
}

/// The hand-written erasure of user `subject` in one transaction: the same
/// rows deleted and the same values written as Lethe's, passing the delete
/// guard the documented way. The deletes come after the bypass, the update
/// last (before the bypass is withdrawn on SQLite).
fn baseline(d: Dialect, subject: u64) -> Vec<Stmt> {
    let k = d.param(1, "bigint");
    let stmt = |sql: String| Stmt {
        sql,
        params: vec![subject.to_string()],
    };
    let mut stmts = vec![
        d.bypass(true),
        stmt(format!(
            "DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE user_id = {k})"
        )),
        stmt(format!("DELETE FROM reviews WHERE user_id = {k}")),
        stmt(format!("DELETE FROM cart_items WHERE user_id = {k}")),
        stmt(format!("DELETE FROM wishlist_items WHERE user_id = {k}")),
        stmt(format!(
            "UPDATE users SET email = '{}' || id || '{}', name = '{REDACTED}' WHERE id = {k}",
            FAKE_EMAIL.0, FAKE_EMAIL.1
        )),
    ];
    if d == Dialect::Sqlite {
        stmts.push(d.bypass(false));
    }
    stmts
}

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let say = |m: &str| progress(d.name(), NAME, m);
    let shop = Shop::new(s);
    let mut left = shop.total_rows();
    say(&format!(
        "loading {left} rows: {} users, {} of them subjects of {} rows each",
        shop.users,
        shop.subjects,
        shop.per_subject()
    ));
    let pool = Pool::connect(url).await?;
    shop.load(&pool).await?;
    let policy = lethe_core::parse_policy(&policy_toml(url), "bench")?;
    let mut engine = Engine::connect(policy, url).await?;
    engine.migrate(false).await?;
    pool.analyze(&TABLES).await?;
    check_rows(&pool, left).await?;
    settle(&pool).await?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let deleted = shop.deleted_per_subject();

    // [Lethe (create + table step), Lethe's table step alone, baseline]
    let mut times: [Vec<f64>; 2] = Default::default();
    // Run 0 is a warm-up and is not counted. Each run erases two subjects
    // (2r + 1 and 2r + 2): whoever goes first takes the first; Lethe goes
    // first in even runs, the baseline in odd ones.
    for run in 0..=s.repetitions {
        say(&format!("run {run}/{}", s.repetitions));
        let first = 2 * run as u64 + 1;
        let lethe_first = run % 2 == 0;
        let mut took = [0.0; 2];
        for lethe in [lethe_first, !lethe_first] {
            let subject = if lethe == lethe_first {
                first
            } else {
                first + 1
            };
            if lethe {
                let t = Instant::now();
                let rec = engine.erasure_start(&request(subject)).await?;
                took[0] = ms(t);
                check_record(&rec, &shop)?;
            } else {
                let t = Instant::now();
                let n = pool.transaction(&baseline(d, subject)).await?;
                took[1] = ms(t);
                // After the bypass: four deletes, then the update.
                expect_rows("baseline erasure (deletes)", n[1..5].iter().sum(), deleted)?;
                expect_rows("baseline erasure (update)", n[5], 1)?;
            }
            left -= deleted;
            check_erased(&pool, &shop, subject).await?;
            check_rows(&pool, left).await?;
            settle(&pool).await?;
        }
        if run > 0 {
            for (v, x) in times.iter_mut().zip(took) {
                v.push(x);
            }
        }
    }
    engine.db().close().await;
    pool.close().await;

    let rows = shop.per_subject();
    let figure = |measure: String, lethe: &[f64], target| {
        Figure::median_millis(d.name(), NAME, measure, lethe, &times[1], target)
    };
    Ok(vec![figure(
        format!(
            "erase a subject of {rows} rows in 6 tables (median of {})",
            s.repetitions
        ),
        &times[0],
        Target::MaxRatio(TARGET),
    )])
}

/// Between operations, untimed: on PostgreSQL `VACUUM ANALYZE` of the six
/// tables (as `deep` and `archive` do) and a `CHECKPOINT`, on SQLite the
/// WAL checkpointed and truncated (as `purge` does), so that neither side
/// pays for the other's dead rows or hits an automatic checkpoint the other
/// one started. After PostgreSQL's checkpoint every operation writes a
/// full image of each page it first changes to the WAL, as it would after
/// any checkpoint; without it, which side paid for that was down to where
/// the server's own checkpoints fell (the baseline's `DELETE` of 4,000
/// order items took 3 to 21 ms from one run to the next).
async fn settle(pool: &Pool) -> Result<()> {
    match pool.dialect() {
        Dialect::Postgres => {
            pool.settle(&TABLES).await?;
            // Needs superuser or `pg_checkpoint`: without either, the
            // figure is taken as before, and says so on stderr.
            if let Err(e) = pool.exec("CHECKPOINT").await {
                eprintln!("[postgres erase] no CHECKPOINT between operations: {e}");
            }
            Ok(())
        }
        Dialect::Sqlite => pool
            .exec("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .map(|_| ()),
    }
}

fn request(subject: u64) -> EraseRequest {
    EraseRequest {
        entity: "users".into(),
        key: subject.to_string(),
        request_id: Some(format!("bench-{subject}")),
        actor: Some("lethe-bench".into()),
        reason: Some("GDPR Art. 17 request (benchmark)".into()),
    }
}

/// Lethe's own account of the table step: every subject row of the
/// deleted and anonymized entities changed, the orders kept.
fn check_record(rec: &ErasureRecord, shop: &Shop) -> Result<()> {
    let entities = rec.summary["entities"]
        .as_array()
        .ok_or_else(|| format!("erasure {} has no entities in its summary", rec.id))?;
    let (mut changed, mut kept) = (0, 0);
    for e in entities {
        let rows = ["active", "deleted", "stored"]
            .iter()
            .map(|p| e[p].as_u64().unwrap_or(0))
            .sum::<u64>();
        if e["action"] == "keep" {
            kept += rows;
        } else {
            changed += rows;
        }
    }
    expect_rows("Lethe erasure", changed, shop.deleted_per_subject() + 1)?;
    if kept != shop.orders {
        return Err(format!("Lethe erasure kept {kept} rows, expected {}", shop.orders).into());
    }
    if rec.deletion_id.is_none() {
        return Err(format!("erasure {} has no deletion record", rec.id).into());
    }
    Ok(())
}

/// After either side: nothing of `subject` left but its kept orders and its
/// user row, anonymized as Lethe's rules make it.
async fn check_erased(pool: &Pool, shop: &Shop, subject: u64) -> Result<()> {
    let k = subject;
    let count = |sql: String| async move { pool.scalar(&sql).await.map(|n| n as u64) };
    let left = count(format!(
        "SELECT (SELECT count(*) FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE user_id = {k})) \
         + (SELECT count(*) FROM reviews WHERE user_id = {k}) \
         + (SELECT count(*) FROM cart_items WHERE user_id = {k}) \
         + (SELECT count(*) FROM wishlist_items WHERE user_id = {k})"
    ))
    .await?;
    let orders = count(format!("SELECT count(*) FROM orders WHERE user_id = {k}")).await?;
    let user = count(format!(
        "SELECT count(*) FROM users WHERE id = {k} AND email = '{}{k}{}' AND name = '{REDACTED}'",
        FAKE_EMAIL.0, FAKE_EMAIL.1
    ))
    .await?;
    if (left, orders, user) == (0, shop.orders, 1) {
        Ok(())
    } else {
        Err(format!(
            "after erasing user {k}: {left} of its rows left (expected 0), {orders} orders (expected {}), user row anonymized: {}",
            shop.orders,
            user == 1
        )
        .into())
    }
}

/// Nobody else's rows went: the six tables hold exactly `want` rows.
async fn check_rows(pool: &Pool, want: u64) -> Result<()> {
    let sum: Vec<String> = TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {t})"))
        .collect();
    let got = pool.scalar(&format!("SELECT {}", sum.join(" + "))).await? as u64;
    if got == want {
        Ok(())
    } else {
        Err(format!("the six tables hold {got} rows, expected {want}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scale: f64) -> Settings {
        Settings {
            scale,
            repetitions: 5,
            lethe_bin: "lethe".into(),
            dir: ".".into(),
            redis: String::new(),
            nats: String::new(),
        }
    }

    #[test]
    fn a_subject_owns_ten_thousand_rows_besides_itself() {
        let shop = Shop::new(&settings(1.0));
        assert_eq!(shop.subjects, 12);
        assert_eq!(shop.per_subject(), 10_001);
        assert_eq!(shop.deleted_per_subject(), 9_000);
        // 12 subjects and 10 subjects' worth of other users' rows.
        assert_eq!(shop.total_rows(), 1_000 + 22 * 10_000);
    }

    #[test]
    fn policy_parses_with_the_intended_actions() {
        let p = lethe_core::parse_policy(&policy_toml("sqlite:x.db"), "bench").unwrap();
        assert_eq!(p.entities.len(), 6);
        assert_eq!(p.relations.len(), 5);
        let plan = lethe_core::plan_erasure(&p).unwrap();
        assert_eq!(plan.subject, "users");
        let action = |e: &str| plan.step(e).unwrap().action.as_str();
        assert_eq!(action("users"), "anonymize");
        assert_eq!(action("orders"), "keep");
        for e in ["order_items", "reviews", "cart_items", "wishlist_items"] {
            assert_eq!(action(e), "delete");
        }
    }

    #[test]
    fn baseline_deletes_then_anonymizes_inside_the_bypass() {
        let sql: Vec<String> = baseline(Dialect::Sqlite, 3)
            .into_iter()
            .map(|s| s.sql)
            .collect();
        assert_eq!(
            sql,
            [
                "INSERT INTO lethe_bypass (token) VALUES ('bench')",
                "DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE user_id = ?1)",
                "DELETE FROM reviews WHERE user_id = ?1",
                "DELETE FROM cart_items WHERE user_id = ?1",
                "DELETE FROM wishlist_items WHERE user_id = ?1",
                "UPDATE users SET email = 'erased-' || id || '@example.invalid', name = '[redacted]' WHERE id = ?1",
                "DELETE FROM lethe_bypass",
            ]
        );
        assert_eq!(baseline(Dialect::Postgres, 3).len(), 6);
    }
}
