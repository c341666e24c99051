//! The SQL of an erasure (GDPR Art. 17): the subject's rows in every
//! entity of an [`ErasurePlan`], found in their tables (active and marked
//! deleted alike) and in Lethe's archive store (archived rows and hard-delete
//! snapshots), then deleted or anonymized there.
//!
//! **Scope tables.** The rows of each entity that belong to the subject are
//! collected once, parents first, into two temporary tables: `t` (keys of
//! rows in the entity's table) and `s` (ids and keys of its stored rows).
//! A row belongs to the subject when its own key is the subject's, its
//! `subject_columns` hold the subject's key, or the columns of *any* of its
//! relations name a parent row in the parent's scope (table or archive
//! store). Parents first, one join per relation: every chain of relations is
//! followed, whatever its length, without one statement growing with the
//! number of chains.
//!
//! **Params.** `Key(i)`: the subject's key values; `DeletionId`, `Now`: the
//! erasure's record; `Value(0)`/`Value(1)`: the inner and outer HMAC pads of
//! the database's hash key (hex); `Value(2)`: keyed hashes as a JSON array
//! (verification).

use std::collections::BTreeSet;

use lethe_core::erasure::Erase;
use lethe_core::erasure_plan::{ErasurePlan, ErasureStep};
use lethe_core::graph::SubjectPath;
use lethe_core::{ColumnKind, Entity, OnDelete, PiiRule, Policy, Schema};

use crate::dialect::{Binder, Dialect, Param, Stmt};
use crate::outbox;

/// The outbox event of erased rows (`lethe.erased` for event sinks; caches
/// drop their keys and search indexes their documents).
pub const EVENT: &str = "erased";

/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// The scope tables of the `i`-th entity of the plan.
fn scope_tables(d: Dialect, i: usize) -> (String, String) {
    let name = |k: &str| match d {
        Dialect::Postgres => format!("{TEMP_SCOPE}{k}{i}"),
        Dialect::Sqlite => format!("temp.{SHAPE_UNSET}{k}{i}"),
    };
    (name("t"), name("s"))
}

/// SQLite's scope tables are kept per connection and emptied, not dropped:
/// a `CREATE` or `DROP` changes the schema, which costs a write of the
/// temporary schema and makes SQLite prepare every cached statement of the
/// connection again. They are named after their shape (a hash of the
/// statements that create them, rendered with this placeholder), so that a
/// connection never fills a table made for another policy or schema.
const SHAPE_UNSET: &str = "lethe_erase_0000000000000000_";

/// Names SQLite's scope tables after the statements that shape them.
fn name_by_shape(sql: &mut ErasureSql) {
    // FNV-1a: stable across builds (std's hasher is not), so the names
    // in the SQL snapshots stay put.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.scope.iter().flat_map(|s| s.sql.bytes().chain([0])) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let named = format!("lethe_erase_{h:016x}_");
    // Every field by name: a statement added to `ErasureSql` must be
    // listed here, or this does not compile.
    let ErasureSql {
        scope,
        counts,
        rows,
        pii_hashes,
        changes,
        cleanup,
        held,
        blocked,
        residue,
        scan,
        step,
    } = sql;
    let all = scope
        .iter_mut()
        .chain([counts, rows, pii_hashes, held, blocked, residue])
        .chain(changes.iter_mut())
        .chain(cleanup.iter_mut())
        .chain(scan.iter_mut())
        .chain(step.iter_mut());
    for s in all {
        s.sql = s.sql.replace(SHAPE_UNSET, &named);
    }
}

/// The SQL of one erasure, for one plan and schema. Keep it per policy and
/// schema: only the bound values change between subjects.
#[derive(Debug, Clone)]
pub struct ErasureSql {
    /// Builds the scope tables, parents first. Run first, in the erasure's
    /// transaction.
    pub scope: Vec<Stmt>,
    /// `(entity, rows in its table, of which marked deleted, rows in the
    /// archive store)`, one row per entity.
    pub counts: Stmt,
    /// `(entity, place, key as JSON)` of every row in scope, for a dry run.
    pub rows: Stmt,
    /// The keyed hashes (`Value(0/1)` pads) of the PII values of the rows
    /// erasure deletes or anonymizes: `(hash)`, distinct. Run before
    /// [`ErasureSql::changes`]; verification looks for them afterwards.
    pub pii_hashes: Stmt,
    /// The changes, children first: outbox records, set-null references,
    /// deletes and anonymizing updates in tables and the archive store.
    /// Each reports nothing; run them in order.
    pub changes: Vec<Stmt>,
    /// Removes the scope tables (SQLite keeps temporary tables for the
    /// connection; PostgreSQL drops them at commit).
    pub cleanup: Vec<Stmt>,
    /// `(hold id, entity, reason)`: active legal holds on rows erasure
    /// would delete or anonymize (it refuses while there are any).
    pub held: Stmt,
    /// `(relation, rows)`: rows outside the erasure (other subjects', or
    /// no one's) that reference rows it deletes through a `restrict` or
    /// `cascade` relation; erasure refuses while there are any.
    pub blocked: Stmt,
    /// After [`ErasureSql::scope`] on an erased database: `(entity, place,
    /// rows, what)` of what erasure should have removed or changed and did not —
    /// rows of deleted entities anywhere, and anonymized rows whose PII
    /// columns still hash to an original value (`Value(2)`).
    pub residue: Stmt,
    /// `(place, rows)`: values anywhere in the managed tables' text
    /// columns, Lethe's archive store, outbox and nullified values whose
    /// keyed hash is one of `Value(2)`; the subject's rows of kept
    /// entities are left out (they are kept on purpose).
    pub scan: Vec<Stmt>,
    /// The whole table step as one statement, where the dialect writes in
    /// CTEs ([`Dialect::single_statement_delete`]): the scopes as CTEs,
    /// parents first (an entity's rows erasure deletes found by the DELETE
    /// itself), the changes as data-modifying CTEs (which all see the rows
    /// as they were before any of them ran, as the checks do), and as its
    /// result rows of `(what, a, b, c, d)`: `recheck` (entity) when an
    /// entity it changes has an active legal hold, or the archive store
    /// holds rows of an entity the render's `stored` set left out;
    /// `blocked` (relation, rows); `count` (as [`ErasureSql::counts`]);
    /// `hash` (as [`ErasureSql::pii_hashes`]). Run instead of `scope`, the
    /// checks, `pii_hashes` and `changes`. Roll back on a `recheck` row (then
    /// run the statements, rendered with `stored` = `None`: they check
    /// holds row by row) or a `blocked` one with rows. `None` on SQLite, and
    /// for a plan in which one statement could write a row twice (two
    /// set_null relations into one table, or into a table erasure
    /// anonymizes): PostgreSQL applies only one of two writes of a row in
    /// one statement, so those run as the statements above, in order.
    pub step: Option<Stmt>,
}

