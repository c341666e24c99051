//! What every sink does, by role, and the values they exchange.
//!
//! The relay turns outbox records into role-specific work (cache keys, search
//! operations, CloudEvents) in `message.rs`; a sink only moves that work over
//! its transport. Each sink connects lazily and reconnects after an error, so
//! a server that is down when the relay starts only delays its deliveries.

use serde_json::{Map, Value};

/// Why a delivery failed. Every failure is retried with backoff until the
/// sink's `max_attempts`; the kind says what to tell the operator.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Could not reach the server, or it timed out.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The server answered and refused (an error status, a negative ack).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The sink's settings cannot work (a missing secret, a bad URL).
    #[error("misconfigured: {0}")]
    Config(String),
}

pub type SinkResult<T> = Result<T, SinkError>;

/// One change to a search index.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchOp {
    /// Remove the document (the row was deleted).
    Delete { id: String },
    /// Add or replace the document (the row was restored): `doc` holds the
    /// search fields; sinks add the id in their own way.
    Upsert { id: String, doc: Map<String, Value> },
}

impl SearchOp {
    pub fn id(&self) -> &str {
        match self {
            SearchOp::Delete { id } | SearchOp::Upsert { id, .. } => id,
        }
    }
}

/// One CloudEvent, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The CloudEvents `id`: stable across redeliveries and replays, so a
    /// consumer can deduplicate on it (also NATS `Nats-Msg-Id`, AMQP
    /// `message_id`).
    pub id: String,
    pub entity: String,
    /// `deleted`, `restored` or `updated` (the CloudEvents type is
    /// `lethe.<event>`).
    pub event: String,
    /// The whole CloudEvent as JSON (structured mode).
    pub json: String,
}
