//! Workload 5: commit-to-invalidation latency. A steady 200 deletes per
//! second for 15 s, each of one product whose cache key was set beforehand,
//! while a relay runs continuously in the same process with the Redis sink.
//! For each delete: the instant `Engine::delete` returned (the commit) and
//! the instant Redis announced the key's deletion (keyspace notification).
//! Baseline: the application's own dual write, the hand-written UPDATE
//! committed and then the key unlinked right away, on the same schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lethe_relay::{Relay, RelayOptions};
use lethe_store::{DeleteRequest, Engine};
use tokio::sync::watch;

use super::{Settings, expect_rows, prepare_with, progress};
use crate::Result;
use crate::brokers::{Redis, run_tag, toml_str};
use crate::fixtures::{Chain, now_text};
use crate::report::{Figure, Runs, Target, Unit, percentile};
use crate::sql::{Dialect, Pool};

pub const NAME: &str = "latency";
const TABLE: &str = "products";
/// Deletes per second, and for how long (scaled by --rows-scale).
const RATE: u64 = 200;
const SECONDS: u64 = 15;
/// The relay's poll interval: the default, then a shorter one.
const POLLS_MS: [u64; 2] = [50, 10];
const TARGET_P99_MS: f64 = 100.0;
/// How long to wait for the last invalidations after the last delete.
const DRAIN: Duration = Duration::from_secs(30);

/// One pass: latency of each delete (ms) and the delete rate achieved.
struct Pass {
    latencies: Vec<f64>,
    rate: f64,
}

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let redis = Redis::connect(&s.redis).await?;
    let tag = run_tag();
    let n = s.scaled(RATE * SECONDS);
    let keys: Vec<String> = (1..=n).map(|i| format!("{tag}:{TABLE}:{i}")).collect();
    let flags = redis.enable_del_events().await?;

    let result = measure(d, url, n, &keys, &redis, &tag).await;

    // Whatever happened: the server's setting back, no keys left behind.
    let restored = redis.set_notify_flags(&flags).await;
    let unlinked = redis.unlink(&keys).await;
    let figures = result?;
    restored?;
    unlinked?;
    Ok(figures)
}

async fn measure(
    d: Dialect,
    url: &str,
    n: u64,
    keys: &[String],
    redis: &Redis,
    tag: &str,
) -> Result<Vec<Figure>> {
    let say = |m: &str| progress(d.name(), NAME, m);
    let chain = Chain::single(TABLE, n);
    let tables = chain.tables();
    let policy = chain.policy_toml_with(
        url,
        |t| {
            format!(
                "cache_keys = [{}]\n",
                toml_str(&format!("{tag}:{t}:{{id}}"))
            )
        },
        &format!(
            "\n[sinks.cache]\nkind = \"redis\"\nurl = {}\n",
            toml_str(redis.url())
        ),
    );
    say(&format!("loading {n} rows"));
    let (pool, engine) = prepare_with(url, &chain, &policy).await?;

    let mut lethe = Vec::new();
    for poll in POLLS_MS {
        chain.reset(&pool).await?;
        pool.settle(&tables).await?;
        let pass = lethe_pass(&engine, redis, keys, tag, Duration::from_millis(poll)).await?;
        say(&format!("Lethe, relay poll {poll} ms: {}", summary(&pass)));
        lethe.push((poll, pass));
    }
    chain.reset(&pool).await?;
    pool.settle(&tables).await?;
    let base = baseline_pass(&pool, &chain, d, redis, keys, tag).await?;
    say(&format!(
        "baseline (UNLINK after commit): {}",
        summary(&base)
    ));
    engine.db().close().await;
    pool.close().await;

    let mut figures = Vec::new();
    for (poll, pass) in &lethe {
        let at = format!("{n} deletes at {RATE}/s, relay poll {poll} ms");
        let latency = |stat: &str, p: f64, target| Figure {
            dialect: d.name(),
            workload: NAME,
            measure: format!("{stat} commit to invalidation, {at}"),
            unit: Unit::Millis,
            lethe: percentile(&pass.latencies, p),
            baseline: Some(percentile(&base.latencies, p)),
            target,
            runs: Runs::default(),
        };
        figures.push(latency("p50", 50.0, Target::None));
        figures.push(latency("p99", 99.0, Target::Below(TARGET_P99_MS)));
        figures.push(latency("max", 100.0, Target::None));
        figures.push(Figure {
            dialect: d.name(),
            workload: NAME,
            measure: format!("delete rate achieved, {at}"),
            unit: Unit::PerSecond("deletes/s"),
            lethe: pass.rate,
            baseline: Some(base.rate),
            target: Target::None,
            runs: Runs::new(&[pass.rate], &[base.rate]),
        });
    }
    Ok(figures)
}

