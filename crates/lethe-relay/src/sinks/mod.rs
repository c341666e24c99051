//! One module per sink transport. Every sink connects lazily and reconnects
//! after an error.

pub mod elasticsearch;
pub mod file;
pub mod meilisearch;
pub mod memcached;
pub mod nats;
pub mod rabbitmq;
pub mod redis;
#[cfg(feature = "tantivy")]
pub mod tantivy;
pub mod webhook;
