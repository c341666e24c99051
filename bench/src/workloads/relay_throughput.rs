//! Workload 4: relay throughput. A backlog of 100,000 outbox rows (1,000
//! deletes of a parent with 99 cascaded kids, through `Engine::delete`,
//! while no relay runs), delivered by a `Relay` with `once: true` to Redis
//! (cache invalidation) and, from a second backlog, to NATS JetStream
//! (CloudEvents). Baselines: the same keys removed by pipelined `UNLINK`s,
//! and the same number of events of the same size published by a plain
//! async-nats loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lethe_core::Policy;
use lethe_relay::{Relay, RelayOptions, RelayStats};
use lethe_store::{DeleteRequest, Engine};
use tokio::sync::watch;

use super::{Settings, expect_rows, prepare_with, progress};
use crate::Result;
use crate::brokers::{Nats, Outgoing, Redis, run_tag, toml_str};
use crate::fixtures::Chain;
use crate::report::{Figure, Runs, Target, Unit};
use crate::sql::{Dialect, Pool};

pub const NAME: &str = "relay";
const KIDS: u64 = 99;
/// Relay workers tried; each is reported.
const WORKERS: [usize; 2] = [1, 2];
/// Lethe's rate at least 0.7x the baseline's, i.e. its cost (the harness's
/// ratio) at most 1/0.7 = 1.43 times the baseline's.
const TARGET: f64 = 1.0 / 0.7;
/// Events in flight per window of the NATS baseline (publish all of a
/// window, then await its acks): the same window as Lethe's NATS sink.
const NATS_BATCH: usize = 2_000;
/// A relay that marks nothing delivered for this long is reported stuck.
const STALL: Duration = Duration::from_secs(30);

/// Outbox records per relay batch: the relay's default.
fn relay_batch() -> u32 {
    lethe_relay::RelayOptions::default().batch
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    Redis,
    Nats,
}

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let redis = Redis::connect(&s.redis).await?;
    let nats = Nats::connect(&s.nats).await?;
    let tag = run_tag();
    let stream = format!("LETHE_BENCH_{tag}");
    nats.create_stream(&stream, &format!("{tag}.*.*")).await?;
    let chain = Chain::parents_and_kids(s.scaled(1_000), KIDS);
    let keys: Vec<String> = chain
        .levels
        .iter()
        .flat_map(|l| (1..=l.rows).map(|i| format!("{tag}:{}:{i}", l.table)))
        .collect();

    let result = measure(d, url, &chain, &keys, &redis, &nats, &tag, &stream).await;

    // Whatever happened: no keys or stream left behind.
    let unlinked = redis.unlink(&keys).await;
    let deleted = nats.delete_stream(&stream).await;
    let figures = result?;
    unlinked?;
    deleted?;
    Ok(figures)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    d: Dialect,
    url: &str,
    chain: &Chain,
    keys: &[String],
    redis: &Redis,
    nats: &Nats,
    tag: &str,
    stream: &str,
) -> Result<Vec<Figure>> {
    let parents = chain.levels[0].rows;
    let rows = chain.total_rows();
    let say = |m: &str| progress(d.name(), NAME, m);

    let (both, redis_only, nats_only) = policies(chain, url, redis.url(), nats.url(), tag, stream);
    let (redis_only, nats_only) = (parse(&redis_only)?, parse(&nats_only)?);

    say(&format!("loading {rows} rows"));
    let (pool, engine) = prepare_with(url, chain, &both).await?;
    let tables = chain.tables();

    let mut figures = Vec::new();
    for sink in [Sink::Redis, Sink::Nats] {
        for workers in WORKERS {
            let w = if workers == 1 {
                "1 worker"
            } else {
                "2 workers"
            };
            backlog(&engine, &pool, chain, &tables, d).await?;
            let (lethe, baseline) = match sink {
                Sink::Redis => {
                    redis.set_keys(keys).await?;
                    let before = redis.count_existing(keys).await?;
                    expect_rows("loading the Redis keys", before, rows)?;
                    let (secs, stats) =
                        relay_once(&engine, &redis_only, workers, relay_batch()).await?;
                    check(&stats, rows)?;
                    let left = redis.count_existing(keys).await?;
                    say(&format!(
                        "redis, {w}: {} keys invalidated in {secs:.3} s; {left} of {rows} keys left",
                        stats.rows
                    ));
                    if left != 0 {
                        return Err(format!("the relay left {left} of {rows} Redis keys").into());
                    }

                    redis.set_keys(keys).await?;
                    let t = Instant::now();
                    let removed = redis.unlink(keys).await?;
                    let base = t.elapsed().as_secs_f64();
                    let left = redis.count_existing(keys).await?;
                    say(&format!(
                        "redis baseline: {removed} keys unlinked in {base:.3} s; {left} of {rows} keys left"
                    ));
                    expect_rows("the UNLINK baseline", removed, rows)?;
                    (rows as f64 / secs, rows as f64 / base)
                }
                Sink::Nats => {
                    nats.purge(stream).await?;
                    let (secs, stats) =
                        relay_once(&engine, &nats_only, workers, relay_batch()).await?;
                    check(&stats, rows)?;
                    let (stored, bytes) = nats.stream_state(stream).await?;
                    say(&format!(
                        "nats, {w}: {} events published in {secs:.3} s; the stream holds {stored} of {rows} ({} bytes each)",
                        stats.rows,
                        bytes / stored.max(1)
                    ));
                    expect_rows("the relay's NATS stream", stored, rows)?;

                    nats.purge(stream).await?;
                    let events = baseline_events(tag, chain, workers);
                    let t = Instant::now();
                    nats.publish_batches(&events, NATS_BATCH).await?;
                    let base = t.elapsed().as_secs_f64();
                    let (stored, bytes) = nats.stream_state(stream).await?;
                    say(&format!(
                        "nats baseline: {} events published in {base:.3} s; the stream holds {stored} of {rows} ({} bytes each)",
                        events.len(),
                        bytes / stored.max(1)
                    ));
                    expect_rows("the NATS baseline's stream", stored, rows)?;
                    nats.purge(stream).await?;
                    (rows as f64 / secs, rows as f64 / base)
                }
            };
            let (what, unit, batch) = match sink {
                Sink::Redis => ("Redis keys invalidated", "keys/s", relay_batch()),
                Sink::Nats => ("NATS events published", "events/s", relay_batch()),
            };
            figures.push(Figure {
                dialect: d.name(),
                workload: NAME,
                measure: format!(
                    "{what}, backlog of {rows} rows ({parents} deletes), {w}, batch {batch}"
                ),
                unit: Unit::PerSecond(unit),
                lethe,
                baseline: Some(baseline),
                target: Target::MaxRatio(TARGET),
                runs: Runs::new(&[lethe], &[baseline]),
            });
        }
    }
    engine.db().close().await;
    pool.close().await;
    Ok(figures)
}