/// How the scope finds the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectBy {
    /// By its key values (`Key(i)`): an index lookup.
    Key,
    /// By the keyed hash of its key's text ([`subject_hash`], bound as
    /// `Value(3)`), for requests and ledger entries that keep no key: a
    /// scan of the subject's table (and of `subject_columns`).
    Hash,
}

/// `(hash)`: the keyed hash of the subject's key (`Key(i)` values, in the
/// database's own text form of the key's type), as [`SubjectBy::Hash`]
/// compares it.
pub fn subject_hash(d: Dialect, schema: &Schema, subject: &Entity) -> Stmt {
    let mut b = Binder::new(d);
    let parts: Vec<String> = subject
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let p = b.bind(Param::Key(i));
            d.text(&d.cast_value(
                &d.cast(&p, schema.column_type(&subject.table, k)),
                schema.column_type(&subject.table, k),
            ))
        })
        .collect();
    let text = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(" || '-' || "))
    };
    let h = d.hmac(&mut b, &text);
    b.finish(format!("SELECT {h}"))
}

/// `(entity)`: the entities of `plan` that Lethe's archive store holds rows
/// of (archived rows or hard-delete snapshots), each found by the store's
/// `(entity, key)` index. Erasure searches the store only for those
/// ([`render_erasure`]'s `stored`).
pub fn stored_entities(d: Dialect, plan: &ErasurePlan) -> Stmt {
    let branches: Vec<String> = plan
        .steps
        .iter()
        .map(|s| {
            format!(
                "SELECT {e} WHERE EXISTS (SELECT 1 FROM {} a WHERE a.entity = {e})",
                d.own("archive"),
                e = d.lit(&s.entity)
            )
        })
        .collect();
    Stmt {
        sql: branches.join(" UNION ALL "),
        params: Vec::new(),
    }
}

