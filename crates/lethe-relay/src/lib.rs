//! Lethe's outbox relay: turns committed outbox records into cache
//! invalidations, search index changes and CloudEvents, delivers them at
//! least once with retries, and reconciles what the sinks hold with the
//! database.

pub mod sink;
pub mod sinks;

pub use sink::{Event, SearchOp, SinkError, SinkResult};
