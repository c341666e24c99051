//! Exit codes, documented in `lethe --help`.

use lethe_store::StoreError;

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const BLOCKED: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const REFUSED: u8 = 5;
pub const VERIFY_FAILED: u8 = 6;

pub const HELP: &str = "\
Exit codes:
  0  success
  1  failure: database error, connection lost, migration failed, a sink
     that cannot be reached; `lethe relay --once` that left deliveries
     failing; `lethe reconcile` that found drift it did not repair; an
     export location that fails or a file that does not match its
     manifest; `lethe worker` when a job run failed
  2  usage error: bad arguments, invalid policy, unknown entity, malformed key
  3  delete blocked by a restrict relation (the message names it and the count)
  4  not found: no such row, deletion, delivery or active hold
  5  refused: already deleted, already restored, purged (its retention ran
     out), restore conflict, deleted parent, a restore the changed table
     does not fit (a column needing --set, values needing --drop-missing, a
     value that does not convert), a table changed since Lethe read it,
     database not migrated, migration step that cannot be applied
     automatically (also with --dry-run), raw change refused by a guard
  6  check or verification failed: `lethe check` found errors, or
     `lethe audit verify` found a broken or cut-off chain";

pub fn code_for(e: &StoreError) -> u8 {
    match e {
        StoreError::Core(_)
        | StoreError::Policy(_)
        | StoreError::NoDatabaseUrl
        | StoreError::UnsupportedUrl(_)
        | StoreError::BadDeletionId(_)
        | StoreError::Invalid(_) => USAGE,
        StoreError::Blocked { .. } => BLOCKED,
        StoreError::NotFound { .. }
        | StoreError::DeletionNotFound(_)
        | StoreError::DeliveryNotFound(_)
        | StoreError::HoldNotFound(_) => NOT_FOUND,
        StoreError::AlreadyDeleted { .. }
        | StoreError::AlreadyRestored { .. }
        | StoreError::Purged { .. }
        | StoreError::RestoreConflict { .. }
        | StoreError::ParentDeleted { .. }
        | StoreError::NotMigrated(_)
        | StoreError::EntityGone(_)
        | StoreError::SchemaChanged { .. }
        | StoreError::RestoreShape { .. }
        | StoreError::MigrationBlocked { .. }
        | StoreError::Refused(_) => REFUSED,
        StoreError::Connect(_)
        | StoreError::Database(_)
        | StoreError::Transient(_)
        | StoreError::Sink(_)
        | StoreError::Storage(_) => FAILURE,
    }
}
