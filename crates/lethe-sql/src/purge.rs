//! Retention: the statements `lethe purge` runs, one bounded batch at a time.
//!
//! Two sources of expired rows per entity:
//! - rows still in the table, marked deleted before the cutoff: removed for
//!   good (`then = "purge"`) or moved to the archive store (`"archive"`);
//! - rows in the archive store (hard snapshots, archived rows) deleted before
//!   the cutoff: removed, or snapshots turned into archived rows.
//!
//! A batch takes the next `limit` expired rows after the last key of the
//! previous batch (keyset pagination, so a batch is an index range whatever
//! the table size), skipping rows of held deletions and, in tables, rows
//! another row still references (they would break a foreign key or lose a
//! child's parent; they go once their children have). Every condition is
//! checked again by the statement that removes the row, so a row restored
//! meanwhile stays.
//!
//! The batch size is written into the statement (an integer Lethe
//! controls): the planner then knows how few rows a batch takes, whatever
//! plan it caches. Params: `Value(0)` the cutoff time, `DeletionId` the
//! purge run's id (its outbox records and audit entries), `Now`, and
//! `Key(i)` the last key of the previous batch. Report rows are
//! `(kind, entity, n)`: `done` (rows removed or moved), `last` (the last
//! key taken, as a JSON array; absent when the batch was empty), `stale`.

use lethe_core::{AfterRetention, Entity, Fingerprint, Policy, Schema};

use crate::delete::{register_fingerprint, stale_check};
use crate::dialect::{Binder, Dialect, Param, Stmt};
use crate::outbox;

/// Which rows of an entity a batch works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Rows in the table, marked deleted.
    Marked,
    /// Rows in the archive store of this kind (`snapshot` or `archive`).
    Stored(&'static str),
}

/// A table and columns that reference `e`'s rows, and the columns of `e`
/// they reference.
struct Referrer {
    table: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
}

/// Everything that references `e`: the policy's relations (any `on_delete`),
/// and foreign keys the database enforces that the policy does not declare.
fn referrers(policy: &Policy, schema: &Schema, e: &Entity) -> Vec<Referrer> {
    let mut out: Vec<Referrer> = policy
        .children_of(&e.name)
        .map(|r| Referrer {
            table: policy.entities[&r.child].table.clone(),
            columns: r.columns.clone(),
            parent_columns: e.key.clone(),
        })
        .collect();
    let Some(parent) = schema.table(&e.table) else {
        return out;
    };
    for t in schema.tables.values() {
        for fk in &t.foreign_keys {
            if schema.table(&fk.ref_table).map(|p| p.name.as_str()) != Some(parent.name.as_str()) {
                continue;
            }
            let same = out.iter().any(|r| {
                schema.table(&r.table).map(|x| x.name.as_str()) == Some(t.name.as_str())
                    && r.columns.len() == fk.columns.len()
                    && r.columns.iter().all(|c| fk.columns.contains(c))
            });
            if !same {
                out.push(Referrer {
                    table: t.name.clone(),
                    columns: fk.columns.clone(),
                    parent_columns: fk.ref_columns.clone(),
                });
            }
        }
    }
    out
}

