//! Executes Lethe's plans on a live database: delete, restore, audit, outbox,
//! migrations and introspection.
//!
//! The entry point is [`Engine`]. Every change to user data happens inside one
//! transaction together with its deletion record, audit entry and outbox
//! records.

pub mod audit;
pub mod db;
pub mod engine;
pub mod error;
pub mod introspect;
pub mod records;

pub use audit::VerifyReport;
pub use db::{ConnectOptions, Db};
pub use engine::{DeleteRequest, Engine};
pub use error::{ParentDeleted, Result, StoreError, UniqueConflict};
pub use records::*;
