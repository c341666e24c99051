//! Reads the live schema into [`lethe_core::Schema`].

use lethe_core::{ColumnInfo, ForeignKeyInfo, Schema, TableInfo, UniqueInfo};
use lethe_sql::queries::{self, introspect as q};

use crate::db::{Db, col};
use crate::error::Result;

fn split(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

fn truthy(s: &str) -> bool {
    matches!(s, "true" | "t" | "1")
}

/// Introspects tables, columns, keys, unique constraints, foreign keys,
/// indexes, triggers, views and row security.
pub async fn load_schema(db: &Db) -> Result<Schema> {
    let d = db.dialect();
    let mut tx = db.begin_read().await?;
    let mut schema = Schema::default();
    for r in tx.rows(q::columns(d), &[]).await? {
        let table = col(&r, 0);
        let t = schema
            .tables
            .entry(table.clone())
            .or_insert_with(|| TableInfo {
                name: table.clone(),
                ..Default::default()
            });
        t.columns.push(ColumnInfo {
            name: col(&r, 1),
            data_type: col(&r, 2),
            not_null: truthy(&col(&r, 3)),
            has_default: truthy(&col(&r, 4)),
            generated: truthy(&col(&r, 5)),
        });
    }
    for r in tx.rows(q::constraints(d), &[]).await? {
        let Some(t) = schema.tables.get_mut(&col(&r, 0)) else {
            continue;
        };
        let name = col(&r, 1);
        let cols = split(&col(&r, 3));
        let partial = truthy(&col(&r, 4));
        match col(&r, 2).as_str() {
            "p" => t.primary_key = cols,
            "u" => t.uniques.push(UniqueInfo {
                name,
                columns: cols,
                partial: false,
                is_constraint: true,
                inline: false,
            }),
            "i" => {
                t.indexes.insert(name.clone());
                if !cols.is_empty() {
                    t.uniques.push(UniqueInfo {
                        name,
                        columns: cols,
                        partial,
                        is_constraint: false,
                        inline: false,
                    });
                }
            }
            "inline" => {
                t.indexes.insert(name.clone());
                t.uniques.push(UniqueInfo {
                    name,
                    columns: cols,
                    partial,
                    is_constraint: false,
                    inline: true,
                });
            }
            "f" => t.foreign_keys.push(ForeignKeyInfo {
                name,
                columns: cols,
                ref_table: col(&r, 5),
                ref_columns: split(&col(&r, 6)),
                on_delete: col(&r, 7),
            }),
            _ => {
                t.indexes.insert(name);
                if !cols.is_empty() && !partial {
                    t.index_columns.push(cols);
                }
            }
        }
    }
    // SQLite foreign keys may omit the referenced columns (= the parent's
    // primary key).
    let pks: Vec<(String, Vec<String>)> = schema
        .tables
        .values()
        .map(|t| (t.name.clone(), t.primary_key.clone()))
        .collect();
    for t in schema.tables.values_mut() {
        for fk in &mut t.foreign_keys {
            if fk.ref_columns.is_empty()
                && let Some((_, pk)) = pks.iter().find(|(n, _)| *n == fk.ref_table)
            {
                fk.ref_columns = pk.clone();
            }
        }
    }
    for r in tx.rows(q::triggers(d), &[]).await? {
        if let Some(t) = schema.tables.get_mut(&col(&r, 0)) {
            t.triggers.insert(col(&r, 1));
        }
    }
    for r in tx.rows(q::definitions(d), &[]).await? {
        if let Some(t) = schema.tables.get_mut(&col(&r, 0)) {
            match col(&r, 1).as_str() {
                "table" => t.create_sql = Some(col(&r, 2)),
                _ => t.dependent_sql.push(col(&r, 2)),
            }
        }
    }
    if let Some(r) = tx.rows(q::current_schema(d), &[]).await?.first() {
        schema.current_schema = Some(col(r, 0));
    }
    for r in tx.rows(q::views(d), &[]).await? {
        schema.views.insert(col(&r, 0));
    }
    for r in tx.rows(q::row_security(d), &[]).await? {
        if let Some(t) = schema.tables.get_mut(&col(&r, 0)) {
            t.row_security = truthy(&col(&r, 1));
            let p = col(&r, 2);
            if !p.is_empty() {
                t.policies.insert(p);
            }
        }
    }
    tx.rollback().await?;
    Ok(schema)
}

/// The versions of Lethe's own tables that are installed (empty when none).
pub async fn internal_versions(db: &Db) -> Result<Vec<String>> {
    let d = db.dialect();
    let exists = db.rows(queries::internal_table_exists(d), &[]).await?;
    if !exists.first().map(|r| col(r, 0) == "1").unwrap_or(false) {
        return Ok(Vec::new());
    }
    let rows = db.rows(&queries::internal_versions(d), &[]).await?;
    Ok(rows.iter().map(|r| col(r, 0)).collect())
}
