//! Workload 7: what a purge does to the application's reads. A few readers,
//! each on its own connection and a steady schedule, read active rows by key
//! through the active view (`SELECT id, body FROM items_active WHERE id =
//! $1`, random ids): their latency while nothing else runs, then while
//! `Engine::purge` removes the table's 1,000,000 expired rows. For context,
//! the same readers on the copy, idle and while the hand-written purge
//! empties it. The idle reference is both idle windows together.

use std::future::Future;
use std::time::{Duration, Instant};

use lethe_store::PurgeOptions;
use tokio::sync::watch;

use super::{Settings, expect_rows, progress};
use crate::Result;
use crate::expired::{self, COPY, GROUP, TABLE};
use crate::report::{Figure, Runs, Target, Unit, percentile};
use crate::sql::{Dialect, Pool, Stmt};

pub const NAME: &str = "purge-latency";
/// Concurrent readers, and each one's reads per second (on a schedule, not
/// back to back: two cores are shared by the readers, the purge and the
/// database, and closed-loop readers would measure mostly their own load).
const READERS: u32 = 4;
const READS_PER_SEC: u64 = 250;
/// How long the idle readings last (the readings during a purge last as
/// long as the purge).
const IDLE: Duration = Duration::from_secs(10);
/// Discarded: connections opened, statements prepared.
const WARM_UP: Duration = Duration::from_secs(1);
const BATCH: u32 = 1_000;
/// p99 while Lethe purges at most twice the idle p99.
const TARGET: f64 = 2.0;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let say = |m: &str| progress(d.name(), NAME, m);
    let active = s.scaled(100_000);
    say(&format!(
        "loading {} rows per table ({active} active) into {TABLE} and {COPY}",
        active * GROUP
    ));
    let (pool, engine, due) = expired::load(url, active).await?;
    let tables = [TABLE, COPY];
    let readers = Pool::connect_many(url, READERS).await?;
    let idle = |table| reads_during(&readers, table, active, tokio::time::sleep(IDLE));

    expired::quiesce(&pool, &tables).await?;
    reads_during(&readers, TABLE, active, tokio::time::sleep(WARM_UP)).await?;
    let (idle_lethe, ()) = idle(TABLE).await?;
    say(&format!("idle, {TABLE}: {}", summary(&idle_lethe)));
    let opts = PurgeOptions {
        batch_size: BATCH,
        ..Default::default()
    };
    let t = Instant::now();
    let (during_lethe, report) =
        reads_during(&readers, TABLE, active, engine.purge(&opts, &mut |_| {})).await?;
    let lethe_secs = t.elapsed().as_secs_f64();
    expect_rows("Lethe purge", report?.done(), due)?;
    say(&format!(
        "during Lethe's purge ({lethe_secs:.1} s): {}",
        summary(&during_lethe)
    ));

    expired::quiesce(&pool, &tables).await?;
    reads_during(&readers, COPY, active, tokio::time::sleep(WARM_UP)).await?;
    let (idle_copy, ()) = idle(COPY).await?;
    say(&format!("idle, {COPY}: {}", summary(&idle_copy)));
    let t = Instant::now();
    let (during_hand, hand) = reads_during(
        &readers,
        COPY,
        active,
        expired::hand_purge(&pool, COPY, &expired::cutoff(), BATCH),
    )
    .await?;
    let hand_secs = t.elapsed().as_secs_f64();
    expect_rows("hand-written purge", hand?.rows, due)?;
    say(&format!(
        "during the hand-written purge ({hand_secs:.1} s): {}",
        summary(&during_hand)
    ));
    readers.close().await;
    engine.db().close().await;
    pool.close().await;

    // The two idle windows are the same readers on identical tables: taken
    // together, the reference is 20 s of reads rather than 10, which steadies
    // a p99 that background noise on two shared cores moves a lot.
    let idle: Vec<f64> = idle_lethe.iter().chain(&idle_copy).copied().collect();
    let read = format!("point read by key, {READERS} readers x {READS_PER_SEC}/s");
    let figure = |measure: String, lethe: &[f64], baseline: &[f64], p: f64, target| Figure {
        dialect: d.name(),
        workload: NAME,
        measure,
        unit: Unit::Millis,
        lethe: percentile(lethe, p),
        baseline: Some(percentile(baseline, p)),
        target,
        runs: Runs::default(),
    };
    Ok(vec![
        figure(
            format!("p50 {read}: during Lethe's purge vs idle"),
            &during_lethe,
            &idle,
            50.0,
            Target::None,
        ),
        figure(
            format!("p99 {read}: during Lethe's purge vs idle"),
            &during_lethe,
            &idle,
            99.0,
            Target::MaxRatio(TARGET),
        ),
        figure(
            format!("p99 {read}: during the hand-written purge vs idle"),
            &during_hand,
            &idle,
            99.0,
            Target::None,
        ),
        figure(
            format!("p99 {read}: during Lethe's purge vs during the hand-written one"),
            &during_lethe,
            &during_hand,
            99.0,
            Target::None,
        ),
        Figure {
            dialect: d.name(),
            workload: NAME,
            measure: format!("purge {due} expired rows while the readers run"),
            unit: Unit::PerSecond("rows/s"),
            lethe: due as f64 / lethe_secs,
            baseline: Some(due as f64 / hand_secs),
            target: Target::None,
            runs: Runs::default(),
        },
    ])
}

fn summary(v: &[f64]) -> String {
    format!(
        "{} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        v.len(),
        percentile(v, 50.0),
        percentile(v, 99.0),
        percentile(v, 100.0)
    )
}

/// Runs the readers on `table` until `work` is done; returns every read's
/// latency in ms, and what `work` returned. The readers are stopped before
/// `work`'s result is looked at, whatever it is.
async fn reads_during<F: Future>(
    readers: &Pool,
    table: &'static str,
    active: u64,
    work: F,
) -> Result<(Vec<f64>, F::Output)> {
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = (0..READERS)
        .map(|i| {
            tokio::spawn(reader(
                readers.clone(),
                table,
                active,
                u64::from(i) + 1,
                stopped.clone(),
            ))
        })
        .collect();
    let out = work.await;
    let _ = stop.send(true);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| format!("a reader task: {e}"))??);
    }
    if latencies.is_empty() {
        return Err("the readers made no read".into());
    }
    Ok((latencies, out))
}

/// One reader: a read of a random active row every 1/READS_PER_SEC s (a read
/// that overruns its slot makes the next ones start late and catch up, as
/// in `latency`), each timed from the call to the last row. Every read must
/// find its row: a fast wrong answer is no benchmark.
async fn reader(
    pool: Pool,
    table: &'static str,
    active: u64,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<f64>> {
    let sql = format!(
        "SELECT id, body FROM {table}_active WHERE id = {}",
        pool.dialect().param(1, "bigint")
    );
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / READS_PER_SEC));
    let mut out = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        // The active rows are every GROUPth id (see `expired::load`).
        let id = GROUP * (1 + rng.next() % active);
        let stmt = Stmt {
            sql: sql.clone(),
            params: vec![id.to_string()],
        };
        let t = Instant::now();
        let found = pool.fetch_count(&stmt).await?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        if found != 1 {
            return Err(format!("reading {table} id {id} found {found} rows, expected 1").into());
        }
    }
    Ok(out)
}

/// xorshift64: random enough to spread reads over the table, without a
/// dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
