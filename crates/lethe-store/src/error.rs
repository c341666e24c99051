//! The store's error type. Every variant says what happened in words a user
//! can act on; the CLI adds a hint and an exit code.

use lethe_core::{CoreError, PolicyError};

/// A row that blocks a restore because an active row holds the same unique
/// values.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UniqueConflict {
    pub entity: String,
    pub columns: String,
    /// The key of the row that would be restored.
    pub restored: serde_json::Value,
    /// The key of the active row holding the same values.
    pub active: serde_json::Value,
}

/// A restored row whose parent is deleted or missing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParentDeleted {
    /// `child.columns -> parent`.
    pub relation: String,
    /// The key of the row that would be restored.
    pub child: serde_json::Value,
    /// The key of the parent it references.
    pub parent: serde_json::Value,
    /// The deletion that removed the parent, when one is known.
    pub deletion_id: Option<String>,
    /// `deleted` (by `deletion_id`), `deleted_outside_lethe` (marked, no
    /// deletion id) or `missing` (no such row).
    pub status: String,
}

impl ParentDeleted {
    /// `by deletion X`, `deleted outside Lethe` or `missing`.
    pub fn describe(&self) -> String {
        match self.status.as_str() {
            "deleted" => format!(
                "deleted by deletion {}",
                self.deletion_id.as_deref().unwrap_or("?")
            ),
            "deleted_outside_lethe" => "marked deleted outside Lethe (no deletion id)".to_string(),
            _ => "missing".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("no database URL: set [database] url in the policy, LETHE_DATABASE_URL, or --database")]
    NoDatabaseUrl,
    #[error("unsupported database URL \"{0}\" (expected sqlite:PATH or postgres://...)")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("the database is not migrated for Lethe: {0}")]
    NotMigrated(String),
    #[error("{entity} {key} not found")]
    NotFound { entity: String, key: String },
    #[error("{entity} {key} is already deleted{}", by.as_ref().map(|d| format!(" (by deletion {d})")).unwrap_or_default())]
    AlreadyDeleted {
        entity: String,
        key: String,
        by: Option<String>,
    },
    #[error(
        "delete blocked by relation {relation}: {count} active row(s) still reference the deleted rows (on_delete = restrict)"
    )]
    Blocked { relation: String, count: u64 },
    #[error("deletion {0} not found")]
    DeletionNotFound(String),
    #[error(
        "\"{0}\" is not a deletion id (expected a UUID, as printed by `lethe delete` and `lethe deletions`)"
    )]
    BadDeletionId(String),
    #[error("deletion {id} was already restored at {at}")]
    AlreadyRestored { id: String, at: String },
    #[error(
        "deletion {id} cannot be restored: rows of it were purged at {at} (its retention ran out, or a GDPR erasure removed them)"
    )]
    Purged { id: String, at: String },
    #[error("restore refused: {} active row(s) hold the same unique values as rows it would bring back", conflicts.len())]
    RestoreConflict { conflicts: Vec<UniqueConflict> },
    #[error("restore refused: the parent of a restored row is {}", parents.first().map(|p| p.describe()).unwrap_or_default())]
    ParentDeleted { parents: Vec<ParentDeleted> },
    #[error("the policy no longer manages entity \"{0}\", which this deletion touched")]
    EntityGone(String),
    #[error(
        "the columns of table {table} (entity {entity}) changed since Lethe read the schema; nothing was changed"
    )]
    SchemaChanged { entity: String, table: String },
    #[error("restore refused: {}", problems.first().map(|p| p.message.clone()).unwrap_or_default())]
    RestoreShape {
        problems: Vec<crate::reshape::ShapeProblem>,
    },
    #[error("migration step {step} cannot be applied automatically: {reason}")]
    MigrationBlocked { step: String, reason: String },
    #[error("refused by the database: {0}")]
    Refused(String),
    /// Rows a change would touch are under an active legal hold (the
    /// message names the holds).
    #[error("{0}")]
    Held(String),
    /// Bad input that is not a key or a deletion id (a filter value, a
    /// delivery id).
    #[error("{0}")]
    Invalid(String),
    #[error("delivery {0} not found")]
    DeliveryNotFound(i64),
    /// No active hold by that id, or none on that row.
    #[error("{0}")]
    HoldNotFound(String),
    /// A cache, search index, broker or webhook could not be reached or
    /// refused (reconcile; the relay records such failures on its messages).
    #[error("{0}")]
    Sink(String),
    /// Cold storage: the export location failed, a file does not match its
    /// manifest, or a key does not open.
    #[error("{0}")]
    Storage(String),
    #[error("database error: {0}")]
    Database(String),
    /// A deadlock or serialization failure; the engine retries these.
    #[error("transient database conflict: {0}")]
    Transient(String),
}

