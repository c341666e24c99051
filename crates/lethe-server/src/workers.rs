//! The background work `lethe serve` runs beside the API: the outbox relay
//! and the policy's scheduled jobs. Both are safe with several instances on
//! one PostgreSQL (leased queues, advisory locks and run claims), and both
//! stop after the batch or job in hand when the stop signal comes.

use std::sync::Arc;

use lethe_relay::{Relay, RelayOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn start(state: &AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let engine = state.engine.clone();
    let opts = state.options.clone();
    if opts.relay {
        match engine.queue() {
            Ok(queue) => {
                let relay = Arc::new(Relay::new(queue, Arc::new(engine.policy().clone())));
                let stop = stop.clone();
                let poll = opts.relay_poll;
                handles.push(tokio::spawn(async move {
                    let ro = RelayOptions {
                        poll,
                        once: false,
                        ..RelayOptions::default()
                    };
                    match relay.run(ro, stop).await {
                        Ok(s) => tracing::info!(
                            dispatched = s.dispatched,
                            delivered = s.delivered,
                            failed = s.failed,
                            "relay stopped"
                        ),
                        Err(e) => tracing::error!(error = %e, "relay stopped on an error"),
                    }
                }));
            }
            Err(e) => tracing::error!(error = %e, "relay not started"),
        }
    }
    let jobs: Vec<lethe_core::Job> = engine.policy().jobs.values().cloned().collect();
    if opts.jobs && !jobs.is_empty() {
        let base = opts.base_dir.clone();
        handles.push(tokio::spawn(async move {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
            let wo = lethe_store::WorkerOptions {
                owner: format!("{host}:{}:serve", std::process::id()),
                once: false,
                ..Default::default()
            };
            let (e, b) = (&engine, &base);
            let run = move |job: &lethe_core::Job| -> lethe_store::JobFuture<'_> {
                let job = job.clone();
                Box::pin(async move { lethe_cold::jobs::run(e, &job, b).await })
            };
            match engine.work(&jobs, &wo, stop, &run).await {
                Ok(s) => tracing::info!(ran = s.ran, failed = s.failed, "jobs stopped"),
                Err(e) => tracing::error!(error = %e, "jobs stopped on an error"),
            }
        }));
    }
    handles
}
