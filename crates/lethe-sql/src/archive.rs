//! Statements on Lethe's archive store (rows that left their table: hard
//! snapshots and archived rows), for restore's look at how the table
//! changed since the rows were stored.
//!
//! Params are bound as text: `$1` the deletion id, `$2` the entity, `$3` the
//! fingerprint (empty for rows stored before fingerprints).

use crate::dialect::Dialect;

/// The stored rows of deletion `$1`, grouped: `(entity, fingerprint or '',
/// fingerprint columns JSON or '', rows)`.
pub fn stored_groups(d: Dialect) -> String {
    format!(
        "SELECT s.entity, COALESCE(s.fingerprint, ''), COALESCE(f.columns, ''), {} FROM {} s LEFT JOIN {} f ON f.fingerprint = s.fingerprint \
         WHERE s.deletion_id = {} GROUP BY s.entity, s.fingerprint, f.columns ORDER BY s.entity",
        d.text("count(*)"),
        d.own("archive"),
        d.own("fingerprints"),
        d.cast("$1", d.uuid_type())
    )
}

/// The rows of one group (`$1..$3`) whose `column` holds something `cond`
/// accepts (`v` is the value as text): `(key JSON, value, count of all)`, at
/// most five.
fn values_where(d: Dialect, column: &str, cond: &str) -> String {
    format!(
        "SELECT {}, x.v, {} FROM (SELECT s.key, {} AS v FROM {} s WHERE s.deletion_id = {} AND s.entity = $2 AND COALESCE(s.fingerprint, '') = $3) x \
         WHERE x.v IS NOT NULL AND {cond} ORDER BY x.v LIMIT 5",
        d.text("x.key"),
        d.text("count(*) OVER ()"),
        d.json_text("s.row", column),
        d.own("archive"),
        d.cast("$1", d.uuid_type())
    )
}

/// Non-NULL values of a column the table no longer has: what a restore
/// would lose.
pub fn values_of(d: Dialect, column: &str) -> String {
    values_where(d, column, "TRUE")
}

/// Values of a column that cannot become its current type.
pub fn uncastable_values(d: Dialect, column: &str, sql_type: &str) -> String {
    values_where(d, column, &d.uncastable("x.v", sql_type))
}
