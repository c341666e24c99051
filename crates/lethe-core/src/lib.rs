//! Lethe's pure model: the policy (`lethe.toml`), the relation graph, the
//! planner and the checks against an introspected schema.
//!
//! **Architecture invariant:** no I/O, no async, no database driver. Everything
//! here is plain data in, plain data out, so it is tested without a database.

pub mod archive;
pub mod check;
pub mod duration;
pub mod erasure;
pub mod erasure_plan;
pub mod error;
pub mod graph;
pub mod ident;
pub mod init;
pub mod key;
pub mod plan;
pub mod policy;
pub mod policy_parse;
pub mod retention;
pub mod schema;
pub mod sinks;
mod sinks_parse;
pub mod template;

pub use archive::{Drift, Fingerprint, drift};
pub use check::{Finding, Level, check_policy};
pub use erasure::Erase;
pub use erasure_plan::{ErasurePlan, ErasureStep, plan_erasure, subject_paths};
pub use error::{CoreError, PolicyError};
pub use init::policy_from_schema;
pub use key::KeyValue;
pub use plan::{DeletePlan, PlanNode, SideRelation, plan_delete};
pub use policy::{DatabaseConfig, Entity, OnDelete, PiiRule, Policy, Relation, Strategy};
pub use policy_parse::parse_policy;
pub use retention::{AfterRetention, ExportConfig, Job, JobKind, Retention, Schedule};
pub use schema::{ColumnInfo, ColumnKind, ForeignKeyInfo, Schema, TableInfo, UniqueInfo};
pub use sinks::{Delivery, RelayConfig, Retry, SearchTarget, Sink, SinkKind, SinkRole};
pub use template::Template;