impl StoreError {
    /// A stable, machine-readable code for the error (used in `--json` output
    /// and, later, API errors).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Core(lethe_core::CoreError::UnknownEntity(..)) => "unknown_entity",
            StoreError::Core(lethe_core::CoreError::BadKey { .. }) => "bad_key",
            StoreError::Core(_) => "schema",
            StoreError::Policy(_) => "invalid_policy",
            StoreError::NoDatabaseUrl => "no_database_url",
            StoreError::UnsupportedUrl(_) => "unsupported_url",
            StoreError::Connect(_) => "connection",
            StoreError::NotMigrated(_) => "not_migrated",
            StoreError::NotFound { .. } => "not_found",
            StoreError::AlreadyDeleted { .. } => "already_deleted",
            StoreError::Blocked { .. } => "blocked",
            StoreError::DeletionNotFound(_) => "deletion_not_found",
            StoreError::BadDeletionId(_) => "bad_deletion_id",
            StoreError::AlreadyRestored { .. } => "already_restored",
            StoreError::Purged { .. } => "purged",
            StoreError::RestoreConflict { .. } => "restore_conflict",
            StoreError::ParentDeleted { .. } => "parent_deleted",
            StoreError::EntityGone(_) => "entity_gone",
            StoreError::SchemaChanged { .. } => "schema_changed",
            StoreError::RestoreShape { .. } => "restore_schema_changed",
            StoreError::MigrationBlocked { .. } => "migration_blocked",
            StoreError::Refused(_) => "refused",
            StoreError::Held(_) => "legal_hold",
            StoreError::Invalid(_) => "invalid_input",
            StoreError::DeliveryNotFound(_) => "delivery_not_found",
            StoreError::HoldNotFound(_) => "hold_not_found",
            StoreError::Sink(_) => "sink",
            StoreError::Storage(_) => "storage",
            StoreError::Database(_) => "database",
            StoreError::Transient(_) => "transient",
        }
    }

    /// Structured details for machine output, where the error has any.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            StoreError::Blocked { relation, count } => {
                json!({"relation": relation, "count": count})
            }
            StoreError::RestoreConflict { conflicts } => json!({"conflicts": conflicts}),
            StoreError::ParentDeleted { parents } => json!({"parents": parents}),
            StoreError::RestoreShape { problems } => json!({"problems": problems}),
            StoreError::SchemaChanged { entity, table } => {
                json!({"entity": entity, "table": table})
            }
            StoreError::AlreadyDeleted { entity, key, by } => {
                json!({"entity": entity, "key": key, "deletion_id": by})
            }
            StoreError::NotFound { entity, key } => json!({"entity": entity, "key": key}),
            StoreError::AlreadyRestored { id, at } => json!({"deletion_id": id, "restored_at": at}),
            StoreError::Purged { id, at } => json!({"deletion_id": id, "purged_at": at}),
            StoreError::MigrationBlocked { step, reason } => {
                json!({"step": step, "reason": reason})
            }
            _ => serde_json::Value::Null,
        }
    }

    /// A short hint for the user, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::NotMigrated(_) => "run `lethe migrate` (see `lethe migrate --dry-run` first)".into(),
            StoreError::Blocked { .. } => {
                "delete or detach the blocking rows first, or change the relation's on_delete in the policy".into()
            }
            StoreError::RestoreConflict { .. } => {
                "delete or change the conflicting active rows, then restore again".into()
            }
            StoreError::ParentDeleted { .. } => "restore the parent's deletion first".into(),
            StoreError::SchemaChanged { .. } => "run the command again: Lethe reads the schema when it starts (a program using the library calls Engine::refresh)".into(),
            StoreError::RestoreShape { .. } => "`lethe restore ID --dry-run` lists every column that changed and what the restore would do".into(),
            StoreError::Sink(_) => "check the sink's settings in the policy and that its server is up; `lethe deliveries` shows what waits".into(),
            StoreError::HoldNotFound(_) => "`lethe hold list --all` shows every hold, released ones too".into(),
            StoreError::Held(_) => "`lethe hold list` shows the active holds; release one with `lethe hold remove ID --reason ...` only when the legal matter allows".into(),
            StoreError::Storage(_) => "check the export location ([export] to, or --to/--from), its credentials, and the files against their manifest; `lethe archive list` shows what was exported where".into(),
            StoreError::Purged { .. } => "after a retention purge, rows exported before it come back with `lethe archive import` and the deletion can be restored again (rows an erasure removed stay gone)".into(),
            StoreError::Connect(_) => "check the URL ([database] url, LETHE_DATABASE_URL or --database) and that the server is up".into(),
            StoreError::NotFound { entity, .. } if entity == "erasure request" => {
                "`lethe erasures list` shows the requests (by id and request id)".into()
            }
            StoreError::NotFound { .. } => "check the entity and key; `lethe deletions` lists deletions".into(),
            _ => return None,
        })
    }

    /// Whether retrying the whole transaction may succeed (deadlock,
    /// serialization failure, SQLite busy).
    pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                matches!(code.as_str(), "40P01" | "40001" | "5" | "6" | "517" | "261")
                    || db.message().contains("database is locked")
            }
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(_) if StoreError::is_transient(&e) => {
                StoreError::Transient(e.to_string())
            }
            sqlx::Error::Database(db) => {
                let msg = db.message().trim_start_matches("lethe: ").to_string();
                // Raised by Lethe's own guards and triggers.
                if db.code().as_deref() == Some("P0001") || msg.contains("refused") {
                    StoreError::Refused(msg)
                } else {
                    StoreError::Database(msg)
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => StoreError::Connect(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
