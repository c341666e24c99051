//! Workload 8: the archive strategy on the `deep` tree (1 root, 2,000
//! children, 20 grandchildren each: 42,001 rows), every entity
//! `strategy = "archive"`. `Engine::delete` moves the rows out of their
//! tables into Lethe's archive store and `Engine::restore` puts them back;
//! the baseline does the same with hand-written archive tables, in one
//! transaction each.

use std::time::Instant;

use lethe_store::DeleteRequest;

use super::{Settings, expect_rows, prepare_with, progress};
use crate::Result;
use crate::fixtures::Chain;
use crate::report::{Figure, Target};
use crate::sql::{Dialect, Pool, Stmt};

pub const NAME: &str = "archive";
const TARGET: f64 = 1.5;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let chain = Chain::tree(s.scaled(2_000), 20);
    let total = chain.total_rows();
    progress(d.name(), NAME, &format!("loading {total} rows"));
    let policy = chain.policy_toml_with(url, |_| "strategy = \"archive\"\n".into(), "");
    let (pool, engine) = prepare_with(url, &chain, &policy).await?;
    create_archive_tables(&pool, &chain).await?;
    // Everything the runs write to, so each run starts without the dead
    // rows of the one before (PostgreSQL; see `Pool::settle`).
    let mut tables: Vec<String> = chain.tables().iter().map(|t| t.to_string()).collect();
    tables.extend(chain.tables().iter().map(|t| format!("{t}_archive")));
    if d == Dialect::Postgres {
        tables.push("lethe.archive".into());
    }
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    pool.settle(&tables).await?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    // Statements of a baseline that move rows: an INSERT and a DELETE per
    // level.
    let pairs = 2 * chain.levels.len();

    // [Lethe delete, Lethe restore, baseline delete, baseline restore]
    let mut times: [Vec<f64>; 4] = Default::default();
    // Run 0 is a warm-up and is not counted; each operation leaves the tree
    // as the next one needs it (as in `deep`).
    for run in 0..=s.repetitions {
        progress(d.name(), NAME, &format!("run {run}/{}", s.repetitions));
        let mut took = [0.0; 4];

        let t = Instant::now();
        let done = engine.delete(&DeleteRequest::new("roots", "1")).await?;
        took[0] = ms(t);
        expect_rows(
            "Lethe archive delete",
            done.affected.iter().map(|c| c.rows).sum(),
            total,
        )?;
        check_moved(&pool, &chain, 0, total).await?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let back = engine.restore(&done.deletion_id, None).await?;
        took[1] = ms(t);
        expect_rows(
            "Lethe archive restore",
            back.restored.iter().map(|c| c.rows).sum(),
            total,
        )?;
        check_moved(&pool, &chain, total, 0).await?;
        pool.settle(&tables).await?;

        let id = uuid::Uuid::now_v7().to_string();
        let t = Instant::now();
        let n = pool.transaction(&baseline_delete(&chain, d, &id)).await?;
        took[2] = ms(t);
        // The bypass comes first.
        expect_pairs("baseline archive delete", &n[1..=pairs], total)?;
        check_moved(&pool, &chain, 0, 0).await?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let n = pool.transaction(&baseline_restore(&chain, d, &id)).await?;
        took[3] = ms(t);
        expect_pairs("baseline archive restore", &n[..pairs], total)?;
        check_moved(&pool, &chain, total, 0).await?;
        pool.settle(&tables).await?;

        if run > 0 {
            for (v, x) in times.iter_mut().zip(took) {
                v.push(x);
            }
        }
    }
    engine.db().close().await;
    pool.close().await;

    let figure = |measure: &str, lethe: &[f64], baseline: &[f64]| {
        Figure::median_millis(
            d.name(),
            NAME,
            format!("{measure} {total} rows (median of {})", s.repetitions),
            lethe,
            baseline,
            Target::MaxRatio(TARGET),
        )
    };
    Ok(vec![
        figure("archive delete", &times[0], &times[2]),
        figure("archive restore", &times[1], &times[3]),
    ])
}

/// `<table>_archive` per level: the table's columns plus the deletion id,
/// indexed by it (restore finds a deletion's rows through it). What an
/// application writes by hand; no key, no guard.
async fn create_archive_tables(pool: &Pool, chain: &Chain) -> Result<()> {
    let d = pool.dialect();
    let uuid = match d {
        Dialect::Postgres => "uuid",
        Dialect::Sqlite => "TEXT",
    };
    for (i, l) in chain.levels.iter().enumerate() {
        let cols: Vec<String> = chain
            .columns(i)
            .iter()
            .map(|c| match *c {
                "name" => "name TEXT".to_string(),
                c => format!("{c} {} NOT NULL", d.key_type()),
            })
            .collect();
        let t = l.table;
        pool.exec(&format!(
            "CREATE TABLE {t}_archive ({}, deletion_id {uuid} NOT NULL)",
            cols.join(", ")
        ))
        .await?;
        pool.exec(&format!(
            "CREATE INDEX {t}_archive_deletion_id ON {t}_archive (deletion_id)"
        ))
        .await?;
    }
    Ok(())
}