/// The policies: the application's (every row cached under
/// `<tag>:<table>:<id>` and published on `<tag>.<entity>.<event>`), and the
/// relays', with one sink each so each measures one transport.
fn policies(
    chain: &Chain,
    url: &str,
    redis_url: &str,
    nats_url: &str,
    tag: &str,
    stream: &str,
) -> (String, String, String) {
    let cache_sink = format!(
        "\n[sinks.cache]\nkind = \"redis\"\nurl = {}\n",
        toml_str(redis_url)
    );
    let events_sink = format!(
        "\n[sinks.events]\nkind = \"nats\"\nurl = {}\nsubject = {}\nstream = {}\n",
        toml_str(nats_url),
        toml_str(&format!("{tag}.{{entity}}.{{event}}")),
        toml_str(stream)
    );
    let cache_keys = |t: &str| {
        format!(
            "cache_keys = [{}]\n",
            toml_str(&format!("{tag}:{t}:{{id}}"))
        )
    };
    let publish = |_: &str| "publish = [\"events\"]\n".to_string();
    (
        chain.policy_toml_with(
            url,
            |t| cache_keys(t) + &publish(t),
            &(cache_sink.clone() + &events_sink),
        ),
        chain.policy_toml_with(url, cache_keys, &cache_sink),
        chain.policy_toml_with(url, publish, &events_sink),
    )
}

fn parse(toml: &str) -> Result<Arc<Policy>> {
    Ok(Arc::new(lethe_core::parse_policy(toml, "bench")?))
}

