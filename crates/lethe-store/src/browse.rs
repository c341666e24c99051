//! Read-only views for applications and operators: an entity's trash a page
//! at a time, a row's tombstone (is it active, deleted, purged or unknown?),
//! and the audit log newest first.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::db::col;
use crate::engine::Engine;
use crate::error::{Result, StoreError};
use lethe_sql::browse;

/// Largest trash or audit page a caller may ask for.
pub const MAX_PAGE: u32 = 500;

/// What to list of an entity's trash.
#[derive(Debug, Clone, Default)]
pub struct TrashQuery {
    /// Only rows of this deletion.
    pub deletion_id: Option<String>,
    /// Only rows whose values contain this text (case-insensitive).
    pub search: Option<String>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
    /// Rows per page (1..=[`MAX_PAGE`]).
    pub limit: u32,
}

/// One deleted row in the trash.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrashItem {
    /// The row's key as `{column: value}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub key: Value,
    /// The deletion that removed it (empty when it was marked outside Lethe).
    pub deletion_id: String,
    pub deleted_at: String,
    /// `table` (marked in its table) or `archive` (in the archive store:
    /// hard-delete snapshots and archived rows).
    pub place: String,
    /// When its retention runs out and a purge may remove it for good (none
    /// without retention).
    pub restorable_until: Option<String>,
    /// The row's values as `{column: value}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub row: Value,
}

/// A page of the trash.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrashPage {
    pub entity: String,
    pub items: Vec<TrashItem>,
    /// Pass as `cursor` for the next page; none on the last page.
    pub next: Option<String>,
}

/// Where a row is now, for a caller that must tell "gone" from "never was".
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tombstone {
    pub entity: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub key: Value,
    /// `active`, `deleted` (restorable), `purged` (gone for good: retention
    /// ran out, or an erasure removed it) or `unknown` (no such row, and no
    /// record of one).
    pub status: String,
    /// The deletion that removed it (deleted, purged).
    pub deletion_id: Option<String>,
    /// When it was deleted.
    pub deleted_at: Option<String>,
    /// When its retention runs out (deleted rows of an entity with
    /// retention).
    pub restorable_until: Option<String>,
    /// When it was purged or erased, where Lethe knows.
    pub purged_at: Option<String>,
    /// `table` or `archive` for a deleted row.
    pub place: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub action: String,
    pub deletion_id: Option<String>,
    /// The entry as hashed (keys, counts, actor, reason, context; never PII
    /// values).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub entry: Value,
    pub hash: String,
}

fn cursor_parts(cursor: &str) -> Result<(String, String, String)> {
    let bad = || {
        StoreError::Invalid(format!(
            "\"{cursor}\" is not a trash cursor (pass the `next` value of the previous page)"
        ))
    };
    let raw = hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut it = text.splitn(3, '\n');
    match (it.next(), it.next(), it.next()) {
        (Some(at), Some(place), Some(tie))
            if OffsetDateTime::parse(at, &Rfc3339).is_ok()
                && matches!(place, "table" | "archive") =>
        {
            Ok((at.to_string(), place.to_string(), tie.to_string()))
        }
        _ => Err(bad()),
    }
}

