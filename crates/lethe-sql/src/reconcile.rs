//! Pages of rows for `lethe reconcile`: the key and the columns sinks need,
//! read in key order with keyset pagination (`(key) > (last key)`), so memory
//! stays flat and every page is an index range scan whatever the table size.

use lethe_core::{Entity, Schema};

use crate::dialect::Dialect;
use crate::outbox::row_columns;

/// Rows per page.
pub const PAGE: u32 = 1000;

/// Which rows of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Active rows (every row of a hard entity).
    Active,
    /// Soft-deleted rows (marker set).
    SoftDeleted,
}

/// One page of `rows` of `e`: one column, a JSON array of the key's values
/// then the captured columns' (as in the outbox). With `after`, params `$1..$k`
/// are the previous page's last key (as text).
pub fn page(d: Dialect, schema: &Schema, e: &Entity, rows: Rows, after: bool) -> String {
    let cols = row_columns(e);
    let values: Vec<String> = cols.iter().map(|c| format!("t.{}", d.ident(c))).collect();
    let mut cond = vec![match rows {
        Rows::Active => d.active(e, "t"),
        Rows::SoftDeleted => format!("t.{} IS NOT NULL", d.ident(&e.deleted_at)),
    }];
    if after {
        let params: Vec<String> = e
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| d.cast(&format!("${}", i + 1), schema.column_type(&e.table, c)))
            .collect();
        cond.push(format!(
            "{} > ({})",
            d.tuple("t", &e.key),
            params.join(", ")
        ));
    }
    format!(
        "SELECT {} FROM {} t WHERE {} ORDER BY {} LIMIT {PAGE}",
        d.text(&d.json_array(&values)),
        d.table(&e.table),
        cond.join(" AND "),
        d.list("t", &e.key)
    )
}

/// One page of the rows of entity `$1` in the archive store (hard
/// snapshots, archived rows) of deletions that were not restored: `(id, row
/// JSON)`. With `after`, `$2` is the last page's id.
pub fn stored_page(d: Dialect, after: bool) -> String {
    let after = if after {
        format!(" AND s.id > {}", d.cast("$2", "bigint"))
    } else {
        String::new()
    };
    format!(
        "SELECT {}, {} FROM {} s JOIN {} x ON x.id = s.deletion_id WHERE s.entity = $1 AND x.restored_at IS NULL{after} ORDER BY s.id LIMIT {PAGE}",
        d.text("s.id"),
        d.text("s.row"),
        d.own("archive"),
        d.own("deletions"),
    )
}
