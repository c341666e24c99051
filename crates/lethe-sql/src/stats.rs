//! `lethe stats`: how many rows of each entity are active, deleted in their
//! table, or in the archive store, and (PostgreSQL) how much room the
//! deleted rows take in the table and its indexes.

use lethe_core::Entity;

use crate::dialect::Dialect;

/// One row: `(active, deleted, oldest deletion or '')` for `e`'s table.
pub fn table_counts(d: Dialect, e: &Entity) -> String {
    let t = d.table(&e.table);
    if e.has_markers() {
        let m = d.ident(&e.deleted_at);
        format!(
            "SELECT {}, {}, COALESCE({}, '') FROM {t} t",
            d.text(&format!(
                "COALESCE(sum(CASE WHEN t.{m} IS NULL THEN 1 ELSE 0 END), 0)"
            )),
            d.text(&format!(
                "COALESCE(sum(CASE WHEN t.{m} IS NULL THEN 0 ELSE 1 END), 0)"
            )),
            d.timestamp_text(&format!("min(t.{m})"))
        )
    } else {
        format!("SELECT {}, '0', '' FROM {t} t", d.text("count(*)"))
    }
}

/// The archive store per entity and kind: `(entity, kind, rows, oldest
/// deletion, bytes of the stored rows or '')`.
pub fn store_counts(d: Dialect) -> String {
    let bytes = match d {
        Dialect::Postgres => d.text("sum(pg_column_size(s.row) + pg_column_size(s.key))"),
        Dialect::Sqlite => d.text("sum(length(s.row) + length(s.key))"),
    };
    format!(
        "SELECT s.entity, s.kind, {}, {}, {bytes} FROM {} s GROUP BY s.entity, s.kind ORDER BY s.entity, s.kind",
        d.text("count(*)"),
        d.timestamp_text("min(s.deleted_at)"),
        d.own("archive")
    )
}

/// PostgreSQL: the room `e`'s marked rows take: `(bytes of the deleted
/// rows' tuples, table bytes, bytes of indexes that hold deleted rows,
/// bytes of all indexes)`. Partial indexes on active rows only (Lethe's own
/// `WHERE deleted_at IS NULL`) hold none. `None` on SQLite, which cannot
/// tell without a page scan.
pub fn space(d: Dialect, e: &Entity) -> Option<String> {
    if d != Dialect::Postgres || !e.has_markers() {
        return None;
    }
    let reg = format!("to_regclass({})", d.lit(&d.table(&e.table)));
    let m = d.ident(&e.deleted_at);
    Some(format!(
        "SELECT \
           (SELECT COALESCE(sum(pg_column_size(t.*) + 28), 0) FROM {} t WHERE t.{m} IS NOT NULL)::text, \
           pg_table_size({reg})::text, \
           (SELECT COALESCE(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i WHERE i.indrelid = {reg} \
              AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) NOT LIKE {}))::text, \
           pg_indexes_size({reg})::text",
        d.table(&e.table),
        d.lit(&format!("%{} IS NULL%", e.deleted_at))
    ))
}

/// Whether PostgreSQL's `pg_stat_statements` extension is installed in
/// the current database: one row, `'1'` or `'0'`.
pub const PG_STAT_STATEMENTS_INSTALLED: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') THEN '1' ELSE '0' END";

/// The statements PostgreSQL has run in the current database, most called
/// first: `(queryid, calls, query)`. Rows the role may not read show
/// `<insufficient privilege>` and are left out.
pub const PG_STAT_STATEMENTS: &str = "SELECT s.queryid::text, sum(s.calls)::text, s.query \
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
WHERE d.datname = current_database() AND s.queryid IS NOT NULL \
GROUP BY s.queryid, s.query ORDER BY sum(s.calls) DESC, s.queryid";
