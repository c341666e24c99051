//! The delivery queue on a live database: dispatch outbox records into
//! deliveries, lease a `(sink, entity)` queue, read its messages in order,
//! record the outcome; list and replay for operators.
//!
//! The relay (`lethe-relay`) drives this; the CLI and the server list and
//! replay through it.

use std::time::Duration;

use lethe_sql::deliveries as q;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::db::{Db, col};
use crate::error::{Result, StoreError};
use crate::time_text;

/// Outbox records dispatched per transaction.
const DISPATCH_LIMIT: u32 = 1000;

/// One delivery waiting in a leased queue, with the outbox record it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    pub delivery_id: i64,
    pub outbox_id: i64,
    pub attempts: u32,
    /// Its next attempt is due now.
    pub due: bool,
    /// `deleted`, `restored` or `updated`.
    pub event: String,
    pub deletion_id: String,
    /// As stored: one value per row (see `lethe_sql::outbox`).
    pub keys: Value,
    pub key_columns: Vec<String>,
    /// Captured columns after the key, per row.
    pub columns: Vec<String>,
    pub created_at: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub rows: u64,
}

/// A delivery as `lethe deliveries` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryRow {
    pub id: i64,
    pub sink: String,
    pub entity: String,
    pub event: String,
    pub deletion_id: String,
    pub state: String,
    pub attempts: u32,
    pub next_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub rows: u64,
}

/// Deliveries and rows per sink and state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliverySummary {
    pub sink: String,
    pub state: String,
    pub deliveries: u64,
    pub rows: u64,
}

/// The delivery queue of one database.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
}

fn num<T: std::str::FromStr + Default>(r: &[Option<String>], i: usize) -> T {
    col(r, i).trim().parse().unwrap_or_default()
}

