//! Lethe's outbox relay: turns committed outbox records into cache
//! invalidations, search index changes and CloudEvents, delivers them at
//! least once with retries, and reconciles what the sinks hold with the
//! database.
//!
//! **Architecture invariant:** the relay never changes user data. It reads the
//! outbox (and, to reconcile, the managed tables) and writes only Lethe's own
//! delivery tables.

pub mod any_sink;
pub mod erasure;
pub mod message;
pub mod reconcile;
pub mod relay;
pub mod sink;
pub mod sinks;

pub use any_sink::AnySink;
pub use reconcile::{Drift, ReconcileReport, reconcile};
pub use relay::{Relay, RelayError, RelayOptions, RelayStats, backoff};
pub use sink::{Event, SearchOp, SinkError, SinkResult};