/// Renders the SQL of `plan`. The plan's steps are children first.
///
/// `stored`: the entities the archive store holds rows of
/// ([`stored_entities`]), read in the erasure's transaction; the store is
/// searched for those only. `None`: for every entity. On PostgreSQL, where
/// another transaction may archive rows meanwhile, only
/// [`ErasureSql::step`] may be run with a set: it checks in its own
/// snapshot that the store still holds nothing of the others.
pub fn render_erasure(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    plan: &ErasurePlan,
    by: SubjectBy,
    stored: Option<&BTreeSet<String>>,
) -> ErasureSql {
    // Counts come back as text, like every value Lethe reads.
    let cnt = d.text("count(*)");
    // Whether the `i`-th entity has an `s` scope (stored rows to look at).
    let has_s = |i: usize| stored.is_none_or(|set| set.contains(&plan.steps[i].entity));
    let index = |name: &str| plan.steps.iter().position(|s| s.entity == name);
    let entity = |s: &ErasureStep| &policy.entities[&s.entity];
    let mut scope = Vec::new();
    // The scopes' SELECTs by table name, parents first, for `step`.
    let mut scope_ctes: Vec<(String, Stmt)> = Vec::new();
    let mut cleanup = Vec::new();
    let mut built: Vec<usize> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate().rev() {
        let e = entity(step);
        let (t, s) = scope_tables(d, i);
        // Each relation once (several chains share a first hop), and only
        // to parents already collected (a cycle of relations is followed in
        // the order the plan gives).
        let mut hops: Vec<(&lethe_core::Relation, usize)> = Vec::new();
        let mut own = false;
        let mut columns: Option<&Vec<String>> = None;
        for p in &step.paths {
            match p {
                SubjectPath::Own => own = true,
                SubjectPath::Columns(c) => columns = Some(c),
                SubjectPath::Relations(rels) => {
                    let r = &rels[0];
                    if let Some(j) = index(&r.parent).filter(|j| built.contains(j))
                        && !hops
                            .iter()
                            .any(|(h, _)| h.line == r.line && h.child == r.child)
                    {
                        hops.push((r, j));
                    }
                }
            }
        }
        let subject = &policy.entities[&plan.subject];
        let cond = |b: &mut Binder, field: &dyn Fn(&str) -> String| -> String {
            let mut any = Vec::new();
            let key_eq = |b: &mut Binder, cols: &[String]| -> String {
                if by == SubjectBy::Hash {
                    let h = b.bind(Param::Value(3));
                    let text = key_text(d, cols, field);
                    return format!("{} = {h}", d.hmac(b, &text));
                }
                cols.iter()
                    .zip(&subject.key)
                    .enumerate()
                    .map(|(k, (c, sk))| {
                        let p = b.bind(Param::Key(k));
                        format!(
                            "{} = {}",
                            field(c),
                            d.cast_value(&p, schema.column_type(&subject.table, sk))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" AND ")
            };
            if own {
                any.push(format!("({})", key_eq(b, &e.key)));
            }
            if let Some(c) = columns {
                any.push(format!("({})", key_eq(b, c)));
            }
            for (r, j) in &hops {
                let parent = &policy.entities[&r.parent];
                let (pt, ps) = scope_tables(d, *j);
                let fields: Vec<String> = r.columns.iter().map(|c| field(c)).collect();
                let k = d.list("z", &parent.key);
                let parents = if has_s(*j) {
                    format!("SELECT {k} FROM {pt} z UNION ALL SELECT {k} FROM {ps} z")
                } else {
                    format!("SELECT {k} FROM {pt} z")
                };
                any.push(d.any_of(&fields, &parents));
                // A row a set_null relation detached from its parent (when
                // the parent was deleted) still belongs to the subject: its
                // previous reference is in Lethe's nullified values.
                if r.on_delete == OnDelete::SetNull {
                    let typed = |json: &str, c: &str| {
                        d.cast_value(&d.json_text(json, c), schema.column_type(&e.table, c))
                    };
                    let keys: Vec<String> = e.key.iter().map(|k| field(k)).collect();
                    let n_keys: Vec<String> = e.key.iter().map(|k| typed("n.key", k)).collect();
                    let n_prev: Vec<String> =
                        r.columns.iter().map(|c| typed("n.prev", c)).collect();
                    // Only while the reference is still cleared: a row
                    // linked to someone else since is theirs.
                    let cleared: Vec<String> =
                        fields.iter().map(|f| format!("{f} IS NULL")).collect();
                    let detached = format!(
                        "SELECT {} FROM {} n WHERE n.entity = {} AND {}",
                        n_keys.join(", "),
                        d.own("nullified"),
                        d.lit(&e.name),
                        d.any_of(&n_prev, &parents)
                    );
                    any.push(format!(
                        "({} AND {})",
                        cleared.join(" AND "),
                        d.any_of(&keys, &detached)
                    ));
                }
            }
            if any.is_empty() {
                "FALSE".to_string()
            } else {
                any.join(" OR ")
            }
        };
        let mut b = Binder::new(d);
        let w = cond(&mut b, &|c: &str| format!("x.{}", d.ident(c)));
        // A scan of one table with a condition lists each row once. The
        // scope keeps what the counts, the outbox records and the purge
        // marks need (the key, the columns sinks read, whether the row is
        // marked deleted and by which deletion), so none goes back to the
        // table.
        let deletion = if step.action == Erase::Delete && e.has_markers() {
            format!(
                ", {} AS {SCOPE_DELETION}",
                d.as_deletion_id(
                    &format!("x.{}", d.ident(&e.deletion_id)),
                    schema.column_type(&e.table, &e.deletion_id)
                )
            )
        } else {
            String::new()
        };
        let columns = format!(
            "{}, {} AS {SCOPE_DELETED}{deletion}",
            d.list("x", &outbox::row_columns(e)),
            deleted_flag(d, e, "x"),
        );
        let select = b.finish(format!(
            "SELECT {columns} FROM {} x WHERE {w}",
            d.table(&e.table)
        ));
        scope.extend(temp_table(d, &t, &select));
        // In one statement, the rows of an entity erasure deletes are found
        // by their DELETE itself: one pass over the table, as a
        // hand-written delete makes, rather than a search and then a
        // delete by key.
        let cte = match step.action {
            Erase::Delete => Stmt {
                sql: format!(
                    "DELETE FROM {} AS x WHERE {w} RETURNING {columns}",
                    d.table(&e.table)
                ),
                params: select.params.clone(),
            },
            _ => select,
        };
        scope_ctes.push((t.clone(), cte));
        if !has_s(i) {
            match d {
                Dialect::Sqlite => cleanup.push(Stmt {
                    sql: format!("DELETE FROM {t}"),
                    params: Vec::new(),
                }),
                Dialect::Postgres => scope.push(Stmt {
                    sql: format!("ANALYZE {t} ({SCOPE_DELETED})"),
                    params: Vec::new(),
                }),
            }
            built.push(i);
            continue;
        }
        let mut b = Binder::new(d);
        let stored_field =
            |c: &str| d.cast_value(&d.json_text("a.row", c), schema.column_type(&e.table, c));
        let w = cond(&mut b, &stored_field);
        let keys: Vec<String> = e
            .key
            .iter()
            .map(|k| {
                format!(
                    "{} AS {}",
                    d.cast_value(&d.json_text("a.key", k), schema.column_type(&e.table, k)),
                    d.ident(k)
                )
            })
            .collect();
        let create_s = format!(
            "SELECT a.id AS lethe_sid, {} FROM {} a WHERE a.entity = {} AND ({w})",
            keys.join(", "),
            d.own("archive"),
            d.lit(&e.name)
        );
        let select = b.finish(create_s);
        scope.extend(temp_table(d, &s, &select));
        scope_ctes.push((s.clone(), select));
        match d {
            Dialect::Sqlite => {
                for table in [&t, &s] {
                    cleanup.push(Stmt {
                        sql: format!("DELETE FROM {table}"),
                        params: Vec::new(),
                    });
                }
            }
            // Statistics, so that the planner sees a handful of rows and
            // reaches the tables through their indexes (it cannot guess the
            // size of a table created in this transaction).
            // Only the marker and id columns: the row counts are what the
            // planner needs, and statistics of the other columns (values
            // sinks read, possibly personal) would be written to
            // `pg_statistic`, and with it to the WAL.
            Dialect::Postgres => scope.push(Stmt {
                sql: format!("ANALYZE {t} ({SCOPE_DELETED}), {s} (lethe_sid)"),
                params: Vec::new(),
            }),
        }
        built.push(i);
    }

    let in_t = |i: usize, alias: &str| {
        let e = entity(&plan.steps[i]);
        let (t, _) = scope_tables(d, i);
        let keys: Vec<String> = e
            .key
            .iter()
            .map(|k| format!("{alias}.{}", d.ident(k)))
            .collect();
        format!(
            "({})",
            d.any_of(&keys, &format!("SELECT {} FROM {t} z", d.list("z", &e.key)))
        )
    };
    // Callers leave out what reads the store for an entity without an `s`
    // scope; FALSE all the same, should one not.
    let in_s = |i: usize, alias: &str| {
        let (_, s) = scope_tables(d, i);
        if has_s(i) {
            d.any_of(
                &[format!("{alias}.id")],
                &format!("SELECT z.lethe_sid FROM {s} z"),
            )
        } else {
            "FALSE".to_string()
        }
    };

    // Counts and rows, for reports and dry runs.
    let mut counts = Vec::new();
    let mut rows = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        let name = d.lit(&e.name);
        let (t, s) = scope_tables(d, i);
        let place = format!("CASE WHEN z.{SCOPE_DELETED} = 1 THEN 'deleted' ELSE 'active' END");
        let in_store = if has_s(i) {
            format!("(SELECT {cnt} FROM {s} z)")
        } else {
            "'0'".to_string()
        };
        counts.push(format!(
            "SELECT {name}, {cnt}, {}, {in_store} FROM {t} z",
            d.text(&format!("COALESCE(sum(z.{SCOPE_DELETED}), 0)"))
        ));
        rows.push(format!(
            "SELECT {name}, {place}, {} FROM {t} z",
            d.text(&d.json_of_columns("z", &e.key)),
        ));
        if !has_s(i) {
            continue;
        }
        rows.push(format!(
            "SELECT {name}, 'stored', {} FROM {} a WHERE {}",
            d.text("a.key"),
            d.own("archive"),
            in_s(i, "a")
        ));
    }
    let counts = Stmt {
        sql: counts.join("\nUNION ALL "),
        params: Vec::new(),
    };
    let rows = Stmt {
        sql: rows.join("\nUNION ALL "),
        params: Vec::new(),
    };

    // Legal holds on rows erasure would change.
    let mut held = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        if matches!(step.action, Erase::Keep { .. }) {
            continue;
        }
        let (t, _) = scope_tables(d, i);
        let stored_keys = if has_s(i) {
            format!(
                " OR h.key IN (SELECT a.key FROM {} a WHERE {})",
                d.own("archive"),
                in_s(i, "a")
            )
        } else {
            String::new()
        };
        held.push(format!(
            "SELECT {}, h.entity, h.reason FROM {} h WHERE h.released_at IS NULL AND h.entity = {} AND \
             (EXISTS (SELECT 1 FROM {t} x WHERE {}){stored_keys})",
            d.text("h.id"),
            d.own("holds"),
            d.lit(&e.name),
            d.key_matches_json(schema, e, "x", "h.key"),
        ));
    }
    if held.is_empty() {
        held.push("SELECT 'none', 'none', 'none' WHERE FALSE".to_string());
    }
    let held = Stmt {
        sql: held.join("\nUNION ALL "),
        params: Vec::new(),
    };

    // Rows outside the erasure that reference rows it deletes, through
    // relations that would refuse the delete or take them along.
    let mut blocked = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        if step.action != Erase::Delete {
            continue;
        }
        for r in policy
            .children_of(&e.name)
            .filter(|r| matches!(r.on_delete, OnDelete::Restrict | OnDelete::Cascade))
        {
            let child = &policy.entities[&r.child];
            let erased = plan
                .steps
                .iter()
                .position(|s| s.entity == r.child && s.action == Erase::Delete)
                .map(|j| format!(" AND NOT {}", in_t(j, "c")))
                .unwrap_or_default();
            let refs: Vec<String> = r
                .columns
                .iter()
                .map(|c| format!("c.{}", d.ident(c)))
                .collect();
            let parents = format!(
                "SELECT {} FROM {} z",
                d.list("z", &e.key),
                scope_tables(d, i).0
            );
            blocked.push(format!(
                "SELECT {}, {cnt} FROM {} c WHERE {}{erased}",
                d.lit(&r.describe()),
                d.table(&child.table),
                d.any_of(&refs, &parents)
            ));
        }
    }
    if blocked.is_empty() {
        blocked.push("SELECT 'none', '0' WHERE FALSE".to_string());
    }
    let blocked = Stmt {
        sql: blocked.join("\nUNION ALL "),
        params: Vec::new(),
    };

    // Keyed hashes of the PII values erasure removes.
    let mut b = Binder::new(d);
    let mut hashes = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        if matches!(step.action, Erase::Keep { .. }) {
            continue;
        }
        for (c, rule) in &e.pii {
            // A value already in its anonymized form (an earlier erasure's
            // placeholder or fake) is not an original value.
            let already = |b: &mut Binder, v: &str, key: &str| match step.action {
                Erase::Anonymize => format!(
                    " AND {v} <> COALESCE({}, '')",
                    anonymized(d, b, schema, e, c, *rule, v, key)
                ),
                _ => String::new(),
            };
            let v = d.text(&format!("x.{}", d.ident(c)));
            let key = key_text(d, &e.key, &|k| format!("x.{}", d.ident(k)));
            let skip = already(&mut b, &v, &key);
            // A value other people's rows hold too ("Great!", a common
            // name) does not identify the subject: it stays, and is not
            // looked for.
            let shared = format!(
                " AND NOT EXISTS (SELECT 1 FROM {} y WHERE y.{col} = x.{col} AND NOT {})",
                d.table(&e.table),
                in_t(i, "y"),
                col = d.ident(c)
            );
            hashes.push(format!(
                "SELECT {} AS h FROM {} x WHERE {v} IS NOT NULL{skip}{shared} AND {}",
                d.hmac(&mut b, &v),
                d.table(&e.table),
                in_t(i, "x")
            ));
            if !has_s(i) {
                continue;
            }
            let v = d.json_text("a.row", c);
            let key = key_text(d, &e.key, &|k| d.json_text("a.key", k));
            let skip = already(&mut b, &v, &key);
            hashes.push(format!(
                "SELECT {} AS h FROM {} a WHERE {v} IS NOT NULL{skip} AND {}",
                d.hmac(&mut b, &v),
                d.own("archive"),
                in_s(i, "a")
            ));
        }
    }
    if hashes.is_empty() {
        hashes.push("SELECT 'none' AS h WHERE FALSE".to_string());
    }
    let pii_hashes = b.finish(format!(
        "SELECT DISTINCT y.h FROM ({}) y",
        hashes.join("\nUNION ALL ")
    ));

    // The changes, children first. Per entity: its outbox records, then
    // (delete) the deletions it ends, its rows and its stored rows, or
    // (anonymize) its rows and its stored rows rewritten. On PostgreSQL
    // these touch four different tables and read only the scope tables and
    // the rows before the change, so they run as one statement of
    // data-modifying CTEs (one round trip per entity); SQLite runs them one
    // by one.
    let mut changes = Vec::new();
    // The same changes for `step`: single statements with their params,
    // the deletions they end (one UPDATE of them for all entities: two
    // would write a deletion twice), and the tables they write.
    let mut step_parts: Vec<Stmt> = Vec::new();
    let mut step_purged: Vec<String> = Vec::new();
    let mut writes: Vec<(&str, Write)> = Vec::new();
    let deleted_at = |entity: &str| {
        plan.steps
            .iter()
            .position(|s| s.entity == entity && s.action == Erase::Delete)
    };
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        let table = d.table(&e.table);
        if matches!(step.action, Erase::Keep { .. }) {
            continue;
        }
        let mut b = Binder::new(d);
        let mut parts: Vec<String> = Vec::new();
        // Parts `step` has otherwise.
        let mut skipped: Vec<usize> = Vec::new();
        // Caches and search indexes hold copies of the rows (and of their
        // PII): every row erasure touches is sent as `erased`.
        // SQLite numbers the scope's rows already (a new table's rowids
        // count from 1): parts without a window function.
        let (scope_rows, numbering) = match d {
            Dialect::Sqlite => (
                format!(
                    "(SELECT z.rowid AS lethe_rowid, z.* FROM {} z) x",
                    scope_tables(d, i).0
                ),
                outbox::Numbering::Rowid,
            ),
            Dialect::Postgres => (
                format!("{} x", scope_tables(d, i).0),
                outbox::Numbering::Window,
            ),
        };
        let from_table = outbox::select(d, &mut b, e, &scope_rows, "TRUE", EVENT, numbering);
        let from_stored = if has_s(i) {
            let stored = outbox::stored_rows(
                d,
                e,
                &format!("{} s WHERE {}", d.own("archive"), in_s(i, "s")),
                None,
            );
            let rows = outbox::select(
                d,
                &mut b,
                e,
                &stored,
                "TRUE",
                EVENT,
                outbox::Numbering::Window,
            );
            format!(" UNION ALL {rows}")
        } else {
            String::new()
        };
        parts.push(format!(
            "{} {from_table}{from_stored}",
            outbox::insert_into(d)
        ));
        match step.action {
            Erase::Delete => {
                // Rows kept by erasure that point here through set_null
                // relations lose the link before the row goes (statements
                // of their own, ahead: the row goes in the next one).
                // Caches and services that hold those rows hear of the
                // change (`updated`), as after a delete's set_null.
                for r in policy
                    .children_of(&e.name)
                    .filter(|r| r.on_delete == OnDelete::SetNull)
                {
                    let child = &policy.entities[&r.child];
                    let sets: Vec<String> = r
                        .columns
                        .iter()
                        .map(|c| format!("{} = NULL", d.ident(c)))
                        .collect();
                    // Rows of the child that erasure deletes (ahead of
                    // this entity, children first, or with it: a
                    // self-reference) go anyway; in one statement they are
                    // still there, and must not be written twice.
                    let spared = deleted_at(&r.child).filter(|j| *j <= i);
                    writes.push((
                        child.table.as_str(),
                        Write::Cleared {
                            spares_deleted: spared.is_some(),
                        },
                    ));
                    let linked = |alias: Option<&str>| {
                        let cols: Vec<String> = r
                            .columns
                            .iter()
                            .map(|c| match alias {
                                Some(a) => format!("{a}.{}", d.ident(c)),
                                None => d.ident(c),
                            })
                            .collect();
                        let whose = alias.map_or_else(|| d.table(&child.table), str::to_string);
                        let parents = format!(
                            "SELECT {} FROM {} z",
                            d.list("z", &e.key),
                            scope_tables(d, i).0
                        );
                        format!(
                            "{}{}",
                            d.any_of(&cols, &parents),
                            spared
                                .map(|j| format!(" AND NOT {}", in_t(j, &whose)))
                                .unwrap_or_default()
                        )
                    };
                    let update = format!(
                        "UPDATE {} SET {} WHERE {}",
                        d.table(&child.table),
                        sets.join(", "),
                        linked(None)
                    );
                    let mut nb = Binder::new(d);
                    // The records carry the rows as they were (as a
                    // delete's set_null sends them): a cache key made of the
                    // reference names the entry to drop.
                    let rows = outbox::select(
                        d,
                        &mut nb,
                        child,
                        &format!("{} x", d.table(&child.table)),
                        &linked(Some("x")),
                        "updated",
                        outbox::Numbering::Window,
                    );
                    let insert = format!("{} {rows}", outbox::insert_into(d));
                    step_parts.push(Stmt {
                        sql: update.clone(),
                        params: Vec::new(),
                    });
                    step_parts.push(nb.clone().finish(insert.clone()));
                    match d {
                        // The main statement reads the rows before the CTE's
                        // update (same snapshot).
                        Dialect::Postgres => {
                            changes.push(nb.finish(format!("WITH u AS ({update}) {insert}")));
                        }
                        Dialect::Sqlite => {
                            changes.push(nb.finish(insert));
                            changes.push(Stmt {
                                sql: update,
                                params: Vec::new(),
                            });
                        }
                    }
                }
                // Deletions whose rows go now can no longer be restored
                // whole: they count as purged.
                let mut ids = Vec::new();
                if has_s(i) {
                    ids.push(format!(
                        "SELECT a.deletion_id FROM {} a WHERE {}",
                        d.own("archive"),
                        in_s(i, "a")
                    ));
                }
                if e.has_markers() {
                    ids.push(format!(
                        "SELECT z.{SCOPE_DELETION} FROM {} z WHERE z.{SCOPE_DELETION} IS NOT NULL",
                        scope_tables(d, i).0
                    ));
                }
                if !ids.is_empty() {
                    let now = d.now(&mut b);
                    skipped.push(parts.len());
                    parts.push(format!(
                        "UPDATE {} SET purged_at = COALESCE(purged_at, {now}) WHERE id IN ({})",
                        d.own("deletions"),
                        ids.join(" UNION ")
                    ));
                    step_purged.extend(ids);
                }
                writes.push((e.table.as_str(), Write::Deleted));
                // In one statement, the scope's DELETE did it.
                skipped.push(parts.len());
                parts.push(format!("DELETE FROM {table} WHERE {}", in_t(i, &table)));
                if has_s(i) {
                    parts.push(format!(
                        "DELETE FROM {} WHERE {}",
                        d.own("archive"),
                        in_s(i, &d.own("archive"))
                    ));
                }
            }
            Erase::Anonymize => {
                let sets: Vec<String> = e
                    .pii
                    .iter()
                    .map(|(c, rule)| {
                        let v = format!("{table}.{}", d.ident(c));
                        let key = key_text(d, &e.key, &|k| format!("{table}.{}", d.ident(k)));
                        format!(
                            "{} = {}",
                            d.ident(c),
                            anonymized(d, &mut b, schema, e, c, *rule, &v, &key)
                        )
                    })
                    .collect();
                writes.push((e.table.as_str(), Write::Anonymized));
                parts.push(format!(
                    "UPDATE {table} SET {} WHERE {}",
                    sets.join(", "),
                    in_t(i, &table)
                ));
                let archive = d.own("archive");
                let pairs: Vec<(String, String)> = e
                    .pii
                    .iter()
                    .map(|(c, rule)| {
                        let v = d.json_text(&format!("{archive}.row"), c);
                        let key =
                            key_text(d, &e.key, &|k| d.json_text(&format!("{archive}.key"), k));
                        (
                            c.clone(),
                            anonymized(d, &mut b, schema, e, c, *rule, &v, &key),
                        )
                    })
                    .collect();
                if has_s(i) {
                    parts.push(format!(
                        "UPDATE {archive} SET row = {} WHERE {}",
                        d.json_set_fields(&format!("{archive}.row"), &pairs),
                        in_s(i, &archive)
                    ));
                }
            }
            Erase::Keep { .. } => {}
        }
        let params = b.clone().finish(String::new()).params;
        step_parts.extend(
            parts
                .iter()
                .enumerate()
                .filter(|(k, _)| !skipped.contains(k))
                .map(|(_, sql)| Stmt {
                    sql: sql.clone(),
                    params: params.clone(),
                }),
        );
        changes.extend(one_statement_each(d, b, parts));
    }

    // Residue: what should be gone or changed and is not.
    let mut b = Binder::new(d);
    let mut residue = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let e = entity(step);
        let name = d.lit(&e.name);
        let table = d.table(&e.table);
        match step.action {
            Erase::Delete => {
                residue.push(format!(
                    "SELECT {name}, 'table', {cnt}, 'subject rows' FROM {table} x WHERE {}",
                    in_t(i, "x")
                ));
                residue.push(format!(
                    "SELECT {name}, 'archive store', {cnt}, 'subject rows' FROM {} a WHERE {}",
                    d.own("archive"),
                    in_s(i, "a")
                ));
            }
            Erase::Anonymize => {
                let hashes = b.bind(Param::Value(2));
                let list = d.json_text_elements(&hashes);
                let any_t: Vec<String> = e
                    .pii
                    .keys()
                    .map(|c| {
                        format!(
                            "{} IN ({list})",
                            d.hmac(&mut b, &d.text(&format!("x.{}", d.ident(c))))
                        )
                    })
                    .collect();
                let any_s: Vec<String> = e
                    .pii
                    .keys()
                    .map(|c| format!("{} IN ({list})", d.hmac(&mut b, &d.json_text("a.row", c))))
                    .collect();
                residue.push(format!(
                    "SELECT {name}, 'table', {cnt}, 'rows not anonymized' FROM {table} x WHERE {} AND ({})",
                    in_t(i, "x"),
                    any_t.join(" OR ")
                ));
                residue.push(format!(
                    "SELECT {name}, 'archive store', {cnt}, 'rows not anonymized' FROM {} a WHERE {} AND ({})",
                    d.own("archive"),
                    in_s(i, "a"),
                    any_s.join(" OR ")
                ));
            }
            Erase::Keep { .. } => {}
        }
    }
    if residue.is_empty() {
        residue.push("SELECT 'none', 'none', '0', 'none' WHERE FALSE".to_string());
    }
    let residue = b.finish(residue.join("\nUNION ALL "));

    // The raw scan: every text value Lethe can see.
    let mut scan = Vec::new();
    for e in policy.entities.values() {
        let Some(t) = schema.table(&e.table) else {
            continue;
        };
        let cols: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| matches!(c.kind(), ColumnKind::Text | ColumnKind::Other))
            .map(|c| c.name.as_str())
            .collect();
        if cols.is_empty() {
            continue;
        }
        let mut b = Binder::new(d);
        let list = d.json_text_elements(&b.bind(Param::Value(2)));
        let any: Vec<String> = cols
            .iter()
            .map(|c| {
                format!(
                    "{} IN ({list})",
                    d.hmac(&mut b, &d.text(&format!("x.{}", d.ident(c))))
                )
            })
            .collect();
        // Kept rows are kept on purpose (their legal basis is recorded).
        let kept = plan
            .steps
            .iter()
            .position(|s| s.entity == e.name && matches!(s.action, Erase::Keep { .. }))
            .map(|i| format!(" AND NOT {}", in_t(i, "x")))
            .unwrap_or_default();
        scan.push(b.finish(format!(
            "SELECT {}, {cnt} FROM {} x WHERE ({}){kept}",
            d.lit(&format!("table {}", e.table)),
            d.table(&e.table),
            any.join(" OR ")
        )));
    }
    for (place, table, column) in [
        ("archive store", "archive", "row"),
        ("outbox", "outbox", "keys"),
        ("nullified values", "nullified", "prev"),
    ] {
        let mut b = Binder::new(d);
        let list = d.json_text_elements(&b.bind(Param::Value(2)));
        let atoms = d.json_string_atoms(&format!("x.{column}"));
        let hmac = d.hmac(&mut b, "j.v");
        // Stored rows of kept entities are kept on purpose too.
        let kept: String = if table == "archive" {
            plan.steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.action, Erase::Keep { .. }))
                .map(|(i, _)| format!(" AND NOT {}", in_s(i, "x")))
                .collect()
        } else {
            String::new()
        };
        scan.push(b.finish(format!(
            "SELECT {}, {cnt} FROM {} x WHERE EXISTS (SELECT 1 FROM {atoms} WHERE {hmac} IN ({list})){kept}",
            d.lit(place),
            d.own(table),
        )));
    }

    let twice = writes.iter().enumerate().any(|(k, (t, w))| {
        writes[k + 1..]
            .iter()
            .any(|(u, v)| t == u && !Write::apart(*w, *v))
    });
    // What `step` leaves to the statements: any active hold on an entity
    // it changes (legal holds are rare; the statements check them row by
    // row), and stored rows of an entity `stored` said had none (archived
    // since by another transaction).
    let mut recheck = Vec::new();
    let changed: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| !matches!(s.action, Erase::Keep { .. }))
        .map(|s| d.lit(&s.entity))
        .collect();
    if !changed.is_empty() {
        recheck.push(format!(
            "SELECT h.entity FROM {} h WHERE h.released_at IS NULL AND h.entity IN ({})",
            d.own("holds"),
            changed.join(", ")
        ));
    }
    let unsearched: Vec<String> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !has_s(*i))
        .map(|(_, st)| d.lit(&st.entity))
        .collect();
    if !unsearched.is_empty() {
        recheck.push(format!(
            "SELECT 'archive store' WHERE EXISTS (SELECT 1 FROM {} a WHERE a.entity IN ({}))",
            d.own("archive"),
            unsearched.join(", ")
        ));
    }
    let recheck = Stmt {
        sql: recheck.join("\nUNION ALL "),
        params: Vec::new(),
    };
    let step = (d.single_statement_delete() && !twice).then(|| {
        one_step(
            d,
            &scope_ctes,
            &step_parts,
            &step_purged,
            [&recheck, &blocked, &counts, &pii_hashes],
        )
    });

    let mut sql = ErasureSql {
        scope,
        counts,
        rows,
        pii_hashes,
        changes,
        cleanup,
        held,
        blocked,
        residue,
        scan,
        step,
    };
    if d == Dialect::Sqlite {
        name_by_shape(&mut sql);
    }
    sql
}

