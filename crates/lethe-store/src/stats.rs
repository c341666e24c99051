//! `lethe stats`: per entity, active rows, deleted rows still in the table,
//! rows in the archive store, the oldest deletion, rows due for purge, and
//! on PostgreSQL the room deleted rows take. Answers "how much does soft
//! delete cost me" and "what would a quota that counts rows see".

use serde::Serialize;
use time::OffsetDateTime;

use crate::db::col;
use crate::engine::Engine;
use crate::error::Result;

/// Room the deleted rows of one table take (PostgreSQL).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Space {
    /// Bytes of the deleted rows' tuples (data plus tuple header).
    pub deleted_bytes: u64,
    /// The whole table (heap and TOAST).
    pub table_bytes: u64,
    /// The part of the indexes that holds deleted rows: indexes that hold
    /// every row, in proportion to the deleted share (Lethe's partial
    /// indexes on active rows hold none).
    pub deleted_index_bytes: u64,
    /// All indexes of the table.
    pub index_bytes: u64,
}

/// One entity's numbers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityStats {
    pub entity: String,
    pub table: String,
    pub strategy: String,
    /// Rows the application sees (through `<table>_active`).
    pub active: u64,
    /// Rows marked deleted, still in the table.
    pub deleted: u64,
    /// Rows in the archive store: archived rows, and hard-delete snapshots.
    pub archived: u64,
    pub snapshots: u64,
    /// Bytes of the entity's rows in the archive store.
    pub stored_bytes: u64,
    /// The earliest deletion time among its deleted, archived and
    /// snapshotted rows.
    pub oldest_deletion: Option<String>,
    pub retention: Option<String>,
    /// Rows a purge would take now.
    pub due_for_purge: u64,
    /// Expired rows kept by legal holds.
    pub held: u64,
    pub space: Option<Space>,
}

impl Engine {
    /// Numbers for every managed entity (or one).
    pub async fn stats(&self, only: Option<&str>) -> Result<Vec<EntityStats>> {
        self.require_internal()?;
        if let Some(name) = only
            && self.policy.entity(name).is_none()
        {
            return Err(lethe_core::plan::unknown_entity(&self.policy, name).into());
        }
        let d = self.dialect();
        let stored = self
            .db
            .rows(&lethe_sql::stats::store_counts(d), &[])
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut out = Vec::new();
        for e in self.policy.entities.values() {
            if only.is_some_and(|o| o != e.name) || self.schema.table(&e.table).is_none() {
                continue;
            }
            let rows = self
                .db
                .rows(&lethe_sql::stats::table_counts(d, e), &[])
                .await?;
            let r = rows.first().cloned().unwrap_or_default();
            let n = |r: &[Option<String>], i| col(r, i).parse::<u64>().unwrap_or(0);
            let mut s = EntityStats {
                entity: e.name.clone(),
                table: e.table.clone(),
                strategy: e.strategy.as_str().into(),
                active: n(&r, 0),
                deleted: n(&r, 1),
                archived: 0,
                snapshots: 0,
                stored_bytes: 0,
                oldest_deletion: Some(col(&r, 2)).filter(|s| !s.is_empty()),
                retention: e.retention.as_ref().map(|r| r.text.clone()),
                due_for_purge: 0,
                held: 0,
                space: None,
            };
            for g in stored.iter().filter(|g| col(g, 0) == e.name) {
                match col(g, 1).as_str() {
                    "archive" => s.archived = n(g, 2),
                    _ => s.snapshots = n(g, 2),
                }
                s.stored_bytes += n(g, 4);
                let oldest = col(g, 3);
                if !oldest.is_empty() && s.oldest_deletion.as_ref().is_none_or(|o| oldest < *o) {
                    s.oldest_deletion = Some(oldest);
                }
            }
            if let Some(r) = &e.retention {
                let cutoff = crate::time_text(now - r.after);
                for source in crate::purge::retention_sources(e) {
                    let (due, held, _) = self.purge_counts(e, source, &cutoff).await?;
                    s.due_for_purge += due;
                    s.held += held;
                }
            }
            if let Some(sql) = lethe_sql::stats::space(d, e) {
                let rows = self.db.rows(&sql, &[]).await?;
                if let Some(r) = rows.first() {
                    let total = s.active + s.deleted;
                    let full_indexes = n(r, 2);
                    s.space = Some(Space {
                        deleted_bytes: n(r, 0),
                        table_bytes: n(r, 1),
                        deleted_index_bytes: if total == 0 {
                            0
                        } else {
                            (full_indexes as u128 * s.deleted as u128 / total as u128) as u64
                        },
                        index_bytes: n(r, 3),
                    });
                }
            }
            out.push(s);
        }
        Ok(out)
    }
}
