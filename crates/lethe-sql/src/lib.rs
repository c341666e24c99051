//! Renders Lethe's plans and DDL to SQL text, one dialect at a time.
//!
//! **Architecture invariant:** SQL text only: no connections, no async. Every
//! difference between databases is a method on [`Dialect`]; the other crates
//! never branch on the database kind.

pub mod archive;
pub mod browse;
pub mod cold;
pub mod delete;
pub mod deliveries;
pub mod dialect;
pub mod erasure;
pub mod erasures;
pub mod holds;
pub mod jobs;
pub mod migrate;
pub mod outbox;
pub mod purge;
pub mod queries;
pub mod reconcile;
pub mod restore;
pub mod sqlite_rebuild;
pub mod stats;
pub mod strategy;
pub mod tokens;

/// The comment every statement Lethe runs starts with (see `lethe lint
/// --pg-stat-statements`, which leaves these statements out).
pub const STATEMENT_TAG: &str = "/* lethe */ ";

pub use delete::{DeleteProgram, Mode, ProgramStmt, render_delete};
pub use dialect::{Binder, Dialect, Param, Stmt};
pub use migrate::{
    GENESIS_HASH, INTERNAL_VERSION, INTERNAL_VERSIONS, MigrationStep, plan_migration,
};
pub use restore::{
    Fill, RestoreEntity, RestoreProgram, StoredGroup, current_columns, render_restore,
};