/// How a change writes the rows of a table, to tell whether two changes of
/// one statement could write the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Deletes the subject's rows (an entity erasure deletes).
    Deleted,
    /// Rewrites the subject's rows (an entity erasure anonymizes).
    Anonymized,
    /// Clears references to deleted rows (a set_null relation), sparing
    /// the rows the table's own entity deletes or not.
    Cleared { spares_deleted: bool },
}

impl Write {
    /// Whether the two never write the same row.
    fn apart(a: Write, b: Write) -> bool {
        matches!(
            (a, b),
            (
                Write::Deleted,
                Write::Cleared {
                    spares_deleted: true
                }
            ) | (
                Write::Cleared {
                    spares_deleted: true
                },
                Write::Deleted
            )
        )
    }
}

/// The prefix of the scope tables' names; [`one_step`] names its CTEs
/// without it.
const TEMP_SCOPE: &str = "pg_temp.lethe_erase_";

/// [`ErasureSql::step`] from the statements rendered for the temporary
/// scope tables: the same SQL, reading CTEs of the same names instead.
fn one_step(
    d: Dialect,
    scopes: &[(String, Stmt)],
    parts: &[Stmt],
    purged: &[String],
    [recheck, blocked, counts, hashes]: [&Stmt; 4],
) -> Stmt {
    let cte = |sql: String| sql.replace(TEMP_SCOPE, "lethe_erase_");
    let mut b = Binder::new(d);
    let mut with: Vec<String> = scopes
        .iter()
        .map(|(name, select)| format!("{} AS ({})", cte(name.clone()), cte(b.absorb(select))))
        .collect();
    // The outbox records of every entity in one INSERT: one table write
    // to plan and run instead of one per entity.
    let insert = outbox::insert_into(d);
    let mut records: Vec<String> = Vec::new();
    let mut writes: Vec<String> = Vec::new();
    for p in parts {
        let sql = cte(b.absorb(p));
        match sql.strip_prefix(&insert) {
            Some(select) => records.push(format!("({})", select.trim())),
            None => writes.push(sql),
        }
    }
    if !records.is_empty() {
        writes.push(format!("{insert} {}", records.join(" UNION ALL ")));
    }
    with.extend(
        writes
            .iter()
            .enumerate()
            .map(|(k, sql)| format!("lethe_c{k} AS ({sql})")),
    );
    if !purged.is_empty() {
        let now = d.now(&mut b);
        with.push(format!(
            "lethe_purged AS (UPDATE {} SET purged_at = COALESCE(purged_at, {now}) WHERE id IN ({}))",
            d.own("deletions"),
            cte(purged.join(" UNION "))
        ));
    }
    let results: Vec<String> = [
        ("recheck", recheck, 1),
        ("blocked", blocked, 2),
        ("count", counts, 4),
        ("hash", hashes, 1),
    ]
    .into_iter()
    .filter(|(_, stmt, _)| !stmt.sql.is_empty())
    .map(|(what, stmt, n)| {
        let names = ["a", "b", "c", "d"];
        let cols: Vec<String> = (0..4)
            .map(|k| {
                if k < n {
                    format!("h.{}", names[k])
                } else {
                    "NULL".to_string()
                }
            })
            .collect();
        format!(
            "SELECT '{what}', {} FROM ({}) AS h({})",
            cols.join(", "),
            cte(b.absorb(stmt)),
            names[..n].join(", ")
        )
    })
    .collect();
    b.finish(format!(
        "WITH {}\n{}",
        with.join(",\n"),
        results.join("\nUNION ALL ")
    ))
}