/// `t`'s row is referenced by some row.
fn referenced(d: Dialect, policy: &Policy, schema: &Schema, e: &Entity) -> String {
    let parts: Vec<String> = referrers(policy, schema, e)
        .iter()
        .map(|r| {
            format!(
                "EXISTS (SELECT 1 FROM {} c WHERE {} = {})",
                d.table(&r.table),
                d.tuple("c", &r.columns),
                d.tuple("t", &r.parent_columns)
            )
        })
        .collect();
    if parts.is_empty() {
        "FALSE".into()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// The deletion ids (as text) that legal holds keep: the deletions of the
/// held rows, found in the archive store and in every marked table.
pub fn held_deletions(d: Dialect, policy: &Policy, schema: &Schema) -> String {
    let holds = d.own("holds");
    let mut parts = vec![format!(
        "SELECT {} FROM {holds} h JOIN {} a ON a.entity = h.entity AND a.key = h.key WHERE h.released_at IS NULL",
        d.text("a.deletion_id"),
        d.own("archive")
    )];
    for e in policy.entities.values().filter(|e| e.has_markers()) {
        parts.push(format!(
            "SELECT {} FROM {holds} h JOIN {} t ON h.entity = {} AND {} WHERE h.released_at IS NULL AND t.{} IS NOT NULL",
            d.text(&format!("t.{}", d.ident(&e.deletion_id))),
            d.table(&e.table),
            d.lit(&e.name),
            d.key_matches_json(schema, e, "t", "h.key"),
            d.ident(&e.deletion_id)
        ));
    }
    parts.join(" UNION ")
}

/// The row (alias `t`) belongs to a held deletion. `marked`: a row of this
/// entity in its table, which a hold on its own key keeps too (a row marked
/// outside Lethe has no deletion to be held through).
fn held(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    id_expr: &str,
    marked: Option<&Entity>,
) -> String {
    // Evaluated once per statement: with no hold active (the common
    // case) the rest, which costs a purge batch more than anything else it
    // adds to the delete, is skipped for every row.
    let any = format!(
        "EXISTS (SELECT 1 FROM {} WHERE released_at IS NULL)",
        d.own("holds")
    );
    let by_deletion = format!(
        "COALESCE({}, '') IN ({})",
        d.text(id_expr),
        held_deletions(d, policy, schema)
    );
    let Some(e) = marked else {
        return format!("({any} AND {by_deletion})");
    };
    format!(
        "({any} AND ({by_deletion} OR EXISTS (SELECT 1 FROM {} h WHERE h.entity = {} AND h.released_at IS NULL AND {})))",
        d.own("holds"),
        d.lit(&e.name),
        d.key_matches_json(schema, e, "t", "h.key")
    )
}

/// The cutoff (`Value(0)`) as the type `ty`, converted once per statement:
/// PostgreSQL converts text to a time type per row otherwise (the
/// conversion depends on the session's time zone, so it is not folded into
/// a constant), which costs more than the rest of the row's filter.
fn cutoff(d: Dialect, b: &mut Binder, ty: &str) -> String {
    let v = d.cast(&b.bind(Param::Value(0)), ty);
    match d {
        Dialect::Postgres => format!("(SELECT {v})"),
        Dialect::Sqlite => v,
    }
}

/// Expired marked rows of `e` (alias `t`).
fn marked_expired(d: Dialect, b: &mut Binder, schema: &Schema, e: &Entity) -> String {
    format!(
        "t.{m} IS NOT NULL AND t.{m} < {}",
        cutoff(d, b, schema.column_type(&e.table, &e.deleted_at)),
        m = d.ident(&e.deleted_at)
    )
}

fn stored_expired(d: Dialect, b: &mut Binder, e: &Entity, kind: &str) -> String {
    format!(
        "t.entity = {} AND t.kind = {} AND t.deleted_at < {}",
        d.lit(&e.name),
        d.lit(kind),
        cutoff(d, b, d.timestamp_type())
    )
}

/// Counts of `e`'s rows in `source` (`take`) by whether a hold keeps them
/// and whether other rows still reference them (stored rows never are):
/// rows `(held, referenced, n)`, `'1'`/`'0'` for the flags, each flag
/// computed once per row. Unheld, unreferenced rows are what a purge would
/// remove now.
pub fn counts(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    e: &Entity,
    source: Source,
    take: Take,
) -> Stmt {
    let mut b = Binder::new(d);
    let (from, expired, id, refd) = match source {
        Source::Marked => (
            d.table(&e.table),
            match take {
                Take::Expired => marked_expired(d, &mut b, schema, e),
                Take::All => format!("t.{} IS NOT NULL", d.ident(&e.deleted_at)),
            },
            format!("t.{}", d.ident(&e.deletion_id)),
            referenced(d, policy, schema, e),
        ),
        Source::Stored(kind) => (
            d.own("archive"),
            match take {
                Take::Expired => stored_expired(d, &mut b, e, kind),
                Take::All => format!("t.entity = {} AND t.kind = {}", d.lit(&e.name), d.lit(kind)),
            },
            "t.deletion_id".to_string(),
            "FALSE".to_string(),
        ),
    };
    // Holds only keep rows from being purged; moving them is fine.
    let h = match take {
        Take::Expired => held(
            d,
            policy,
            schema,
            &id,
            (source == Source::Marked).then_some(e),
        ),
        Take::All => "FALSE".to_string(),
    };
    b.finish(format!(
        "SELECT q.h, q.r, {} FROM (SELECT CASE WHEN {h} THEN '1' ELSE '0' END AS h, CASE WHEN {refd} THEN '1' ELSE '0' END AS r FROM {from} t WHERE {expired}) q GROUP BY q.h, q.r",
        d.text("count(*)")
    ))
}

/// `(t.k1, t.k2) > ($k1, $k2)` for the last key of the previous batch.
fn after_key(d: Dialect, b: &mut Binder, schema: &Schema, e: &Entity) -> String {
    let params: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| d.cast(&b.bind(Param::Key(i)), schema.column_type(&e.table, c)))
        .collect();
    format!("{} > ({})", d.tuple("t", &e.key), params.join(", "))
}

/// Which rows a batch takes, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub take: Take,
    /// Continue after the previous batch's last key (`Key(i)`).
    pub after: bool,
    /// At most this many rows.
    pub limit: u32,
}

