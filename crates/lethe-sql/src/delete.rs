//! Renders a [`DeletePlan`] to SQL.
//!
//! Two shapes, chosen by [`Dialect::single_statement_delete`]:
//! - PostgreSQL: one statement of data-modifying CTEs. Each plan node gets a
//!   key CTE `k{i}` (computed from the parents' `RETURNING` sets, recursively for
//!   self-references) and a marking CTE `u{i}`; outbox, snapshot and set-null
//!   records are written by further CTEs from `RETURNING`. One round trip,
//!   whatever the depth or the number of rows.
//! - SQLite: staged statements over temporary key tables, one or two per table.
//!   SQLite runs in-process, so statements cost no round trip.
//!
//! Every statement that reports something returns rows of three text columns:
//! `kind` (`rows`, `blocked`, `nullified`, `stale`), `name` and `n`.
//!
//! Rows of hard and archive entities leave their table for Lethe's archive
//! store (`snapshot` and `archive` rows), with the fingerprint of the
//! table's columns as Lethe read them; a `stale` row reports a table whose
//! live columns differ from that (changed since Lethe read the schema), and
//! the caller rolls back.

use lethe_core::{DeletePlan, Entity, Fingerprint, Schema, SideRelation, Strategy};

use crate::dialect::{Binder, Dialect, Param, Stmt};
use crate::outbox;

/// Whether the program changes data or only counts what it would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Execute,
    Preview,
}

/// A rendered delete. `statements` run in order in one transaction;
/// `cleanup` runs after (staged shape only), also inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteProgram {
    pub statements: Vec<ProgramStmt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStmt {
    pub stmt: Stmt,
    /// Returns `(kind, name, n)` rows to read.
    pub reports: bool,
    /// Runs before anything changes: only its `blocked` rows count, and the
    /// caller stops (and rolls back) when one is non-zero. Restrict checks
    /// must come first: a hard parent's DELETE would otherwise fail on the
    /// database's own foreign key before the check is read.
    pub gate: bool,
}

/// Renders `plan` for `dialect`. Params: the deletion id, the time, and the root
/// key values in key order.
pub fn render_delete(
    dialect: Dialect,
    plan: &DeletePlan,
    schema: &Schema,
    mode: Mode,
) -> DeleteProgram {
    if !dialect.single_statement_delete() {
        return render_staged(dialect, plan, schema, mode);
    }
    let main = render_single(dialect, plan, schema, mode);
    if mode == Mode::Preview {
        return main;
    }
    let mut statements = Vec::new();
    // Lock the root before the cascade is read: the main statement then sees
    // what a concurrent transaction that held the row (a restore, a new
    // child's foreign key check) committed.
    let mut b = Binder::new(dialect);
    let root = &plan.nodes[0].entity;
    statements.push(ProgramStmt {
        stmt: {
            let cond = root_match(dialect, &mut b, schema, root, "c");
            let lock = format!(
                "SELECT 'locked' FROM {} c WHERE {cond} FOR UPDATE",
                dialect.table(&root.table)
            );
            b.finish(if removes_rows(plan) {
                // Rows that leave their table pass the delete guard:
                // Lethe's own transaction says so before it deletes
                // anything, whether or not the root exists (the guard
                // fires for a DELETE of no rows too).
                format!(
                    "SELECT 'locked', {}, {}",
                    dialect.bypass_expr(),
                    dialect.text(&format!("SELECT count(*) FROM ({lock}) l"))
                )
            } else {
                lock
            })
        },
        reports: false,
        gate: true,
    });
    if !plan.restricts.is_empty() {
        let mut check = render_single(dialect, plan, schema, Mode::Preview).statements;
        for s in &mut check {
            s.gate = true;
        }
        statements.extend(check);
    }
    statements.extend(main.statements);
    DeleteProgram { statements }
}

fn removes_rows(plan: &DeletePlan) -> bool {
    plan.nodes.iter().any(|n| n.entity.strategy.removes_row())
}

