//! What commands print: `--json` shapes and the shared text helpers.
//!
//! Every JSON shape lists rows per entity the same way: `affected` maps
//! entity -> rows, `entities` gives the detail (entity, strategy, rows) in plan
//! order, `nullified` maps entity -> rows whose references were set to NULL.

use std::io::Write;

use lethe_store::{
    DeletionOutcome, DeletionRecord, EntityCount, NullifiedCount, OutboxRecord, PlanReport,
    RestoreOutcome, RestorePreview, StoreError,
};
use serde_json::{Value, json};

use crate::table;

/// Prints pretty JSON on stdout. A closed pipe (`| head`) ends output quietly.
pub fn print_json(v: &Value) {
    let text =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let _ = writeln!(std::io::stdout(), "{text}");
}

pub fn affected(c: &[EntityCount]) -> Value {
    Value::Object(
        c.iter()
            .map(|c| (c.entity.clone(), Value::from(c.rows)))
            .collect(),
    )
}

pub fn nullified(c: &[NullifiedCount]) -> Value {
    Value::Object(
        c.iter()
            .map(|c| (c.entity.clone(), Value::from(c.rows)))
            .collect(),
    )
}

pub fn outcome(d: &DeletionOutcome) -> Value {
    json!({
        "deletion_id": d.deletion_id,
        "at": d.at,
        "entity": d.entity,
        "key": d.key,
        "affected": affected(&d.affected),
        "entities": d.affected,
        "nullified": nullified(&d.nullified),
        "audit_hash": d.audit_hash,
    })
}

pub fn plan(p: &PlanReport) -> Value {
    json!({
        "dry_run": true,
        "entity": p.entity,
        "key": p.key,
        "affected": affected(&p.affected),
        "entities": p.affected,
        "nullified": nullified(&p.nullified),
        "blocked": !p.blocked_by.is_empty(),
        "blocked_by": p.blocked_by,
    })
}

pub fn restored(r: &RestoreOutcome) -> Value {
    json!({
        "deletion_id": r.deletion_id,
        "at": r.at,
        "restored": affected(&r.restored),
        "entities": r.restored,
        "nullified_restored": nullified(&r.nullified_restored),
        "audit_hash": r.audit_hash,
    })
}

pub fn preview(p: &RestorePreview) -> Value {
    json!({
        "dry_run": true,
        "deletion_id": p.deletion_id,
        "refused": preview_refused(p),
        "would_restore": affected(&p.would_restore),
        "entities": p.would_restore,
        "nullified": nullified(&p.nullified),
        "conflicts": p.conflicts,
        "deleted_parents": p.deleted_parents,
        "schema_changes": p.schema_changes,
        "problems": p.problems,
    })
}

/// Whether a previewed restore would be refused.
pub fn preview_refused(p: &RestorePreview) -> bool {
    !p.conflicts.is_empty() || !p.deleted_parents.is_empty() || !p.problems.is_empty()
}

pub fn record(d: &DeletionRecord) -> Value {
    json!({
        "id": d.id,
        "kind": d.kind,
        "at": d.at,
        "actor": d.actor,
        "reason": d.reason,
        "context": d.context,
        "entity": d.entity,
        "key": d.key,
        "affected": affected(&d.affected),
        "entities": d.affected,
        "nullified": nullified(&d.nullified),
        "restored": d.restored_at.is_some(),
        "status": d.status(),
        "restored_at": d.restored_at,
        "restored_by": d.restored_by,
        "restored_reason": d.restored_reason,
        "purged_at": d.purged_at,
    })
}

pub fn record_with_outbox(d: &DeletionRecord, outbox: &[OutboxRecord]) -> Value {
    let mut v = record(d);
    v["outbox"] = json!(outbox);
    v
}

/// `{"error": {code, message, hint, details}}`, for `--json` callers.
pub fn error(e: &StoreError) -> Value {
    json!({"error": {
        "code": e.code(),
        "message": e.to_string(),
        "hint": e.hint(),
        "details": e.details(),
    }})
}

/// A key object as a person writes it: `42` or `order_id=1,product_id=2`.
pub fn key_text(v: &Value) -> String {
    match v.as_object() {
        Some(m) if m.len() == 1 => m.values().next().map(value_text).unwrap_or_default(),
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(","),
        None => v.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        // A keyed hash of a personal value: its start is enough to tell rows apart.
        Value::String(s) if s.starts_with("keyed-sha256:") && s.len() > 25 => {
            format!("{}…", &s[..25])
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `1 entity`, `2 entities`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn describe_plan(plan: &PlanReport) -> String {
    let tables = plan.affected.iter().filter(|c| c.rows > 0).count();
    let mut s = format!(
        "plan: delete {} {} ({} in {})\n",
        plan.entity,
        key_text(&plan.key),
        plural(plan.total_rows() as usize, "row", "rows"),
        plural(tables, "table", "tables")
    );
    let rows: Vec<Vec<String>> = plan
        .affected
        .iter()
        .filter(|c| c.rows > 0)
        .map(|c| {
            let action = match c.strategy.as_str() {
                "hard" => "remove (snapshot kept)",
                "archive" => "move to the archive",
                _ => "mark deleted",
            };
            vec![c.entity.clone(), action.to_string(), c.rows.to_string()]
        })
        .collect();
    s.push_str(&table::render(&["ENTITY", "ACTION", "ROWS"], &rows));
    for n in &plan.nullified {
        s.push_str(&format!(
            "set to NULL: {} of {}\n",
            plural(n.rows as usize, "row", "rows"),
            n.entity
        ));
    }
    for b in &plan.blocked_by {
        s.push_str(&format!(
            "BLOCKED by relation {}: {} active row(s) still reference the rows to delete (on_delete = restrict)\n",
            b.relation, b.rows
        ));
    }
    s.push_str("nothing was changed (dry run)\n");
    s
}

/// The lines that explain a refused restore.
pub fn refusal_lines(
    conflicts: &[lethe_store::UniqueConflict],
    parents: &[lethe_store::ParentDeleted],
) -> Vec<String> {
    let mut out = Vec::new();
    for c in conflicts {
        if c.entity.is_empty() {
            out.push(format!("unique conflict: {}", value_text(&c.active)));
        } else {
            out.push(format!(
                "unique conflict: {} {} would hold the same ({}) as active row {}",
                c.entity,
                key_text(&c.restored),
                c.columns,
                key_text(&c.active)
            ));
        }
    }
    for p in parents {
        let (child, parent) = p
            .relation
            .split_once(" -> ")
            .unwrap_or((p.relation.as_str(), ""));
        let child_entity = child.split('.').next().unwrap_or(child);
        out.push(format!(
            "deleted parent: {child_entity} {} references {parent} {}, which is {}",
            key_text(&p.child),
            key_text(&p.parent),
            p.describe()
        ));
    }
    out
}
