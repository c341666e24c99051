//! Statements for cold storage (`lethe archive export | import`): deleted
//! rows read a day and a page at a time, rows put back into the archive
//! store from files, the record of exports, and the per-subject data keys
//! (stored wrapped).
//!
//! A day is a UTC date; `Value(0)` and `Value(1)` bind its start and the
//! next day's start, `Value(2)` the page size, `Key(i)` the previous page's
//! last key (or id).

use lethe_core::{Entity, Schema};

use crate::dialect::{Binder, Dialect, Param, Stmt};

/// The days (`YYYY-MM-DD`, UTC) before `$1` on which rows of `e` now
/// marked deleted in its table were deleted.
pub fn marked_days(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let m = format!("t.{}", d.ident(&e.deleted_at));
    format!(
        "SELECT DISTINCT {} FROM {} t WHERE {m} IS NOT NULL AND {m} < {} ORDER BY 1",
        d.day_of(&m),
        d.table(&e.table),
        d.cast("$1", schema.column_type(&e.table, &e.deleted_at))
    )
}

/// The days before `$2` on which rows of entity `$1` now in the archive
/// store were deleted.
pub fn stored_days(d: Dialect) -> String {
    format!(
        "SELECT DISTINCT {} FROM {} s WHERE s.entity = $1 AND s.deleted_at < {} ORDER BY 1",
        d.day_of("s.deleted_at"),
        d.own("archive"),
        d.cast("$2", d.timestamp_type())
    )
}

/// A page of `e`'s rows marked deleted on one day: `(key values JSON
/// array, key JSON, deletion id, deleted at, row JSON)`.
pub fn marked_page(d: Dialect, schema: &Schema, e: &Entity, after: bool) -> Stmt {
    let mut b = Binder::new(d);
    let ty = schema.column_type(&e.table, &e.deleted_at);
    let m = format!("t.{}", d.ident(&e.deleted_at));
    let (from, to) = (
        d.cast(&b.bind(Param::Value(0)), ty),
        d.cast(&b.bind(Param::Value(1)), ty),
    );
    let mut cond = format!("{m} >= {from} AND {m} < {to}");
    if after {
        let params: Vec<String> = e
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| d.cast(&b.bind(Param::Key(i)), schema.column_type(&e.table, c)))
            .collect();
        cond.push_str(&format!(
            " AND {} > ({})",
            d.tuple("t", &e.key),
            params.join(", ")
        ));
    }
    let limit = d.cast(&b.bind(Param::Value(2)), "bigint");
    let cols: Vec<String> = schema
        .table(&e.table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let row = d.row_json("t", &cols);
    let keys: Vec<String> = e.key.iter().map(|k| format!("t.{}", d.ident(k))).collect();
    b.finish(format!(
        "SELECT {}, {}, {}, {}, {} FROM {} t WHERE {cond} ORDER BY {} LIMIT {limit}",
        d.text(&d.json_array(&keys)),
        d.text(&d.json_of_columns("t", &e.key)),
        d.text(&format!("t.{}", d.ident(&e.deletion_id))),
        d.timestamp_text(&m),
        d.text(&row),
        d.table(&e.table),
        d.list("t", &e.key)
    ))
}

/// A page of entity `$1`'s rows in the archive store deleted on one day
/// (`$2`, `$3`), after id `$4`, at most `$5`: `(id, key JSON, deletion id,
/// deleted at, row JSON, fingerprint or '', kind)`.
pub fn stored_page(d: Dialect) -> String {
    format!(
        "SELECT {}, {}, {}, {}, {}, COALESCE(s.fingerprint, ''), s.kind FROM {} s \
         WHERE s.entity = $1 AND s.deleted_at >= {} AND s.deleted_at < {} AND s.id > {} ORDER BY s.id LIMIT {}",
        d.text("s.id"),
        d.text("s.key"),
        d.text("s.deletion_id"),
        d.timestamp_text("s.deleted_at"),
        d.text("s.row"),
        d.own("archive"),
        d.cast("$2", d.timestamp_type()),
        d.cast("$3", d.timestamp_type()),
        d.cast("$4", "bigint"),
        d.cast("$5", "bigint")
    )
}

/// The columns of fingerprints `$1` (a JSON array of ids): `(fingerprint,
/// columns, entity, table)`.
pub fn fingerprints(d: Dialect) -> String {
    format!(
        "SELECT f.fingerprint, f.columns, f.entity, f.table_name FROM {} f WHERE f.fingerprint IN ({})",
        d.own("fingerprints"),
        d.json_text_elements("$1")
    )
}

