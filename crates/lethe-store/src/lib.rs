//! Executes Lethe's plans on a live database: delete, restore, audit, outbox,
//! migrations and introspection.
//!
//! The entry point is [`Engine`]. Every change to user data happens inside one
//! transaction together with its deletion record, audit entry and outbox
//! records.

pub mod audit;
pub mod browse;
pub mod db;
pub mod deliveries;
pub mod engine;
pub mod erasure;
pub mod error;
pub mod hmac;
pub mod holds;
pub mod introspect;
pub mod jobs;
pub mod live;
pub mod purge;
pub mod records;
pub mod reshape;
pub mod stats;
pub mod strategy;
pub mod tokens;

pub use audit::VerifyReport;
pub use browse::{AuditEntry, ExportRecord, MAX_PAGE, Tombstone, TrashItem, TrashPage, TrashQuery};
pub use db::{ConnectOptions, Db};
pub use deliveries::{DeliveryRow, DeliverySummary, Queue, QueuedMessage};
pub use engine::{DeleteRequest, Engine, RestoreOptions};
pub use error::{ParentDeleted, Result, StoreError, UniqueConflict};
pub use holds::{Hold, HoldRef};
pub use jobs::{JobFuture, JobRun, WorkerOptions, WorkerStats};
pub use live::{LiveStatement, LiveStatements};
pub use purge::{PurgeOptions, PurgeProgress, PurgeReport, PurgeTask};
pub use records::*;
pub use reshape::{SchemaChange, SetValue, ShapeProblem};
pub use stats::{EntityStats, Space};
pub use strategy::{StrategyMove, StrategyOptions, StrategyReport};
pub use tokens::{Caller, Role, TokenInfo};

/// A time as Lethe writes it: UTC, microseconds, fixed width, so SQLite
/// compares stored times correctly as text.
pub fn time_text(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&fmt).unwrap_or_default()
}
