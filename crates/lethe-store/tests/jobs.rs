//! Scheduled jobs with several workers on one database: each scheduled run
//! happens once, and a job never runs twice at a time (a run longer than
//! the schedule's period makes the next times `skipped`). On PostgreSQL
//! (advisory locks) and SQLite (leased rows).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lethe_store::{Engine, JobFuture, WorkerOptions};
use tokio::sync::watch;

const POLICY: &str = r#"
[entities.users]
key = ["id"]
retention = "30d"

[jobs.tick]
run = "purge"
schedule = "* * * * * *"
"#;

async fn workers_share_runs_and_never_overlap(b: Backend) {
    let Some((db, first)) = shop_with(b, POLICY).await else {
        return;
    };
    first.db().close().await;
    // Three workers, each with its own engine (its own pool), as three
    // processes would be.
    let mut engines = Vec::new();
    for _ in 0..3 {
        engines.push(Arc::new(
            Engine::connect(policy(POLICY), &db.url).await.unwrap(),
        ));
    }
    let runs: Arc<Mutex<Vec<(usize, Instant, Instant)>>> = Arc::default();
    let (stop_tx, stop) = watch::channel(false);
    let mut handles = Vec::new();
    for (w, engine) in engines.iter().enumerate() {
        let (engine, runs, stop) = (engine.clone(), runs.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let jobs: Vec<lethe_core::Job> = engine.policy().jobs.values().cloned().collect();
            let opts = WorkerOptions {
                owner: format!("w{w}"),
                lease: Duration::from_secs(3),
                ..Default::default()
            };
            // A job that takes longer than the schedule's one second.
            let run = |_: &lethe_core::Job| -> JobFuture<'_> {
                let runs = runs.clone();
                Box::pin(async move {
                    let start = Instant::now();
                    tokio::time::sleep(Duration::from_millis(1300)).await;
                    runs.lock().unwrap().push((w, start, Instant::now()));
                    Ok(serde_json::json!({"worker": w}))
                })
            };
            engine.work(&jobs, &opts, stop, &run).await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(5500)).await;
    stop_tx.send(true).unwrap();
    let mut stats = Vec::new();
    for h in handles {
        stats.push(h.await.unwrap());
    }
    let runs = runs.lock().unwrap().clone();
    assert!(runs.len() >= 2, "the job ran: {runs:?}");
    // Never twice at a time.
    let mut sorted = runs.clone();
    sorted.sort_by_key(|r| r.1);
    for pair in sorted.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "two runs overlapped: {pair:?}");
    }
    // Each scheduled time once: one row per time, the done ones are
    // exactly the runs that happened.
    let rows = first_rows(&engines[0]).await;
    let done = rows.iter().filter(|r| r.state == "done").count();
    assert_eq!(done, runs.len(), "{rows:?}");
    let skipped = rows.iter().filter(|r| r.state == "skipped").count();
    assert!(
        skipped >= 1,
        "a run longer than the period skips the next time: {rows:?}"
    );
    let ran: u64 = stats.iter().map(|s| s.ran).sum();
    let busy: u64 = stats.iter().map(|s| s.busy).sum();
    assert_eq!(ran as usize, runs.len());
    assert_eq!(busy as usize, skipped);
    assert!(
        stats.iter().map(|s| s.taken).sum::<u64>() >= 1,
        "other workers saw times claimed: {stats:?}"
    );
    let mut times: Vec<&str> = rows.iter().map(|r| r.scheduled_for.as_str()).collect();
    let n = times.len();
    times.dedup();
    assert_eq!(times.len(), n, "one row per scheduled time");
    // A run left `running` by a worker that died is closed as failed by
    // the next worker that holds the job.
    let old = match b {
        Backend::Postgres => "'2020-01-01T00:00:00Z'",
        Backend::Sqlite => "'2020-01-01T00:00:00.000000Z'",
    };
    db.exec(&format!(
        "INSERT INTO {} (job, scheduled_for, owner, state, started_at) VALUES ('tick', {old}, 'dead', 'running', {old})",
        own(b, "job_runs")
    ))
    .await;
    // --once: the latest time, once, however many workers ask. A new
    // second first: the workers above may have claimed the current one just
    // before they stopped, and then nobody here would run (and close the
    // abandoned run).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let jobs: Vec<lethe_core::Job> = engines[0].policy().jobs.values().cloned().collect();
    let once = WorkerOptions {
        once: true,
        ..Default::default()
    };
    let quick =
        |_: &lethe_core::Job| -> JobFuture<'_> { Box::pin(async { Ok(serde_json::json!({})) }) };
    let (_keep, stop) = watch::channel(false);
    let a = engines[1]
        .work(&jobs, &once, stop.clone(), &quick)
        .await
        .unwrap();
    let b2 = engines[2].work(&jobs, &once, stop, &quick).await.unwrap();
    assert_eq!(a.ran + a.taken, 1);
    assert!(b2.ran + b2.taken == 1 && (a.ran + b2.ran) <= 2);
    let abandoned = first_rows(&engines[0])
        .await
        .into_iter()
        .find(|r| r.owner == "dead")
        .unwrap();
    assert_eq!(abandoned.state, "failed");
    assert!(
        abandoned
            .error
            .unwrap()
            .contains("stopped before it finished")
    );
    db.cleanup().await;
}
on_both!(workers, workers_share_runs_and_never_overlap);

async fn first_rows(engine: &Engine) -> Vec<lethe_store::JobRun> {
    engine.job_runs(1000).await.unwrap()
}
