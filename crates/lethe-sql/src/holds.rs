//! Legal holds: rows whose deletion retention must not purge. A hold names
//! a row by entity and key; the key is copied from the row itself (in its
//! table, or in the archive store), so it matches the archive store's keys
//! exactly.

use lethe_core::{Entity, Schema};

use crate::dialect::{Binder, Dialect, Param, Stmt};

const COLUMNS: &str =
    "id, entity, key, reason, actor, created_at, released_at, released_by, release_reason";

fn returning(d: Dialect) -> String {
    COLUMNS
        .split(", ")
        .map(|c| match c {
            "created_at" | "released_at" => d.timestamp_text(c),
            _ => d.text(c),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a hold on `e`'s row with the bound key (`Key(i)`); `Value(0)` the
/// reason, `Value(1)` the actor (empty: none). No row comes back when no such row exists,
/// active, deleted or in the archive store.
pub fn add(d: Dialect, schema: &Schema, e: &Entity) -> Stmt {
    let mut b = Binder::new(d);
    let table_match: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "t.{} = {}",
                d.ident(c),
                d.cast(&b.bind(Param::Key(i)), schema.column_type(&e.table, c))
            )
        })
        .collect();
    let stored_key = d.json_object(
        &e.key
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.clone(),
                    d.cast_value(&b.bind(Param::Key(i)), schema.column_type(&e.table, c)),
                )
            })
            .collect::<Vec<_>>(),
    );
    let (reason, actor, now) = (
        b.bind(Param::Value(0)),
        b.bind(Param::Value(1)),
        d.now(&mut b),
    );
    b.finish(format!(
        "INSERT INTO {} (entity, key, reason, actor, created_at) SELECT {}, x.k, {reason}, NULLIF({actor}, ''), {now} FROM \
         (SELECT {} AS k FROM {} t WHERE {} UNION ALL SELECT a.key FROM {} a WHERE a.entity = {} AND a.key = {stored_key}) x LIMIT 1 RETURNING {}",
        d.own("holds"),
        d.lit(&e.name),
        d.json_of_columns("t", &e.key),
        d.table(&e.table),
        table_match.join(" AND "),
        d.own("archive"),
        d.lit(&e.name),
        returning(d)
    ))
}

/// Holds, oldest first; `$1` = `'1'` for released ones too.
pub fn list(d: Dialect) -> String {
    format!(
        "SELECT {} FROM {} WHERE released_at IS NULL OR $1 = '1' ORDER BY id",
        returning(d),
        d.own("holds")
    )
}

/// Releases hold `$1`: `$2` the time, `$3` who, `$4` why.
pub fn release(d: Dialect) -> String {
    format!(
        "UPDATE {} SET released_at = {}, released_by = $3, release_reason = $4 WHERE id = {} AND released_at IS NULL RETURNING {}",
        d.own("holds"),
        d.cast("$2", d.timestamp_type()),
        d.cast("$1", "bigint"),
        returning(d)
    )
}

/// The active holds on `e`'s row with the bound key: `(id)`.
pub fn find(d: Dialect, schema: &Schema, e: &Entity) -> Stmt {
    let mut b = Binder::new(d);
    let conds: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{} = {}",
                d.cast_value(&d.json_text("h.key", c), schema.column_type(&e.table, c)),
                d.cast_value(&b.bind(Param::Key(i)), schema.column_type(&e.table, c))
            )
        })
        .collect();
    b.finish(format!(
        "SELECT {} FROM {} h WHERE h.entity = {} AND h.released_at IS NULL AND {} ORDER BY h.id",
        d.text("h.id"),
        d.own("holds"),
        d.lit(&e.name),
        conds.join(" AND ")
    ))
}