/// `%text%` for `LIKE ... ESCAPE '\'`, lower case, wildcards taken literally.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Engine {
    fn until(&self, entity: &str, deleted_at: &str) -> Option<String> {
        let r = self.policy.entity(entity)?.retention.as_ref()?;
        let at = OffsetDateTime::parse(deleted_at, &Rfc3339).ok()?;
        Some(crate::time_text(at + r.after))
    }

    /// One page of `entity`'s trash, newest deletion first: rows marked in
    /// the table and rows in the archive store, of deletions not restored.
    pub async fn trash(&self, entity: &str, q: &TrashQuery) -> Result<TrashPage> {
        self.require_internal()?;
        let e = self.entity(entity)?;
        if !(1..=MAX_PAGE).contains(&q.limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be between 1 and {MAX_PAGE}, not {}",
                q.limit
            )));
        }
        if let Some(id) = &q.deletion_id {
            uuid::Uuid::parse_str(id).map_err(|_| StoreError::BadDeletionId(id.clone()))?;
        }
        let (at, place, tie) = match &q.cursor {
            Some(c) => {
                let (a, p, t) = cursor_parts(c)?;
                (Some(a), Some(p), Some(t))
            }
            None => (None, None, None),
        };
        let rows = self
            .db
            .rows(
                &browse::trash_page(self.dialect(), &self.schema, e),
                &[
                    Some(e.name.clone()),
                    q.deletion_id.clone(),
                    q.search
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .map(like_pattern),
                    at,
                    place,
                    tie,
                    Some(q.limit.to_string()),
                ],
            )
            .await?;
        let json = |s: String| serde_json::from_str(&s).unwrap_or(Value::String(s));
        let next = (rows.len() == q.limit as usize)
            .then(|| rows.last())
            .flatten()
            .map(|r| hex::encode(format!("{}\n{}\n{}", col(r, 2), col(r, 3), col(r, 4))));
        let items = rows
            .iter()
            .map(|r| TrashItem {
                key: json(col(r, 0)),
                deletion_id: col(r, 1),
                restorable_until: self.until(entity, &col(r, 2)),
                deleted_at: col(r, 2),
                place: col(r, 3),
                row: json(col(r, 5)),
            })
            .collect();
        Ok(TrashPage {
            entity: e.name.clone(),
            items,
            next,
        })
    }

    /// Where the row of `entity` with `key` is now: active, deleted (by
    /// which deletion, when, restorable until when), purged, or unknown.
    pub async fn tombstone(&self, entity: &str, key: &str) -> Result<Tombstone> {
        self.require_internal()?;
        let k = self.key(entity, key)?;
        let e = self.entity(entity)?;
        let d = self.dialect();
        let mut t = Tombstone {
            entity: e.name.clone(),
            key: self.key_json(entity, &k, false),
            status: "unknown".into(),
            deletion_id: None,
            deleted_at: None,
            restorable_until: None,
            purged_at: None,
            place: None,
        };
        let values: Vec<Option<String>> = k.values.iter().cloned().map(Some).collect();
        let with_entity = |rest: &[Option<String>]| {
            let mut v = vec![Some(e.name.clone())];
            v.extend_from_slice(rest);
            v
        };
        let in_table = self
            .db
            .rows(&browse::tombstone_in_table(d, &self.schema, e), &values)
            .await?;
        if let Some(r) = in_table.first() {
            let at = col(r, 0);
            if at.is_empty() {
                t.status = "active".into();
            } else {
                t.status = "deleted".into();
                t.deletion_id = Some(col(r, 1)).filter(|s| !s.is_empty());
                t.restorable_until = self.until(entity, &at);
                t.deleted_at = Some(at);
                t.place = Some("table".into());
            }
            return Ok(t);
        }
        let stored = self
            .db
            .rows(
                &browse::tombstone_in_store(d, &self.schema, e),
                &with_entity(&values),
            )
            .await?;
        if let Some(r) = stored.first() {
            t.status = "deleted".into();
            t.deletion_id = Some(col(r, 0));
            t.restorable_until = self.until(entity, &col(r, 1));
            t.deleted_at = Some(col(r, 1));
            t.place = Some("archive".into());
            return Ok(t);
        }
        // Gone from the table and the store: a deletion of this very row
        // whose rows were purged, or a purge or erasure that listed it.
        let root_key = self.key_json(entity, &k, true).to_string();
        let root = self
            .db
            .rows(&browse::tombstone_root(d), &with_entity(&[Some(root_key)]))
            .await?;
        if let Some(r) = root.first()
            && !col(r, 2).is_empty()
        {
            t.status = "purged".into();
            t.deletion_id = Some(col(r, 0));
            t.deleted_at = Some(col(r, 1));
            t.purged_at = Some(col(r, 2));
            return Ok(t);
        }
        let gone = self
            .db
            .rows(&browse::tombstone_gone(d, e), &with_entity(&values))
            .await?;
        if let Some(r) = gone.first() {
            t.status = "purged".into();
            t.deletion_id = Some(col(r, 0));
            t.purged_at = Some(col(r, 2));
        }
        Ok(t)
    }

    /// The audit log newest first: entries before `before` (a seq), only of
    /// `action` when given, at most `limit`.
    pub async fn audit_list(
        &self,
        before: Option<i64>,
        action: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.require_internal()?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        let rows = self
            .db
            .rows(
                &browse::audit_page(self.dialect()),
                &[
                    before.map(|b| b.to_string()),
                    action.map(str::to_string),
                    Some(limit.to_string()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                seq: col(r, 0).parse().unwrap_or(0),
                at: col(r, 1),
                action: col(r, 2),
                deletion_id: Some(col(r, 3)).filter(|s| !s.is_empty()),
                entry: serde_json::from_str(&col(r, 4)).unwrap_or(Value::Null),
                hash: col(r, 5),
            })
            .collect())
    }
}

/// One file written to cold storage.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRecord {
    pub location: String,
    pub entity: String,
    /// The UTC day of the deletions it holds.
    pub day: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub manifest: String,
    pub exported_at: String,
}

impl Engine {
    /// Files exported to cold storage, newest first; at most `limit` (all
    /// when `None`).
    pub async fn exports(&self, limit: Option<u32>) -> Result<Vec<ExportRecord>> {
        self.require_internal()?;
        let mut sql = lethe_sql::cold::exports(self.dialect());
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let rows = self.db.rows(&sql, &[]).await?;
        let n = |r: &[Option<String>], i| col(r, i).parse::<u64>().unwrap_or(0);
        Ok(rows
            .iter()
            .map(|r| ExportRecord {
                location: col(r, 0),
                entity: col(r, 1),
                day: col(r, 2),
                path: col(r, 3),
                rows: n(r, 4),
                bytes: n(r, 5),
                sha256: col(r, 6),
                manifest: col(r, 7),
                exported_at: col(r, 8),
            })
            .collect())
    }
}