/// The figures, and the median of the first and the last tenth of the
/// deletes: a latency that grows during the pass shows there.
fn summary(p: &Pass) -> String {
    let v = &p.latencies;
    let tenth = (v.len() / 10).max(1);
    format!(
        "{:.0} deletes/s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (p50 of the first tenth {:.1} ms, of the last {:.1} ms)",
        p.rate,
        percentile(v, 50.0),
        percentile(v, 99.0),
        percentile(v, 100.0),
        percentile(&v[..tenth], 50.0),
        percentile(&v[v.len() - tenth..], 50.0),
    )
}

/// A tick every 1/RATE s; a delete that takes longer makes the next ones
/// start late and catch up (tokio's `Burst`), so the count per second
/// holds while the deletes never overlap.
fn schedule() -> tokio::time::Interval {
    tokio::time::interval(Duration::from_micros(1_000_000 / RATE))
}

async fn lethe_pass(
    engine: &Engine,
    redis: &Redis,
    keys: &[String],
    tag: &str,
    poll: Duration,
) -> Result<Pass> {
    redis.set_keys(keys).await?;
    let watcher = redis.watch_dels(format!("{tag}:"), keys.len()).await?;
    let relay = Arc::new(Relay::new(
        engine.queue()?,
        Arc::new(engine.policy().clone()),
    ));
    let (stop, stop_rx) = watch::channel(false);
    let opts = RelayOptions {
        poll,
        ..RelayOptions::default()
    };
    let running = tokio::spawn(async move { relay.run(opts, stop_rx).await });
    // Let the relay create its queues and settle into its loop.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut tick = schedule();
    let mut commits = Vec::with_capacity(keys.len());
    let start = Instant::now();
    let mut failed = None;
    for k in 1..=keys.len() {
        tick.tick().await;
        match engine
            .delete(&DeleteRequest::new(TABLE, k.to_string()))
            .await
        {
            Ok(done) => {
                commits.push(Instant::now());
                let rows = done.affected.iter().map(|c| c.rows).sum();
                if let Err(e) = expect_rows("a Lethe delete", rows, 1) {
                    failed = Some(e);
                    break;
                }
            }
            Err(e) => {
                failed = Some(e.into());
                break;
            }
        }
    }
    let rate = commits.len() as f64 / start.elapsed().as_secs_f64();
    let seen = if failed.is_none() {
        watcher.finish(DRAIN).await
    } else {
        watcher.finish(Duration::ZERO).await
    };
    let _ = stop.send(true);
    let stats = running
        .await
        .map_err(|e| format!("the relay task: {e}"))??;
    if let Some(e) = failed {
        return Err(e);
    }
    if stats.failed > 0 {
        return Err(format!(
            "the relay recorded {} failed deliveries ({stats:?})",
            stats.failed
        )
        .into());
    }
    Ok(Pass {
        latencies: latencies(redis, keys, &commits, &seen).await?,
        rate,
    })
}

async fn baseline_pass(
    pool: &Pool,
    chain: &Chain,
    d: Dialect,
    redis: &Redis,
    keys: &[String],
    tag: &str,
) -> Result<Pass> {
    redis.set_keys(keys).await?;
    let watcher = redis.watch_dels(format!("{tag}:"), keys.len()).await?;
    let mut tick = schedule();
    let mut commits = Vec::with_capacity(keys.len());
    let start = Instant::now();
    let mut failed = None;
    for (k, key) in (1..).zip(keys) {
        tick.tick().await;
        let id = uuid::Uuid::now_v7().to_string();
        let step = async {
            let n = pool
                .transaction(&chain.baseline_delete(d, &now_text(), &id, k))
                .await?;
            commits.push(Instant::now());
            expect_rows("a baseline delete", n.iter().sum(), 1)?;
            redis.unlink_one(key).await
        };
        if let Err(e) = step.await {
            failed = Some(e);
            break;
        }
    }
    let rate = commits.len() as f64 / start.elapsed().as_secs_f64();
    let limit = if failed.is_none() {
        DRAIN
    } else {
        Duration::ZERO
    };
    let seen = watcher.finish(limit).await;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Pass {
        latencies: latencies(redis, keys, &commits, &seen).await?,
        rate,
    })
}

/// Milliseconds from each commit to its key's deletion notification; an
/// error naming what is missing if any key was not seen.
async fn latencies(
    redis: &Redis,
    keys: &[String],
    commits: &[Instant],
    seen: &HashMap<String, Instant>,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(keys.len());
    for (key, commit) in keys.iter().zip(commits) {
        if let Some(at) = seen.get(key) {
            // Signed: a notification before `delete` returned would show as
            // negative rather than be hidden.
            out.push(match at.checked_duration_since(*commit) {
                Some(d) => d.as_secs_f64() * 1e3,
                None => -(commit.duration_since(*at).as_secs_f64() * 1e3),
            });
        }
    }
    if out.len() < keys.len() {
        let left = redis.count_existing(keys).await?;
        return Err(format!(
            "{} of {} deletions were not seen invalidated within {} s ({left} keys still exist{})",
            keys.len() - out.len(),
            keys.len(),
            DRAIN.as_secs(),
            if left == 0 {
                ": the keyspace notifications were lost, not the invalidations"
            } else {
                ""
            }
        )
        .into());
    }
    Ok(out)
}
