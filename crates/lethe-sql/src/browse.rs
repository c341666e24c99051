//! Read-only views for callers and operators: the trash of one entity a page
//! at a time, where one row is now (its tombstone), and the audit log newest
//! first. Every value a caller gives is a bound parameter; pages are keyset
//! pages, so a page costs the same however deep the caller has paged.

use lethe_core::{Entity, Schema};

use crate::dialect::Dialect;

fn p(n: usize) -> String {
    format!("${n}")
}

/// A bound text parameter that may be NULL, typed so PostgreSQL can tell
/// its type in `IS NULL`.
fn opt(d: Dialect, n: usize) -> String {
    d.cast(&p(n), "text")
}

/// One page of the trash of entity `e`: its marked rows in the table (where
/// the table has Lethe's markers) and its rows in the archive store (hard
/// snapshots, archived rows) of deletions not restored, newest deletion
/// first. Columns: `(key JSON, deletion id or '', deleted at, place
/// ('table' or 'archive'), tie, row JSON)`; `(deleted at, place, tie)` is
/// the page cursor.
///
/// Params: `$1` entity name, `$2` deletion id or NULL, `$3` lower-case
/// `LIKE` pattern on the row's JSON (`\` escapes) or NULL, `$4..$6` the
/// previous page's last `(deleted at, place, tie)` or NULLs, `$7` page size.
pub fn trash_page(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let at_type = d.timestamp_type();
    let mut parts = Vec::new();
    if e.has_markers() {
        let cols: Vec<String> = schema
            .table(&e.table)
            .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let key = d.text(&d.json_of_columns("t", &e.key));
        let marker = format!("t.{}", d.ident(&e.deletion_id));
        let id_type = schema.column_type(&e.table, &e.deletion_id);
        parts.push(format!(
            "SELECT {key} AS key, COALESCE({}, '') AS deletion_id, {} AS at, 'table' AS place, {key} AS tie, {} AS row \
             FROM {} t WHERE t.{} IS NOT NULL",
            d.text(&d.as_deletion_id(&marker, id_type)),
            d.cast(&format!("t.{}", d.ident(&e.deleted_at)), at_type),
            d.text(&d.row_json("t", &cols)),
            d.table(&e.table),
            d.ident(&e.deleted_at),
        ));
    }
    let pad = match d {
        Dialect::Postgres => "lpad(s.id::text, 20, '0')",
        Dialect::Sqlite => "substr('00000000000000000000' || s.id, -20, 20)",
    };
    parts.push(format!(
        "SELECT {} AS key, {} AS deletion_id, s.deleted_at AS at, 'archive' AS place, {pad} AS tie, {} AS row \
         FROM {} s JOIN {} x ON x.id = s.deletion_id WHERE s.entity = $1 AND x.restored_at IS NULL",
        d.text("s.key"),
        d.text("s.deletion_id"),
        d.text("s.row"),
        d.own("archive"),
        d.own("deletions"),
    ));
    format!(
        "SELECT z.key, z.deletion_id, {}, z.place, z.tie, z.row FROM ({}) z \
         WHERE ({} IS NULL OR z.deletion_id = {}) \
         AND ({} IS NULL OR lower(z.row) LIKE {} ESCAPE '\\') \
         AND ({} IS NULL OR (z.at, z.place, z.tie) < ({}, {}, {})) \
         ORDER BY z.at DESC, z.place DESC, z.tie DESC LIMIT {}",
        d.timestamp_text("z.at"),
        parts.join(" UNION ALL "),
        opt(d, 2),
        p(2),
        opt(d, 3),
        p(3),
        opt(d, 4),
        d.cast(&p(4), at_type),
        p(5),
        p(6),
        d.cast(&p(7), "bigint"),
    )
}

/// The key `$2..` (in `e.key` order) as the JSON object the archive store
/// keeps, each value typed as its column, so it compares equal to the stored
/// key (and PostgreSQL can use the `(entity, key)` index).
fn stored_key(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let pairs: Vec<(String, String)> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.clone(),
                d.cast_value(&p(i + 2), schema.column_type(&e.table, k)),
            )
        })
        .collect();
    d.json_object(&pairs)
}