/// The fingerprint of `e`'s table as Lethe read it.
fn fingerprint(schema: &Schema, e: &Entity) -> Fingerprint {
    Fingerprint::of(&schema.table(&e.table).cloned().unwrap_or_default())
}

/// `'snapshot'` for hard rows (kept for the undo window), `'archive'` for
/// archived ones.
pub fn store_kind(strategy: Strategy) -> &'static str {
    if strategy == Strategy::Hard {
        "snapshot"
    } else {
        "archive"
    }
}

/// Records the fingerprint's columns once (later deletes find it there).
pub(crate) fn register_fingerprint(
    d: Dialect,
    b: &mut Binder,
    e: &Entity,
    fp: &Fingerprint,
) -> String {
    let now = d.now(b);
    format!(
        "INSERT INTO {} (fingerprint, entity, table_name, columns, created_at) VALUES ({}, {}, {}, {}, {now}) ON CONFLICT (fingerprint) DO NOTHING",
        d.own("fingerprints"),
        d.lit(&fp.id),
        d.lit(&e.name),
        d.lit(&e.table),
        d.lit(&fp.columns_json())
    )
}

/// A `stale` report row: 1 when the table's live columns are not the ones
/// the fingerprint describes.
pub(crate) fn stale_check(d: Dialect, e: &Entity, fp: &Fingerprint) -> String {
    format!(
        "SELECT 'stale', {}, CASE WHEN {} IS DISTINCT FROM {} THEN '1' ELSE '0' END",
        d.lit(&e.name),
        d.live_columns(&e.table),
        d.lit(&lethe_core::archive::descriptor(&fp.columns))
    )
}

/// `t.k1 = CAST($3 AS bigint) AND ...` for the root key.
fn root_match(d: Dialect, b: &mut Binder, schema: &Schema, e: &Entity, alias: &str) -> String {
    let parts: Vec<String> = e
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = b.bind(Param::Key(i));
            format!(
                "{alias}.{} = {}",
                d.ident(c),
                d.cast(&p, schema.column_type(&e.table, c))
            )
        })
        .collect();
    parts.join(" AND ")
}

