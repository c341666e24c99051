//! The relay loop: dispatch committed outbox records into deliveries, lease
//! one `(sink, entity)` queue at a time, deliver its due messages in outbox
//! order as one transport batch, record the outcome, give the queue back.
//!
//! Guarantees, and where they come from:
//! - *At least once.* A delivery is marked delivered only after the sink
//!   confirmed it; a relay killed in between leaves it open, and its queue's
//!   lease runs out, so another relay (or the restarted one) sends it again
//!   with the same event ids.
//! - *No late commit skipped.* Dispatch reads outbox records by their
//!   `dispatched` flag, not by position, so a transaction that took an early
//!   outbox id and committed late is picked up when it commits.
//! - *Order per row.* Every message of an entity goes to a sink through one
//!   queue, leased by one relay at a time and worked in outbox order; a
//!   failed message holds the later ones until it is delivered or dead.
//! - *No double claim.* Queues are leased with `FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL; SQLite has one writer at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lethe_core::Policy;
use lethe_store::{Queue, QueuedMessage, StoreError};
use serde::Serialize;
use tokio::sync::watch;

use crate::any_sink::AnySink;
use crate::sink::SinkError;

/// Rows per transport batch (several outbox records of small deletions, or
/// one part of a large one: parts hold at most 10,000 rows).
const MAX_BATCH_ROWS: u64 = 20_000;

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Concurrent workers; each leases its own queue.
    pub workers: usize,
    /// How long a leased queue stays this relay's without renewal.
    pub lease: Duration,
    /// Messages (outbox records) delivered per batch.
    pub batch: u32,
    /// Sleep when there is nothing to do.
    pub poll: Duration,
    /// Stop when no due work is left (`lethe relay --once`).
    pub once: bool,
    /// Identifies this relay in leases (host, process, random suffix).
    pub owner: String,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            workers: 1,
            lease: Duration::from_secs(30),
            batch: 500,
            poll: Duration::from_millis(50),
            once: false,
            owner: default_owner(),
        }
    }
}

/// `host:pid:random`, unique per relay process.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "relay".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    )
}

/// What a relay run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RelayStats {
    /// Outbox records turned into deliveries.
    pub dispatched: u64,
    /// Deliveries confirmed by their sink.
    pub delivered: u64,
    /// Rows in the delivered messages.
    pub rows: u64,
    /// Failed attempts recorded (each will be retried or is dead).
    pub failed: u64,
}

impl RelayStats {
    fn add(&mut self, o: &RelayStats) {
        self.dispatched += o.dispatched;
        self.delivered += o.delivered;
        self.rows += o.rows;
        self.failed += o.failed;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sink could not be built or reached (reconcile; the relay itself
    /// records sink failures on the messages and retries).
    #[error("sink \"{sink}\": {error}")]
    Sink { sink: String, error: SinkError },
}

/// At the edges (CLI, server, erasure) every error is a `StoreError`.
impl From<RelayError> for StoreError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Store(s) => s,
            e @ RelayError::Sink { .. } => StoreError::Sink(e.to_string()),
        }
    }
}

/// A relay over one database and policy.
pub struct Relay {
    queue: Queue,
    policy: Arc<Policy>,
    routes: Vec<(String, String)>,
    sinks: Vec<String>,
}

/// Delay before the next attempt after `attempts` earlier failures:
/// exponential from the sink's initial backoff to its maximum, with jitter
/// (50–100 %) so relays and messages that failed together do not retry in
/// lockstep.
pub fn backoff(retry: &lethe_core::Retry, attempts: u32) -> Duration {
    let base = retry.initial.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempts.min(30));
    let capped = exp.min(retry.max.as_millis() as u64);
    let jitter = 0.5 + fastrand::f64() * 0.5;
    Duration::from_millis((capped as f64 * jitter) as u64)
}

