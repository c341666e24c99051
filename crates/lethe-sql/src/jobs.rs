//! Scheduled jobs (`lethe worker`): each run of a job is claimed by
//! inserting `(job, scheduled time)` (the first worker to do so runs it, the
//! others see the row), and a job runs alone: PostgreSQL holds an advisory
//! lock on a connection of its own for the run (released if the worker
//! dies), SQLite a leased row in `job_locks`.

use crate::dialect::Dialect;

/// Claims a run: `$1` job, `$2` scheduled time, `$3` owner, `$4` now.
/// Affects one row when this worker got it.
pub fn claim(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (job, scheduled_for, owner, state, started_at) VALUES ($1, {}, $3, 'running', {}) ON CONFLICT (job, scheduled_for) DO NOTHING",
        d.own("job_runs"),
        d.cast("$2", d.timestamp_type()),
        d.cast("$4", d.timestamp_type())
    )
}

/// Ends a run: `$1` job, `$2` scheduled time, `$3` state, `$4` finished,
/// `$5` summary JSON, `$6` error.
pub fn finish(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = $3, finished_at = {}, summary = $5, error = $6 WHERE job = $1 AND scheduled_for = {}",
        d.own("job_runs"),
        d.cast("$4", d.timestamp_type()),
        d.cast("$2", d.timestamp_type())
    )
}

/// Marks runs of job `$1` other than `$2` still `running` as failed (`$3`
/// now): their worker stopped before it finished. Run while holding the
/// job alone.
pub fn close_abandoned(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = 'failed', finished_at = {}, error = 'the worker running it stopped before it finished' \
         WHERE job = $1 AND state = 'running' AND scheduled_for <> {}",
        d.own("job_runs"),
        d.cast("$3", d.timestamp_type()),
        d.cast("$2", d.timestamp_type())
    )
}

/// The latest runs, newest first, at most `$1`: `(job, scheduled for,
/// owner, state, started, finished, summary, error)`.
pub fn runs(d: Dialect) -> String {
    format!(
        "SELECT job, {}, owner, state, {}, COALESCE({}, ''), COALESCE(summary, ''), COALESCE(error, '') FROM {} ORDER BY scheduled_for DESC, job LIMIT {}",
        d.timestamp_text("scheduled_for"),
        d.timestamp_text("started_at"),
        d.timestamp_text("finished_at"),
        d.own("job_runs"),
        d.cast("$1", "bigint")
    )
}

/// PostgreSQL: try the job's advisory lock (`$1`, a bigint) for this
/// session: `(locked)` as `t`/`f`. `None` where there are none (SQLite:
/// see [`lease`]).
pub fn try_advisory_lock(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Postgres => Some("SELECT pg_try_advisory_lock(CAST($1 AS bigint))::text"),
        Dialect::Sqlite => None,
    }
}

pub fn advisory_unlock(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Postgres => Some("SELECT pg_advisory_unlock(CAST($1 AS bigint))::text"),
        Dialect::Sqlite => None,
    }
}

/// Takes (or renews) the job's lease: `$1` job, `$2` owner, `$3` now, `$4`
/// lease end. Affects one row when this worker holds the lease.
pub fn lease(d: Dialect) -> [String; 2] {
    let t = d.own("job_locks");
    [
        format!(
            "INSERT INTO {t} (job, owner, lease_until) VALUES ($1, NULL, NULL) ON CONFLICT (job) DO NOTHING"
        ),
        format!(
            "UPDATE {t} SET owner = $2, lease_until = {} WHERE job = $1 AND (owner IS NULL OR owner = $2 OR lease_until < {})",
            d.cast("$4", d.timestamp_type()),
            d.cast("$3", d.timestamp_type())
        ),
    ]
}

/// Gives the lease back: `$1` job, `$2` owner.
pub fn release_lease(d: Dialect) -> String {
    format!(
        "UPDATE {} SET owner = NULL, lease_until = NULL WHERE job = $1 AND owner = $2",
        d.own("job_locks")
    )
}
