//! `lethe relay`, `lethe deliveries`, `lethe replay`: the delivery side of
//! the outbox. Thin: the work is in `lethe-relay` and `lethe-store`.

use std::sync::Arc;
use std::time::Duration;

use lethe_relay::{Relay, RelayOptions};
use lethe_store::StoreError;
use serde_json::json;

use crate::Cli;
use crate::commands::engine;
use crate::exit;
use crate::output::print_json;
use crate::table;

/// Options of `lethe relay`.
pub struct RelayArgs {
    pub once: bool,
    pub workers: usize,
    pub batch: u32,
    pub lease: Duration,
    pub poll: Duration,
    pub json: bool,
}

pub async fn relay(cli: &Cli, a: &RelayArgs) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let queue = engine.queue()?;
    if engine.policy().sinks.is_empty() {
        eprintln!(
            "note: the policy declares no [sinks.NAME]: outbox records are marked dispatched and go nowhere"
        );
    }
    let relay = Arc::new(Relay::new(queue, Arc::new(engine.policy().clone())));
    let (tx, rx) = tokio::sync::watch::channel(false);
    if !a.once {
        // Ctrl-C / SIGTERM: workers finish the batch in hand, then stop.
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("stopping: finishing the deliveries in hand");
            let _ = tx.send(true);
        });
    }
    let opts = RelayOptions {
        workers: a.workers,
        batch: a.batch,
        lease: a.lease,
        poll: a.poll,
        once: a.once,
        ..RelayOptions::default()
    };
    let stats = relay.run(opts, rx).await.map_err(StoreError::from)?;
    let queue = relay.queue();
    let summary = queue.summary().await?;
    let open: u64 = summary
        .iter()
        .filter(|s| s.state == "pending" || s.state == "retrying")
        .map(|s| s.deliveries)
        .sum();
    let dead: u64 = summary
        .iter()
        .filter(|s| s.state == "dead")
        .map(|s| s.deliveries)
        .sum();
    if a.json {
        print_json(&json!({"stats": stats, "open": open, "dead": dead}));
    } else {
        println!(
            "relay: dispatched {} outbox record(s); delivered {} message(s) ({} row(s)); {} failed attempt(s)",
            stats.dispatched, stats.delivered, stats.rows, stats.failed
        );
        if open > 0 || dead > 0 {
            println!(
                "left: {open} open (pending or retrying), {dead} dead; see `lethe deliveries`"
            );
        }
    }
    Ok(if a.once && stats.failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn deliveries(
    cli: &Cli,
    state: Option<&str>,
    sink: Option<&str>,
    limit: u32,
    json_out: bool,
) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    if let Some(s) = sink
        && !engine.policy().sinks.contains_key(s)
    {
        eprintln!(
            "note: \"{s}\" is not a sink in the current policy (listing its deliveries anyway)"
        );
    }
    let queue = engine.queue()?;
    let list = queue.list(state, sink, limit).await?;
    // The summary follows the same filters as the list.
    let summary: Vec<_> = queue
        .summary()
        .await?
        .into_iter()
        .filter(|s| sink.is_none_or(|k| k == s.sink) && state.is_none_or(|st| st == s.state))
        .collect();
    let undispatched = queue.undispatched().await?;
    if json_out {
        print_json(&json!({
            "summary": summary,
            "undispatched_outbox_records": undispatched,
            "deliveries": list,
        }));
        return Ok(exit::OK);
    }
    if summary.is_empty() {
        println!("no deliveries yet");
    } else {
        let rows: Vec<Vec<String>> = summary
            .iter()
            .map(|s| {
                vec![
                    s.sink.clone(),
                    s.state.clone(),
                    s.deliveries.to_string(),
                    s.rows.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["SINK", "STATE", "MESSAGES", "ROWS"], &rows)
        );
    }
    if undispatched > 0 {
        println!("{undispatched} outbox record(s) not yet dispatched (run `lethe relay`)");
    }
    if !list.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|d| {
                vec![
                    d.id.to_string(),
                    d.sink.clone(),
                    d.entity.clone(),
                    d.event.clone(),
                    d.rows.to_string(),
                    d.state.clone(),
                    d.attempts.to_string(),
                    match d.state.as_str() {
                        "delivered" => d.delivered_at.clone().unwrap_or_default(),
                        "dead" => "-".into(),
                        _ => d.next_at.clone(),
                    },
                    d.last_error
                        .clone()
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &[
                    "ID",
                    "SINK",
                    "ENTITY",
                    "EVENT",
                    "ROWS",
                    "STATE",
                    "ATTEMPTS",
                    "NEXT/DONE",
                    "LAST ERROR"
                ],
                &rows
            )
        );
    }
    Ok(exit::OK)
}

pub async fn replay(
    cli: &Cli,
    id: Option<i64>,
    dead: bool,
    sink: Option<&str>,
    json_out: bool,
) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let queue = engine.queue()?;
    let n = match (id, dead) {
        (Some(id), false) => {
            if !queue.replay(id).await? {
                return Err(StoreError::DeliveryNotFound(id));
            }
            1
        }
        (None, true) => queue.replay_dead(sink).await?,
        _ => {
            return Err(StoreError::Invalid(
                "give a delivery ID or --dead (with an optional --sink)".into(),
            ));
        }
    };
    if json_out {
        print_json(&json!({"requeued": n}));
    } else {
        println!(
            "re-queued {n} deliver{}; `lethe relay` sends them",
            if n == 1 { "y" } else { "ies" }
        );
    }
    Ok(exit::OK)
}

pub async fn reconcile(
    cli: &Cli,
    sink: Option<&str>,
    fix: bool,
    json_out: bool,
) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let report = lethe_relay::reconcile(&engine, sink, fix)
        .await
        .map_err(StoreError::from)?;
    if json_out {
        print_json(&json!({
            "fix": report.fix,
            "found": report.found(),
            "fixed": report.fixed(),
            "checks": report.checks,
        }));
    } else if report.checks.is_empty() {
        println!(
            "nothing to reconcile: no entity sends cache keys or search documents to {}",
            sink.unwrap_or("any sink")
        );
    } else {
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.sink.clone(),
                    match &c.index {
                        Some(i) => format!("{} ({i})", c.entity),
                        None => c.entity.clone(),
                    },
                    c.check.replace('_', " "),
                    c.checked.to_string(),
                    c.found.to_string(),
                    if fix { c.fixed.to_string() } else { "-".into() },
                    c.examples.join(" "),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &[
                    "SINK", "ENTITY", "CHECK", "CHECKED", "DRIFT", "FIXED", "EXAMPLES"
                ],
                &rows
            )
        );
        match (report.found(), fix) {
            (0, _) => println!("in sync"),
            (n, false) => println!("{n} item(s) out of sync; repair with `lethe reconcile --fix`"),
            (n, true) => println!("repaired {} of {n} item(s)", report.fixed()),
        }
    }
    Ok(if report.found() > report.fixed() {
        exit::FAILURE
    } else {
        exit::OK
    })
}