/// Which rows a batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Rows deleted before the cutoff (`Value(0)`), not held: retention.
    Expired,
    /// Every deleted row: `lethe migrate-strategy`.
    All,
}

/// Where marked rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedTo {
    /// Removed for good (`purged` events, their deletions marked purged).
    Purge,
    /// Into the archive store as rows of this kind (`archived` events).
    Store(&'static str),
}

impl From<AfterRetention> for MarkedTo {
    fn from(a: AfterRetention) -> Self {
        match a {
            AfterRetention::Purge => MarkedTo::Purge,
            AfterRetention::Archive => MarkedTo::Store("archive"),
        }
    }
}

/// One batch over `e`'s marked rows (`pick`), sent `to` their next place.
pub fn marked_batch(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    e: &Entity,
    pick: Pick,
    to: MarkedTo,
) -> Stmt {
    let Pick { take, after, limit } = pick;
    let mut b = Binder::new(d);
    let table = d.table(&e.table);
    let expired = match take {
        Take::Expired => marked_expired(d, &mut b, schema, e),
        Take::All => format!("t.{} IS NOT NULL", d.ident(&e.deleted_at)),
    };
    let id_col = format!("t.{}", d.ident(&e.deletion_id));
    let mut cond = format!("{expired} AND NOT {}", referenced(d, policy, schema, e));
    if take == Take::Expired {
        cond.push_str(&format!(
            " AND NOT ({})",
            held(d, policy, schema, &id_col, Some(e))
        ));
    }
    if after {
        cond.push_str(&format!(" AND {}", after_key(d, &mut b, schema, e)));
    }
    let keys = d.list("t", &e.key);
    let order = keys.clone();
    let last_of = |from: &str, alias: &str| {
        if let [k] = e.key.as_slice()
            && d.has_max(schema.column_type(&e.table, k))
        {
            // One key column: its largest value, without a sort.
            return format!(
                "SELECT 'last', {}, {} FROM {from} HAVING count(*) > 0",
                d.lit(&e.name),
                d.text(&d.json_array(&[format!("max({alias}.{})", d.ident(k))]))
            );
        }
        format!(
            "SELECT 'last', {}, {} FROM {from} ORDER BY {} DESC LIMIT 1",
            d.lit(&e.name),
            d.text(
                &d.json_array(
                    &e.key
                        .iter()
                        .map(|k| format!("{alias}.{}", d.ident(k)))
                        .collect::<Vec<_>>()
                )
            ),
            e.key
                .iter()
                .map(|k| format!("{alias}.{}", d.ident(k)))
                .collect::<Vec<_>>()
                .join(" DESC, ")
        )
    };
    let fp = Fingerprint::of(&schema.table(&e.table).cloned().unwrap_or_default());
    let event = match to {
        MarkedTo::Purge => "purged",
        MarkedTo::Store(_) => "archived",
    };
    let run = d.deletion_id(&mut b);
    let now = d.now(&mut b);
    // The row's own deletion; rows marked outside Lethe have none and are
    // archived under the purge run's id.
    let id_type = schema.column_type(&e.table, &e.deletion_id);
    let own_id = format!(
        "COALESCE({}, {run})",
        d.as_deletion_id(&format!("x.{}", d.ident(&e.deletion_id)), id_type)
    );
    let cols: Vec<String> = schema
        .table(&e.table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let kind = match to {
        MarkedTo::Store(k) => k,
        MarkedTo::Purge => "",
    };
    let archive_insert = |from: &str| {
        format!(
            "INSERT INTO {} (kind, deletion_id, entity, key, row, fingerprint, deleted_at, archived_at) SELECT {}, {own_id}, {}, {}, {}, {}, {}, {now} FROM {from}",
            d.own("archive"),
            d.lit(kind),
            d.lit(&e.name),
            d.json_of_columns("x", &e.key),
            d.row_json("x", &cols),
            d.lit(&fp.id),
            d.cast(&format!("x.{}", d.ident(&e.deleted_at)), d.timestamp_type())
        )
    };
    let mark_purged = |ids: &str| {
        format!(
            "UPDATE {} SET purged_at = {now} WHERE purged_at IS NULL AND id IN ({ids})",
            d.own("deletions")
        )
    };
    // What the rest of the statement reads of the removed rows: all of
    // them when they go to the archive store.
    let returning = match to {
        MarkedTo::Purge => {
            let mut cols = e.key.clone();
            for c in e
                .captured_columns()
                .into_iter()
                .chain([e.deletion_id.clone()])
            {
                if !cols.contains(&c) {
                    cols.push(c);
                }
            }
            d.list("t", &cols)
        }
        MarkedTo::Store(_) => "t.*".to_string(),
    };
    if d.single_statement_delete() {
        let mut ctes = vec![
            format!(
                "c AS (SELECT {keys} FROM {table} t WHERE {cond} ORDER BY {order} LIMIT {limit})"
            ),
            format!(
                "r AS (DELETE FROM {table} t WHERE {} IN (SELECT * FROM c) AND {expired} RETURNING {returning})",
                d.tuple("t", &e.key)
            ),
        ];
        let rows = outbox::select(
            d,
            &mut b,
            e,
            "r x",
            "TRUE",
            event,
            outbox::Numbering::Window,
        );
        ctes.push(format!("o AS ({} {rows})", outbox::insert_into(d)));
        let mut reports = vec![
            format!(
                "SELECT 'done', {}, {}",
                d.lit(&e.name),
                d.text("(SELECT count(*) FROM r)")
            ),
            format!("SELECT * FROM ({}) l", last_of("c", "c")),
        ];
        match to {
            MarkedTo::Purge => ctes.push(format!(
                "p AS ({})",
                // A batch holds a few deletions: their ids, each once.
                mark_purged(&format!(
                    "SELECT {} FROM (SELECT DISTINCT x.{} AS v FROM r x) x",
                    d.as_deletion_id("x.v", id_type),
                    d.ident(&e.deletion_id)
                ))
            )),
            MarkedTo::Store(_) => {
                ctes.push(format!("a AS ({})", archive_insert("r x")));
                ctes.push(format!(
                    "f AS ({})",
                    register_fingerprint(d, &mut b, e, &fp)
                ));
                reports.push(stale_check(d, e, &fp));
            }
        }
        return b.finish(format!(
            "WITH {}\n{}",
            ctes.join(",\n"),
            reports.join("\nUNION ALL ")
        ));
    }
    // SQLite: the batch's keys in a temporary table, then one statement
    // each, in one call (it runs in-process).
    let tmp = d.temp_keys(&format!("purge_{}", e.name));
    let in_tmp = format!(
        "{} IN (SELECT {} FROM {tmp} z)",
        d.tuple("x", &e.key),
        d.list("z", &e.key)
    );
    let captured = e.captured_columns();
    let with_captured = if captured.is_empty() {
        format!("(SELECT rowid AS lethe_rowid, * FROM {tmp}) x")
    } else {
        format!(
            "(SELECT z.rowid AS lethe_rowid, {}, {} FROM {tmp} z JOIN {table} t ON {} = {}) x",
            d.list("z", &e.key),
            d.list("t", &captured),
            d.tuple("t", &e.key),
            d.tuple("z", &e.key)
        )
    };
    let mut out = vec![
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT {keys}, t.{} AS lethe_did FROM {table} t WHERE 0",
            tmp.trim_start_matches("temp."),
            d.ident(&e.deletion_id)
        ),
        format!(
            "INSERT INTO {tmp} SELECT {keys}, t.{} FROM {table} t WHERE {cond} ORDER BY {order} LIMIT {limit}",
            d.ident(&e.deletion_id)
        ),
        last_of(&format!("{tmp} c"), "c"),
        d.enable_bypass().to_string(),
    ];
    let rows = outbox::select(
        d,
        &mut b,
        e,
        &with_captured,
        "TRUE",
        event,
        outbox::Numbering::Rowid,
    );
    out.push(format!("{} {rows}", outbox::insert_into(d)));
    match to {
        MarkedTo::Purge => {
            out.push(mark_purged(&format!("SELECT lethe_did FROM {tmp}")));
        }
        MarkedTo::Store(_) => {
            out.push(stale_check(d, e, &fp));
            out.push(register_fingerprint(d, &mut b, e, &fp));
            out.push(archive_insert(&format!("{table} x WHERE {in_tmp}")));
        }
    }
    out.push(format!("DELETE FROM {table} AS x WHERE {in_tmp}"));
    out.push(format!(
        "SELECT 'done', {}, {} FROM {tmp}",
        d.lit(&e.name),
        d.text("count(*)")
    ));
    out.push(format!("DELETE FROM {tmp}"));
    if let Some(off) = d.disable_bypass() {
        out.push(off.to_string());
    }
    b.finish(out.join(";\n"))
}

