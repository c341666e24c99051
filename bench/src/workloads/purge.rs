//! Workload 6: retention. 1,000,000 expired soft-deleted rows among 100,000
//! active ones, removed for good by `Engine::purge` in batches of 1,000,
//! against a hand-written batched purge of an identical copy; then the peak
//! memory of the `lethe purge` CLI at two sizes, to show it stays flat.

use std::ffi::OsString;
use std::time::Instant;

use lethe_store::PurgeOptions;

use super::peak_rss::run_cli;
use super::{Settings, expect_rows, progress};
use crate::Result;
use crate::expired::{self, COPY, TABLE};
use crate::report::{Figure, Runs, Target, Unit};
use crate::sql::{Dialect, Pool};

pub const NAME: &str = "purge";
/// Rows per batch, for both sides (Lethe's default).
const BATCH: u32 = 1_000;
/// Lethe's rate at least 0.8x the baseline's: a ratio of at most 1/0.8.
const TARGET: f64 = 1.25;
const LIMIT_MB: f64 = 100.0;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let say = |m: &str| progress(d.name(), NAME, m);
    let active = s.scaled(100_000);
    say(&format!(
        "loading {} rows per table ({active} active) into {TABLE} and {COPY}",
        active * expired::GROUP
    ));
    let (pool, engine, due) = expired::load(url, active).await?;
    let tables = [TABLE, COPY];

    expired::quiesce(&pool, &tables).await?;
    say(&format!("Lethe: purging {due} expired rows of {TABLE}"));
    let opts = PurgeOptions {
        batch_size: BATCH,
        ..Default::default()
    };
    let t = Instant::now();
    let report = engine.purge(&opts, &mut |_| {}).await?;
    let lethe_secs = t.elapsed().as_secs_f64();
    expect_rows("Lethe purge", report.done(), due)?;
    check_left(&pool, TABLE, active).await?;
    say(&format!(
        "Lethe: {} rows in {} batches, {lethe_secs:.2} s, longest batch {} ms",
        report.done(),
        report.batches,
        report.longest_batch_ms
    ));

    expired::quiesce(&pool, &tables).await?;
    say(&format!("baseline: purging {due} expired rows of {COPY}"));
    let t = Instant::now();
    let hand = expired::hand_purge(&pool, COPY, &expired::cutoff(), BATCH).await?;
    let hand_secs = t.elapsed().as_secs_f64();
    expect_rows("hand-written purge", hand.rows, due)?;
    check_left(&pool, COPY, active).await?;
    say(&format!(
        "baseline: {} rows in {} batches, {hand_secs:.2} s, longest batch {:.0} ms",
        hand.rows, hand.batches, hand.longest_ms
    ));

    // The CLI at two sizes: the same kind of rows, refilled after the ids
    // already used, behind the active rows that stay.
    let policy = s.dir.join(format!("{}-purge.toml", d.name()));
    std::fs::write(&policy, expired::policy_toml(url))?;
    let mut next = active * expired::GROUP + 1;
    let mut rss = Vec::new();
    for size in [due / 4, due] {
        let added = expired::fill(&pool, &engine, TABLE, next, size, false).await?;
        next += size;
        pool.analyze(&tables).await?;
        expired::quiesce(&pool, &tables).await?;
        say(&format!(
            "lethe purge (child process), {added} expired rows"
        ));
        let args: Vec<OsString> = vec![
            "--policy".into(),
            policy.clone().into(),
            "purge".into(),
            "--batch-size".into(),
            BATCH.to_string().into(),
            "--json".into(),
        ];
        let (bin, dir, url) = (s.lethe_bin.clone(), s.dir.clone(), url.to_string());
        let cli = tokio::task::spawn_blocking(move || {
            run_cli(&bin, &args, &[("LETHE_DATABASE_URL", &url)], &dir)
        })
        .await??;
        let out: serde_json::Value = serde_json::from_str(&cli.stdout)
            .map_err(|e| format!("lethe --json printed something else ({e}): {}", cli.stdout))?;
        expect_rows(
            "lethe purge (CLI)",
            out["done"].as_u64().unwrap_or(0),
            added,
        )?;
        check_left(&pool, TABLE, active).await?;
        say(&format!(
            "lethe purge: {} MB peak, {} batches, longest {} ms, {:.2} s",
            cli.peak_mb(),
            out["batches"],
            out["longest_batch_ms"],
            cli.wall_secs
        ));
        rss.push((added, cli.peak_mb()));
    }
    engine.db().close().await;
    pool.close().await;

    let figure = |measure: String, unit, lethe, baseline, target| Figure {
        dialect: d.name(),
        workload: NAME,
        measure,
        unit,
        lethe,
        baseline,
        target,
        runs: Runs::default(),
    };
    let (lethe_rate, hand_rate) = (due as f64 / lethe_secs, due as f64 / hand_secs);
    let mut figures = vec![
        Figure {
            runs: Runs::new(&[lethe_rate], &[hand_rate]),
            ..figure(
                format!(
                    "purge {due} expired of {} rows, batches of {BATCH}",
                    due + active
                ),
                Unit::PerSecond("rows/s"),
                lethe_rate,
                Some(hand_rate),
                Target::MaxRatio(TARGET),
            )
        },
        figure(
            "longest batch transaction".into(),
            Unit::Millis,
            report.longest_batch_ms as f64,
            Some(hand.longest_ms),
            Target::None,
        ),
    ];
    for (rows, mb) in &rss {
        figures.push(figure(
            format!("peak RSS of `lethe purge`, {rows} expired rows"),
            Unit::Megabytes,
            *mb,
            None,
            Target::Below(LIMIT_MB),
        ));
    }
    if let [(small, small_mb), (large, large_mb)] = rss[..] {
        // Not a baseline: the smaller run, so the ratio shows the growth.
        figures.push(figure(
            format!("peak RSS at {large} vs {small} expired rows (flat = 1.00x)"),
            Unit::Megabytes,
            large_mb,
            Some(small_mb),
            Target::None,
        ));
    }
    Ok(figures)
}

/// Exactly the active rows are left: nothing expired stayed, nothing
/// active went.
async fn check_left(pool: &Pool, table: &str, active: u64) -> Result<()> {
    match expired::census(pool, table).await? {
        (a, 0) if a == active => Ok(()),
        (a, marked) => Err(format!(
            "after the purge {table} holds {a} active rows (expected {active}) and {marked} deleted ones (expected 0)"
        )
        .into()),
    }
}