/// Registers a fingerprint from a manifest: `$1` id, `$2` entity, `$3`
/// table, `$4` columns, `$5` time.
pub fn register_fingerprint(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (fingerprint, entity, table_name, columns, created_at) VALUES ($1, $2, $3, $4, {}) ON CONFLICT (fingerprint) DO NOTHING",
        d.own("fingerprints"),
        d.cast("$5", d.timestamp_type())
    )
}

/// Records an exported file: `$1` location, `$2` entity, `$3` day, `$4`
/// path, `$5` rows, `$6` bytes, `$7` sha256, `$8` manifest, `$9` time.
pub fn record_export(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (location, entity, day, path, row_count, bytes, sha256, manifest, exported_at) \
         VALUES ($1, $2, $3, $4, {}, {}, $7, $8, {}) \
         ON CONFLICT (location, entity, day) DO UPDATE SET path = excluded.path, row_count = excluded.row_count, \
         bytes = excluded.bytes, sha256 = excluded.sha256, manifest = excluded.manifest, exported_at = excluded.exported_at",
        d.own("exports"),
        d.cast("$5", "bigint"),
        d.cast("$6", "bigint"),
        d.cast("$9", d.timestamp_type())
    )
}

/// Days already exported to location `$1`: `(entity, day)`.
pub fn exported_days(d: Dialect) -> String {
    format!(
        "SELECT entity, day FROM {} WHERE location = $1",
        d.own("exports")
    )
}

/// Every export recorded: `(location, entity, day, path, rows, bytes,
/// sha256, manifest, exported at)`, newest first.
pub fn exports(d: Dialect) -> String {
    format!(
        "SELECT location, entity, day, path, {}, {}, sha256, manifest, {} FROM {} ORDER BY exported_at DESC, entity, day",
        d.text("row_count"),
        d.text("bytes"),
        d.timestamp_text("exported_at"),
        d.own("exports")
    )
}

/// Puts rows read back from files into the archive store as archived rows
/// of `e`: `$1` a JSON array of `{deletion_id, key, row, fingerprint,
/// deleted_at}`, `$2` the time. A row already in the store (same deletion
/// and key), or still marked in the table by the same deletion, is
/// skipped. Returns the rows put back: `(deletion id)`.
pub fn import_rows(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let store = d.own("archive");
    let (elements, j) = match d {
        Dialect::Postgres => ("jsonb_array_elements(CAST($1 AS jsonb)) j".to_string(), "j"),
        Dialect::Sqlite => ("json_each($1) j".to_string(), "j.value"),
    };
    // The key rebuilt in the entity's column order: SQLite compares stored
    // keys as text.
    let key = d.json_object(
        &e.key
            .iter()
            .map(|k| (k.clone(), d.json_value(&d.json_value(j, "key"), k)))
            .collect::<Vec<_>>(),
    );
    let row = match d {
        Dialect::Postgres => format!("({j} -> 'row')"),
        Dialect::Sqlite => format!("json_extract({j}, '$.row')"),
    };
    let deletion = d.cast(&d.json_text(j, "deletion_id"), d.uuid_type());
    let in_table = if e.has_markers() {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM {} t WHERE {} AND {} = {})",
            d.table(&e.table),
            d.key_matches_json(schema, e, "t", &d.json_value(j, "key")),
            d.text(&format!("t.{}", d.ident(&e.deletion_id))),
            d.json_text(j, "deletion_id")
        )
    } else {
        String::new()
    };
    format!(
        "INSERT INTO {store} (kind, deletion_id, entity, key, row, fingerprint, deleted_at, archived_at) \
         SELECT 'archive', {deletion}, {name}, {key}, {row}, NULLIF({}, ''), {}, {} FROM {elements} \
         WHERE NOT EXISTS (SELECT 1 FROM {store} a WHERE a.deletion_id = {deletion} AND a.entity = {name} AND a.key = {key}){in_table} \
         RETURNING {}",
        d.json_text(j, "fingerprint"),
        d.cast(&d.json_text(j, "deleted_at"), d.timestamp_type()),
        d.cast("$2", d.timestamp_type()),
        d.text("deletion_id"),
        name = d.lit(&e.name),
    )
}