/// Statements that read only what was there before any of them ran, and
/// write different tables, sharing one binder's params: on PostgreSQL one
/// statement (all but the last as data-modifying CTEs, which see the same
/// snapshot), on SQLite one each, in order.
fn one_statement_each(d: Dialect, b: Binder, parts: Vec<String>) -> Vec<Stmt> {
    match d {
        Dialect::Postgres => {
            let mut parts = parts;
            let last = parts.pop().unwrap_or_else(|| "SELECT 1".to_string());
            let ctes: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(k, p)| format!("c{k} AS ({p})"))
                .collect();
            let sql = if ctes.is_empty() {
                last
            } else {
                format!("WITH {} {last}", ctes.join(", "))
            };
            vec![b.finish(sql)]
        }
        // Each statement gets all of the binder's params: SQLite takes
        // `$n` as the n-th value given, and values no placeholder names are
        // left over.
        Dialect::Sqlite => {
            let params = b.finish(String::new()).params;
            parts
                .into_iter()
                .map(|sql| {
                    // None for a statement without placeholders, so that it
                    // can join a batch (`$1` is in `$10` too: when in doubt,
                    // it keeps them).
                    let uses = (1..=params.len()).any(|n| sql.contains(&format!("${n}")));
                    Stmt {
                        sql,
                        params: if uses { params.clone() } else { Vec::new() },
                    }
                })
                .collect()
        }
    }
}

