//! `lethe check`: the policy against the live schema.

use std::fmt;

use crate::policy::{OnDelete, Policy, Strategy};
use crate::schema::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
}

/// One problem found by [`check_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// Policy key, e.g. `entities.users.key` or `relations[2]`.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "{level}: line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{level}: {}: {}", self.key, self.message),
        }
    }
}

/// Validates `policy` against `schema`. Errors make `lethe check` fail; warnings
/// point at things that work but probably are not what the user wants.
pub fn check_policy(policy: &Policy, schema: &Schema) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |level, key: String, line, message: String| {
        out.push(Finding {
            level,
            key,
            line,
            message,
        })
    };
    for e in policy.entities.values() {
        let k = format!("entities.{}", e.name);
        let Some(t) = schema.table(&e.table) else {
            push(
                Level::Error,
                k,
                Some(e.line),
                format!(
                    "unknown table \"{}\": it does not exist in the database",
                    e.table
                ),
            );
            continue;
        };
        let mut missing = |what: &str, cols: &[String]| {
            for c in cols {
                if !t.has_column(c) {
                    push(
                        Level::Error,
                        format!("{k}.{what}"),
                        Some(e.line),
                        format!("unknown column \"{}.{c}\"", e.table),
                    );
                }
            }
        };
        missing("key", &e.key);
        for u in &e.unique {
            missing("unique", u);
        }
        let pii: Vec<String> = e.pii.keys().cloned().collect();
        missing("pii", &pii);
        missing("subject_columns", &e.subject_columns);
        // Templates and search documents read these columns at delete time.
        for tpl in &e.delivery.cache_keys {
            let cols: Vec<String> = tpl.fields().iter().map(|f| f.to_string()).collect();
            missing("cache_keys", &cols);
        }
        for s in &e.delivery.search {
            let mut cols: Vec<String> = s.id.fields().iter().map(|f| f.to_string()).collect();
            cols.extend(s.fields.iter().cloned());
            missing("search", &cols);
        }
        if e.key.iter().all(|c| t.has_column(c)) && !t.is_unique_key(&e.key) {
            push(
                Level::Warning,
                format!("{k}.key"),
                Some(e.line),
                format!(
                    "({}) is neither the primary key nor a unique constraint of \"{}\": one key may match several rows",
                    e.key.join(", "),
                    e.table
                ),
            );
        }
        if let Some(c) = t.column(&e.deleted_at)
            && e.is_soft()
            && c.not_null
        {
            push(
                Level::Error,
                format!("{k}.deleted_at"),
                Some(e.line),
                format!(
                    "marker column \"{}\" is NOT NULL; it must be nullable (NULL = active)",
                    c.name
                ),
            );
        }
        // An adopted marker column must be able to hold what Lethe writes.
        if let Some(c) = t.column(&e.deleted_at).filter(|_| e.is_soft()) {
            let ty = c.data_type.to_ascii_lowercase();
            if !(ty.contains("timestamp")
                || ty.contains("date")
                || ty.contains("text")
                || ty.contains("char")
                || ty.is_empty())
            {
                push(
                    Level::Error,
                    format!("{k}.deleted_at"),
                    Some(e.line),
                    format!(
                        "marker column \"{}\" is {}; it must hold a timestamp (a timestamp type or text). A boolean flag cannot record when; name another column in deleted_at",
                        c.name, c.data_type
                    ),
                );
            }
        }
        if let Some(c) = t.column(&e.deletion_id).filter(|_| e.is_soft()) {
            let ty = c.data_type.to_ascii_lowercase();
            if !(ty == "uuid" || ty.contains("text") || ty.contains("char") || ty.is_empty()) {
                push(
                    Level::Error,
                    format!("{k}.deletion_id"),
                    Some(e.line),
                    format!(
                        "marker column \"{}\" is {}; it must hold a deletion id (uuid or text): name another column in deletion_id",
                        c.name, c.data_type
                    ),
                );
            }
        }
        if e.strategy.removes_row() && !e.unique.is_empty() {
            push(
                Level::Warning,
                format!("{k}.unique"),
                Some(e.line),
                format!(
                    "\"unique\" only changes anything for soft entities; {} rows leave the table",
                    if e.strategy == Strategy::Hard {
                        "hard-deleted"
                    } else {
                        "archived"
                    }
                ),
            );
        }
        // Foreign keys the database enforces but the policy does not describe.
        for fk in &t.foreign_keys {
            let Some(parent) = policy.entities.values().find(|p| p.table == fk.ref_table) else {
                continue;
            };
            let same_set = |cols: &[String]| {
                cols.len() == fk.columns.len() && cols.iter().all(|c| fk.columns.contains(c))
            };
            let declared = policy
                .relations
                .iter()
                .any(|r| r.child == e.name && r.parent == parent.name && same_set(&r.columns));
            if !declared {
                // Deleting a hard parent would run into this key: the database
                // removes the rows with no snapshot (CASCADE) or refuses.
                let level = if parent.strategy.removes_row() && fk.on_delete != "set null" {
                    Level::Error
                } else {
                    Level::Warning
                };
                push(
                    level,
                    k.clone(),
                    Some(e.line),
                    format!(
                        "foreign key {}.({}) -> {} (ON DELETE {}) has no [[relations]] entry: Lethe will not cascade or check it{}",
                        e.table,
                        fk.columns.join(", "),
                        fk.ref_table,
                        fk.on_delete.to_uppercase(),
                        if level == Level::Error {
                            format!(
                                "; {} {} would make the database remove or refuse these rows. Declare the relation",
                                removing(parent.strategy),
                                parent.name
                            )
                        } else {
                            String::new()
                        }
                    ),
                );
            }
        }
    }
    for (i, r) in policy.relations.iter().enumerate() {
        let k = format!("relations[{i}]");
        let child = &policy.entities[&r.child];
        let parent = &policy.entities[&r.parent];
        let Some(t) = schema.table(&child.table) else {
            continue;
        };
        for c in &r.columns {
            match t.column(c) {
                None => push(
                    Level::Error,
                    format!("{k}.columns"),
                    Some(r.line),
                    format!("unknown column \"{}.{c}\"", child.table),
                ),
                Some(col) if r.on_delete == OnDelete::SetNull && col.not_null => push(
                    Level::Error,
                    format!("{k}.on_delete"),
                    Some(r.line),
                    format!(
                        "set_null on NOT NULL column \"{}.{c}\": the database would refuse the NULL",
                        child.table
                    ),
                ),
                Some(_) => {}
            }
        }
        if r.on_delete != OnDelete::Keep
            && r.columns.iter().all(|c| t.has_column(c))
            && !t.has_index_on(&r.columns)
        {
            push(
                Level::Warning,
                k.clone(),
                Some(r.line),
                format!(
                    "no index on {}({}): every delete of \"{}\" scans \"{}\" to find its children; consider CREATE INDEX ON {} ({})",
                    child.table,
                    r.columns.join(", "),
                    parent.name,
                    child.table,
                    child.table,
                    r.columns.join(", ")
                ),
            );
        }
        let fk = t.foreign_keys.iter().find(|f| {
            f.ref_table == parent.table
                && f.columns.len() == r.columns.len()
                && r.columns.iter().all(|c| f.columns.contains(c))
        });
        // The columns are matched to the parent's key by position: they must
        // be listed in the key's order, and the foreign key must reference
        // the key (not another unique column).
        if let Some(fk) = fk {
            let expected = fk.columns_in_order_of(&parent.key);
            match expected {
                None => push(
                    Level::Error,
                    format!("{k}.columns"),
                    Some(r.line),
                    format!(
                        "the foreign key {}.({}) references {}({}), not the key ({}) of \"{}\": a relation must reference the parent's key",
                        child.table,
                        fk.columns.join(", "),
                        parent.table,
                        fk.ref_columns.join(", "),
                        parent.key.join(", "),
                        parent.name
                    ),
                ),
                Some(exp) if exp != r.columns => push(
                    Level::Error,
                    format!("{k}.columns"),
                    Some(r.line),
                    format!(
                        "columns must follow the order of the parent's key ({}): write columns = [{}]",
                        parent.key.join(", "),
                        exp.iter()
                            .map(|c| format!("\"{c}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Some(_) => {}
            }
        }
        // A hard parent cannot be removed while a database foreign key still
        // points at it from a row that stays: a soft child's marked rows keep
        // their reference, and so do a kept hard child's rows.
        if let Some(fk) = fk.filter(|_| parent.strategy.removes_row()) {
            let child_stays = if child.strategy.removes_row() {
                r.on_delete == OnDelete::Keep
            } else {
                fk.on_delete != "set null"
            };
            if child_stays {
                push(
                    Level::Error,
                    k.clone(),
                    Some(r.line),
                    format!(
                        "\"{}\" is {} but the foreign key {}.({}) (ON DELETE {}) keeps pointing at it from rows that stay ({} {}; soft-deleted rows keep their reference): the database would refuse or cascade the delete; {}",
                        parent.name,
                        if parent.strategy == Strategy::Hard {
                            "hard-deleted"
                        } else {
                            "archived"
                        },
                        child.table,
                        r.columns.join(", "),
                        fk.on_delete.to_uppercase(),
                        child.strategy,
                        r.on_delete,
                        if child.strategy.removes_row() {
                            // The child would go too, but `keep` leaves it.
                            format!(
                                "make \"{}\" soft, or the relation cascade so its rows go with their parent",
                                parent.name
                            )
                        } else {
                            format!(
                                "make \"{}\" soft or \"{}\" {}",
                                parent.name, child.name, parent.strategy
                            )
                        }
                    ),
                );
            }
        }
    }
    // The database's own ON DELETE CASCADE from an unmanaged table would
    // remove rows when Lethe hard-deletes their parent, with no snapshot.
    for t in schema.tables.values() {
        if t.name.starts_with("lethe_") || policy.entities.values().any(|e| e.table == t.name) {
            continue;
        }
        for fk in &t.foreign_keys {
            let Some(parent) = policy.entities.values().find(|p| p.table == fk.ref_table) else {
                continue;
            };
            if parent.strategy.removes_row() && fk.on_delete == "cascade" {
                out.push(Finding {
                    level: Level::Error,
                    key: format!("entities.{}", parent.name),
                    line: Some(parent.line),
                    message: format!(
                        "unmanaged table \"{}\" references \"{}\" with ON DELETE CASCADE: {} {} makes the database remove those rows too, and restore cannot bring them back; add \"{}\" to the policy",
                        t.name, parent.table, removing(parent.strategy), parent.name, t.name
                    ),
                });
            }
        }
    }
    out.sort_by_key(|f| f.level);
    out
}

/// `hard-deleting` or `archiving`, for messages about rows leaving a table.
fn removing(s: Strategy) -> &'static str {
    if s == Strategy::Hard {
        "hard-deleting"
    } else {
        "archiving"
    }
}