/// Deletions `$1` (JSON array) can be restored again: their purged rows are
/// back in the archive store. Returns the ids reopened.
pub fn reopen_deletions(d: Dialect) -> String {
    format!(
        "UPDATE {} SET purged_at = NULL WHERE {} IN ({}) AND purged_at IS NOT NULL RETURNING {}",
        d.own("deletions"),
        d.text("id"),
        d.json_text_elements("$1"),
        d.text("id")
    )
}

/// Rows of `e` whose key (`$1`: a JSON array of key value arrays) is in the
/// table, any state: `(key values JSON array, row JSON)`.
pub fn rows_by_key(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let elems: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| match d {
            Dialect::Postgres => d.cast(&format!("(x ->> {i})"), schema.column_type(&e.table, k)),
            Dialect::Sqlite => format!("json_extract(x.value, '$[{i}]')"),
        })
        .collect();
    let from = match d {
        Dialect::Postgres => "jsonb_array_elements(CAST($1 AS jsonb)) x",
        Dialect::Sqlite => "json_each($1) x",
    };
    let cols: Vec<String> = schema
        .table(&e.table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let row = d.row_json("t", &cols);
    let keys: Vec<String> = e.key.iter().map(|k| format!("t.{}", d.ident(k))).collect();
    format!(
        "SELECT {}, {} FROM {} t WHERE {} IN (SELECT {} FROM {from})",
        d.text(&d.json_array(&keys)),
        d.text(&row),
        d.table(&e.table),
        d.tuple("t", &e.key),
        elems.join(", ")
    )
}

/// Rows of `e` in the archive store whose key (`$1`, as [`rows_by_key`]) is
/// given: `(key JSON, row JSON)`.
pub fn stored_by_key(d: Dialect, e: &Entity) -> String {
    let (from, elem) = match d {
        Dialect::Postgres => ("jsonb_array_elements(CAST($1 AS jsonb)) x", "x"),
        Dialect::Sqlite => ("json_each($1) x", "x.value"),
    };
    let key = d.json_object(
        &e.key
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k.clone(),
                    match d {
                        Dialect::Postgres => format!("({elem} -> {i})"),
                        Dialect::Sqlite => format!("json_extract({elem}, '$[{i}]')"),
                    },
                )
            })
            .collect::<Vec<_>>(),
    );
    format!(
        "SELECT {}, {} FROM {} s WHERE s.entity = {} AND s.key IN (SELECT {key} FROM {from})",
        d.text("s.key"),
        d.text("s.row"),
        d.own("archive"),
        d.lit(&e.name)
    )
}

/// The wrapped data keys of subjects `$1` (a JSON array of subject ids):
/// `(subject, wrapped key or '' when shredded)`.
pub fn subject_keys(d: Dialect) -> String {
    format!(
        "SELECT subject, wrapped_key FROM {} WHERE subject IN ({})",
        d.own("subject_keys"),
        d.json_text_elements("$1")
    )
}

/// Stores a new wrapped data key (`$1` subject, `$2` wrapped, `$3` time),
/// unless another process stored one first.
pub fn insert_subject_key(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (subject, wrapped_key, created_at) VALUES ($1, $2, {}) ON CONFLICT (subject) DO NOTHING",
        d.own("subject_keys"),
        d.cast("$3", d.timestamp_type())
    )
}

/// Destroys subject `$1`'s data key (`$2` time): every copy encrypted with
/// it can no longer be read. A tombstone row stays, so no new key is made
/// for the subject by mistake.
pub fn shred_subject_key(d: Dialect) -> String {
    format!(
        "INSERT INTO {t} (subject, wrapped_key, created_at, shredded_at) VALUES ($1, '', {now}, {now}) \
         ON CONFLICT (subject) DO UPDATE SET wrapped_key = '', shredded_at = excluded.shredded_at",
        t = d.own("subject_keys"),
        now = d.cast("$2", d.timestamp_type())
    )
}

/// A named secret from Lethe's settings, created with 256 random bits when
/// missing (`$1` the name): `(value)`.
pub fn ensure_setting(d: Dialect) -> [String; 2] {
    [
        format!(
            "INSERT INTO {} (name, value) VALUES ($1, {}) ON CONFLICT (name) DO NOTHING",
            d.own("settings"),
            d.random_hex_256()
        ),
        format!("SELECT value FROM {} WHERE name = $1", d.own("settings")),
    ]
}
