//! `lethe migrate-strategy ENTITY --to soft`: rows in the archive store
//! (hard snapshots, archived rows) go back into their table, still deleted
//! (marked with their deletion id and time), one batch at a time. The other
//! directions reuse the purge's batches (`purge::marked_batch` with
//! `Take::All`, `purge::stored_batch`).
//!
//! Only rows stored in the table's current shape (their fingerprint, or
//! none from before fingerprints) move: others stay in the store, where
//! `lethe restore` can still fit them to the table. A row whose key is
//! taken in the table stays too.
//!
//! Params: `Key(0)` the last id of the previous batch, `DeletionId` the
//! run's id, `Now`; the batch size is written in (see `purge`).

use lethe_core::{Entity, Fingerprint, Schema};

use crate::dialect::{Binder, Dialect, Param, Stmt};
use crate::outbox;
use crate::restore::current_columns;

/// The stored row `s` fits: same shape as the table now.
fn fits(d: Dialect, fp: &Fingerprint) -> String {
    format!(
        "(s.fingerprint = {} OR s.fingerprint IS NULL)",
        d.lit(&fp.id)
    )
}

/// The table already has a row with the stored row `s`'s key.
fn key_taken(d: Dialect, schema: &Schema, e: &Entity) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {} t WHERE {})",
        d.table(&e.table),
        d.key_matches_json(schema, e, "t", "s.key")
    )
}

fn stored(d: Dialect, e: &Entity) -> String {
    format!(
        "s.entity = {} AND s.kind IN ('snapshot', 'archive')",
        d.lit(&e.name)
    )
}

/// `(fit, older shape, key taken)` counts of `e`'s stored rows.
pub fn unstore_counts(d: Dialect, schema: &Schema, e: &Entity) -> String {
    let fp = Fingerprint::of(&schema.table(&e.table).cloned().unwrap_or_default());
    let (fit, taken) = (fits(d, &fp), key_taken(d, schema, e));
    let sum = |c: &str| {
        d.text(&format!(
            "COALESCE(sum(CASE WHEN {c} THEN 1 ELSE 0 END), 0)"
        ))
    };
    format!(
        "SELECT {}, {}, {} FROM {} s WHERE {}",
        sum(&format!("{fit} AND NOT {taken}")),
        sum(&format!("NOT {fit}")),
        sum(&format!("{fit} AND {taken}")),
        d.own("archive"),
        stored(d, e)
    )
}

/// One batch of `e`'s stored rows back into its table, marked deleted.
pub fn unstore_batch(d: Dialect, schema: &Schema, e: &Entity, after: bool, limit: u32) -> Stmt {
    let mut b = Binder::new(d);
    let fp = Fingerprint::of(&schema.table(&e.table).cloned().unwrap_or_default());
    let store = d.own("archive");
    let table = d.table(&e.table);
    let mut pick = format!(
        "{} AND {} AND NOT {}",
        stored(d, e),
        fits(d, &fp),
        key_taken(d, schema, e)
    );
    if after {
        pick.push_str(&format!(
            " AND s.id > {}",
            d.cast(&b.bind(Param::Key(0)), "bigint")
        ));
    }
    let cols = current_columns(e, schema);
    let mut names: Vec<String> = cols.iter().map(|c| d.ident(c)).collect();
    names.push(d.ident(&e.deleted_at));
    names.push(d.ident(&e.deletion_id));
    let mut values: Vec<String> = cols
        .iter()
        .map(|c| d.snapshot_field("s.row", "r", c))
        .collect();
    values.push(d.cast("s.deleted_at", schema.column_type(&e.table, &e.deleted_at)));
    values.push(d.cast(
        "s.deletion_id",
        schema.column_type(&e.table, &e.deletion_id),
    ));
    let insert = |from: &str| {
        format!(
            "INSERT INTO {table} ({}){} SELECT {} FROM {from}{}",
            names.join(", "),
            d.insert_overriding(),
            values.join(", "),
            d.json_record_join("s.row", &e.table, "r")
        )
    };
    let name = d.lit(&e.name);
    if d.single_statement_delete() {
        let rows = outbox::select(
            d,
            &mut b,
            e,
            &outbox::stored_rows(d, e, "m s", None),
            "TRUE",
            "unarchived",
            outbox::Numbering::Window,
        );
        let ctes = [
            format!("c AS (SELECT s.id FROM {store} s WHERE {pick} ORDER BY s.id LIMIT {limit})"),
            format!("m AS (DELETE FROM {store} s WHERE s.id IN (SELECT id FROM c) RETURNING s.*)"),
            format!("i AS ({} RETURNING 1)", insert("m s")),
            format!("o AS ({} {rows})", outbox::insert_into(d)),
        ];
        return b.finish(format!(
            "WITH {}\nSELECT 'done', {name}, {}\nUNION ALL SELECT 'last', {name}, {} FROM c HAVING count(*) > 0",
            ctes.join(",\n"),
            d.text("(SELECT count(*) FROM i)"),
            d.text("json_build_array(max(c.id))")
        ));
    }
    let tmp = d.temp_keys(&format!("unstore_{}", e.name));
    let in_tmp = format!("s.id IN (SELECT id FROM {tmp})");
    let rows = outbox::select(
        d,
        &mut b,
        e,
        &outbox::stored_rows(
            d,
            e,
            &format!("{tmp} z JOIN {store} s ON s.id = z.id"),
            Some("z.rowid"),
        ),
        "TRUE",
        "unarchived",
        outbox::Numbering::Rowid,
    );
    let out = [
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (id INTEGER)",
            tmp.trim_start_matches("temp.")
        ),
        format!(
            "INSERT INTO {tmp} (id) SELECT s.id FROM {store} s WHERE {pick} ORDER BY s.id LIMIT {limit}"
        ),
        format!(
            "SELECT 'last', {name}, {} FROM {tmp} HAVING count(*) > 0",
            d.text("json_array(max(id))")
        ),
        insert(&format!("{store} s WHERE {in_tmp}")),
        format!("{} {rows}", outbox::insert_into(d)),
        format!("DELETE FROM {store} AS s WHERE {in_tmp}"),
        format!("SELECT 'done', {name}, {} FROM {tmp}", d.text("count(*)")),
        format!("DELETE FROM {tmp}"),
    ];
    b.finish(out.join(";\n"))
}
