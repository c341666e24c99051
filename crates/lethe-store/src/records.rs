//! What Lethe reports back: deletion records, outcomes, plans.

use serde::Serialize;
use serde_json::Value;

use crate::db::col;

/// Rows changed in one entity by a deletion.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityCount {
    pub entity: String,
    /// `soft` (marked), `archive` (moved to the archive store) or `hard`
    /// (removed, snapshot kept).
    pub strategy: String,
    pub rows: u64,
}

/// Rows whose reference columns were set to NULL.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NullifiedCount {
    pub entity: String,
    pub rows: u64,
}

/// A restrict relation that blocks (or would block) a delete.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Blocker {
    pub relation: String,
    pub rows: u64,
}

/// `lethe delete --dry-run`: what a delete would do.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanReport {
    pub entity: String,
    pub key: Value,
    pub affected: Vec<EntityCount>,
    pub nullified: Vec<NullifiedCount>,
    pub blocked_by: Vec<Blocker>,
}

impl PlanReport {
    pub fn total_rows(&self) -> u64 {
        self.affected.iter().map(|c| c.rows).sum()
    }
}

/// A completed delete.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletionOutcome {
    pub deletion_id: String,
    pub at: String,
    pub entity: String,
    pub key: Value,
    /// Rows per entity, in plan order (root first).
    pub affected: Vec<EntityCount>,
    pub nullified: Vec<NullifiedCount>,
    /// The audit hash of this deletion's entry.
    pub audit_hash: String,
}

/// A completed restore.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreOutcome {
    pub deletion_id: String,
    pub at: String,
    pub restored: Vec<EntityCount>,
    pub nullified_restored: Vec<NullifiedCount>,
    pub audit_hash: String,
}

/// `lethe restore --dry-run`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestorePreview {
    pub deletion_id: String,
    pub would_restore: Vec<EntityCount>,
    pub nullified: Vec<NullifiedCount>,
    pub conflicts: Vec<crate::error::UniqueConflict>,
    pub deleted_parents: Vec<crate::error::ParentDeleted>,
    /// Columns that changed since stored (hard, archived) rows were stored,
    /// and what the restore does about each.
    pub schema_changes: Vec<crate::reshape::SchemaChange>,
    /// What stops the restore among those changes (it cannot go ahead
    /// while any is left).
    pub problems: Vec<crate::reshape::ShapeProblem>,
}

/// A deletion as recorded in Lethe's deletions table.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletionRecord {
    pub id: String,
    pub kind: String,
    pub at: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub context: Value,
    pub entity: String,
    pub key: Value,
    pub affected: Vec<EntityCount>,
    pub nullified: Vec<NullifiedCount>,
    pub restored_at: Option<String>,
    pub restored_by: Option<String>,
    pub restored_reason: Option<String>,
    /// When a purge first removed rows of this deletion for good (it can no
    /// longer be restored).
    pub purged_at: Option<String>,
    /// Entity -> the one relation through which the deletion reached all its
    /// rows (see `Engine::restore`).
    #[serde(skip)]
    pub(crate) only_via: std::collections::BTreeMap<String, String>,
}

impl DeletionRecord {
    pub(crate) fn from_row(r: &[Option<String>]) -> DeletionRecord {
        let json = |i: usize| serde_json::from_str::<Value>(&col(r, i)).unwrap_or(Value::Null);
        let summary = json(8);
        let affected = summary
            .get("entities")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| EntityCount {
                        entity: e["entity"].as_str().unwrap_or_default().to_string(),
                        strategy: e["strategy"].as_str().unwrap_or_default().to_string(),
                        rows: e["rows"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let nullified = summary
            .get("nullified")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| NullifiedCount {
                        entity: e["entity"].as_str().unwrap_or_default().to_string(),
                        rows: e["rows"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let only_via = summary
            .get("entities")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some((
                            e["entity"].as_str()?.to_string(),
                            e["only_via"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        DeletionRecord {
            only_via,
            id: col(r, 0),
            kind: col(r, 1),
            at: col(r, 2),
            actor: r.get(3).cloned().flatten(),
            reason: r.get(4).cloned().flatten(),
            context: json(5),
            entity: col(r, 6),
            key: json(7),
            affected,
            nullified,
            restored_at: r.get(9).cloned().flatten(),
            restored_by: r.get(10).cloned().flatten(),
            restored_reason: r.get(11).cloned().flatten(),
            purged_at: r.get(12).cloned().flatten(),
        }
    }

    pub fn total_rows(&self) -> u64 {
        self.affected.iter().map(|c| c.rows).sum()
    }

    /// `deleted`, `restored`, `purged` (rows of it are gone for good), or
    /// for a record that is not a deletion its kind (`purge`, `migrate`).
    pub fn status(&self) -> &'static str {
        match self.kind.as_str() {
            "purge" => "purge",
            "migrate" => "migrate",
            "erase" => "erased",
            _ if self.restored_at.is_some() => "restored",
            _ if self.purged_at.is_some() => "purged",
            _ => "deleted",
        }
    }

    /// What the record is about, for people: `users 42`, or `purge of *`.
    pub fn root_text(&self, key_text: &str) -> String {
        match self.kind.as_str() {
            "delete" => format!("{} {key_text}", self.entity),
            kind => format!("{kind} of {}", self.entity),
        }
    }
}

/// One outbox record: the keys of one entity affected by a deletion or restore.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxRecord {
    pub id: i64,
    pub event: String,
    pub entity: String,
    pub part: i64,
    /// The key's column names.
    pub key_columns: Vec<String>,
    /// Columns captured for sinks after the key (cache key templates, search
    /// fields); empty when the entity sends none.
    pub columns: Vec<String>,
    /// Per row: the key's value alone when it is the only value, otherwise an
    /// array of the key's values followed by the captured columns' values.
    pub keys: Value,
    pub rows: u64,
}

impl OutboxRecord {
    /// Each row's values as an array in `key_columns` then `columns` order.
    fn row_values(&self, row: &Value) -> Vec<Value> {
        match row {
            Value::Array(a) if self.key_columns.len() + self.columns.len() > 1 => a.clone(),
            other => vec![other.clone()],
        }
    }

    /// The keys as `{column: value}` objects.
    pub fn key_objects(&self) -> Vec<Value> {
        let keys = self.keys.as_array().cloned().unwrap_or_default();
        keys.iter()
            .map(|k| {
                Value::Object(
                    self.key_columns
                        .iter()
                        .cloned()
                        .zip(self.row_values(k))
                        .collect(),
                )
            })
            .collect()
    }

    /// The captured values as `{column: value}` objects, one per row (empty
    /// objects when nothing is captured).
    pub fn captured_objects(&self) -> Vec<Value> {
        let keys = self.keys.as_array().cloned().unwrap_or_default();
        keys.iter()
            .map(|k| {
                let values = self.row_values(k).into_iter().skip(self.key_columns.len());
                Value::Object(self.columns.iter().cloned().zip(values).collect())
            })
            .collect()
    }
}

/// One applied or planned migration step.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationReport {
    pub dry_run: bool,
    pub steps: Vec<MigrationStepReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationStepReport {
    pub id: String,
    pub description: String,
    pub statements: Vec<String>,
    pub blocked: Option<String>,
}
