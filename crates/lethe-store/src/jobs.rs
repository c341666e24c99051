//! Scheduled jobs: the loop `lethe worker` runs. Every job of the policy
//! (`[jobs.NAME]`: a purge or an export on a cron schedule, UTC) fires at
//! its times; several workers may run against one database:
//! - each run (job, scheduled time) is claimed by inserting it into
//!   `job_runs`: the first worker to do so runs it, the others pass;
//! - a job runs alone: a PostgreSQL advisory lock held on a connection of
//!   its own for the whole run (released by the database if the worker
//!   dies), or on SQLite a leased row renewed while the job runs. A run
//!   that finds the previous one still going is recorded as `skipped`.
//!
//! Missed times are not caught up: a worker that was down starts again
//! with the next time (a purge or export picks up whatever is due anyway).
//! What a job does is the caller's (see `lethe_cold::jobs`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lethe_core::Job;
use lethe_sql::jobs as sql;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::db::col;
use crate::engine::Engine;
use crate::error::Result;

/// Runs one job; `Ok` carries a JSON summary, `Err` the failure.
pub type JobFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Value, String>> + Send + 'a>>;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// This worker's name in `job_runs` (host and process by default).
    pub owner: String,
    /// Run each job for its latest scheduled time (if no worker has), then
    /// return.
    pub once: bool,
    /// SQLite: how long a job's lease lasts without renewal.
    pub lease: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            owner: format!("worker-{}", std::process::id()),
            once: false,
            lease: Duration::from_secs(60),
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerStats {
    /// Runs this worker did (succeeded or failed).
    pub ran: u64,
    pub failed: u64,
    /// Times another worker had claimed first.
    pub taken: u64,
    /// Times skipped because the job's previous run was still going.
    pub busy: u64,
}

/// One recorded run of a job.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRun {
    pub job: String,
    pub scheduled_for: String,
    pub owner: String,
    /// `running`, `done`, `failed` or `skipped`.
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub summary: Option<Value>,
    pub error: Option<String>,
}

