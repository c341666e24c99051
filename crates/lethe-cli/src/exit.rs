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
     manifest; `lethe worker` when a job run failed; `lethe erase` or
     `lethe erasures resume` whose request failed (a dead delivery, or
     residue found by verification: `lethe erasures show ID` says which)
  2  usage error: bad arguments, invalid policy, unknown entity, malformed
     key, an erasure rule a column cannot take, a ledger entry from a
     database with another hash key
  3  delete blocked by a restrict relation, or an erasure blocked by rows
     outside it that reference rows it deletes (the message names the
     relation and the count)
  4  not found: no such row, deletion, delivery, active hold or erasure
     request; an erasure key that matches nothing in any table or the
     archive store
  5  refused: already deleted, already restored, purged (its retention ran
     out, or an erasure removed its rows), restore conflict, deleted
     parent, a restore the changed table does not fit (a column needing
     --set, values needing --drop-missing, a value that does not convert),
     a table changed since Lethe read it, database not migrated, migration
     step that cannot be applied automatically (also with --dry-run), raw
     change refused by a guard, rows under a legal hold
  6  check or verification failed: `lethe check` found errors,
     `lethe audit verify` found a broken or cut-off chain, or
     `lethe erasures verify` found residue";

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
        | StoreError::Refused(_)
        | StoreError::Held(_) => REFUSED,
        StoreError::Connect(_)
        | StoreError::Database(_)
        | StoreError::Transient(_)
        | StoreError::Sink(_)
        | StoreError::Storage(_) => FAILURE,
    }
}