/// Makes every row active again (outside Lethe, as between the passes of the
/// other workloads), then deletes each parent with Lethe: one outbox record
/// per entity and delete, all undispatched, no relay running.
async fn backlog(
    engine: &Engine,
    pool: &Pool,
    chain: &Chain,
    tables: &[&str],
    d: Dialect,
) -> Result<()> {
    chain.reset(pool).await?;
    pool.settle(tables).await?;
    let parents = chain.levels[0].rows;
    let t = Instant::now();
    let mut rows = 0;
    for k in 1..=parents {
        let done = engine
            .delete(&DeleteRequest::new(chain.levels[0].table, k.to_string()))
            .await?;
        rows += done.affected.iter().map(|c| c.rows).sum::<u64>();
    }
    expect_rows("forming the backlog", rows, chain.total_rows())?;
    let records = engine.queue()?.undispatched().await?;
    progress(
        d.name(),
        NAME,
        &format!(
            "backlog: {parents} deletes, {rows} rows, {records} outbox records in {:.2} s",
            t.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Times a relay with `once: true` over the whole backlog (dispatch
/// included), from `run` to its return. Gives up when no delivery has been
/// marked for [`STALL`]: a stuck relay is an error, not a hang.
async fn relay_once(
    engine: &Engine,
    policy: &Arc<Policy>,
    workers: usize,
    batch: u32,
) -> Result<(f64, RelayStats)> {
    let relay = Arc::new(Relay::new(engine.queue()?, Arc::clone(policy)));
    let queue = engine.queue()?;
    let (_stop, stop_rx) = watch::channel(false);
    let opts = RelayOptions {
        once: true,
        workers,
        batch,
        ..RelayOptions::default()
    };
    let t = Instant::now();
    let mut running = tokio::spawn(async move { relay.run(opts, stop_rx).await });
    let mut progress: (Option<u64>, Instant) = (None, Instant::now());
    loop {
        tokio::select! {
            done = &mut running => {
                let secs = t.elapsed().as_secs_f64();
                let stats = done.map_err(|e| format!("the relay task: {e}"))??;
                return Ok((secs, stats));
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                let summary = queue.summary().await?;
                let count = |delivered: bool| -> u64 {
                    summary
                        .iter()
                        .filter(|s| (s.state == "delivered") == delivered)
                        .map(|s| s.deliveries)
                        .sum()
                };
                let delivered = count(true);
                if progress.0 != Some(delivered) {
                    progress = (Some(delivered), Instant::now());
                } else if progress.1.elapsed() > STALL {
                    // The workers are tasks of their own and may stay stuck
                    // until the process exits; the scratch database is
                    // dropped WITH (FORCE) all the same.
                    running.abort();
                    return Err(format!(
                        "the relay stalled: no delivery marked for {} s ({delivered} delivered, {} not)",
                        STALL.as_secs(),
                        count(false)
                    )
                    .into());
                }
            }
        }
    }
}

fn check(stats: &RelayStats, rows: u64) -> Result<()> {
    if stats.failed > 0 {
        return Err(format!(
            "the relay recorded {} failed deliveries ({stats:?})",
            stats.failed
        )
        .into());
    }
    expect_rows("the relay", stats.rows, rows)
}

/// The baseline's events: one per row, on the subjects Lethe's events go to,
/// each a CloudEvent of the same shape and size as Lethe's (ids are unique
/// per pass so JetStream's duplicate window keeps them all).
fn baseline_events(tag: &str, chain: &Chain, pass: usize) -> Vec<Outgoing> {
    let deletion = uuid::Uuid::now_v7().to_string();
    let mut out = Vec::with_capacity(chain.total_rows() as usize);
    for (level, l) in chain.levels.iter().enumerate() {
        for i in 1..=l.rows {
            let id = format!(
                "{:08x}-{pass:04x}-4{level:03x}-8000-{i:012x}",
                std::process::id()
            );
            let json = serde_json::json!({
                "specversion": "1.0",
                "id": id,
                "source": "lethe",
                "type": "lethe.deleted",
                "subject": format!("{}/{i}", l.table),
                "time": crate::fixtures::now_text(),
                "datacontenttype": "application/json",
                "data": {
                    "entity": l.table,
                    "key": { "id": i },
                    "deletion_id": deletion,
                    "actor": null,
                    "reason": null,
                },
            })
            .to_string();
            out.push(Outgoing {
                subject: format!("{tag}.{}.deleted", l.table),
                id,
                json,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_route_every_entity_to_their_sinks() {
        let chain = Chain::parents_and_kids(2, 3);
        let (both, redis_only, nats_only) = policies(
            &chain,
            "sqlite:x.db",
            "redis://127.0.0.1:6379/",
            "nats://127.0.0.1:4222",
            "lb1x2",
            "LETHE_BENCH_lb1x2",
        );
        let routes = |toml: &str| {
            let mut r = parse(toml).unwrap().routes();
            r.sort();
            r
        };
        let pair = |e: &str, s: &str| (e.to_string(), s.to_string());
        assert_eq!(
            routes(&both),
            [
                pair("kids", "cache"),
                pair("kids", "events"),
                pair("parents", "cache"),
                pair("parents", "events")
            ]
        );
        assert_eq!(
            routes(&redis_only),
            [pair("kids", "cache"), pair("parents", "cache")]
        );
        assert_eq!(
            routes(&nats_only),
            [pair("kids", "events"), pair("parents", "events")]
        );
    }

    #[test]
    fn baseline_events_match_the_rows_and_are_unique() {
        let chain = Chain::parents_and_kids(2, 3);
        let ev = baseline_events("lb1x2", &chain, 1);
        assert_eq!(ev.len(), 8);
        assert_eq!(ev[0].subject, "lb1x2.parents.deleted");
        assert_eq!(ev[7].subject, "lb1x2.kids.deleted");
        let ids: std::collections::HashSet<&str> = ev.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 8);
        let v: serde_json::Value = serde_json::from_str(&ev[7].json).unwrap();
        assert_eq!(v["subject"], "kids/6");
        assert_eq!(v["data"]["key"]["id"], 6);
    }
}