fn names(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn later(d: Duration) -> String {
    time_text(OffsetDateTime::now_utc() + d)
}

fn now() -> String {
    time_text(OffsetDateTime::now_utc())
}

impl Queue {
    pub fn new(db: Db) -> Queue {
        Queue { db }
    }

    /// A write transaction for the queue's own bookkeeping (see
    /// `lethe_sql::deliveries::relaxed_commit`).
    async fn begin(&self) -> Result<crate::db::Tx> {
        let mut tx = self.db.begin_write().await?;
        if let Some(sql) = q::relaxed_commit(self.db.dialect()) {
            tx.exec(sql, &[]).await?;
        }
        Ok(tx)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates the queue rows of `routes` (`(entity, sink)` pairs).
    pub async fn ensure_queues(&self, routes: &[(String, String)]) -> Result<()> {
        let d = self.db.dialect();
        let mut tx = self.begin().await?;
        tx.exec(&q::ensure_queues(d, routes), &[]).await?;
        tx.commit().await
    }

    /// Dispatches every undispatched outbox record (in transactions of
    /// [`DISPATCH_LIMIT`]); returns the number of records dispatched.
    pub async fn dispatch(&self, routes: &[(String, String)]) -> Result<u64> {
        let d = self.db.dialect();
        let stmts = q::dispatch(d, routes, DISPATCH_LIMIT);
        let mut total = 0;
        loop {
            let mut tx = self.begin().await?;
            if let Some(lock) = q::dispatch_lock(d) {
                tx.exec(lock, &[]).await?;
            }
            let params = [Some(now())];
            let mut records = 0u64;
            for s in &stmts {
                let used = if s.contains("$1") {
                    &params[..]
                } else {
                    &[][..]
                };
                let rows = tx.rows(s, used).await?;
                if let Some(r) = rows.first() {
                    records = num(r, 0);
                }
            }
            tx.commit().await?;
            total += records;
            if records < u64::from(DISPATCH_LIMIT) {
                return Ok(total);
            }
        }
    }

    /// Leases the queue with the oldest due work among `sinks`, for `lease`.
    pub async fn claim(
        &self,
        owner: &str,
        sinks: &[String],
        lease: Duration,
    ) -> Result<Option<(String, String)>> {
        let d = self.db.dialect();
        let mut tx = self.begin().await?;
        let rows = tx
            .rows(
                &q::claim_queue(d, sinks),
                &[Some(owner.to_string()), Some(now()), Some(later(lease))],
            )
            .await?;
        tx.commit().await?;
        Ok(rows.first().map(|r| (col(r, 0), col(r, 1))))
    }

    /// Extends a lease; `false` when it was lost (another relay took the
    /// queue after the lease ran out).
    pub async fn renew(
        &self,
        sink: &str,
        entity: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool> {
        self.exec1(
            &q::renew_queue(self.db.dialect()),
            vec![sink.into(), entity.into(), owner.into(), later(lease)],
        )
        .await
        .map(|n| n > 0)
    }

    pub async fn release(&self, sink: &str, entity: &str, owner: &str) -> Result<()> {
        self.exec1(
            &q::release_queue(self.db.dialect()),
            vec![sink.into(), entity.into(), owner.into()],
        )
        .await
        .map(|_| ())
    }

    /// Up to `limit` open messages of a queue, in outbox order.
    pub async fn messages(
        &self,
        sink: &str,
        entity: &str,
        limit: u32,
    ) -> Result<Vec<QueuedMessage>> {
        let rows = self
            .db
            .rows(
                &q::queue_messages(self.db.dialect()),
                &[
                    Some(sink.to_string()),
                    Some(entity.to_string()),
                    Some(limit.to_string()),
                    Some(now()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedMessage {
                delivery_id: num(r, 0),
                outbox_id: num(r, 1),
                attempts: num(r, 2),
                due: col(r, 3) == "1",
                event: col(r, 4),
                deletion_id: col(r, 5),
                keys: serde_json::from_str(&col(r, 6)).unwrap_or(Value::Null),
                key_columns: names(&col(r, 7)),
                columns: names(&col(r, 8)),
                created_at: col(r, 9),
                actor: r.get(10).cloned().flatten(),
                reason: r.get(11).cloned().flatten(),
                rows: num(r, 12),
            })
            .collect())
    }

    /// Marks `ids` delivered, if `owner` still holds the queue (else
    /// nothing: the queue's new owner sends them again).
    pub async fn delivered(&self, ids: &[i64], queue: (&str, &str), owner: &str) -> Result<u64> {
        self.exec1(
            &q::mark_delivered(self.db.dialect()),
            vec![
                serde_json::to_string(ids).unwrap_or_default(),
                now(),
                queue.0.to_string(),
                queue.1.to_string(),
                owner.to_string(),
            ],
        )
        .await
    }

    /// Records a failed attempt of `ids`: retry after `delay`, dead once
    /// `max_attempts` is reached (only while `owner` holds the queue).
    pub async fn failed(
        &self,
        ids: &[i64],
        queue: (&str, &str),
        owner: &str,
        delay: Duration,
        error: &str,
        max_attempts: u32,
    ) -> Result<u64> {
        // Errors can be long (an HTML error page): keep the start.
        let error: String = error.chars().take(2000).collect();
        self.exec1(
            &q::mark_failed(self.db.dialect()),
            vec![
                serde_json::to_string(ids).unwrap_or_default(),
                later(delay),
                error,
                max_attempts.to_string(),
                queue.0.to_string(),
                queue.1.to_string(),
                owner.to_string(),
            ],
        )
        .await
    }

    /// Deliveries, newest first.
    pub async fn list(
        &self,
        state: Option<&str>,
        sink: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        if let Some(s) = state
            && !["pending", "retrying", "delivered", "dead"].contains(&s)
        {
            return Err(StoreError::Invalid(format!(
                "unknown delivery state \"{s}\" (expected pending, retrying, delivered or dead)"
            )));
        }
        let rows = self
            .db
            .rows(
                &q::list(self.db.dialect()),
                &[
                    state.map(str::to_string),
                    sink.map(str::to_string),
                    Some(limit.to_string()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeliveryRow {
                id: num(r, 0),
                sink: col(r, 1),
                entity: col(r, 2),
                event: col(r, 3),
                deletion_id: col(r, 4),
                state: col(r, 5),
                attempts: num(r, 6),
                next_at: col(r, 7),
                last_error: r.get(8).cloned().flatten(),
                created_at: col(r, 9),
                delivered_at: r.get(10).cloned().flatten(),
                rows: num(r, 11),
            })
            .collect())
    }

    pub async fn summary(&self) -> Result<Vec<DeliverySummary>> {
        let rows = self.db.rows(&q::summary(self.db.dialect()), &[]).await?;
        Ok(rows
            .iter()
            .map(|r| DeliverySummary {
                sink: col(r, 0),
                state: col(r, 1),
                deliveries: num(r, 2),
                rows: num(r, 3),
            })
            .collect())
    }

    /// Outbox records the relay has not dispatched yet.
    pub async fn undispatched(&self) -> Result<u64> {
        let rows = self
            .db
            .rows(&q::undispatched(self.db.dialect()), &[])
            .await?;
        Ok(rows.first().map(|r| num(r, 0)).unwrap_or(0))
    }

    /// Re-queues one delivery; `false` when no delivery has that id.
    pub async fn replay(&self, id: i64) -> Result<bool> {
        self.exec1(
            &q::replay_one(self.db.dialect()),
            vec![id.to_string(), now()],
        )
        .await
        .map(|n| n > 0)
    }

    /// Re-queues the dead deliveries (of one sink); returns how many.
    pub async fn replay_dead(&self, sink: Option<&str>) -> Result<u64> {
        let d = self.db.dialect();
        let mut tx = self.begin().await?;
        let n = tx
            .exec(&q::replay_dead(d), &[sink.map(str::to_string), Some(now())])
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn exec1(&self, sql: &str, params: Vec<String>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let params: Vec<Option<String>> = params.into_iter().map(Some).collect();
        let n = tx.exec(sql, &params).await?;
        tx.commit().await?;
        Ok(n)
    }
}
