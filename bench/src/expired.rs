//! The data `purge` and `purge-latency` run on: soft-deleted rows whose
//! retention has run out, among active ones, in two identical tables (one
//! for Lethe's purge, one for the hand-written purge), and that hand-written
//! purge.
//!
//! The rows are marked exactly as Lethe marks them: `deleted_at` in Lethe's
//! format and `deletion_id` naming a real deletion record. A fill makes a
//! handful of real deletions through `Engine::delete`, then inserts the bulk
//! of the rows already marked with those deletions' ids, set-based (a million
//! deletions one at a time would take longer than the benchmark). Every
//! marked row was "deleted" [`AGE_DAYS`] ago, well past the retention; the
//! real deletions' own rows are back-dated by an UPDATE, which the delete
//! guard does not watch.

use std::time::Instant;

use lethe_store::{DeleteRequest, Engine};
use time::{Duration, OffsetDateTime};

use crate::Result;
use crate::fixtures::time_text;
use crate::sql::{Dialect, Pool, Stmt};
use crate::workloads::expect_rows;

/// The table Lethe purges (the entity has the retention).
pub const TABLE: &str = "items";
/// Its copy, which the hand-written purge empties: an entity too, so it has
/// the same marker indexes, view and delete guard, but without a retention,
/// so Lethe's purge leaves it alone.
pub const COPY: &str = "items_copy";
pub const RETENTION_DAYS: i64 = 30;
/// How long ago the expired rows were deleted.
const AGE_DAYS: i64 = 60;
/// Real deletions per fill; the bulk rows carry their ids in turn.
const SEEDS: u64 = 5;
/// With interleaving, one row in each run of `GROUP` stays active (the
/// last), so active and expired rows share pages, as they do in a table
/// that lives for a while.
pub const GROUP: u64 = 11;

/// Both tables are entities keyed by `id`; only [`TABLE`] has a retention.
pub fn policy_toml(url: &str) -> String {
    format!(
        "[database]\nurl = \"{url}\"\n\n[entities.{TABLE}]\nkey = [\"id\"]\nretention = \"{RETENTION_DAYS}d\"\n\n[entities.{COPY}]\nkey = [\"id\"]\n"
    )
}

/// Creates both tables and lets Lethe migrate them, then fills each with
/// `active * GROUP` rows, `active` of them active and the rest expired (ids
/// `1..=active * GROUP`, every `GROUP`th active). Returns the harness's
/// pool, the engine and the number of expired rows per table.
pub async fn load(url: &str, active: u64) -> Result<(Pool, Engine, u64)> {
    let pool = Pool::connect(url).await?;
    let d = pool.dialect();
    for t in [TABLE, COPY] {
        pool.exec(&format!(
            "CREATE TABLE {t} (id {} PRIMARY KEY, body TEXT)",
            d.key_type()
        ))
        .await?;
        if d == Dialect::Postgres {
            // A vacuum that starts during one side's purge and not the
            // other's would be noise; the harness vacuums between runs.
            pool.exec(&format!("ALTER TABLE {t} SET (autovacuum_enabled = false)"))
                .await?;
        }
    }
    let policy = lethe_core::parse_policy(&policy_toml(url), "bench")?;
    let mut engine = Engine::connect(policy, url).await?;
    engine.migrate(false).await?;
    let mut expired = 0;
    for t in [TABLE, COPY] {
        expired = fill(&pool, &engine, t, 1, active * GROUP, true).await?;
    }
    pool.analyze(&[TABLE, COPY]).await?;
    Ok((pool, engine, expired))
}

