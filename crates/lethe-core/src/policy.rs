//! The policy model: what `lethe.toml` says about each managed table.
//!
//! This module holds only the validated, typed form. Parsing (with file, line and
//! key in every error) lives in [`crate::policy_parse`].

use std::collections::BTreeMap;
use std::fmt;

use crate::retention::{ExportConfig, Job, Retention};
use crate::sinks::{Delivery, RelayConfig, Sink};

/// How rows of an entity are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The row stays and is marked with `deleted_at` and the deletion id.
    Soft,
    /// The row moves out of its table into Lethe's archive store, with the
    /// deletion id and a fingerprint of the table's columns at that time.
    Archive,
    /// The row is removed; a snapshot is kept with the deletion so restore can
    /// re-insert it.
    Hard,
}

impl Strategy {
    /// Whether a deletion takes the row out of its table (hard and archive).
    pub fn removes_row(self) -> bool {
        matches!(self, Strategy::Hard | Strategy::Archive)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Soft => "soft",
            Strategy::Archive => "archive",
            Strategy::Hard => "hard",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a child row when its parent is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnDelete {
    /// The child is deleted too, with the child's own strategy.
    Cascade,
    /// The delete is refused while active children exist.
    Restrict,
    /// The child's reference columns are set to NULL (and put back by restore).
    SetNull,
    /// The child is left alone.
    Keep,
}

impl OnDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDelete::Cascade => "cascade",
            OnDelete::Restrict => "restrict",
            OnDelete::SetNull => "set_null",
            OnDelete::Keep => "keep",
        }
    }
}

impl fmt::Display for OnDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How erasure (a later feature) treats a PII column. Validated now so a policy
/// written today keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiRule {
    Null,
    Redact,
    Hash,
    Fake,
}

impl PiiRule {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiRule::Null => "null",
            PiiRule::Redact => "redact",
            PiiRule::Hash => "hash",
            PiiRule::Fake => "fake",
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    /// PostgreSQL only: install row-level security that hides soft-deleted rows.
    pub row_security: bool,
}

/// A managed table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The entity name used on the command line and in events.
    pub name: String,
    /// The table (defaults to the entity name).
    pub table: String,
    pub key: Vec<String>,
    pub strategy: Strategy,
    /// Column sets that must be unique among active rows only.
    pub unique: Vec<Vec<String>>,
    pub pii: BTreeMap<String, PiiRule>,
    /// Marker column holding the deletion time (soft entities).
    pub deleted_at: String,
    /// Marker column holding the deletion id (soft entities).
    pub deletion_id: String,
    /// What the entity sends to caches, search indexes and event sinks.
    pub delivery: Delivery,
    /// How long deleted rows stay restorable, and what happens after.
    pub retention: Option<Retention>,
    /// Columns holding the id of the data subject a row belongs to, for
    /// tables that hold it without a relation (`subject_columns`).
    pub subject_columns: Vec<String>,
    /// What erasure does to a subject's rows (`erase`, `legal_basis`);
    /// `None` when the policy does not say (see [`Policy::erase_of`]).
    pub erase: Option<crate::erasure::Erase>,
    /// Whether rows of the table can carry Lethe's marker columns. Always
    /// for soft entities; for archive and hard entities when the table still
    /// has both columns (an entity moved from soft: its rows still marked
    /// there stay deleted until `lethe migrate-strategy` moves them). Set by
    /// the store after introspection ([`Policy::mark_tables`]).
    pub marked: bool,
    /// 1-based line of `[entities.NAME]` in the policy file, for messages.
    pub line: usize,
}

impl Entity {
    pub fn is_soft(&self) -> bool {
        self.strategy == Strategy::Soft
    }

    /// Whether a marked row of this table counts as deleted (see
    /// [`Entity::marked`]).
    pub fn has_markers(&self) -> bool {
        self.marked
    }

    /// Columns beyond the key that the outbox captures for sinks.
    pub fn captured_columns(&self) -> Vec<String> {
        self.delivery.captured_columns(&self.key)
    }
}

/// A reference from child columns to a parent's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub child: String,
    pub columns: Vec<String>,
    pub parent: String,
    pub on_delete: OnDelete,
    /// `erasure = true | false`: whether a child row belongs to the data
    /// subject of its parent row. `None`: the default rule of
    /// [`crate::erasure_plan::owning_relations`].
    pub erasure: Option<bool>,
    /// 1-based line of the `[[relations]]` entry.
    pub line: usize,
}

impl Relation {
    /// A short human name: `reviews.product_id -> products`.
    pub fn describe(&self) -> String {
        format!(
            "{}.{} -> {}",
            self.child,
            self.columns.join(","),
            self.parent
        )
    }

    pub fn is_self_reference(&self) -> bool {
        self.child == self.parent
    }
}

/// A parsed and statically validated `lethe.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where the policy came from (a path, or `<string>`), for messages.
    pub source: String,
    pub database: DatabaseConfig,
    pub entities: BTreeMap<String, Entity>,
    pub relations: Vec<Relation>,
    /// `[sinks.NAME]`: where the relay delivers outbox records.
    pub sinks: BTreeMap<String, Sink>,
    pub relay: RelayConfig,
    /// `[erasure] subject`: the entity whose rows are the data subjects
    /// (people); exported PII is encrypted with one key per subject.
    pub subject: Option<String>,
    /// `[export]`: where `lethe archive export` writes cold storage.
    pub export: Option<ExportConfig>,
    /// `[jobs.NAME]`: purges and exports `lethe worker` runs on a schedule.
    pub jobs: BTreeMap<String, Job>,
}

impl Policy {
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.get(name)
    }

    /// Relations whose parent is `entity`.
    pub fn children_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.iter().filter(move |r| r.parent == entity)
    }

    /// `(entity, sink)` pairs: each outbox record of the entity becomes one
    /// delivery per sink.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.entities
            .values()
            .flat_map(|e| {
                e.delivery
                    .sinks()
                    .into_iter()
                    .map(|s| (e.name.clone(), s.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Sets [`Entity::marked`] from the live schema: `has_columns(table,
    /// deleted_at, deletion_id)` says whether a table has both marker columns.
    pub fn mark_tables(&mut self, has_columns: impl Fn(&str, &str, &str) -> bool) {
        for e in self.entities.values_mut() {
            e.marked = e.is_soft() || has_columns(&e.table, &e.deleted_at, &e.deletion_id);
        }
    }

    /// Relations whose child is `entity`.
    pub fn parents_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.iter().filter(move |r| r.child == entity)
    }
}