/// The row of `e` with key `$1..$k` in its table: `(deleted at or '',
/// deletion id or '')`; no row when the table has none. Rows of a table
/// without markers are active.
pub fn tombstone_in_table(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let cond: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            format!(
                "t.{} = {}",
                d.ident(k),
                d.cast_value(&p(i + 1), schema.column_type(&e.table, k))
            )
        })
        .collect();
    let (at, id) = if e.has_markers() {
        let marker = format!("t.{}", d.ident(&e.deletion_id));
        (
            format!(
                "COALESCE({}, '')",
                d.timestamp_text(
                    &d.cast(&format!("t.{}", d.ident(&e.deleted_at)), d.timestamp_type())
                )
            ),
            format!(
                "COALESCE({}, '')",
                d.text(&d.as_deletion_id(&marker, schema.column_type(&e.table, &e.deletion_id)))
            ),
        )
    } else {
        ("''".to_string(), "''".to_string())
    };
    format!(
        "SELECT {at}, {id} FROM {} t WHERE {} LIMIT 1",
        d.table(&e.table),
        cond.join(" AND ")
    )
}

/// The newest row of entity `$1` with key `$2..` in the archive store, of a
/// deletion not restored: `(deletion id, deleted at, kind)`.
pub fn tombstone_in_store(d: Dialect, schema: &Schema, e: &Entity) -> String {
    format!(
        "SELECT {}, {}, s.kind FROM {} s JOIN {} x ON x.id = s.deletion_id \
         WHERE s.entity = $1 AND s.key = {} AND x.restored_at IS NULL ORDER BY s.id DESC LIMIT 1",
        d.text("s.deletion_id"),
        d.timestamp_text("s.deleted_at"),
        d.own("archive"),
        d.own("deletions"),
        stored_key(d, schema, e),
    )
}

/// The newest delete whose root is entity `$1` with key `$2`: the root key
/// JSON exactly as the deletion recorded it (PII key values as keyed
/// hashes): `(id, at, purged at or '')`.
pub fn tombstone_root(d: Dialect) -> String {
    format!(
        "SELECT {}, {}, COALESCE({}, '') FROM {} x WHERE x.root_entity = $1 AND x.kind = 'delete' AND x.root_key = {} ORDER BY x.at DESC LIMIT 1",
        d.text("x.id"),
        d.timestamp_text("x.at"),
        d.timestamp_text("x.purged_at"),
        d.own("deletions"),
        d.cast("$2", d.json_type()),
    )
}

/// The newest `purged` or `erased` outbox record of entity `$1` that lists
/// the key `$2..`: `(deletion id, event, created at)`. The outbox holds one
/// element per row: the key's value alone (one key column, nothing
/// captured), or an array that starts with the key's values.
pub fn tombstone_gone(d: Dialect, e: &Entity) -> String {
    let one = e.key.len() == 1 && e.captured_columns().is_empty();
    let (source, elem): (String, Box<dyn Fn(usize) -> String>) = match d {
        Dialect::Postgres => (
            "json_array_elements(o.keys) AS k(v)".into(),
            Box::new(move |i| {
                if one {
                    "(k.v #>> '{}')".to_string()
                } else {
                    format!("(k.v ->> {i})")
                }
            }),
        ),
        Dialect::Sqlite => (
            "json_each(o.keys) AS k".into(),
            Box::new(move |i| {
                if one {
                    "CAST(k.value AS TEXT)".to_string()
                } else {
                    format!("CAST(json_extract(k.value, '$[{i}]') AS TEXT)")
                }
            }),
        ),
    };
    let cond: Vec<String> = (0..e.key.len())
        .map(|i| format!("{} = {}", elem(i), p(i + 2)))
        .collect();
    format!(
        "SELECT {}, o.event, {} FROM {} o WHERE o.entity = $1 AND o.event IN ('purged', 'erased') \
         AND EXISTS (SELECT 1 FROM {source} WHERE {}) ORDER BY o.id DESC LIMIT 1",
        d.text("o.deletion_id"),
        d.timestamp_text("o.created_at"),
        d.own("outbox"),
        cond.join(" AND "),
    )
}

/// The audit log newest first: `(seq, at, action, deletion id or '', entry,
/// hash)`. `$1`: only entries before this seq (or NULL), `$2`: only this
/// action (or NULL), `$3`: page size.
pub fn audit_page(d: Dialect) -> String {
    format!(
        "SELECT {}, {}, a.action, COALESCE({}, ''), a.entry, a.hash FROM {} a \
         WHERE ({} IS NULL OR a.seq < {}) AND ({} IS NULL OR a.action = {}) \
         ORDER BY a.seq DESC LIMIT {}",
        d.text("a.seq"),
        d.timestamp_text("a.at"),
        d.text("a.deletion_id"),
        d.own("audit"),
        opt(d, 1),
        d.cast(&p(1), "bigint"),
        opt(d, 2),
        p(2),
        d.cast(&p(3), "bigint"),
    )
}