fn unix_text(t: i64) -> String {
    crate::time_text(OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A stable 64-bit lock key for a job (FNV-1a over its name).
fn lock_key(job: &str) -> i64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("lethe.job.{job}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h as i64
}

enum Tick {
    Ran { failed: bool },
    Taken,
    Busy,
}

/// A job's exclusive hold for one run.
enum Exclusive {
    Advisory(crate::db::Held),
    Lease(tokio::task::JoinHandle<()>),
}

impl Engine {
    /// Runs the jobs on their schedules until `stop` turns true (or once,
    /// with `opts.once`); `run` does a job's work.
    pub async fn work<'a>(
        &'a self,
        jobs: &[Job],
        opts: &WorkerOptions,
        mut stop: watch::Receiver<bool>,
        run: &(dyn Fn(&Job) -> JobFuture<'a> + Sync),
    ) -> Result<WorkerStats> {
        self.require_internal()?;
        let mut stats = WorkerStats::default();
        let note = |t: Tick, stats: &mut WorkerStats| match t {
            Tick::Ran { failed } => {
                stats.ran += 1;
                stats.failed += u64::from(failed);
            }
            Tick::Taken => stats.taken += 1,
            Tick::Busy => stats.busy += 1,
        };
        if opts.once {
            let now = now_unix();
            for job in jobs {
                if let Some(t) = job.schedule.latest_at_or_before(now) {
                    let r = self.tick(job, t, opts, run).await?;
                    note(r, &mut stats);
                }
            }
            return Ok(stats);
        }
        let mut last: HashMap<&str, i64> =
            jobs.iter().map(|j| (j.name.as_str(), now_unix())).collect();
        loop {
            if *stop.borrow() {
                return Ok(stats);
            }
            let next = jobs
                .iter()
                .filter_map(|j| j.schedule.next_after(last[j.name.as_str()]))
                .min();
            let Some(next) = next else {
                return Ok(stats); // no job fires again
            };
            let wait = (next - now_unix()).max(0) as u64;
            if wait > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    changed = stop.changed() => match changed {
                        Ok(()) => continue,
                        // The sender is gone: no stop can come any more,
                        // so sleep the whole wait instead of spinning.
                        Err(_) => tokio::time::sleep(Duration::from_secs(wait)).await,
                    },
                }
            }
            let now = now_unix();
            for job in jobs {
                let due = job
                    .schedule
                    .next_after(last[job.name.as_str()])
                    .is_some_and(|n| n <= now);
                if !due {
                    continue;
                }
                // The latest time due: times missed while a run went on are
                // not caught up one by one.
                let t = job.schedule.latest_at_or_before(now).unwrap_or(now);
                last.insert(job.name.as_str(), t);
                match self.tick(job, t, opts, run).await {
                    Ok(r) => note(r, &mut stats),
                    // A database that is away for a moment: the next time
                    // comes; the error is in the log.
                    Err(e) => {
                        tracing::warn!(job = %job.name, error = %e, "scheduled run could not be started")
                    }
                }
            }
        }
    }

    async fn tick<'a>(
        &'a self,
        job: &Job,
        at: i64,
        opts: &WorkerOptions,
        run: &(dyn Fn(&Job) -> JobFuture<'a> + Sync),
    ) -> Result<Tick> {
        let d = self.dialect();
        let scheduled = unix_text(at);
        let now = crate::time_text(OffsetDateTime::now_utc());
        let claimed = {
            let mut tx = self.db.begin_write().await?;
            let n = tx
                .exec(
                    &sql::claim(d),
                    &[
                        Some(job.name.clone()),
                        Some(scheduled.clone()),
                        Some(opts.owner.clone()),
                        Some(now),
                    ],
                )
                .await?;
            tx.commit().await?;
            n == 1
        };
        if !claimed {
            return Ok(Tick::Taken);
        }
        let Some(excl) = self.exclusive(job, opts).await? else {
            self.finish_run(
                job,
                &scheduled,
                "skipped",
                None,
                Some("the previous run of this job is still going"),
            )
            .await?;
            return Ok(Tick::Busy);
        };
        // Holding the job alone, no other run of it is going: a run still
        // `running` was left by a worker that died.
        self.close_abandoned(job, &scheduled).await?;
        tracing::info!(job = %job.name, scheduled = %scheduled, "running scheduled job");
        let result = run(job).await;
        let failed = result.is_err();
        let (state, summary, error) = match result {
            Ok(v) => ("done", Some(v.to_string()), None),
            Err(e) => ("failed", None, Some(e)),
        };
        let finished = self
            .finish_run(job, &scheduled, state, summary.as_deref(), error.as_deref())
            .await;
        self.release(job, opts, excl).await;
        finished?;
        Ok(Tick::Ran { failed })
    }

    async fn close_abandoned(&self, job: &Job, current: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        tx.exec(
            &sql::close_abandoned(self.dialect()),
            &[
                Some(job.name.clone()),
                Some(current.to_string()),
                Some(crate::time_text(OffsetDateTime::now_utc())),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_run(
        &self,
        job: &Job,
        scheduled: &str,
        state: &str,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        tx.exec(
            &sql::finish(self.dialect()),
            &[
                Some(job.name.clone()),
                Some(scheduled.to_string()),
                Some(state.to_string()),
                Some(crate::time_text(OffsetDateTime::now_utc())),
                summary.map(str::to_string),
                error.map(str::to_string),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the job's exclusive hold, or `None` when another worker has it.
    async fn exclusive(&self, job: &Job, opts: &WorkerOptions) -> Result<Option<Exclusive>> {
        let d = self.dialect();
        if let Some(lock) = sql::try_advisory_lock(d) {
            return Ok(self
                .db
                .hold_session(lock, lock_key(&job.name))
                .await?
                .map(Exclusive::Advisory));
        }
        if !self.take_lease(&job.name, &opts.owner, opts.lease).await? {
            return Ok(None);
        }
        // Renewed while the job runs, so a long run keeps it.
        let (db, name, owner, lease) = (
            self.db.clone(),
            job.name.clone(),
            opts.owner.clone(),
            opts.lease,
        );
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = OffsetDateTime::now_utc() + lease;
                let [_, update] = sql::lease(db.dialect());
                if let Ok(mut tx) = db.begin_write().await {
                    let _ = tx
                        .exec(
                            &update,
                            &[
                                Some(name.clone()),
                                Some(owner.clone()),
                                Some(crate::time_text(OffsetDateTime::now_utc())),
                                Some(crate::time_text(until)),
                            ],
                        )
                        .await;
                    let _ = tx.commit().await;
                }
            }
        });
        Ok(Some(Exclusive::Lease(renew)))
    }

    async fn take_lease(&self, job: &str, owner: &str, lease: Duration) -> Result<bool> {
        let [insert, update] = sql::lease(self.dialect());
        let now = OffsetDateTime::now_utc();
        let mut tx = self.db.begin_write().await?;
        tx.exec(&insert, &[Some(job.to_string())]).await?;
        let n = tx
            .exec(
                &update,
                &[
                    Some(job.to_string()),
                    Some(owner.to_string()),
                    Some(crate::time_text(now)),
                    Some(crate::time_text(now + lease)),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn release(&self, job: &Job, opts: &WorkerOptions, excl: Exclusive) {
        let d = self.dialect();
        match excl {
            Exclusive::Advisory(held) => {
                if let Some(unlock) = sql::advisory_unlock(d)
                    && let Err(e) = held.release(unlock).await
                {
                    tracing::warn!(job = %job.name, error = %e, "advisory unlock failed; the connection is closed instead");
                }
            }
            Exclusive::Lease(renew) => {
                renew.abort();
                if let Ok(mut tx) = self.db.begin_write().await {
                    let _ = tx
                        .exec(
                            &sql::release_lease(d),
                            &[Some(job.name.clone()), Some(opts.owner.clone())],
                        )
                        .await;
                    let _ = tx.commit().await;
                }
            }
        }
    }

    /// The latest job runs, newest first.
    pub async fn job_runs(&self, limit: u32) -> Result<Vec<JobRun>> {
        self.require_internal()?;
        let rows = self
            .db
            .rows(&sql::runs(self.dialect()), &[Some(limit.to_string())])
            .await?;
        Ok(rows
            .iter()
            .map(|r| JobRun {
                job: col(r, 0),
                scheduled_for: col(r, 1),
                owner: col(r, 2),
                state: col(r, 3),
                started_at: col(r, 4),
                finished_at: Some(col(r, 5)).filter(|s| !s.is_empty()),
                summary: Some(col(r, 6))
                    .filter(|s| !s.is_empty())
                    .and_then(|s| serde_json::from_str(&s).ok()),
                error: Some(col(r, 7)).filter(|s| !s.is_empty()),
            })
            .collect())
    }
}
