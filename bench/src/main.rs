//! `lethe-bench`: measures Lethe against hand-written set-based SQL doing the
//! same marking (and, for the relay, against plain Redis and NATS clients
//! doing the same transport), in the same run, on the same data, and prints
//! each figure beside its baseline with the ratio. A tool run by hand: it
//! asserts nothing about time, and exits 0 whether targets are met or missed.

mod brokers;
mod expired;
mod fixtures;
mod report;
mod scratch;
mod sql;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use report::Figure;
use scratch::Scratch;
use sql::Dialect;
use workloads::{
    Settings, archive, deep_cascade, erase, http_deletes, latency, lint, peak_rss, purge,
    purge_latency, relay_throughput, single_deletes,
};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(
    name = "lethe-bench",
    about = "Lethe against hand-written SQL, on SQLite and PostgreSQL, in one run",
    after_help = "Workloads:\n  \
deep    delete and restore one root with a 42,001-row cascade (target: at most 1.5x the SQL)\n  \
single  1,000 one-row-plus-3-kids deletes, one transaction each (target: at most 2x)\n  \
rss     peak memory of the `lethe` CLI deleting a 1,000,001-row cascade (target: under 100 MB)\n  \
relay   relay throughput from a 100,000-row backlog to Redis and to NATS JetStream (target: at least 0.7x\n          \
the rate of plain pipelined UNLINKs / JetStream publishes, i.e. a ratio of at most 1.43x)\n  \
latency commit-to-invalidation latency at 200 deletes/s for 15 s, relay running (target: p99 under 100 ms)\n  \
purge   purge 1,000,000 expired soft-deleted rows among 100,000 active ones in batches of 1,000 (target: at\n          \
least 0.8x the rate of a hand-written batched purge, i.e. a ratio of at most 1.25x), and the peak memory\n          \
of `lethe purge` at 250,000 and 1,000,000 expired rows (target: under 100 MB)\n  \
purge-latency\n          \
p99 of concurrent point reads by key while Lethe's purge runs, against idle (target: at most 2x)\n  \
archive delete and restore the deep tree with every entity strategy = \"archive\", against hand-written\n          \
archive tables (target: at most 1.5x)\n  \
erase   GDPR erasure of one user owning 10,000 rows in 6 tables (deleted, anonymized, kept), request and\n          \
table step, against hand-written deletes and an update in one transaction (target: at most 2x)\n  \
http    1,000 single-row deletes with one cascaded child through `lethe serve`'s HTTP API, one client, against\n          \
the same deletes through the library in-process (target: at least 0.7x the rate, i.e. a ratio of at most 1.43x)\n\n\
relay and latency need Redis (--redis) and relay NATS with JetStream (--nats).\n\
Build first: cargo build --release -p lethe-cli -p lethe-bench\n\
Set LETHE_LOG=sqlx=debug to log every statement (Lethe's and the baseline's) with its time."
)]
struct Args {
    /// PostgreSQL server to use; the harness creates and drops its own
    /// database `lethe_bench_<pid>` there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1/postgres")]
    pg: String,
    /// Run one workload only.
    #[arg(long, value_enum)]
    only: Option<Workload>,
    /// Skip PostgreSQL.
    #[arg(long)]
    sqlite_only: bool,
    /// Multiply the row counts, e.g. 0.01 for a quick smoke run.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    rows_scale: f64,
    /// Measured repetitions of the deep, archive and erase workloads (after
    /// one warm-up run; erase loads two subjects per run).
    #[arg(long, default_value_t = 5, value_name = "N")]
    repetitions: usize,
    /// The `lethe` binary the rss and purge workloads run.
    #[arg(long, default_value = "target/release/lethe", value_name = "PATH")]
    lethe_bin: PathBuf,
    /// Redis for the relay and latency workloads (its keys are prefixed
    /// `lb<pid>x...`; the latency workload adds `Eg` to
    /// `notify-keyspace-events` and restores it afterwards).
    #[arg(long, default_value = "redis://127.0.0.1:6379/", value_name = "URL")]
    redis: String,
    /// NATS with JetStream for the relay workload (it creates and deletes
    /// its own stream `LETHE_BENCH_lb<pid>x...`).
    #[arg(long, default_value = "nats://127.0.0.1:4222", value_name = "URL")]
    nats: String,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Deep,
    Single,
    Rss,
    Relay,
    Latency,
    Purge,
    PurgeLatency,
    Archive,
    Erase,
    Http,
    Lint,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Deep => deep_cascade::NAME,
            Workload::Single => single_deletes::NAME,
            Workload::Rss => peak_rss::NAME,
            Workload::Relay => relay_throughput::NAME,
            Workload::Latency => latency::NAME,
            Workload::Purge => purge::NAME,
            Workload::PurgeLatency => purge_latency::NAME,
            Workload::Archive => archive::NAME,
            Workload::Erase => erase::NAME,
            Workload::Http => http_deletes::NAME,
            Workload::Lint => lint::NAME,
        }
    }

    async fn run(self, s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
        match self {
            Workload::Deep => deep_cascade::run(s, d, url).await,
            Workload::Single => single_deletes::run(s, d, url).await,
            Workload::Rss => peak_rss::run(s, d, url).await,
            Workload::Relay => relay_throughput::run(s, d, url).await,
            Workload::Latency => latency::run(s, d, url).await,
            Workload::Purge => purge::run(s, d, url).await,
            Workload::PurgeLatency => purge_latency::run(s, d, url).await,
            Workload::Archive => archive::run(s, d, url).await,
            Workload::Erase => erase::run(s, d, url).await,
            Workload::Http => http_deletes::run(s, d, url).await,
            Workload::Lint => lint::run(s, d, url).await,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // `LETHE_LOG=sqlx=debug` logs every statement with its time, for both
    // Lethe and the baseline: the way to see where a ratio comes from.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LETHE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run(&args).await {
        Ok(figures) => {
            if args.json {
                let out = serde_json::json!({
                    "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
                    "rows_scale": args.rows_scale,
                    "figures": figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
                });
                println!("{out:#}");
            } else {
                print!("{}", report::table(&figures));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<Vec<Figure>> {
    if args.rows_scale.is_nan() || args.rows_scale <= 0.0 {
        return Err("--rows-scale must be above 0".into());
    }
    let workloads: Vec<Workload> = match args.only {
        Some(w) => vec![w],
        None => vec![
            Workload::Deep,
            Workload::Single,
            Workload::Rss,
            Workload::Relay,
            Workload::Latency,
            Workload::Purge,
            Workload::PurgeLatency,
            Workload::Archive,
            Workload::Erase,
            Workload::Http,
            Workload::Lint,
        ],
    };
    // Fail now rather than after the other workloads have run.
    let runs_cli = workloads.contains(&Workload::Rss) || workloads.contains(&Workload::Purge);
    if runs_cli && !args.lethe_bin.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p lethe-cli` or pass --lethe-bin",
            args.lethe_bin.display()
        )
        .into());
    }
    if workloads.contains(&Workload::Relay) || workloads.contains(&Workload::Latency) {
        brokers::Redis::connect(&args.redis).await?;
    }
    if workloads.contains(&Workload::Relay) {
        brokers::Nats::connect(&args.nats).await?;
    }
    let dialects: &[Dialect] = if args.sqlite_only {
        &[Dialect::Sqlite]
    } else {
        &[Dialect::Sqlite, Dialect::Postgres]
    };
    let dir = std::env::temp_dir().join(format!("lethe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let settings = Settings {
        scale: args.rows_scale,
        repetitions: args.repetitions.max(1),
        lethe_bin: std::path::absolute(&args.lethe_bin)?,
        dir: dir.clone(),
        redis: args.redis.clone(),
        nats: args.nats.clone(),
    };

    let figures = run_workloads(&args.pg, &settings, &workloads, dialects).await;
    // Best effort: the databases are gone already; this holds only small files.
    let _ = std::fs::remove_dir_all(&dir);
    figures
}

/// Runs each workload on each dialect, each on a fresh database that is
/// removed whatever happened to the run. Stops at the first failure.
async fn run_workloads(
    pg: &str,
    settings: &Settings,
    workloads: &[Workload],
    dialects: &[Dialect],
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for &w in workloads {
        for &d in dialects {
            let failed = |e: &dyn std::fmt::Display| format!("{} {}: {e}", d.name(), w.name());
            let scratch = Scratch::create(d, &settings.dir, w.name(), pg)
                .await
                .map_err(|e| failed(&format!("cannot create the database: {e}")))?;
            let result = w.run(settings, d, scratch.url()).await;
            let removed = scratch.remove().await;
            figures.extend(result.map_err(|e| failed(&e))?);
            removed.map_err(|e| failed(&format!("cannot remove the database: {e}")))?;
        }
    }
    Ok(figures)
}