/// The condition that child row `c` references a row in `set` through any of
/// `node.incoming`; `set_of(parent)` names the set (CTE or temp table) of the
/// parent's deleted keys.
fn incoming_match(
    d: Dialect,
    plan: &DeletePlan,
    node_idx: usize,
    set_of: &dyn Fn(usize) -> String,
) -> String {
    let node = &plan.nodes[node_idx];
    let parts: Vec<String> = node
        .incoming
        .iter()
        .map(|r| {
            let pi = plan
                .node_index(&r.parent)
                .expect("incoming parent is in the plan");
            let parent = &plan.nodes[pi].entity;
            format!(
                "{} IN (SELECT {} FROM {} p)",
                d.tuple("c", &r.columns),
                d.list("p", &parent.key),
                set_of(pi)
            )
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// The join condition of a recursive step: child `c` references `p` through any
/// self-referencing relation.
fn recursive_match(d: Dialect, plan: &DeletePlan, node_idx: usize) -> String {
    let node = &plan.nodes[node_idx];
    let parts: Vec<String> = node
        .recursive
        .iter()
        .map(|r| {
            format!(
                "{} = {}",
                d.tuple("c", &r.columns),
                d.tuple("p", &node.entity.key)
            )
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// `, a.c1, a.c2` for the columns `e`'s sinks need beyond the key (empty when
/// none).
fn captured_list(d: Dialect, e: &lethe_core::Entity, alias: &str) -> String {
    let captured = e.captured_columns();
    if captured.is_empty() {
        String::new()
    } else {
        format!(", {}", d.list(alias, &captured))
    }
}

/// The seed query of node `i`'s key set.
fn seed_query(
    d: Dialect,
    b: &mut Binder,
    plan: &DeletePlan,
    schema: &Schema,
    i: usize,
    set_of: &dyn Fn(usize) -> String,
    lock: bool,
) -> String {
    let e = &plan.nodes[i].entity;
    let from = format!("{} c", d.table(&e.table));
    let cond = if i == 0 {
        root_match(d, b, schema, e, "c")
    } else {
        incoming_match(d, plan, i, set_of)
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    format!(
        "SELECT {} FROM {from} WHERE {} AND {cond}{lock}",
        d.list("c", &e.key),
        d.active(e, "c")
    )
}

/// Rows (alias `c`) of a restrict relation's child that block the delete:
/// active, referencing a deleted parent, and not deleted by the plan itself.
fn restrict_where(
    d: Dialect,
    plan: &DeletePlan,
    s: &SideRelation,
    set_of: &dyn Fn(usize) -> String,
    keys_of: &dyn Fn(usize) -> String,
) -> String {
    let mut w = format!(
        "{} AND {} IN (SELECT {} FROM {} p)",
        d.active(&s.child, "c"),
        d.tuple("c", &s.relation.columns),
        d.list("p", &plan.nodes[s.parent_node].entity.key),
        set_of(s.parent_node)
    );
    if let Some(ci) = s.child_node {
        w.push_str(&format!(
            " AND {} NOT IN (SELECT {} FROM {} z)",
            d.tuple("c", &s.child.key),
            d.list("z", &s.child.key),
            keys_of(ci)
        ));
    }
    w
}

/// The set-null work for one child entity: all `set_null` relations of the plan
/// whose child is `child`, merged so a row referencing two deleted parents is
/// updated once.
struct NullGroup<'a> {
    child: &'a Entity,
    child_node: Option<usize>,
    /// (relation columns, parent node)
    rels: Vec<(&'a [String], usize)>,
}

fn null_groups(plan: &DeletePlan) -> Vec<NullGroup<'_>> {
    let mut out: Vec<NullGroup<'_>> = Vec::new();
    for s in &plan.set_nulls {
        let rel = (s.relation.columns.as_slice(), s.parent_node);
        match out.iter_mut().find(|g| g.child.name == s.child.name) {
            Some(g) => g.rels.push(rel),
            None => out.push(NullGroup {
                child: &s.child,
                child_node: s.child_node,
                rels: vec![rel],
            }),
        }
    }
    out
}

fn null_cond(
    d: Dialect,
    plan: &DeletePlan,
    cols: &[String],
    parent_node: usize,
    alias: &str,
    set_of: &dyn Fn(usize) -> String,
) -> String {
    let parent = &plan.nodes[parent_node].entity;
    format!(
        "{} IN (SELECT {} FROM {} p)",
        d.tuple(alias, cols),
        d.list("p", &parent.key),
        set_of(parent_node)
    )
}

/// Rows of the group's child that must be nulled: active, referencing a deleted
/// parent, and not deleted by this plan themselves.
fn null_where(
    d: Dialect,
    plan: &DeletePlan,
    g: &NullGroup<'_>,
    alias: &str,
    set_of: &dyn Fn(usize) -> String,
    keys_of: &dyn Fn(usize) -> String,
) -> String {
    let any: Vec<String> = g
        .rels
        .iter()
        .map(|(c, p)| null_cond(d, plan, c, *p, alias, set_of))
        .collect();
    let mut w = format!("{} AND ({})", d.active(g.child, alias), any.join(" OR "));
    if let Some(ci) = g.child_node {
        w.push_str(&format!(
            " AND {} NOT IN (SELECT {} FROM {} z)",
            d.tuple(alias, &g.child.key),
            d.list("z", &g.child.key),
            keys_of(ci)
        ));
    }
    w
}

/// `json` of previous values: only the columns of relations that matched.
fn null_prev(
    d: Dialect,
    plan: &DeletePlan,
    g: &NullGroup<'_>,
    alias: &str,
    set_of: &dyn Fn(usize) -> String,
) -> String {
    let mut pairs = Vec::new();
    for (cols, p) in &g.rels {
        let cond = null_cond(d, plan, cols, *p, alias, set_of);
        for c in cols.iter() {
            pairs.push((
                c.clone(),
                format!("CASE WHEN {cond} THEN {alias}.{} END", d.ident(c)),
            ));
        }
    }
    d.json_strip_nulls(&d.json_object(&pairs))
}

/// `SET col = CASE WHEN <matched> THEN NULL ELSE col END, ...`
fn null_set(
    d: Dialect,
    plan: &DeletePlan,
    g: &NullGroup<'_>,
    alias: &str,
    set_of: &dyn Fn(usize) -> String,
) -> String {
    let mut sets = Vec::new();
    for (cols, p) in &g.rels {
        let cond = null_cond(d, plan, cols, *p, alias, set_of);
        for c in cols.iter() {
            sets.push(format!(
                "{} = CASE WHEN {cond} THEN NULL ELSE {alias}.{} END",
                d.ident(c),
                d.ident(c)
            ));
        }
    }
    sets.join(", ")
}

fn render_single(d: Dialect, plan: &DeletePlan, schema: &Schema, mode: Mode) -> DeleteProgram {
    let mut b = Binder::new(d);
    let exec = mode == Mode::Execute;
    let mut ctes: Vec<String> = Vec::new();
    let mut reports: Vec<String> = Vec::new();
    // In execute mode children are computed from what the parent's statement
    // actually changed (`RETURNING`); in preview mode from the parent's key set.
    let set_of = |i: usize| {
        if exec {
            format!("u{i}")
        } else {
            format!("k{i}")
        }
    };
    let keys_of = |i: usize| format!("k{i}");

    for (i, node) in plan.nodes.iter().enumerate() {
        let e = &node.entity;
        let seed = seed_query(d, &mut b, plan, schema, i, &set_of, exec && i == 0);
        if node.recursive.is_empty() {
            ctes.push(format!("k{i} AS ({seed})"));
        } else {
            // FOR UPDATE is not allowed in a recursive query: lock the seed first.
            ctes.push(format!("s{i} AS ({seed})"));
            ctes.push(format!(
                "k{i} AS (SELECT * FROM s{i} UNION SELECT {} FROM {} c JOIN k{i} p ON {} WHERE {})",
                d.list("c", &e.key),
                d.table(&e.table),
                recursive_match(d, plan, i),
                d.active(e, "c")
            ));
        }
        if exec {
            let in_keys = format!("{} IN (SELECT * FROM k{i})", d.tuple("t", &e.key));
            match e.strategy {
                Strategy::Soft => {
                    let id = d.deletion_id(&mut b);
                    let now = d.now(&mut b);
                    ctes.push(format!(
                        "u{i} AS (UPDATE {} t SET {} = {now}, {} = {id} WHERE {in_keys} AND {} RETURNING {})",
                        d.table(&e.table),
                        d.ident(&e.deleted_at),
                        d.ident(&e.deletion_id),
                        d.active(e, "t"),
                        d.list("t", &outbox::row_columns(e))
                    ));
                }
                Strategy::Hard | Strategy::Archive => {
                    let id = d.deletion_id(&mut b);
                    let now = d.now(&mut b);
                    let fp = fingerprint(schema, e);
                    ctes.push(format!(
                        "u{i} AS (DELETE FROM {} t WHERE {in_keys} RETURNING t.*)",
                        d.table(&e.table)
                    ));
                    ctes.push(format!(
                        "h{i} AS (INSERT INTO {} (kind, deletion_id, entity, key, row, fingerprint, deleted_at, archived_at) SELECT {}, {id}, {}, {}, to_jsonb(x), {}, {now}, {now} FROM u{i} x)",
                        d.own("archive"),
                        d.lit(store_kind(e.strategy)),
                        d.lit(&e.name),
                        d.json_of_columns("x", &e.key),
                        d.lit(&fp.id)
                    ));
                    ctes.push(format!(
                        "f{i} AS ({})",
                        register_fingerprint(d, &mut b, e, &fp)
                    ));
                    reports.push(stale_check(d, e, &fp));
                }
            }
            let rows = outbox::select(
                d,
                &mut b,
                e,
                &format!("u{i} x"),
                "TRUE",
                "deleted",
                outbox::Numbering::Window,
            );
            ctes.push(format!("o{i} AS ({} {rows})", outbox::insert_into(d)));
        }
        reports.push(format!(
            "SELECT 'rows' AS kind, {} AS name, {} AS n",
            d.lit(&e.name),
            d.text(&format!("SELECT count(*) FROM {}", set_of(i)))
        ));
    }
    for (ri, s) in plan.restricts.iter().enumerate() {
        let child = &s.child;
        let w = restrict_where(d, plan, s, &set_of, &keys_of);
        reports.push(format!(
            "SELECT 'blocked', {}, {}",
            d.lit(&ri.to_string()),
            d.text(&format!(
                "SELECT count(*) FROM {} c WHERE {w}",
                d.table(&child.table)
            ))
        ));
    }
    for (gi, g) in null_groups(plan).iter().enumerate() {
        let w = null_where(d, plan, g, "o", &set_of, &keys_of);
        if exec {
            let id = d.deletion_id(&mut b);
            // `o` is the row before the update (same snapshot), so its values
            // are the previous ones restore puts back.
            ctes.push(format!(
                "n{gi} AS (UPDATE {} t SET {} FROM {} o WHERE {} = {} AND {w} RETURNING {}{}, {} AS prev)",
                d.table(&g.child.table),
                null_set(d, plan, g, "o", &set_of),
                d.table(&g.child.table),
                d.tuple("t", &g.child.key),
                d.tuple("o", &g.child.key),
                d.list("t", &g.child.key),
                captured_list(d, g.child, "o"),
                null_prev(d, plan, g, "o", &set_of)
            ));
            ctes.push(format!(
                "m{gi} AS (INSERT INTO {} (deletion_id, entity, key, prev) SELECT {id}, {}, {}, x.prev FROM n{gi} x)",
                d.own("nullified"),
                d.lit(&g.child.name),
                d.json_of_columns("x", &g.child.key)
            ));
            // The rows changed too: caches and services that hold them hear of it.
            let rows = outbox::select(
                d,
                &mut b,
                g.child,
                &format!("n{gi} x"),
                "TRUE",
                "updated",
                outbox::Numbering::Window,
            );
            ctes.push(format!("q{gi} AS ({} {rows})", outbox::insert_into(d)));
            reports.push(format!(
                "SELECT 'nullified', {}, {}",
                d.lit(&g.child.name),
                d.text(&format!("SELECT count(*) FROM n{gi}"))
            ));
        } else {
            reports.push(format!(
                "SELECT 'nullified', {}, {}",
                d.lit(&g.child.name),
                d.text(&format!(
                    "SELECT count(*) FROM {} o WHERE {w}",
                    d.table(&g.child.table)
                ))
            ));
        }
    }
    let sql = format!(
        "WITH RECURSIVE {}\n{}",
        ctes.join(",\n"),
        reports.join("\nUNION ALL ")
    );
    DeleteProgram {
        statements: vec![ProgramStmt {
            stmt: b.finish(sql),
            reports: true,
            gate: false,
        }],
    }
}

fn render_staged(d: Dialect, plan: &DeletePlan, schema: &Schema, mode: Mode) -> DeleteProgram {
    let exec = mode == Mode::Execute;
    // One batch: SQLite runs the statements one after the other in a single
    // call, with one numbering of the bound values across all of them.
    let mut b = Binder::new(d);
    let mut out: Vec<String> = Vec::new();
    // A temporary table per entity holds the keys of the rows to delete.
    let set_of = |i: usize| d.temp_keys(&plan.nodes[i].entity.name);
    // The same, with SQLite's rowid to cut the outbox into parts.
    let numbered = |i: usize| format!("(SELECT rowid AS lethe_rowid, * FROM {})", set_of(i));
    // ... and with the columns sinks need, read before the rows change.
    let with_captured = |i: usize| {
        let e = &plan.nodes[i].entity;
        let captured = e.captured_columns();
        if captured.is_empty() {
            return numbered(i);
        }
        format!(
            "(SELECT z.lethe_rowid, {}, {} FROM {} z JOIN {} t ON {} = {})",
            d.list("z", &e.key),
            d.list("t", &captured),
            numbered(i),
            d.table(&e.table),
            d.tuple("t", &e.key),
            d.tuple("z", &e.key)
        )
    };
    // 1. Key sets, parents before children. No DELETE first: every
    // transaction that fills these tables empties them before it commits (at
    // the end of this batch), and a rollback takes its rows with it.
    for (i, node) in plan.nodes.iter().enumerate() {
        let e = &node.entity;
        let tmp = set_of(i);
        out.push(format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT {} FROM {} c WHERE 0",
            tmp.trim_start_matches("temp."),
            d.list("c", &e.key),
            d.table(&e.table)
        ));
        let seed = seed_query(d, &mut b, plan, schema, i, &set_of, false);
        let cols: Vec<String> = e.key.iter().map(|c| d.ident(c)).collect();
        out.push(if node.recursive.is_empty() {
            format!("INSERT INTO {tmp} ({}) {seed}", cols.join(", "))
        } else {
            format!(
                "WITH RECURSIVE r({}) AS ({seed} UNION SELECT {} FROM {} c JOIN r p ON {} WHERE {}) INSERT INTO {tmp} ({}) SELECT * FROM r",
                cols.join(", "),
                d.list("c", &e.key),
                d.table(&e.table),
                recursive_match(d, plan, i),
                d.active(e, "c"),
                cols.join(", ")
            )
        });
    }
    // 2. Restrict checks, before anything changes (a blocked delete is rolled
    // back by the caller).
    let before_checks = out.len();
    for (ri, s) in plan.restricts.iter().enumerate() {
        let w = restrict_where(d, plan, s, &set_of, &set_of);
        out.push(format!(
            "SELECT 'blocked', {}, {} FROM {} c WHERE {w}",
            d.lit(&ri.to_string()),
            d.text("count(*)"),
            d.table(&s.child.table)
        ));
    }
    // Rows about to leave their table are stored in the shape Lethe read:
    // a table changed since then stops the delete here.
    for node in plan
        .nodes
        .iter()
        .filter(|n| n.entity.strategy.removes_row())
    {
        let e = &node.entity;
        out.push(stale_check(d, e, &fingerprint(schema, e)));
    }
    // The key sets and the checks form a gate when there is anything to
    // check: a blocked delete stops before the first change.
    let gate_len = if exec && out.len() > before_checks {
        out.len()
    } else {
        0
    };
    // 3. Set-null (recorded first, so restore can put the values back).
    for g in null_groups(plan) {
        let w = null_where(d, plan, &g, "o", &set_of, &set_of);
        out.push(format!(
            "SELECT 'nullified', {}, {} FROM {} o WHERE {w}",
            d.lit(&g.child.name),
            d.text("count(*)"),
            d.table(&g.child.table)
        ));
        if exec {
            let id = d.deletion_id(&mut b);
            out.push(format!(
                "INSERT INTO {} (deletion_id, entity, key, prev) SELECT {id}, {}, {}, {} FROM {} o WHERE {w}",
                d.own("nullified"),
                d.lit(&g.child.name),
                d.json_of_columns("o", &g.child.key),
                null_prev(d, plan, &g, "o", &set_of),
                d.table(&g.child.table)
            ));
            // The rows changed too: caches and services that hold them hear of it.
            let from = format!(
                "(SELECT {} FROM {} o WHERE {w}) x",
                d.list("o", &outbox::row_columns(g.child)),
                d.table(&g.child.table)
            );
            let rows = outbox::select(
                d,
                &mut b,
                g.child,
                &from,
                "TRUE",
                "updated",
                outbox::Numbering::Window,
            );
            out.push(format!("{} {rows}", outbox::insert_into(d)));
            out.push(format!(
                "UPDATE {} AS o SET {} WHERE {w}",
                d.table(&g.child.table),
                null_set(d, plan, &g, "o", &set_of)
            ));
        }
    }
    // 4. Counts, outbox, marks; hard deletes children first for foreign keys.
    let counts: Vec<String> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "SELECT 'rows', {}, {} FROM {}",
                d.lit(&n.entity.name),
                d.text("count(*)"),
                set_of(i)
            )
        })
        .collect();
    out.push(counts.join(" UNION ALL "));
    if exec {
        let selects: Vec<String> = plan
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                outbox::select(
                    d,
                    &mut b,
                    &n.entity,
                    &format!("{} x", with_captured(i)),
                    "TRUE",
                    "deleted",
                    outbox::Numbering::Rowid,
                )
            })
            .collect();
        out.push(format!(
            "{} {}",
            outbox::insert_into(d),
            selects.join(" UNION ALL ")
        ));
        for (i, node) in plan.nodes.iter().enumerate() {
            let e = &node.entity;
            if !e.strategy.removes_row() {
                let id = d.deletion_id(&mut b);
                let now = d.now(&mut b);
                out.push(format!(
                    "UPDATE {} AS t SET {} = {now}, {} = {id} WHERE {} IN (SELECT {} FROM {} z) AND {}",
                    d.table(&e.table),
                    d.ident(&e.deleted_at),
                    d.ident(&e.deletion_id),
                    d.tuple("t", &e.key),
                    d.list("z", &e.key),
                    set_of(i),
                    d.active(e, "t")
                ));
            }
        }
        if removes_rows(plan) {
            out.push(d.enable_bypass().to_string());
        }
        for (i, node) in plan.nodes.iter().enumerate().rev() {
            let e = &node.entity;
            if !e.strategy.removes_row() {
                continue;
            }
            let cols: Vec<String> = schema
                .table(&e.table)
                .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default();
            let in_keys = format!(
                "{} IN (SELECT {} FROM {} z)",
                d.tuple("t", &e.key),
                d.list("z", &e.key),
                set_of(i)
            );
            let id = d.deletion_id(&mut b);
            let now = d.now(&mut b);
            let fp = fingerprint(schema, e);
            out.push(register_fingerprint(d, &mut b, e, &fp));
            out.push(format!(
                "INSERT INTO {} (kind, deletion_id, entity, key, row, fingerprint, deleted_at, archived_at) SELECT {}, {id}, {}, {}, {}, {}, {now}, {now} FROM {} t WHERE {in_keys}",
                d.own("archive"),
                d.lit(store_kind(e.strategy)),
                d.lit(&e.name),
                d.json_of_columns("t", &e.key),
                d.snapshot_row("t", &cols),
                d.lit(&fp.id),
                d.table(&e.table)
            ));
            out.push(format!(
                "DELETE FROM {} AS t WHERE {in_keys}",
                d.table(&e.table)
            ));
        }
        if let (true, Some(off)) = (removes_rows(plan), d.disable_bypass()) {
            out.push(off.to_string());
        }
    }
    // Leave the key tables empty: they live as long as the connection.
    for i in 0..plan.nodes.len() {
        out.push(format!("DELETE FROM {}", set_of(i)));
    }
    // Both parts bind the same values ($N names them), so they share params.
    let rest = out.split_off(gate_len);
    let all = b.finish(String::new());
    let mut statements = Vec::new();
    if !out.is_empty() {
        statements.push(ProgramStmt {
            stmt: Stmt {
                sql: out.join(";\n"),
                params: all.params.clone(),
            },
            reports: true,
            gate: true,
        });
    }
    statements.push(ProgramStmt {
        stmt: Stmt {
            sql: rest.join(";\n"),
            params: all.params,
        },
        reports: true,
        gate: false,
    });
    DeleteProgram { statements }
}
