//! Workload 3: the memory of the `lethe` CLI while it deletes a 1,000,001-row
//! cascade (1 root, 1,000 children, 999 grandchildren each). Lethe promises
//! memory that does not grow with the rows; this is where that shows.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Settings, expect_rows, prepare, progress};
use crate::Result;
use crate::fixtures::{Chain, now_text};
use crate::report::{Figure, Runs, Target, Unit};
use crate::sql::Dialect;

pub const NAME: &str = "rss";
const LIMIT_MB: f64 = 100.0;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let chain = Chain::tree(s.scaled(1_000), 999);
    let total = chain.total_rows();
    let tables = chain.tables();
    progress(d.name(), NAME, &format!("loading {total} rows"));
    let (pool, engine) = prepare(url, &chain).await?;
    // The CLI opens its own connections; on SQLite an idle pool of ours
    // would not block it, but there is no reason to keep one.
    engine.db().close().await;
    drop(engine);

    // The wall-time reference: the hand-written cascade on the same tree,
    // then every row made active again for the CLI.
    progress(d.name(), NAME, "baseline: hand-written cascade");
    let id = uuid::Uuid::now_v7().to_string();
    let t = Instant::now();
    let n = pool
        .transaction(&chain.baseline_delete(d, &now_text(), &id, 1))
        .await?;
    let baseline_secs = t.elapsed().as_secs_f64();
    expect_rows("baseline delete", n.iter().sum(), total)?;
    chain.reset(&pool).await?;
    pool.settle(&tables).await?;
    pool.close().await;

    let policy = s.dir.join(format!("{}-lethe.toml", d.name()));
    std::fs::write(&policy, chain.policy_toml(url))?;
    progress(d.name(), NAME, "lethe delete roots 1 (child process)");
    let args: Vec<OsString> = vec![
        "delete".into(),
        "roots".into(),
        "1".into(),
        "--json".into(),
        "--policy".into(),
        policy.into(),
        "--database".into(),
        url.into(),
    ];
    let (bin, dir) = (s.lethe_bin.clone(), s.dir.clone());
    let cli = tokio::task::spawn_blocking(move || run_cli(&bin, &args, &[], &dir)).await??;
    let out: serde_json::Value = serde_json::from_str(&cli.stdout)
        .map_err(|e| format!("lethe --json printed something else ({e}): {}", cli.stdout))?;
    let rows = out["affected"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    expect_rows("lethe delete (CLI)", rows, total)?;

    Ok(vec![
        Figure {
            dialect: d.name(),
            workload: NAME,
            measure: format!("peak RSS of `lethe delete`, {total} rows"),
            unit: Unit::Megabytes,
            lethe: cli.peak_mb(),
            baseline: None,
            target: Target::Below(LIMIT_MB),
            runs: Runs::default(),
        },
        Figure {
            dialect: d.name(),
            workload: NAME,
            measure: format!("wall time, {total} rows (CLI process vs in-process SQL)"),
            unit: Unit::Seconds,
            lethe: cli.wall_secs,
            baseline: Some(baseline_secs),
            target: Target::None,
            runs: Runs::default(),
        },
    ])
}

pub struct CliRun {
    /// The child's VmHWM, in KiB.
    pub peak_kib: u64,
    pub wall_secs: f64,
    pub stdout: String,
}

impl CliRun {
    /// The peak in (decimal) megabytes, the unit of the targets.
    pub fn peak_mb(&self) -> f64 {
        self.peak_kib as f64 * 1024.0 / 1e6
    }
}

/// How often the child's peak is read. VmHWM is a high-water mark, so a
/// sample only misses growth in the last interval before the process exits.
const POLL: Duration = Duration::from_millis(20);

/// Runs `lethe ARGS` (with `env` set, and no `LETHE_DATABASE_URL` from the
/// harness's own environment), sampling the child's VmHWM (the kernel's
/// high-water mark of its resident set) until it exits.
///
/// Not `wait4`'s `ru_maxrss`: that also counts the address space the child
/// was spawned from, so it reports the harness's own peak (tens of MB after
/// loading a million rows) whenever that is larger than the CLI's.
pub fn run_cli(bin: &Path, args: &[OsString], env: &[(&str, &str)], dir: &Path) -> Result<CliRun> {
    let out_path = dir.join("lethe-cli.stdout");
    let err_path = dir.join("lethe-cli.stderr");
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("LETHE_DATABASE_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        // Files, not pipes: nobody reads a pipe while we poll.
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        // Unreadable once the process has exited; its last sample stands.
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(POLL);
    };
    let wall_secs = start.elapsed().as_secs_f64();
    let stdout = std::fs::read_to_string(&out_path)?;
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path)?;
        return Err(format!("lethe failed ({status}): {stderr}{stdout}").into());
    }
    if peak_kib == 0 {
        return Err("could not read the CLI's VmHWM from /proc (Linux only)".into());
    }
    Ok(CliRun {
        peak_kib,
        wall_secs,
        stdout,
    })
}

/// `VmHWM:   14388 kB` from /proc/<pid>/status.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tlethe\nVmPeak:\t  90000 kB\nVmHWM:\t   14388 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(super::vm_hwm_kib(status), Some(14388));
    }
}