/// The column of a `t` scope table that says whether the row is marked
/// deleted (1) or active (0).
const SCOPE_DELETED: &str = "lethe_erase_deleted";

/// The column of a `t` scope table of an entity erasure deletes that holds
/// the deletion that marked the row, if one did.
const SCOPE_DELETION: &str = "lethe_erase_deletion";

/// 1 when row `alias` of `e` is marked deleted, else 0.
fn deleted_flag(d: Dialect, e: &Entity, alias: &str) -> String {
    if e.has_markers() {
        format!(
            "CASE WHEN {alias}.{} IS NOT NULL THEN 1 ELSE 0 END",
            d.ident(&e.deleted_at)
        )
    } else {
        "0".to_string()
    }
}

/// `CREATE TEMP TABLE name AS select`, dropped at commit on PostgreSQL.
/// On SQLite the table is created once per connection ([`SHAPE_UNSET`]),
/// emptied (of what an interrupted run may have left; every run empties it
/// before it commits) and filled.
fn temp_table(d: Dialect, name: &str, select: &Stmt) -> Vec<Stmt> {
    let create = |sql: String| Stmt {
        sql,
        params: select.params.clone(),
    };
    match d {
        Dialect::Postgres => vec![create(format!(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS {}",
            name.trim_start_matches("pg_temp."),
            select.sql
        ))],
        Dialect::Sqlite => vec![
            create(format!(
                "CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT * FROM ({}) WHERE 0",
                name.trim_start_matches("temp."),
                select.sql
            )),
            Stmt {
                sql: format!("DELETE FROM {name}"),
                params: Vec::new(),
            },
            create(format!("INSERT INTO {name} {}", select.sql)),
        ],
    }
}