/// The hand-written archive delete of root 1 in one transaction: per level,
/// children first (the foreign keys need it), copy the rows into the archive
/// table, then delete them, passing Lethe's delete guard the documented way.
/// The data statements come in (INSERT, DELETE) pairs after the bypass.
fn baseline_delete(chain: &Chain, d: Dialect, id: &str) -> Vec<Stmt> {
    let conds = chain.under_key(&d.param(1, "bigint"));
    let mut stmts = vec![d.bypass(true)];
    for (i, l) in chain.levels.iter().enumerate().rev() {
        let (t, cond) = (l.table, &conds[i]);
        let cols = chain.columns(i).join(", ");
        stmts.push(Stmt {
            sql: format!(
                "INSERT INTO {t}_archive ({cols}, deletion_id) SELECT {cols}, {} FROM {t} WHERE {cond}",
                d.param(2, "uuid")
            ),
            params: vec!["1".into(), id.into()],
        });
        stmts.push(Stmt {
            sql: format!("DELETE FROM {t} WHERE {cond}"),
            params: vec!["1".into()],
        });
    }
    if d == Dialect::Sqlite {
        stmts.push(d.bypass(false));
    }
    stmts
}

/// The hand-written restore of deletion `id`: per level, parents first,
/// copy the rows back and remove them from the archive table (no guard on
/// either: nothing is deleted from a managed table).
fn baseline_restore(chain: &Chain, d: Dialect, id: &str) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    for (i, l) in chain.levels.iter().enumerate() {
        let t = l.table;
        let cols = chain.columns(i).join(", ");
        let by_id = format!("deletion_id = {}", d.param(1, "uuid"));
        stmts.push(Stmt {
            sql: format!("INSERT INTO {t} ({cols}) SELECT {cols} FROM {t}_archive WHERE {by_id}"),
            params: vec![id.into()],
        });
        stmts.push(Stmt {
            sql: format!("DELETE FROM {t}_archive WHERE {by_id}"),
            params: vec![id.into()],
        });
    }
    stmts
}

/// The (INSERT, DELETE) pairs of a baseline moved `total` rows each way.
fn expect_pairs(what: &str, pairs: &[u64], total: u64) -> Result<()> {
    let inserted = pairs.iter().step_by(2).sum();
    let deleted = pairs.iter().skip(1).step_by(2).sum();
    expect_rows(&format!("{what} (inserts)"), inserted, total)?;
    expect_rows(&format!("{what} (deletes)"), deleted, total)
}

/// The tree is where the last operation should have left it: `in_tables`
/// rows in the chain's tables, `in_store` rows in Lethe's archive store.
async fn check_moved(pool: &Pool, chain: &Chain, in_tables: u64, in_store: u64) -> Result<()> {
    let mut rows = 0;
    for t in chain.tables() {
        rows += pool.scalar(&format!("SELECT count(*) FROM {t}")).await? as u64;
    }
    let store = match pool.dialect() {
        Dialect::Postgres => "lethe.archive",
        Dialect::Sqlite => "lethe_archive",
    };
    let stored = pool
        .scalar(&format!(
            "SELECT count(*) FROM {store} WHERE kind = 'archive'"
        ))
        .await? as u64;
    if (rows, stored) == (in_tables, in_store) {
        Ok(())
    } else {
        Err(format!(
            "{rows} rows in the tables and {stored} in the archive store, expected {in_tables} and {in_store}"
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_moves_children_first_and_brings_parents_back_first() {
        let chain = Chain::tree(2, 3);
        let sql = |stmts: Vec<Stmt>| stmts.into_iter().map(|s| s.sql).collect::<Vec<_>>();
        assert_eq!(
            sql(baseline_delete(&chain, Dialect::Sqlite, "d")),
            [
                "INSERT INTO lethe_bypass (token) VALUES ('bench')",
                "INSERT INTO grandchildren_archive (id, child_id, name, deletion_id) SELECT id, child_id, name, ?2 FROM grandchildren WHERE child_id IN (SELECT id FROM children WHERE root_id = ?1)",
                "DELETE FROM grandchildren WHERE child_id IN (SELECT id FROM children WHERE root_id = ?1)",
                "INSERT INTO children_archive (id, root_id, name, deletion_id) SELECT id, root_id, name, ?2 FROM children WHERE root_id = ?1",
                "DELETE FROM children WHERE root_id = ?1",
                "INSERT INTO roots_archive (id, name, deletion_id) SELECT id, name, ?2 FROM roots WHERE id = ?1",
                "DELETE FROM roots WHERE id = ?1",
                "DELETE FROM lethe_bypass",
            ]
        );
        assert_eq!(
            sql(baseline_restore(&chain, Dialect::Sqlite, "d"))[..2],
            [
                "INSERT INTO roots (id, name) SELECT id, name FROM roots_archive WHERE deletion_id = ?1",
                "DELETE FROM roots_archive WHERE deletion_id = ?1",
            ]
        );
    }
}
