//! The harness's own database access: setup, loading and the hand-written
//! baselines.
//!
//! Plain sqlx rather than lethe-store's `Db`, so the baseline shares no code
//! with what it is measured against. The connection settings match Lethe's
//! (WAL, foreign keys, `BEGIN IMMEDIATE` on SQLite, sqlx's default
//! `synchronous`), so the comparison is about the SQL, not the setup.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Placeholder `n` (1-based) for a value bound as text, cast to `ty` where
    /// the database needs the type spelled out.
    pub fn param(self, n: usize, ty: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS {ty})"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// The key column type. On SQLite `INTEGER PRIMARY KEY` is the rowid, which
    /// is what an application on SQLite would use.
    pub fn key_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "bigint",
            Dialect::Sqlite => "INTEGER",
        }
    }

    /// A relation of the integers 1..=n in column `g`, generated inside the
    /// database so loading a million rows sends no rows over the wire.
    pub fn series(self, n: u64) -> String {
        match self {
            Dialect::Postgres => format!("generate_series(1, {n}) AS s(g)"),
            Dialect::Sqlite => format!(
                "(WITH RECURSIVE r(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM r WHERE g < {n}) SELECT g FROM r) AS s"
            ),
        }
    }

    /// Lets the transaction delete from the tables Lethe guards, the
    /// documented way (`on`), or withdraws that before commit (SQLite: a
    /// row left in `lethe_bypass` would disable the guard for every
    /// session). PostgreSQL's `SET LOCAL` ends with the transaction: only
    /// SQLite needs the withdrawal.
    pub fn bypass(self, on: bool) -> Stmt {
        let sql = match (self, on) {
            (Dialect::Postgres, _) => "SET LOCAL lethe.bypass = 'on'",
            (Dialect::Sqlite, true) => "INSERT INTO lethe_bypass (token) VALUES ('bench')",
            (Dialect::Sqlite, false) => "DELETE FROM lethe_bypass",
        };
        Stmt {
            sql: sql.into(),
            params: Vec::new(),
        }
    }
}

/// A statement and its values, bound as text.
pub struct Stmt {
    pub sql: String,
    pub params: Vec<String>,
}

/// Rows of integer columns (`NULL` as `None`), as a baseline statement
/// returns them.
pub type IntRows = Vec<Vec<Option<i64>>>;

/// Cheap to clone: both variants share one pool.
#[derive(Clone)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A statement with its parameters bound (as text, like Lethe binds them).
fn query<DB: sqlx::Database>(s: &Stmt) -> sqlx::query::Query<'_, DB, DB::Arguments>
where
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::query(AssertSqlSafe(s.sql.clone()));
    for v in &s.params {
        q = q.bind(v.as_str());
    }
    q
}

/// Runs `$body` with `$tx` a write transaction of whichever database the
/// pool holds (the body is the same code, typed once per driver), then
/// commits. SQLite takes the write lock up front, as Lethe does.
macro_rules! in_write_tx {
    ($pool:expr, $tx:ident, $body:expr) => {
        match $pool {
            Pool::Postgres(p) => {
                let mut $tx = p.begin().await?;
                $body;
                $tx.commit().await?;
            }
            Pool::Sqlite(p) => {
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await?;
                $body;
                $tx.commit().await?;
            }
        }
    };
}

impl Pool {
    /// Connects to `url`; a SQLite file is created when missing.
    pub async fn connect(url: &str) -> Result<Pool> {
        Pool::connect_many(url, 1).await
    }

    /// [`Pool::connect`] with up to `n` connections, for concurrent readers.
    pub async fn connect_many(url: &str, n: u32) -> Result<Pool> {
        if url.starts_with("sqlite:") {
            let o = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(n)
                .connect_with(o)
                .await?;
            Ok(Pool::Sqlite(pool))
        } else {
            let o = PgConnectOptions::from_str(url)?.application_name("lethe-bench");
            let pool = PgPoolOptions::new()
                .max_connections(n)
                .connect_with(o)
                .await?;
            Ok(Pool::Postgres(pool))
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Runs SQL without parameters outside a transaction (simple protocol, so
    /// `VACUUM` works).
    pub async fn exec(&self, sql: &str) -> Result<u64> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
        Ok(match self {
            Pool::Postgres(p) => q.execute(p).await?.rows_affected(),
            Pool::Sqlite(p) => q.execute(p).await?.rows_affected(),
        })
    }

    /// Runs `stmts` in one write transaction; returns how many rows each
    /// changed.
    pub async fn transaction(&self, stmts: &[Stmt]) -> Result<Vec<u64>> {
        let mut changed = Vec::with_capacity(stmts.len());
        in_write_tx!(
            self,
            tx,
            for s in stmts {
                changed.push(query(s).execute(&mut *tx).await?.rows_affected());
            }
        );
        Ok(changed)
    }

    /// Runs `stmts` in one write transaction; returns the rows each returned
    /// (its columns read as integers).
    pub async fn transaction_rows(&self, stmts: &[Stmt]) -> Result<Vec<IntRows>> {
        let mut out = Vec::with_capacity(stmts.len());
        in_write_tx!(
            self,
            tx,
            for s in stmts {
                let rows = query(s).fetch_all(&mut *tx).await?;
                out.push(
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| r.try_get(i)).collect())
                        .collect::<std::result::Result<_, _>>()?,
                );
            }
        );
        Ok(out)
    }

    /// Runs one query outside a transaction; returns how many rows it
    /// returned (a point read).
    pub async fn fetch_count(&self, stmt: &Stmt) -> Result<usize> {
        Ok(match self {
            Pool::Postgres(p) => query(stmt).fetch_all(p).await?.len(),
            Pool::Sqlite(p) => query(stmt).fetch_all(p).await?.len(),
        })
    }

    /// The single integer `sql` returns (a count, for the row checks).
    pub async fn scalar(&self, sql: &str) -> Result<i64> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        })
    }

    /// Gives the planner statistics after loading.
    pub async fn analyze(&self, tables: &[&str]) -> Result<()> {
        let sql = match self.dialect() {
            Dialect::Postgres => format!("VACUUM ANALYZE {}", tables.join(", ")),
            Dialect::Sqlite => "ANALYZE".to_string(),
        };
        self.exec(&sql).await?;
        Ok(())
    }

    /// Between measured runs: on PostgreSQL clears the dead row versions the
    /// last run left (and keeps autovacuum from starting mid-measurement), so
    /// every run starts from the same state. SQLite updates in place.
    pub async fn settle(&self, tables: &[&str]) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            self.analyze(tables).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Pool::Postgres(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}