/// A row's key as text, composite values joined with `-`.
fn key_text(d: Dialect, key: &[String], field: &dyn Fn(&str) -> String) -> String {
    let parts: Vec<String> = key.iter().map(|k| d.text(&field(k))).collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(" || '-' || "))
    }
}

/// What PII rule `rule` makes of value `v` (an expression) of column `col`
/// of a row whose key is the text `key`.
#[allow(clippy::too_many_arguments)]
fn anonymized(
    d: Dialect,
    b: &mut Binder,
    schema: &Schema,
    e: &Entity,
    col: &str,
    rule: PiiRule,
    v: &str,
    key: &str,
) -> String {
    let text = ColumnKind::from_type(schema.column_type(&e.table, col)) == ColumnKind::Text;
    match rule {
        PiiRule::Null => "NULL".to_string(),
        PiiRule::Redact if text => d.lit(REDACTED),
        PiiRule::Hash if text => format!(
            "CASE WHEN {v} IS NULL OR {} THEN {v} ELSE {} END",
            d.is_hmac_shaped(&d.text(v)),
            d.hmac(b, &d.text(v))
        ),
        // Unique per row (from its key) and shaped like the value it
        // replaces, so NOT NULL, unique and format checks keep holding.
        PiiRule::Fake if text => format!(
            "CASE WHEN {v} IS NULL THEN NULL \
             WHEN {tv} LIKE '%@%' THEN 'erased-' || {key} || '@example.invalid' \
             WHEN {tv} <> '' AND {} = '' THEN '+000' || {key} \
             ELSE 'erased-' || {key} END",
            d.trim_chars(&d.text(v), "+0123456789 -()."),
            tv = d.text(v)
        ),
        // Rules on non-text columns are refused before any SQL runs (see
        // `unsupported_rules`); NULL is the only value every type takes.
        _ => "NULL".to_string(),
    }
}

