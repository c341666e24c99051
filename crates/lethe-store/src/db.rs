//! A database handle over PostgreSQL or SQLite, with text-in, text-out
//! statements. Lethe binds every value as text (casts in the SQL give it its
//! type) and reads every result as text, so one code path serves both drivers.

use std::str::FromStr;
use std::time::Duration;

use lethe_sql::{Dialect, Param, Stmt};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

use crate::error::{Result, StoreError};

/// A connection pool.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// An open transaction.
pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Values for the params of rendered statements.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub deletion_id: String,
    pub now: String,
    pub key: Vec<String>,
    /// Extra values ([`Param::Value`]): a restore's `--set` values.
    pub values: Vec<String>,
}

impl Bindings {
    fn value(&self, p: &Param) -> Option<String> {
        Some(match p {
            Param::DeletionId => self.deletion_id.clone(),
            Param::Now => self.now.clone(),
            Param::Key(i) => self.key.get(*i)?.clone(),
            Param::Value(i) => self.values.get(*i)?.clone(),
        })
    }

    pub fn values(&self, stmt: &Stmt) -> Vec<Option<String>> {
        stmt.params.iter().map(|p| self.value(p)).collect()
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for v in $params {
            q = q.bind(v.clone());
        }
        q
    }};
}

/// Every statement Lethe sends starts with [`lethe_sql::STATEMENT_TAG`], so
/// views of what a database ran (`pg_stat_statements`, logs) can tell
/// Lethe's own statements from the application's.
fn tagged(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("{}{sql}", lethe_sql::STATEMENT_TAG))
}

/// Options for [`Db::connect`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// SQLite: create the file when missing (the demo does; other commands
    /// report a missing file).
    pub create_sqlite: bool,
    pub max_connections: Option<u32>,
}

/// Adds Lethe's SQL functions to a new SQLite connection (`lethe_hmac`).
async fn register_functions(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<()> {
    let mut handle = conn.lock_handle().await?;
    let rc = crate::hmac::register_sqlite(handle.as_raw_handle().as_ptr());
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "could not register lethe_hmac on a SQLite connection (code {rc})"
        )));
    }
    Ok(())
}

