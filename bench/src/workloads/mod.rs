//! The workloads. Each runs on a fresh scratch database and returns its
//! figures; nothing here judges them (see `report`).

pub mod archive;
pub mod deep_cascade;
pub mod erase;
pub mod http_deletes;
pub mod latency;
pub mod lint;
pub mod peak_rss;
pub mod purge;
pub mod purge_latency;
pub mod relay_throughput;
pub mod single_deletes;

use std::path::PathBuf;

use lethe_store::Engine;

use crate::Result;
use crate::fixtures::Chain;
use crate::sql::Pool;

/// What every workload needs from the command line.
pub struct Settings {
    /// Multiplies the row counts (1.0 = the documented sizes).
    pub scale: f64,
    /// Measured repetitions of the deep cascade, archive and erase
    /// workloads (after one warm-up).
    pub repetitions: usize,
    pub lethe_bin: PathBuf,
    /// Holds SQLite files, policies and CLI output; removed at the end.
    pub dir: PathBuf,
    /// Redis for the relay and latency workloads.
    pub redis: String,
    /// NATS (with JetStream) for the relay workload.
    pub nats: String,
}

impl Settings {
    /// `n` scaled, never below 1.
    pub fn scaled(&self, n: u64) -> u64 {
        ((n as f64 * self.scale).round() as u64).max(1)
    }
}

/// Creates and loads `chain`, then lets Lethe migrate it (marker columns,
/// indexes, guards) exactly as a user would. Returns the harness's own pool
/// and the engine.
pub async fn prepare(url: &str, chain: &Chain) -> Result<(Pool, Engine)> {
    prepare_with(url, chain, &chain.policy_toml(url)).await
}

/// [`prepare`] with a policy of the caller's (e.g. with sinks).
pub async fn prepare_with(url: &str, chain: &Chain, policy_toml: &str) -> Result<(Pool, Engine)> {
    let pool = Pool::connect(url).await?;
    chain.load(&pool).await?;
    let policy = lethe_core::parse_policy(policy_toml, "bench")?;
    let mut engine = Engine::connect(policy, url).await?;
    engine.migrate(false).await?;
    pool.analyze(&chain.tables()).await?;
    Ok((pool, engine))
}

/// Fails when a run changed another number of rows than the fixture holds:
/// a fast wrong answer is no benchmark.
pub fn expect_rows(what: &str, got: u64, want: u64) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} changed {got} rows, expected {want}").into())
    }
}

pub fn progress(dialect: &str, workload: &str, msg: &str) {
    eprintln!("[{dialect} {workload}] {msg}");
}
