//! Outbox records: per deletion, entity and part, the affected keys.
//!
//! Keys are stored compactly — a JSON array of scalars for a one-column key,
//! of arrays for a composite key — with the key's column names beside them,
//! When the entity's sinks need more columns (cache key templates, search
//! fields: [`Entity::captured_columns`]), each row is an array of the key's
//! values followed by those columns' values, named in `columns`,
//! because building one JSON object per row costs more than the marking
//! itself on large cascades. A part holds at most [`PART_SIZE`] keys, so no
//! single value grows with the cascade.

use lethe_core::Entity;

use crate::dialect::{Binder, Dialect};

/// Keys per outbox record.
pub const PART_SIZE: u32 = 10_000;

/// How rows are numbered into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// `row_number()` over any row source.
    Window,
    /// The `lethe_rowid` column of Lethe's own key sets (SQLite's rowid): no
    /// window function, no subquery.
    Rowid,
}

/// `INSERT INTO <outbox> (...)`, to be followed by [`select`]s joined with
/// `UNION ALL`.
pub fn insert_into(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (deletion_id, event, entity, part, keys, row_count, created_at, key_columns, columns)",
        d.own("outbox")
    )
}

/// The columns one outbox row carries per affected row: the key, then the
/// captured columns.
pub fn row_columns(e: &Entity) -> Vec<String> {
    let mut cols = e.key.clone();
    cols.extend(e.captured_columns());
    cols
}

fn json_names(cols: &[String]) -> String {
    format!(
        "[{}]",
        cols.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The values of alias `x` as one JSON value: the column itself, or an array.
fn key_value(d: Dialect, alias: &str, cols: &[String]) -> String {
    if cols.len() == 1 {
        format!("{alias}.{}", d.ident(&cols[0]))
    } else {
        d.json_array(
            &cols
                .iter()
                .map(|c| format!("{alias}.{}", d.ident(c)))
                .collect::<Vec<_>>(),
        )
    }
}

/// Outbox rows for the keys of `e` read from `from` (which must alias the
/// rows `x`) where `where_` holds.
pub fn select(
    d: Dialect,
    b: &mut Binder,
    e: &Entity,
    from: &str,
    where_: &str,
    event: &str,
    numbering: Numbering,
) -> String {
    let id = d.deletion_id(b);
    let now = d.now(b);
    let columns = format!(
        "{}, {}",
        d.lit(&json_names(&e.key)),
        d.lit(&json_names(&e.captured_columns()))
    );
    let values = row_columns(e);
    let composite = values.len() > 1;
    match numbering {
        Numbering::Rowid => {
            let part = format!("(x.lethe_rowid - 1) / {PART_SIZE}");
            format!(
                "SELECT {id}, {}, {}, {part}, {}, count(*), {now}, {columns} FROM {from} WHERE {where_} GROUP BY {part}",
                d.lit(event),
                d.lit(&e.name),
                d.json_agg_values(&key_value(d, "x", &values), false),
            )
        }
        // One array of all the keys, cut into parts: cheaper than numbering
        // every row with a window function and grouping by the number (the
        // JSON is also written without spaces): 4,000 integer keys 1.8
        // against 3.1 ms, a million 0.35 against 0.44 s. Only for one value
        // per row: PostgreSQL finds a slice of an array of values of varying
        // size by walking it from its start, so the parts of JSON rows
        // would cost O(rows²). Text keys are walked too (a million: 0.84
        // against 0.46 s with the window), a price paid only by very large
        // cascades of text-keyed rows.
        Numbering::Window if d == Dialect::Postgres && !composite => {
            let part = format!("a.k[p.part * {PART_SIZE} + 1 : (p.part + 1) * {PART_SIZE}]");
            format!(
                "SELECT {id}, {}, {}, p.part, to_json({part}), least({PART_SIZE}, cardinality(a.k) - p.part * {PART_SIZE}), {now}, {columns} FROM (SELECT array_agg({}) AS k FROM {from} WHERE {where_}) a CROSS JOIN generate_series(0, (cardinality(a.k) - 1) / {PART_SIZE}) AS p(part)",
                d.lit(event),
                d.lit(&e.name),
                key_value(d, "x", &values),
            )
        }
        Numbering::Window => format!(
            "SELECT {id}, {}, {}, y.part, {}, count(*), {now}, {columns} FROM (SELECT {} AS k, (row_number() OVER () - 1) / {PART_SIZE} AS part FROM {from} WHERE {where_}) y GROUP BY y.part",
            d.lit(event),
            d.lit(&e.name),
            d.json_agg_values("y.k", composite),
            key_value(d, "x", &values),
        ),
    }
}

/// A row source (aliased `x`) for [`select`] over stored rows (alias `s` in
/// `from`): each row's key and captured columns read out of its stored JSON,
/// with their JSON types. `rowid` numbers the rows for
/// [`Numbering::Rowid`].
pub fn stored_rows(d: Dialect, e: &Entity, from: &str, rowid: Option<&str>) -> String {
    let mut cols: Vec<String> = rowid
        .map(|r| format!("{r} AS lethe_rowid"))
        .into_iter()
        .collect();
    cols.extend(
        e.key
            .iter()
            .map(|k| format!("{} AS {}", d.json_value("s.key", k), d.ident(k))),
    );
    cols.extend(
        e.captured_columns()
            .iter()
            .map(|c| format!("{} AS {}", d.json_value("s.row", c), d.ident(c))),
    );
    format!("(SELECT {} FROM {from}) x", cols.join(", "))
}
