//! `lethe lint` speed: 10,000 queries in .sql files and in the string
//! literals of Python, Rust, Go, Java, Ruby and TypeScript files, linted
//! from disk (reading, finding the literals, parsing, checking), against
//! only parsing the same statements with sqlparser. No database is used;
//! the dialect picks the SQL dialect. Target: under a second.

use std::path::Path;
use std::time::Instant;

use lethe_lint::{Linter, SqlDialect};
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use super::{Settings, progress};
use crate::Result;
use crate::report::{Figure, Target};
use crate::sql::Dialect;

pub const NAME: &str = "lint";
const QUERIES: usize = 10_000;
const PER_FILE: usize = 250;

const POLICY: &str = r#"
[defaults]
strategy = "soft"
[entities.users]
key = ["id"]
unique = [["email"]]
[entities.orders]
key = ["id"]
[entities.order_items]
key = ["id"]
[entities.products]
key = ["id"]
unique = [["sku"]]
[entities.sessions]
key = ["id"]
strategy = "hard"
"#;

/// Query shapes applications write; `{n}` varies the text so nothing is
/// cached by accident. Half of them leak deleted rows or bypass Lethe.
const SHAPES: &[&str] = &[
    "SELECT o.id, o.total FROM orders o WHERE o.user_id = ? AND o.id > {n} AND o.deleted_at IS NULL ORDER BY o.id LIMIT 50",
    "SELECT * FROM users WHERE email = ?",
    "SELECT p.id, p.name, count(r.id) FROM products p LEFT JOIN order_items r ON r.product_id = p.id AND r.deleted_at IS NULL WHERE p.deleted_at IS NULL AND p.price > {n} GROUP BY p.id, p.name",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > ? AND deleted_at IS NULL) SELECT u.email, r.total FROM recent r JOIN users u ON u.id = r.user_id WHERE u.deleted_at IS NULL AND r.total > {n}",
    "SELECT id FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > {n}) AND u.deleted_at IS NULL",
    "UPDATE orders SET status = 'shipped' WHERE id = {n} AND deleted_at IS NULL",
    "INSERT INTO order_items (order_id, product_id, quantity) SELECT ?, p.id, 1 FROM products p WHERE p.sku = ? AND p.id <> {n}",
    "DELETE FROM sessions WHERE expires_at < ? AND id > {n}",
    "SELECT count(*) FROM products_active WHERE category_id = {n}",
    "SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.deleted_at IS NULL AND i.quantity > {n} UNION SELECT o.id FROM orders o WHERE o.total > ?",
];

/// The `i`-th query, with the dialect's own placeholders.
fn query(i: usize, d: Dialect) -> String {
    let q = SHAPES[i % SHAPES.len()].replace("{n}", &i.to_string());
    match d {
        Dialect::Postgres => q.replace('?', "$1"),
        Dialect::Sqlite => q,
    }
}

/// How a file of one language holds a query.
type Wrap = fn(&str) -> String;

/// Writes the corpus: a sixth in .sql files, the rest as literals.
fn write_corpus(dir: &Path, d: Dialect) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let kinds: [(&str, Wrap); 6] = [
        ("sql", |q| format!("{q};\n")),
        ("py", |q| format!("    cur.execute(\"{q}\", (a, b))\n")),
        ("rs", |q| {
            format!("    sqlx::query(r#\"{q}\"#).fetch_all(&pool).await?;\n")
        }),
        ("go", |q| format!("\trows, err := db.Query(`{q}`, a)\n")),
        ("java", |q| {
            format!("    ps = conn.prepareStatement(\"{q}\");\n")
        }),
        ("ts", |q| format!("  await client.query(`{q}`, [a, b]);\n")),
    ];
    let files = QUERIES / PER_FILE;
    for f in 0..files {
        let (ext, wrap) = kinds[f % kinds.len()];
        let mut text = String::new();
        for k in 0..PER_FILE {
            let q = query(f * PER_FILE + k, d);
            text.push_str(&wrap(&q));
        }
        std::fs::write(dir.join(format!("q{f:03}.{ext}")), text)?;
    }
    Ok(())
}

pub async fn run(s: &Settings, d: Dialect, _url: &str) -> Result<Vec<Figure>> {
    let dir = s.dir.join(format!("lint-{}", d.name()));
    write_corpus(&dir, d)?;
    let policy = lethe_core::parse_policy(POLICY, "bench")?;
    let dialect = match d {
        Dialect::Postgres => SqlDialect::Postgres,
        Dialect::Sqlite => SqlDialect::Sqlite,
    };
    let linter = Linter::new(&policy, dialect);
    let texts: Vec<String> = (0..QUERIES).map(|i| query(i, d)).collect();
    progress(
        d.name(),
        NAME,
        &format!("linting {QUERIES} queries in {} files", QUERIES / PER_FILE),
    );
    let (mut lethe, mut baseline) = (Vec::new(), Vec::new());
    for rep in 0..=s.repetitions {
        let t = Instant::now();
        let report = linter.lint_paths(std::slice::from_ref(&dir))?;
        let took = t.elapsed().as_secs_f64() * 1000.0;
        if report.statements != QUERIES || !report.skipped.is_empty() {
            return Err(format!(
                "linted {} statements ({} skipped), expected {QUERIES}",
                report.statements,
                report.skipped.len()
            )
            .into());
        }
        // A fast wrong answer is no benchmark: the ten shapes hold six
        // findings (two in the UNION).
        let expected = QUERIES / SHAPES.len() * 6;
        if report.findings.len() != expected {
            return Err(format!("{} findings, expected {expected}", report.findings.len()).into());
        }
        let t = Instant::now();
        for q in &texts {
            let parsed = match d {
                Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, q),
                Dialect::Sqlite => Parser::parse_sql(&SQLiteDialect {}, q),
            };
            parsed.map_err(|e| format!("baseline parse: {e}"))?;
        }
        let parse_only = t.elapsed().as_secs_f64() * 1000.0;
        if rep > 0 {
            lethe.push(took);
            baseline.push(parse_only);
        }
    }
    Ok(vec![Figure::median_millis(
        d.name(),
        NAME,
        format!("{QUERIES} queries linted from files (baseline: parsing them only)"),
        &lethe,
        &baseline,
        Target::Below(1000.0),
    )])
}
