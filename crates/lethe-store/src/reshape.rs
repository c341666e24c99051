//! Restoring stored rows (hard snapshots, archived rows) into a table that
//! may have changed since they were stored. Each group of a deletion's
//! stored rows carries the fingerprint of the columns it was stored with;
//! compared with the table's columns now:
//! - a column added since is left to its default (or NULL), or takes a value
//!   given with `--set`; a NOT NULL column without a default needs one;
//! - a column dropped since loses its values: refused, listing them, unless
//!   the caller accepts it (`--drop-missing`); all-NULL columns lose nothing;
//! - a column whose type changed is converted by the database; a value that
//!   cannot be is named.

use std::collections::BTreeMap;
use std::str::FromStr;

use lethe_core::{Policy, Schema};
use lethe_sql::{Fill, StoredGroup, archive};
use serde::Serialize;
use serde_json::Value;

use crate::db::{Tx, col};
use crate::error::{Result, StoreError};

/// `--set column=value` or `--set entity.column=value`: a value for a column
/// added since the rows were stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValue {
    pub entity: Option<String>,
    pub column: String,
    pub value: String,
}

impl FromStr for SetValue {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (target, value) = s
            .split_once('=')
            .ok_or_else(|| format!("\"{s}\" is not column=value (or entity.column=value)"))?;
        let target = target.trim();
        let (entity, column) = match target.split_once('.') {
            Some((e, c)) => (Some(e.to_string()), c.to_string()),
            None => (None, target.to_string()),
        };
        if !lethe_core::ident::is_valid(&column)
            || entity
                .as_deref()
                .is_some_and(|e| !lethe_core::ident::is_valid(e))
        {
            return Err(format!(
                "\"{target}\" is not a column name (or entity.column)"
            ));
        }
        Ok(SetValue {
            entity,
            column,
            value: value.to_string(),
        })
    }
}

/// One way the table differs from what a group of stored rows holds, and
/// what the restore does about it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaChange {
    pub entity: String,
    pub column: String,
    /// `added`, `dropped` or `retyped`.
    pub change: String,
    /// Stored rows concerned.
    pub rows: u64,
    /// In words: `takes its default`, `set to '...' (--set)`, `3 values
    /// lost`, `text -> integer`, ...
    pub outcome: String,
}

/// A stored value, with the key of its row.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredValue {
    pub key: Value,
    pub value: String,
}

/// Why stored rows cannot go back as they are.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShapeProblem {
    pub entity: String,
    pub column: String,
    /// `needs_value` (NOT NULL added, no default, no `--set`),
    /// `values_lost` (dropped column holding values, no `--drop-missing`),
    /// `not_castable` (values the new type does not take).
    pub problem: String,
    pub message: String,
    /// How many stored values are concerned.
    pub count: u64,
    /// Up to five of them.
    pub examples: Vec<StoredValue>,
}

/// What [`analyse`] found for one deletion.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Per entity, the groups of stored rows and how to insert each.
    pub groups: BTreeMap<String, Vec<StoredGroup>>,
    /// Values bound as `Param::Value(i)` (from `--set`).
    pub values: Vec<String>,
    pub changes: Vec<SchemaChange>,
    pub problems: Vec<ShapeProblem>,
}

async fn examples(
    tx: &mut Tx,
    sql: &str,
    params: &[Option<String>],
) -> Result<(u64, Vec<StoredValue>)> {
    let rows = tx.rows(sql, params).await?;
    let count = rows
        .first()
        .map(|r| col(r, 2).parse().unwrap_or(0))
        .unwrap_or(0);
    let ex = rows
        .iter()
        .map(|r| StoredValue {
            key: serde_json::from_str(&col(r, 0)).unwrap_or(Value::Null),
            value: col(r, 1),
        })
        .collect();
    Ok((count, ex))
}

