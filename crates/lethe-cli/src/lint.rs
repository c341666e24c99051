//! `lethe lint`: the queries in code (or that PostgreSQL ran) that read
//! soft-deleted rows or bypass Lethe.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use lethe_lint::{Linter, Report, SqlDialect};
use lethe_store::StoreError;

use crate::Cli;
use crate::commands::{load_policy, report, url_for};
use crate::exit;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DialectArg {
    Postgres,
    Sqlite,
    Mysql,
    Generic,
}

#[derive(Args)]
#[command(after_long_help = "\
What it reads:
  .sql files whole; in .rs .py .rb .js .jsx .mjs .ts .tsx .go .java .kt
  files the string literals (joined across `+` and adjacent literals;
  interpolations such as ${x}, #{x} and f-string {x} read as a bind
  value) that start like a statement and name a clause (SELECT ... FROM,
  UPDATE ... SET, DELETE FROM, ...). Directories are walked; .git,
  node_modules, target, vendor, venv, dist and build are skipped.

What it reports (rule ids):
  unfiltered-read   a soft entity's table read without `alias.deleted_at
                    IS NULL` in WHERE or in the ON of its join (through
                    joins, subqueries, CTEs, UNION branches, EXISTS, IN)
  unique-lookup     the same, on a lookup by the entity's unique columns
  raw-delete        DELETE or TRUNCATE on a managed table
  marker-write      UPDATE that sets deleted_at or the deletion id
  suppression-without-reason
                    `lethe: include-deleted` with no reason after it
Reading the <table>_active view is clean. A query that reads deleted rows
on purpose says so on or above it, in any comment syntax:
  -- lethe: include-deleted the trash page lists deleted orders

Exit codes: 0 no findings, 1 findings (or, with --strict, a statement that
could not be parsed), 2 usage error, unreadable policy or path, or a
database error with --pg-stat-statements. Statements the parser cannot
read are listed as skipped with the parser's reason.")]
pub struct LintArgs {
    /// Files and directories to lint (default: the current directory).
    paths: Vec<PathBuf>,
    /// Output: text for people, json for scripts, sarif for code scanning.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// SQL dialect to parse in (default: the database URL's, else postgres).
    #[arg(long, value_enum)]
    dialect: Option<DialectArg>,
    /// Lint the statements PostgreSQL has run, from the pg_stat_statements
    /// view of the database (--database or [database] url), instead of
    /// files. Lethe's own statements are left out.
    #[arg(long, conflicts_with = "paths")]
    pg_stat_statements: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Exit 1 when a statement could not be parsed, even without findings.
    #[arg(long)]
    strict: bool,
}

pub async fn lint(cli: &Cli, args: &LintArgs) -> u8 {
    match run(cli, args).await {
        Ok(code) => code,
        // Any failure of the tool itself is exit 2, never 1: CI must not
        // read a broken run as "findings".
        Err(e) => {
            report(&e, false);
            exit::USAGE
        }
    }
}

async fn run(cli: &Cli, args: &LintArgs) -> Result<u8, StoreError> {
    let policy = load_policy(&cli.policy)?;
    let url = url_for(&cli.database, Some(&policy)).ok();
    let dialect = match args.dialect {
        Some(DialectArg::Postgres) => SqlDialect::Postgres,
        Some(DialectArg::Sqlite) => SqlDialect::Sqlite,
        Some(DialectArg::Mysql) => SqlDialect::Mysql,
        Some(DialectArg::Generic) => SqlDialect::Generic,
        None if args.pg_stat_statements => SqlDialect::Postgres,
        None => url
            .as_deref()
            .and_then(SqlDialect::from_url)
            .unwrap_or(SqlDialect::Postgres),
    };
    let linter = Linter::new(&policy, dialect);
    let mut note = None;
    let report = if args.pg_stat_statements {
        let url = url.ok_or(StoreError::NoDatabaseUrl)?;
        let live = lethe_store::live::pg_stat_statements(&url).await?;
        let statements = live.statements.clone();
        let mut r = on_big_stack(move || {
            let mut r = Report::default();
            for s in &statements {
                r.merge(linter.lint_text(&format!("pg_stat_statements#{}", s.queryid), &s.query));
            }
            r
        });
        note = Some(format!(
            "{} statements read from pg_stat_statements ({} of Lethe's own left out)",
            live.statements.len(),
            live.lethe_own
        ));
        r.files = 0;
        r
    } else {
        let paths = if args.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            args.paths.clone()
        };
        on_big_stack(move || linter.lint_paths(&paths))
            .map_err(|e| StoreError::Invalid(e.to_string()))?
    };
    let text = match args.format {
        Format::Text => lethe_lint::render_text(&report),
        Format::Json => lethe_lint::render_json(&report),
        Format::Sarif => lethe_lint::render_sarif(&report),
    };
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| StoreError::Invalid(format!("cannot write {}: {e}", path.display())))?,
        None => print!("{text}"),
    }
    if let Some(n) = note {
        eprintln!("{n}");
    }
    Ok(
        if !report.findings.is_empty() || (args.strict && !report.skipped.is_empty()) {
            exit::FAILURE
        } else {
            exit::OK
        },
    )
}

/// Runs the linting on a thread with a 512 MiB stack (reserved, not
/// used): a generated query with thousands of `AND`ed conditions parses into
/// a tree deep enough to overflow the main thread's while it is analysed and
/// dropped.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::Builder::new()
        .name("lint".into())
        .stack_size(512 << 20)
        .spawn(f)
        .map(|h| h.join())
    {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => panic!("cannot start the lint thread: {e}"),
    }
}