/// PII rules erasure cannot apply to a column, as `(entity.column, why)`:
/// `null` on a NOT NULL column, and `redact`, `hash` or `fake` on a column
/// that does not hold text.
pub fn unsupported_rules(
    policy: &Policy,
    schema: &Schema,
    plan: &ErasurePlan,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for step in plan.steps.iter().filter(|s| s.action == Erase::Anonymize) {
        let e = &policy.entities[&step.entity];
        for (c, rule) in &e.pii {
            let Some(info) = schema.table(&e.table).and_then(|t| t.column(c)) else {
                out.push((
                    format!("{}.{c}", e.name),
                    "no such column in the table".to_string(),
                ));
                continue;
            };
            let text = info.kind() == ColumnKind::Text;
            if *rule == PiiRule::Null && info.not_null {
                out.push((
                    format!("{}.{c}", e.name),
                    "pii rule \"null\" on a NOT NULL column: use \"redact\" or \"fake\""
                        .to_string(),
                ));
            } else if *rule != PiiRule::Null && !text {
                out.push((
                    format!("{}.{c}", e.name),
                    format!(
                        "pii rule \"{}\" needs a text column, and {c} is {}: use \"null\"",
                        rule.as_str(),
                        info.data_type
                    ),
                ));
            }
        }
    }
    out
}

/// Outbox records holding a value whose keyed hash is one of `Value(2)`
/// and that every sink has received (dispatched, every delivery
/// delivered): `(id, keys)`. Erasure rewrites those values once they are
/// no longer needed to reach a sink; a record still on its way keeps them.
/// Deliveries of the erasure's own deletion (`DeletionId`) to sinks an
/// operator confirmed by hand (`Value(4)`, a JSON array) do not count.
pub fn outbox_to_scrub(d: Dialect) -> Stmt {
    let mut b = Binder::new(d);
    let list = d.json_text_elements(&b.bind(Param::Value(2)));
    let hmac = d.hmac(&mut b, "j.v");
    let atoms = d.json_string_atoms("o.keys");
    let deletion = d.cast(&b.bind(Param::DeletionId), d.uuid_type());
    let confirmed = d.json_text_elements(&b.bind(Param::Value(4)));
    b.finish(format!(
        "SELECT {}, {} FROM {} o WHERE o.dispatched AND EXISTS (SELECT 1 FROM {atoms} WHERE {hmac} IN ({list})) \
         AND NOT EXISTS (SELECT 1 FROM {} x WHERE x.outbox_id = o.id AND x.state <> 'delivered' \
         AND NOT (x.deletion_id = {deletion} AND x.sink IN ({confirmed})))",
        d.text("o.id"),
        d.text("o.keys"),
        d.own("outbox"),
        d.own("deliveries")
    ))
}

/// Replaces an outbox record's keys (`$1` id, `$2` JSON).
pub fn rewrite_outbox(d: Dialect) -> String {
    format!(
        "UPDATE {} SET keys = {} WHERE id = {}",
        d.own("outbox"),
        d.cast("$2", d.json_doc_type()),
        d.cast("$1", "bigint")
    )
}