impl Relay {
    pub fn new(queue: Queue, policy: Arc<Policy>) -> Relay {
        let routes = policy.routes();
        let sinks = policy.sinks.keys().cloned().collect();
        Relay {
            queue,
            policy,
            routes,
            sinks,
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Runs until `stop` turns true (or, with `once`, until no due work is
    /// left). Each worker finishes its current batch before it stops, so no
    /// claimed work is abandoned.
    pub async fn run(
        self: &Arc<Self>,
        opts: RelayOptions,
        stop: watch::Receiver<bool>,
    ) -> Result<RelayStats, RelayError> {
        self.queue.ensure_queues(&self.routes).await?;
        // A lease shorter than a second would run out while a batch is sent.
        let mut opts = opts;
        opts.lease = opts.lease.max(Duration::from_secs(1));
        let mut tasks = Vec::new();
        for w in 0..opts.workers.max(1) {
            let me = Arc::clone(self);
            let mut o = opts.clone();
            o.owner = format!("{}/{w}", opts.owner);
            let stop = stop.clone();
            tasks.push(tokio::spawn(
                async move { me.worker(o, w == 0, stop).await },
            ));
        }
        let mut total = RelayStats::default();
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(Ok(s)) => total.add(&s),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(RelayError::Store(StoreError::Database(e.to_string())));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    async fn worker(
        &self,
        opts: RelayOptions,
        dispatcher: bool,
        mut stop: watch::Receiver<bool>,
    ) -> Result<RelayStats, RelayError> {
        let mut stats = RelayStats::default();
        let mut stop_open = true;
        let mut sinks: HashMap<String, AnySink> = HashMap::new();
        for s in self.policy.sinks.values() {
            let built = AnySink::new(s).map_err(|error| RelayError::Sink {
                sink: s.name.clone(),
                error,
            })?;
            sinks.insert(s.name.clone(), built);
        }
        // Consecutive database errors: a long-running relay waits and tries
        // again (a restart, a failover, a busy SQLite file) instead of
        // losing a worker; `--once` reports the error.
        let mut errors: u32 = 0;
        loop {
            if *stop.borrow() {
                return Ok(stats);
            }
            let did = match self.cycle(&opts, dispatcher, &mut sinks, &mut stats).await {
                Ok(did) => {
                    errors = 0;
                    did
                }
                Err(e) if opts.once => return Err(e),
                Err(e) => {
                    errors += 1;
                    let pause = opts
                        .poll
                        .saturating_mul(1u32 << errors.min(7))
                        .min(Duration::from_secs(10));
                    tracing::warn!(error = %e, "relay cycle failed; trying again in {pause:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        r = stop.changed(), if stop_open => stop_open = r.is_ok(),
                    }
                    continue;
                }
            };
            if !did {
                if opts.once {
                    // Another worker may still be dispatching: one more look.
                    if self.queue.undispatched().await? == 0 {
                        return Ok(stats);
                    }
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(opts.poll) => {}
                    // A dropped sender can no longer stop the relay: keep
                    // sleeping between looks instead of spinning.
                    r = stop.changed(), if stop_open => stop_open = r.is_ok(),
                }
            }
        }
    }

    /// One look for work: dispatch (the dispatching worker), then claim a
    /// queue and work it. Returns whether there was anything to do.
    async fn cycle(
        &self,
        opts: &RelayOptions,
        dispatcher: bool,
        sinks: &mut HashMap<String, AnySink>,
        stats: &mut RelayStats,
    ) -> Result<bool, RelayError> {
        let mut did = false;
        if dispatcher || opts.once {
            let n = self.queue.dispatch(&self.routes).await?;
            stats.dispatched += n;
            did |= n > 0;
        }
        if let Some((sink, entity)) = self
            .queue
            .claim(&opts.owner, &self.sinks, opts.lease)
            .await?
        {
            did = true;
            let result = self.work_queue(opts, sinks, &sink, &entity, stats).await;
            // Give the queue back even when recording failed.
            let released = self.queue.release(&sink, &entity, &opts.owner).await;
            result?;
            released?;
        }
        Ok(did)
    }

    /// Delivers the due messages of one leased queue, batch by batch.
    async fn work_queue(
        &self,
        opts: &RelayOptions,
        sinks: &mut HashMap<String, AnySink>,
        sink_name: &str,
        entity_name: &str,
        stats: &mut RelayStats,
    ) -> Result<(), RelayError> {
        let Some(sink_conf) = self.policy.sinks.get(sink_name) else {
            return Ok(());
        };
        let retry = sink_conf.retry;
        let mut renewed = Instant::now();
        loop {
            let msgs = self
                .queue
                .messages(sink_name, entity_name, opts.batch)
                .await?;
            let fetched = msgs.len();
            let full = fetched as u32 == opts.batch;
            // Only the due prefix: a message waiting for its retry holds the
            // ones after it (order per row). And at most MAX_BATCH_ROWS rows
            // (but always one message), so memory stays bounded however
            // large the deletions.
            let mut rows = 0u64;
            let due: Vec<QueuedMessage> = msgs
                .into_iter()
                .take_while(|m| m.due)
                .take_while(|m| {
                    let first = rows == 0;
                    rows += m.rows;
                    first || rows <= MAX_BATCH_ROWS
                })
                .collect();
            if due.is_empty() {
                return Ok(());
            }
            let more = full || due.len() < fetched;
            // Renew when a third of the lease has passed (the claim just set
            // it): one transaction less per batch on a busy queue.
            if renewed.elapsed() > opts.lease / 3 {
                if !self
                    .queue
                    .renew(sink_name, entity_name, &opts.owner, opts.lease)
                    .await?
                {
                    // The lease ran out and another relay took the queue.
                    return Ok(());
                }
                renewed = Instant::now();
            }
            let ids: Vec<i64> = due.iter().map(|m| m.delivery_id).collect();
            let outcome = match (self.policy.entity(entity_name), sinks.get_mut(sink_name)) {
                (Some(e), Some(sink)) => {
                    // Keep the lease while the sink works: if it ran out
                    // mid-batch, another relay could send later messages of
                    // this queue before this batch lands. When the lease is
                    // lost anyway (this relay stalled past it), stop sending:
                    // the queue's new owner sends these messages again.
                    let deliver = sink.deliver(&self.policy, sink_name, e, &due);
                    tokio::pin!(deliver);
                    let mut beat =
                        tokio::time::interval(opts.lease.max(Duration::from_millis(300)) / 3);
                    beat.tick().await;
                    loop {
                        tokio::select! {
                            r = &mut deliver => break Some(r),
                            _ = beat.tick() => {
                                match self.queue.renew(sink_name, entity_name, &opts.owner, opts.lease).await {
                                    Ok(true) => renewed = Instant::now(),
                                    Ok(false) => break None,
                                    Err(err) => tracing::warn!(sink = sink_name, entity = entity_name, error = %err, "could not renew the queue lease"),
                                }
                            }
                        }
                    }
                }
                (None, _) => Some(Err(SinkError::Config(format!(
                    "entity \"{entity_name}\" is no longer in the policy"
                )))),
                (_, None) => Some(Err(SinkError::Config(format!(
                    "sink \"{sink_name}\" is not built"
                )))),
            };
            let queue = (sink_name, entity_name);
            match outcome {
                None => {
                    tracing::warn!(
                        sink = sink_name,
                        entity = entity_name,
                        "queue lease lost mid-batch; its new owner delivers it"
                    );
                    return Ok(());
                }
                Some(Ok(())) => {
                    let marked = self.queue.delivered(&ids, queue, &opts.owner).await?;
                    stats.delivered += marked;
                    if marked < ids.len() as u64 {
                        // Not all ours any more: another relay took the queue.
                        return Ok(());
                    }
                    stats.rows += due.iter().map(|m| m.rows).sum::<u64>();
                }
                Some(Err(e)) if due.len() > 1 && matches!(e, SinkError::Rejected(_)) => {
                    // The sink answered and refused the batch: find the
                    // message it refuses, one at a time in order, so only
                    // that one is charged an attempt (and can end dead).
                    for m in &due {
                        let one = std::slice::from_ref(m);
                        let (sink, entity) =
                            match (sinks.get_mut(sink_name), self.policy.entity(entity_name)) {
                                (Some(s), Some(e)) => (s, e),
                                _ => return Ok(()),
                            };
                        match sink.deliver(&self.policy, sink_name, entity, one).await {
                            Ok(()) => {
                                let n = self
                                    .queue
                                    .delivered(&[m.delivery_id], queue, &opts.owner)
                                    .await?;
                                if n == 0 {
                                    return Ok(()); // the queue is no longer ours
                                }
                                stats.delivered += n;
                                stats.rows += m.rows;
                            }
                            Err(e) => {
                                self.record_failure(opts, queue, &retry, m, &e, stats)
                                    .await?;
                                return Ok(());
                            }
                        }
                    }
                    return Ok(());
                }
                Some(Err(e)) => {
                    // The attempt counts on the first message; the ones
                    // behind it wait for it (order), uncharged.
                    self.record_failure(opts, queue, &retry, &due[0], &e, stats)
                        .await?;
                    return Ok(());
                }
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Charges one failed attempt to `m`: retrying after the backoff, or dead
    /// after the sink's `max_attempts`.
    async fn record_failure(
        &self,
        opts: &RelayOptions,
        queue: (&str, &str),
        retry: &lethe_core::Retry,
        m: &QueuedMessage,
        e: &SinkError,
        stats: &mut RelayStats,
    ) -> Result<(), RelayError> {
        let delay = backoff(retry, m.attempts);
        tracing::warn!(sink = queue.0, entity = queue.1, delivery = m.delivery_id, error = %e, "delivery failed; retrying in {delay:?}");
        stats.failed += self
            .queue
            .failed(
                &[m.delivery_id],
                queue,
                &opts.owner,
                delay,
                &e.to_string(),
                retry.max_attempts,
            )
            .await?;
        Ok(())
    }
}