/// Where stored rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredTo {
    /// Removed for good.
    Purge,
    /// Kept, as rows of another kind (`snapshot` or `archive`).
    Kind(&'static str),
}

impl From<AfterRetention> for StoredTo {
    fn from(a: AfterRetention) -> Self {
        match a {
            AfterRetention::Purge => StoredTo::Purge,
            AfterRetention::Archive => StoredTo::Kind("archive"),
        }
    }
}

/// One batch over `e`'s rows of `kind` in the archive store (`pick`):
/// removed, or kept as another kind.
pub fn stored_batch(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    e: &Entity,
    kind: &'static str,
    pick: Pick,
    to: StoredTo,
) -> Stmt {
    let Pick { take, after, limit } = pick;
    let mut b = Binder::new(d);
    let store = d.own("archive");
    let expired = match take {
        Take::Expired => stored_expired(d, &mut b, e, kind),
        Take::All => format!("t.entity = {} AND t.kind = {}", d.lit(&e.name), d.lit(kind)),
    };
    let mut cond = expired.clone();
    if take == Take::Expired {
        cond.push_str(&format!(
            " AND NOT ({})",
            held(d, policy, schema, "t.deletion_id", None)
        ));
    }
    if after {
        cond.push_str(&format!(
            " AND t.id > {}",
            d.cast(&b.bind(Param::Key(0)), "bigint")
        ));
    }
    let now = d.now(&mut b);
    let name = d.lit(&e.name);
    let mark_purged = |ids: &str| {
        format!(
            "UPDATE {} SET purged_at = {now} WHERE purged_at IS NULL AND id IN ({ids})",
            d.own("deletions")
        )
    };
    if d.single_statement_delete() {
        let mut ctes = vec![format!(
            "c AS (SELECT t.id FROM {store} t WHERE {cond} ORDER BY t.id LIMIT {limit})"
        )];
        match to {
            StoredTo::Purge => {
                ctes.push(format!(
                    "r AS (DELETE FROM {store} t WHERE t.id IN (SELECT id FROM c) AND {expired} RETURNING t.*)"
                ));
                let rows = outbox::select(
                    d,
                    &mut b,
                    e,
                    &outbox::stored_rows(d, e, "r s", None),
                    "TRUE",
                    "purged",
                    outbox::Numbering::Window,
                );
                ctes.push(format!("o AS ({} {rows})", outbox::insert_into(d)));
                ctes.push(format!("p AS ({})", mark_purged("SELECT deletion_id FROM r")));
            }
            StoredTo::Kind(k) => ctes.push(format!(
                "r AS (UPDATE {store} t SET kind = {}, archived_at = {now} WHERE t.id IN (SELECT id FROM c) AND {expired} RETURNING t.id)",
                d.lit(k)
            )),
        }
        return b.finish(format!(
            "WITH {}\nSELECT 'done', {name}, {}\nUNION ALL SELECT 'last', {name}, {} FROM c HAVING count(*) > 0",
            ctes.join(",\n"),
            d.text("(SELECT count(*) FROM r)"),
            d.text("json_build_array(max(c.id))")
        ));
    }
    let tmp = d.temp_keys(&format!("purge_{}_{kind}", e.name));
    let mut out = vec![
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (id INTEGER)",
            tmp.trim_start_matches("temp.")
        ),
        format!(
            "INSERT INTO {tmp} (id) SELECT t.id FROM {store} t WHERE {cond} ORDER BY t.id LIMIT {limit}"
        ),
        format!(
            "SELECT 'last', {name}, {} FROM {tmp} HAVING count(*) > 0",
            d.text("json_array(max(id))")
        ),
    ];
    let in_tmp = format!("id IN (SELECT id FROM {tmp})");
    match to {
        StoredTo::Purge => {
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
                "purged",
                outbox::Numbering::Rowid,
            );
            out.push(format!("{} {rows}", outbox::insert_into(d)));
            out.push(mark_purged(&format!(
                "SELECT deletion_id FROM {store} WHERE {in_tmp}"
            )));
            out.push(format!("DELETE FROM {store} WHERE {in_tmp}"));
        }
        StoredTo::Kind(k) => out.push(format!(
            "UPDATE {store} SET kind = {}, archived_at = {now} WHERE {in_tmp}",
            d.lit(k)
        )),
    }
    out.push(format!(
        "SELECT 'done', {name}, {} FROM {tmp}",
        d.text("count(*)")
    ));
    out.push(format!("DELETE FROM {tmp}"));
    b.finish(out.join(";\n"))
}