fn quote_list(ex: &[StoredValue]) -> String {
    ex.iter()
        .map(|v| format!("'{}' (key {})", v.value, v.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks at every group of deletion `id`'s stored rows against the current
/// schema. Changes nothing; problems are returned, not raised, so a dry run
/// can show them all.
pub async fn analyse(
    tx: &mut Tx,
    policy: &Policy,
    schema: &Schema,
    id: &str,
    sets: &[SetValue],
    drop_missing: bool,
) -> Result<Shape> {
    let d = tx.dialect();
    let mut shape = Shape::default();
    for (i, a) in sets.iter().enumerate() {
        if sets[..i]
            .iter()
            .any(|b| b.column == a.column && b.entity == a.entity)
        {
            return Err(StoreError::Invalid(format!(
                "--set {}{} is given twice",
                a.entity
                    .as_ref()
                    .map(|e| format!("{e}."))
                    .unwrap_or_default(),
                a.column
            )));
        }
    }
    let mut used = vec![false; sets.len()];
    let groups = tx
        .rows(&archive::stored_groups(d), &[Some(id.to_string())])
        .await?;
    for g in groups {
        let (entity, fp, cols_json) = (col(&g, 0), col(&g, 1), col(&g, 2));
        let rows: u64 = col(&g, 3).parse().unwrap_or(0);
        let e = policy
            .entity(&entity)
            .ok_or_else(|| StoreError::EntityGone(entity.clone()))?;
        let t = schema
            .table(&e.table)
            .ok_or_else(|| lethe_core::CoreError::missing_table(&e.table, &e.name))?;
        let archived: Option<Vec<(String, String)>> = if fp.is_empty() {
            None
        } else {
            serde_json::from_str(&cols_json).ok()
        };
        let is_marker = |c: &str| e.has_markers() && (c == e.deleted_at || c == e.deletion_id);
        let mut columns = Vec::new();
        let params = |fp: &str| {
            vec![
                Some(id.to_string()),
                Some(entity.clone()),
                Some(fp.to_string()),
            ]
        };
        let drift = archived
            .as_deref()
            .map(|a| lethe_core::drift(a, t))
            .unwrap_or_default();
        for c in t
            .columns
            .iter()
            .filter(|c| !c.generated && !is_marker(&c.name))
        {
            if !drift.added.iter().any(|a| a.name == c.name) {
                columns.push((c.name.clone(), Fill::Stored));
                continue;
            }
            for (i, s) in sets.iter().enumerate() {
                if s.column == c.name && s.entity.as_deref().is_none_or(|x| x == entity) {
                    used[i] = true;
                }
            }
            // A value for this entity's column first, then one for the
            // column in any table.
            let given = sets
                .iter()
                .position(|s| s.column == c.name && s.entity.as_deref() == Some(entity.as_str()))
                .or_else(|| {
                    sets.iter()
                        .position(|s| s.column == c.name && s.entity.is_none())
                });
            let outcome = if let Some(i) = given {
                shape.values.push(sets[i].value.clone());
                columns.push((c.name.clone(), Fill::Given(shape.values.len() - 1)));
                format!("set to '{}' (--set)", sets[i].value)
            } else if c.not_null && !c.has_default {
                shape.problems.push(ShapeProblem {
                    entity: entity.clone(),
                    column: c.name.clone(),
                    problem: "needs_value".into(),
                    message: format!(
                        "{}.{} ({}) was added since the rows were stored and is NOT NULL without a default: give it a value with --set {}=VALUE (or --set {}.{}=VALUE for entity {} only)",
                        e.table, c.name, c.data_type, c.name, e.name, c.name, e.name
                    ),
                    count: rows,
                    examples: Vec::new(),
                });
                "needs a value (--set)".to_string()
            } else if c.has_default {
                "takes its default".to_string()
            } else {
                "is NULL".to_string()
            };
            shape.changes.push(SchemaChange {
                entity: entity.clone(),
                column: c.name.clone(),
                change: "added".into(),
                rows,
                outcome,
            });
        }
        for (c, _) in drift.dropped.iter().filter(|(c, _)| !is_marker(c)) {
            let (count, ex) = examples(tx, &archive::values_of(d, c), &params(&fp)).await?;
            let outcome = if count == 0 {
                "held only NULLs: nothing is lost".to_string()
            } else if drop_missing {
                format!("{count} value(s) dropped (--drop-missing)")
            } else {
                shape.problems.push(ShapeProblem {
                    entity: entity.clone(),
                    column: c.clone(),
                    problem: "values_lost".into(),
                    message: format!(
                        "{}.{} was dropped since the rows were stored; restoring would lose {count} value(s): {}{}. Add the column back, or pass --drop-missing to restore without them",
                        e.table,
                        c,
                        quote_list(&ex),
                        if count as usize > ex.len() { ", ..." } else { "" }
                    ),
                    count,
                    examples: ex,
                });
                format!("{count} value(s) would be lost")
            };
            shape.changes.push(SchemaChange {
                entity: entity.clone(),
                column: c.clone(),
                change: "dropped".into(),
                rows,
                outcome,
            });
        }
        for (c, from, to) in &drift.retyped {
            let (count, ex) =
                examples(tx, &archive::uncastable_values(d, c, to), &params(&fp)).await?;
            if count > 0 {
                shape.problems.push(ShapeProblem {
                    entity: entity.clone(),
                    column: c.clone(),
                    problem: "not_castable".into(),
                    message: format!(
                        "{}.{} changed from {from} to {to} since the rows were stored, and {count} value(s) cannot be converted: {}{}",
                        e.table,
                        c,
                        quote_list(&ex),
                        if count as usize > ex.len() { ", ..." } else { "" }
                    ),
                    count,
                    examples: ex,
                });
            }
            shape.changes.push(SchemaChange {
                entity: entity.clone(),
                column: c.clone(),
                change: "retyped".into(),
                rows,
                outcome: if count > 0 {
                    format!("{from} -> {to}: {count} value(s) cannot be converted")
                } else {
                    format!("{from} -> {to}: converted")
                },
            });
        }
        shape
            .groups
            .entry(entity.clone())
            .or_default()
            .push(StoredGroup {
                fingerprint: Some(fp).filter(|f| !f.is_empty()),
                columns,
            });
    }
    if let Some(i) = used.iter().position(|u| !u) {
        let s = &sets[i];
        return Err(StoreError::Invalid(format!(
            "--set {}{}: no column of that name was added to {} since its rows were stored",
            s.entity
                .as_ref()
                .map(|e| format!("{e}."))
                .unwrap_or_default(),
            s.column,
            s.entity.as_deref().unwrap_or("any table of this deletion")
        )));
    }
    Ok(shape)
}
