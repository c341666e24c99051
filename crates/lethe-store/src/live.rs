//! The statements a PostgreSQL database has actually run, read from
//! `pg_stat_statements`, for `lethe lint --pg-stat-statements`.

use lethe_sql::Dialect;
use lethe_sql::stats::{PG_STAT_STATEMENTS, PG_STAT_STATEMENTS_INSTALLED};

use crate::db::{ConnectOptions, Db};
use crate::error::{Result, StoreError};

/// One normalized statement (constants replaced by `$1`, `$2`, ...).
#[derive(Debug, Clone)]
pub struct LiveStatement {
    pub queryid: String,
    pub calls: u64,
    pub query: String,
}

/// The statements, and how many were Lethe's own (left out: Lethe's
/// statements touch its `lethe` schema or `lethe_*` tables and settings).
#[derive(Debug, Clone, Default)]
pub struct LiveStatements {
    pub statements: Vec<LiveStatement>,
    pub lethe_own: usize,
}

pub async fn pg_stat_statements(url: &str) -> Result<LiveStatements> {
    if lethe_sql::Dialect::from_url(url) != Some(Dialect::Postgres) {
        return Err(StoreError::Invalid(
            "--pg-stat-statements reads PostgreSQL's pg_stat_statements view: give a postgres:// database URL".into(),
        ));
    }
    let db = Db::connect(
        url,
        ConnectOptions {
            max_connections: Some(1),
            ..ConnectOptions::default()
        },
    )
    .await?;
    let installed = db.rows(PG_STAT_STATEMENTS_INSTALLED, &[]).await?;
    if installed.first().and_then(|r| r[0].as_deref()) != Some("1") {
        return Err(StoreError::Invalid(
            "the pg_stat_statements extension is not installed in this database: add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements".into(),
        ));
    }
    let rows = db.rows(PG_STAT_STATEMENTS, &[]).await.map_err(|e| match e {
        StoreError::Database(msg) if msg.contains("shared_preload_libraries") => StoreError::Invalid(
            "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries in postgresql.conf and restart PostgreSQL".into(),
        ),
        other => other,
    })?;
    let mut out = LiveStatements::default();
    for r in rows {
        let (Some(queryid), Some(calls), Some(query)) = (&r[0], &r[1], &r[2]) else {
            continue;
        };
        if query.starts_with('<') {
            continue;
        }
        // Lethe tags its statements; those it ran before it did, and
        // statements on its own tables, are recognised by their names.
        let lower = query.to_lowercase();
        if query.starts_with(lethe_sql::STATEMENT_TAG.trim_end())
            || lower.contains("lethe.")
            || lower.contains("lethe_")
        {
            out.lethe_own += 1;
            continue;
        }
        out.statements.push(LiveStatement {
            queryid: queryid.clone(),
            calls: calls.parse().unwrap_or(0),
            query: query.clone(),
        });
    }
    Ok(out)
}