/// Adds rows `lo..lo + n` (`n` above [`SEEDS`]) to `table`: the first
/// [`SEEDS`] deleted by Lethe, one deletion each, the rest inserted marked
/// with those deletions' ids in turn, all "deleted" [`AGE_DAYS`] ago; with
/// `interleave`, every [`GROUP`]th row of the rest active instead. Returns
/// how many expired rows it added.
pub async fn fill(
    pool: &Pool,
    engine: &Engine,
    table: &str,
    lo: u64,
    n: u64,
    interleave: bool,
) -> Result<u64> {
    if n <= SEEDS {
        return Err(
            format!("a fill needs more than {SEEDS} rows, not {n}: raise --rows-scale").into(),
        );
    }
    let d = pool.dialect();
    let cast = |v: &str, ty: &str| match d {
        Dialect::Postgres => format!("CAST('{v}' AS {ty})"),
        Dialect::Sqlite => format!("'{v}'"),
    };
    let seeds_end = lo + SEEDS - 1;
    pool.exec(&format!(
        "INSERT INTO {table} (id, body) SELECT g, 'item ' || g FROM (SELECT g + {} AS g FROM {}) x",
        lo - 1,
        d.series(SEEDS)
    ))
    .await?;
    let mut ids = Vec::new();
    for k in lo..=seeds_end {
        let done = engine
            .delete(&DeleteRequest::new(table, k.to_string()))
            .await?;
        expect_rows(
            "a seed deletion",
            done.affected.iter().map(|c| c.rows).sum(),
            1,
        )?;
        ids.push(done.deletion_id);
    }
    let old = cast(
        &time_text(OffsetDateTime::now_utc() - Duration::days(AGE_DAYS)),
        "timestamptz",
    );
    pool.exec(&format!(
        "UPDATE {table} SET deleted_at = {old} WHERE id BETWEEN {lo} AND {seeds_end}"
    ))
    .await?;
    let pick = format!(
        "CASE g % {SEEDS} {} END",
        ids.iter()
            .enumerate()
            .map(|(i, id)| format!("WHEN {i} THEN {}", cast(id, "uuid")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let active = if interleave {
        format!("(g - {lo}) % {GROUP} = {}", GROUP - 1)
    } else {
        "1 = 0".to_string()
    };
    let bulk = n - SEEDS;
    let inserted = pool
        .exec(&format!(
            "INSERT INTO {table} (id, body, deleted_at, deletion_id) \
             SELECT g, 'item ' || g, CASE WHEN {active} THEN NULL ELSE {old} END, CASE WHEN {active} THEN NULL ELSE {pick} END \
             FROM (SELECT g + {seeds_end} AS g FROM {}) x",
            d.series(bulk)
        ))
        .await?;
    expect_rows("the bulk insert", inserted, bulk)?;
    Ok(n - if interleave { n / GROUP } else { 0 })
}

/// `(active, marked)` rows of `table`: what a purge must leave, and what it
/// left behind.
pub async fn census(pool: &Pool, table: &str) -> Result<(u64, u64)> {
    let active = pool
        .scalar(&format!(
            "SELECT count(*) FROM {table} WHERE deleted_at IS NULL"
        ))
        .await?;
    let marked = pool
        .scalar(&format!(
            "SELECT count(*) FROM {table} WHERE deleted_at IS NOT NULL"
        ))
        .await?;
    Ok((active as u64, marked as u64))
}

/// Before a measured purge: on PostgreSQL the last phase's dead rows
/// vacuumed and every dirty buffer written (so neither side pays for the
/// other's writes, or starts with a checkpoint half done); on SQLite the WAL
/// checkpointed and truncated, so each side starts with an empty WAL.
pub async fn quiesce(pool: &Pool, tables: &[&str]) -> Result<()> {
    match pool.dialect() {
        Dialect::Postgres => {
            pool.settle(tables).await?;
            pool.exec("CHECKPOINT").await?;
        }
        Dialect::Sqlite => {
            pool.exec("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        }
    }
    Ok(())
}

/// The cutoff a purge starting now uses: rows deleted before it expired.
pub fn cutoff() -> String {
    time_text(OffsetDateTime::now_utc() - Duration::days(RETENTION_DAYS))
}

/// What the hand-written purge did.
pub struct HandPurge {
    pub rows: u64,
    /// Batches that removed rows (the final empty one not counted, as in
    /// Lethe's report).
    pub batches: u64,
    /// The longest batch transaction, `BEGIN` to `COMMIT`, in ms (the
    /// final empty one included, as in Lethe's report).
    pub longest_ms: f64,
}

/// The hand-written purge of `table`: short transactions, each passing the
/// delete guard the documented way and deleting the next `batch` expired
/// rows after the last id of the previous one (keyset pagination, as Lethe
/// does, so a batch is an index range whatever is left behind it), until one
/// finds none. No records, audit or outbox: that is what Lethe adds.
pub async fn hand_purge(pool: &Pool, table: &str, cutoff: &str, batch: u32) -> Result<HandPurge> {
    let d = pool.dialect();
    let pick = format!(
        "SELECT id FROM {table} WHERE deleted_at IS NOT NULL AND deleted_at < {} AND id > {} ORDER BY id LIMIT {}",
        d.param(1, "timestamptz"),
        d.param(2, "bigint"),
        d.param(3, "bigint")
    );
    // The count and the last id come back with the DELETE, in the same
    // round trip (SQLite has no DELETE in a CTE; its rows cost no round trip).
    let (on, delete, off) = match d {
        Dialect::Postgres => (
            "SET LOCAL lethe.bypass = 'on'",
            format!(
                "WITH d AS (DELETE FROM {table} WHERE id IN ({pick}) RETURNING id) SELECT count(*), max(id) FROM d"
            ),
            None,
        ),
        Dialect::Sqlite => (
            "INSERT INTO lethe_bypass (token) VALUES ('bench')",
            format!("DELETE FROM {table} WHERE id IN ({pick}) RETURNING id"),
            Some("DELETE FROM lethe_bypass"),
        ),
    };
    let stmt = |sql: &str, params: Vec<String>| Stmt {
        sql: sql.to_string(),
        params,
    };
    let mut out = HandPurge {
        rows: 0,
        batches: 0,
        longest_ms: 0.0,
    };
    let mut last: i64 = 0;
    loop {
        let mut stmts = vec![
            stmt(on, Vec::new()),
            stmt(
                &delete,
                vec![cutoff.to_string(), last.to_string(), batch.to_string()],
            ),
        ];
        if let Some(off) = off {
            stmts.push(stmt(off, Vec::new()));
        }
        let t = Instant::now();
        let results = pool.transaction_rows(&stmts).await?;
        out.longest_ms = out.longest_ms.max(t.elapsed().as_secs_f64() * 1e3);
        let rows = &results[1];
        let (n, max) = match d {
            Dialect::Postgres => (
                rows.first().and_then(|r| r[0]).unwrap_or(0) as u64,
                rows.first().and_then(|r| r[1]),
            ),
            Dialect::Sqlite => (rows.len() as u64, rows.iter().filter_map(|r| r[0]).max()),
        };
        let Some(max) = max.filter(|_| n > 0) else {
            break;
        };
        out.rows += n;
        out.batches += 1;
        last = max;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_purged_table_has_a_retention() {
        let p = lethe_core::parse_policy(&policy_toml("sqlite:x.db"), "bench").unwrap();
        assert_eq!(p.entities[TABLE].retention.as_ref().unwrap().text, "30d");
        assert!(p.entities[COPY].retention.is_none());
    }
}