/// Locks the holds gate for the batch's transaction and lets it pass the
/// delete guard: a hold being added waits for the batch, and the batch for
/// it, so a hold that committed is seen (PostgreSQL; SQLite's write lock
/// already serializes them). `None` on SQLite, whose batch enables the
/// bypass itself.
///
/// It also makes PostgreSQL plan the batch's statements once per
/// connection (`plan_cache_mode`, for this transaction only): planning a
/// batch statement for its parameter values costs about as much as running
/// it, and its plan does not depend on them (the cutoff is converted once
/// per statement, the batch size is a literal, the last key an index
/// bound).
pub fn begin_batch(d: Dialect) -> Option<String> {
    match d {
        Dialect::Postgres => Some(format!(
            "SELECT {}, set_config('plan_cache_mode', 'force_generic_plan', true) FROM {} WHERE name = 'holds' FOR SHARE",
            d.bypass_expr(),
            d.own("settings")
        )),
        Dialect::Sqlite => None,
    }
}

/// Takes the holds gate exclusively (adding or releasing a hold). It
/// writes the row rather than only locking it, so a batch waiting for the
/// gate in a repeatable-read transaction (a database whose default it is)
/// fails with a serialization error and is retried with a snapshot that
/// sees the hold, instead of going on without it.
pub fn lock_holds(d: Dialect) -> Option<String> {
    match d {
        Dialect::Postgres => Some(format!(
            "UPDATE {} SET value = value WHERE name = 'holds'",
            d.own("settings")
        )),
        Dialect::Sqlite => None,
    }
}