impl Db {
    pub async fn connect(url: &str, opts: ConnectOptions) -> Result<Db> {
        match Dialect::from_url(url) {
            Some(Dialect::Postgres) => {
                let o = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Connect(e.to_string()))?
                    .application_name("lethe");
                let pool = PgPoolOptions::new()
                    .max_connections(opts.max_connections.unwrap_or(8))
                    .acquire_timeout(Duration::from_secs(15))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Lethe must see deleted rows even where row-level
                            // security hides them from the application.
                            conn.execute("SET lethe.include_deleted = 'on'").await?;
                            conn.execute("SET TimeZone = 'UTC'").await?;
                            Ok(())
                        })
                    })
                    .connect_with(o)
                    .await
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                Ok(Db::Postgres(pool))
            }
            Some(Dialect::Sqlite) => {
                let o = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Connect(e.to_string()))?
                    .create_if_missing(opts.create_sqlite)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections.unwrap_or(4))
                    .after_connect(|conn, _| Box::pin(register_functions(conn)))
                    .connect_with(o)
                    .await
                    .map_err(|e| StoreError::Connect(format!("{e} ({url})")))?;
                Ok(Db::Sqlite(pool))
            }
            None => Err(StoreError::UnsupportedUrl(url.to_string())),
        }
    }

    /// A one-connection handle on the same database with foreign key
    /// enforcement off, for table rebuilds (SQLite drops and renames tables;
    /// with enforcement on, dropping a parent would run its ON DELETE actions).
    /// PostgreSQL never needs it and gets a clone of this handle.
    pub async fn without_foreign_keys(&self) -> Result<Db> {
        match self {
            Db::Postgres(_) => Ok(self.clone()),
            Db::Sqlite(p) => {
                let o = (*p.connect_options())
                    .clone()
                    .foreign_keys(false)
                    // Keep views and triggers that name the table as they are
                    // while it is briefly renamed.
                    .pragma("legacy_alter_table", "ON");
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| Box::pin(register_functions(conn)))
                    .connect_with(o)
                    .await
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                Ok(Db::Sqlite(pool))
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Begins a transaction that will write (SQLite takes the write lock now).
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::Sqlite(p) => Tx::Sqlite(
                p.begin_with(lethe_sql::queries::begin_write(Dialect::Sqlite))
                    .await?,
            ),
        })
    }

    /// Begins a read transaction.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(match self {
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::Sqlite(p) => Tx::Sqlite(p.begin().await?),
        })
    }

    /// Runs a query outside a transaction and returns its rows as text.
    pub async fn rows(
        &self,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        // One statement sees one snapshot by itself: no BEGIN/ROLLBACK
        // round trips around it.
        let sql = tagged(sql);
        match self {
            Db::Postgres(p) => text_rows(bind_all!(sqlx::query(sql), params).fetch_all(p).await?),
            Db::Sqlite(p) => text_rows(bind_all!(sqlx::query(sql), params).fetch_all(p).await?),
        }
    }

    /// Runs `lock_sql` (with `$1` = `key`) on a connection taken out of the
    /// pool's rotation; when it answers `t`/`true`, the connection is kept
    /// in the returned [`Held`] (a session-level lock lives as long as it).
    /// PostgreSQL only; `None` when the lock is taken elsewhere.
    pub async fn hold_session(&self, lock_sql: &str, key: i64) -> Result<Option<Held>> {
        let Db::Postgres(p) = self else {
            return Err(StoreError::Invalid("session locks need PostgreSQL".into()));
        };
        let mut conn = p.acquire().await?;
        let row = sqlx::query(tagged(lock_sql))
            .bind(key.to_string())
            .fetch_one(&mut *conn)
            .await?;
        let got: Option<String> = row.try_get(0)?;
        if matches!(got.as_deref(), Some("t" | "true")) {
            Ok(Some(Held {
                conn: Some(conn),
                key,
            }))
        } else {
            Ok(None)
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(p) => p.close().await,
            Db::Sqlite(p) => p.close().await,
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Executes a statement; returns the number of rows affected.
    pub async fn exec(&mut self, sql: &str, params: &[Option<String>]) -> Result<u64> {
        let sql = tagged(sql);
        Ok(match self {
            Tx::Postgres(t) => bind_all!(sqlx::query(sql), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Sqlite(t) => bind_all!(sqlx::query(sql), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query and returns every column of every row as text.
    pub async fn rows(
        &mut self,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let sql = tagged(sql);
        match self {
            Tx::Postgres(t) => text_rows(
                bind_all!(sqlx::query(sql), params)
                    .fetch_all(&mut **t)
                    .await?,
            ),
            Tx::Sqlite(t) => text_rows(
                bind_all!(sqlx::query(sql), params)
                    .fetch_all(&mut **t)
                    .await?,
            ),
        }
    }

    /// Runs rendered statements in order. Consecutive statements without
    /// params go to the database together, as one multi-statement string
    /// (one round trip instead of one each); the others run one by one.
    pub async fn exec_batch(&mut self, stmts: &[Stmt], b: &Bindings) -> Result<()> {
        let mut plain: Vec<&str> = Vec::new();
        for s in stmts {
            if s.params.is_empty() {
                plain.push(&s.sql);
                continue;
            }
            self.exec_plain(&mut plain).await?;
            self.exec_stmt(s, b).await?;
        }
        self.exec_plain(&mut plain).await
    }

    /// Runs `plain` (statements without params) in one round trip, and
    /// empties it.
    async fn exec_plain(&mut self, plain: &mut Vec<&str>) -> Result<()> {
        match plain.len() {
            0 => return Ok(()),
            1 => {
                self.exec(plain[0], &[]).await?;
            }
            _ => {
                let sql = AssertSqlSafe(
                    plain
                        .iter()
                        .map(|s| format!("{}{s}", lethe_sql::STATEMENT_TAG))
                        .collect::<Vec<_>>()
                        .join(";\n"),
                );
                match self {
                    Tx::Postgres(t) => {
                        sqlx::raw_sql(sql).execute(&mut **t).await?;
                    }
                    Tx::Sqlite(t) => {
                        sqlx::raw_sql(sql).execute(&mut **t).await?;
                    }
                }
            }
        }
        plain.clear();
        Ok(())
    }

    /// Runs a rendered statement with `b`'s values.
    pub async fn exec_stmt(&mut self, stmt: &Stmt, b: &Bindings) -> Result<u64> {
        self.exec(&stmt.sql, &b.values(stmt)).await
    }

    pub async fn rows_stmt(
        &mut self,
        stmt: &Stmt,
        b: &Bindings,
    ) -> Result<Vec<Vec<Option<String>>>> {
        self.rows(&stmt.sql, &b.values(stmt)).await
    }

    /// [`Tx::rows_stmt`], telling apart what the database refused on
    /// purpose (a constraint: foreign key, unique, not null, check; or a
    /// guard trigger's raise): that comes back as `Ok(Err(..))`, and every
    /// other failure (a lost connection, a statement the database cannot
    /// run) as `Err`.
    pub async fn rows_stmt_or_refusal(
        &mut self,
        stmt: &Stmt,
        b: &Bindings,
    ) -> Result<std::result::Result<Vec<Vec<Option<String>>>, StoreError>> {
        let sql = tagged(&stmt.sql);
        let params = b.values(stmt);
        let fetched = match self {
            Tx::Postgres(t) => bind_all!(sqlx::query(sql), &params)
                .fetch_all(&mut **t)
                .await
                .map(text_rows),
            Tx::Sqlite(t) => bind_all!(sqlx::query(sql), &params)
                .fetch_all(&mut **t)
                .await
                .map(text_rows),
        };
        match fetched {
            Ok(rows) => Ok(Ok(rows?)),
            Err(sqlx::Error::Database(db))
                if db.kind() != sqlx::error::ErrorKind::Other
                    || db.code().as_deref() == Some("P0001")
                    || db.message().contains("refused") =>
            {
                Ok(Err(sqlx::Error::Database(db).into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await?,
            Tx::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.rollback().await?,
            Tx::Sqlite(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// Every column of every row as text.
fn text_rows<R: Row>(rows: Vec<R>) -> Result<Vec<Vec<Option<String>>>>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<Option<String>, _>(i).map_err(StoreError::from))
                .collect()
        })
        .collect()
}

/// A connection held for a session-level lock (see [`Db::hold_session`]).
/// Dropped without [`Held::release`], the connection is closed, which ends
/// the session and with it the lock.
pub struct Held {
    conn: Option<sqlx::pool::PoolConnection<Postgres>>,
    key: i64,
}

impl Held {
    /// Runs `unlock_sql` (`$1` = the key) and gives the connection back.
    pub async fn release(mut self, unlock_sql: &str) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query(tagged(unlock_sql))
                .bind(self.key.to_string())
                .fetch_one(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Not back into the pool with the lock still on it.
            drop(conn.detach());
        }
    }
}

/// Reads column `i` of a text row (NULL as empty).
pub fn col(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}
