//! Renders the restore of one deletion: the checks that must pass first, then
//! the statements that put every row of the deletion back.
//!
//! A deletion's rows of one entity are in up to two places: still in the
//! table, marked with the deletion id (soft deletes), and in Lethe's archive
//! store (hard snapshots, archived rows, soft rows moved there after their
//! retention), grouped by the fingerprint of the columns they were stored
//! with. Marked rows are unmarked; stored rows are inserted again, column by
//! column as [`StoredGroup::columns`] says (the store decides that from how
//! the table changed since).
//!
//! All statements bind the deletion id (and the time, for outbox rows, and
//! [`Param::Value`]s for columns the caller supplies).
//! Check statements return rows of four text columns:
//! - `unique`, entity, restored key, conflicting active key (and the columns in
//!   a fifth column);
//! - `parent`, relation, child key, the deletion that removed the parent (empty
//!   when none is known), the parent's key, and the parent's strategy (`soft`:
//!   an empty deletion means it was marked outside Lethe; `hard`: missing).

use lethe_core::{Entity, OnDelete, Policy, Schema};

use crate::dialect::{Binder, Dialect, Param, Stmt};
use crate::outbox;

/// Where the value of a re-inserted column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fill {
    /// The stored row's value, converted to the column's current type.
    Stored,
    /// A value the caller supplies (`--set`), bound as [`Param::Value`].
    Given(usize),
}

/// A deletion's stored rows of one entity with one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// `None`: rows stored before fingerprints existed, read as the table's
    /// current shape.
    pub fingerprint: Option<String>,
    /// The columns to insert and where each value comes from; columns left
    /// out take their default (or NULL).
    pub columns: Vec<(String, Fill)>,
}

/// What a deletion did to one entity, and where its rows are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreEntity<'a> {
    pub entity: &'a Entity,
    /// Rows in the table marked with the deletion id are unmarked.
    pub marked: bool,
    /// Rows in the archive store, by fingerprint.
    pub stored: Vec<StoredGroup>,
    /// When the deletion reached every row of this entity through one relation
    /// (its description), the parents through that relation are all in the
    /// same deletion and need no check.
    pub only_via: Option<String>,
}

/// One place a deletion's rows of an entity are.
#[derive(Clone, Copy)]
enum Place<'g> {
    Marked,
    Stored(&'g StoredGroup),
}

impl<'a> RestoreEntity<'a> {
    /// `e`'s rows where a delete under its current strategy puts them, in the
    /// table's current shape (tests and previews of generated SQL).
    pub fn as_deleted(e: &'a Entity, schema: &Schema) -> Self {
        let stored = if e.strategy.removes_row() {
            let fp =
                lethe_core::Fingerprint::of(&schema.table(&e.table).cloned().unwrap_or_default());
            vec![StoredGroup {
                fingerprint: Some(fp.id),
                columns: current_columns(e, schema)
                    .into_iter()
                    .map(|c| (c, Fill::Stored))
                    .collect(),
            }]
        } else {
            Vec::new()
        };
        RestoreEntity {
            entity: e,
            marked: e.has_markers(),
            stored,
            only_via: None,
        }
    }

    fn places(&self) -> Vec<Place<'_>> {
        let mut v: Vec<Place<'_>> = self.stored.iter().map(Place::Stored).collect();
        if self.marked {
            v.push(Place::Marked);
        }
        v
    }
}

/// The columns a plain re-insert writes when nothing changed: every
/// non-generated column but the markers (rows come back active).
pub fn current_columns(e: &Entity, schema: &Schema) -> Vec<String> {
    schema
        .table(&e.table)
        .map(|t| {
            t.columns
                .iter()
                .filter(|c| {
                    !c.generated
                        && !(e.has_markers() && (c.name == e.deleted_at || c.name == e.deletion_id))
                })
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProgram {
    pub checks: Vec<Stmt>,
    /// Run in order after every check came back empty.
    pub apply: Vec<Stmt>,
    /// `(entity, index into apply)` of the statements that put set-null
    /// references back; their row counts are the references actually put back.
    pub put_back: Vec<(String, usize)>,
}

/// Where the rows of `e` deleted by the deletion are, and how to read a column.
struct Source {
    from: String,
    where_: String,
    /// Column reader for the deleted row.
    col: Box<dyn Fn(&str) -> String>,
    key_json: String,
}

/// The bound deletion id, cast to the type of `e`'s deletion-id marker (an
/// adopted text column compares as text, Lethe's own as uuid).
fn marker_id(d: Dialect, b: &mut Binder, schema: &Schema, e: &Entity) -> String {
    let ty = match schema.column_type(&e.table, &e.deletion_id) {
        "" => d.uuid_type(),
        t => t,
    };
    let p = b.bind(crate::dialect::Param::DeletionId);
    d.cast(&p, ty)
}

fn source(d: Dialect, b: &mut Binder, schema: &Schema, e: &Entity, place: Place<'_>) -> Source {
    match place {
        Place::Stored(g) => {
            let id = d.deletion_id(b);
            let from = format!(
                "{} s{}",
                d.own("archive"),
                d.json_record_join("s.row", &e.table, "r")
            );
            let fp = match &g.fingerprint {
                Some(f) => format!("s.fingerprint = {}", d.lit(f)),
                None => "s.fingerprint IS NULL".to_string(),
            };
            let where_ = format!(
                "s.deletion_id = {id} AND s.entity = {} AND {fp}",
                d.lit(&e.name)
            );
            Source {
                from,
                where_,
                col: Box::new(move |c| d.json_field("s.row", "r", c)),
                key_json: "s.key".to_string(),
            }
        }
        Place::Marked => {
            let id = marker_id(d, b, schema, e);
            Source {
                from: format!("{} c", d.table(&e.table)),
                where_: format!("c.{} = {id}", d.ident(&e.deletion_id)),
                col: Box::new(move |c| format!("c.{}", d.ident(c))),
                key_json: d.json_of_columns("c", &e.key),
            }
        }
    }
}

fn tuple_of(cols: &[String], f: &dyn Fn(&str) -> String) -> String {
    format!(
        "({})",
        cols.iter().map(|c| f(c)).collect::<Vec<_>>().join(", ")
    )
}

/// Renders the restore of a deletion whose rows are described by `entities`
/// (in plan order, parents first) and whose set-null changes touched
/// `nullified` entities.
pub fn render_restore(
    d: Dialect,
    policy: &Policy,
    schema: &Schema,
    entities: &[RestoreEntity<'_>],
    nullified: &[&Entity],
) -> RestoreProgram {
    let mut checks = Vec::new();
    // Unique keys among active rows, and the key itself for re-inserted rows.
    for re in entities {
        let e = re.entity;
        for place in re.places() {
            let mut sets: Vec<Vec<String>> = e.unique.clone();
            let stored = matches!(place, Place::Stored(_));
            if stored {
                sets.insert(0, e.key.clone());
            }
            for set in sets {
                let mut b = Binder::new(d);
                let src = source(d, &mut b, schema, e, place);
                let on: Vec<String> = set
                    .iter()
                    .map(|c| format!("a.{} = {}", d.ident(c), (src.col)(c)))
                    .collect();
                let not_same = if stored {
                    String::new()
                } else {
                    format!(" AND {} <> {}", d.tuple("a", &e.key), d.tuple("c", &e.key))
                };
                let sql = format!(
                    "SELECT 'unique', {}, {}, {}, {} FROM {} JOIN {} a ON {} AND {}{not_same} WHERE {} LIMIT 10",
                    d.lit(&e.name),
                    d.text(&src.key_json),
                    d.text(&d.json_of_columns("a", &e.key)),
                    d.lit(&set.join(", ")),
                    src.from,
                    d.table(&e.table),
                    on.join(" AND "),
                    d.active(e, "a"),
                    src.where_
                );
                checks.push(b.finish(sql));
            }
        }
    }
    // A restored row whose parent is deleted (by another deletion) would be an
    // active child of a deleted parent.
    for re in entities {
        let e = re.entity;
        for place in re.places() {
            for r in policy.parents_of(&e.name) {
                if r.on_delete == OnDelete::Keep
                    || re.only_via.as_deref() == Some(r.describe().as_str())
                {
                    continue;
                }
                let parent = &policy.entities[&r.parent];
                let mut b = Binder::new(d);
                let src = source(d, &mut b, schema, e, place);
                let refs = tuple_of(&r.columns, &*src.col);
                let not_null: Vec<String> = r
                    .columns
                    .iter()
                    .map(|c| format!("{} IS NOT NULL", (src.col)(c)))
                    .collect();
                let ref_json = d.json_object(
                    &parent
                        .key
                        .iter()
                        .zip(&r.columns)
                        .map(|(k, c)| (k.clone(), (src.col)(c)))
                        .collect::<Vec<_>>(),
                );
                let id = d.deletion_id(&mut b);
                let pid = marker_id(d, &mut b, schema, parent);
                // Missing parents (any strategy: a soft parent can be removed
                // outside Lethe when no foreign key stops it), and for soft
                // parents, parents marked deleted by another deletion or by hand.
                let missing = format!(
                    "SELECT 'parent', {}, {}, COALESCE((SELECT {} FROM {} s3 WHERE s3.entity = {} AND s3.key = {ref_json} LIMIT 1), ''), {}, 'hard' FROM {} WHERE {} AND {} \
                     AND NOT EXISTS (SELECT 1 FROM {} p WHERE {} = {refs}) \
                     AND NOT EXISTS (SELECT 1 FROM {} s2 WHERE s2.deletion_id = {id} AND s2.entity = {} AND s2.key = {ref_json}) LIMIT 10",
                    d.lit(&r.describe()),
                    d.text(&src.key_json),
                    d.text("s3.deletion_id"),
                    d.own("archive"),
                    d.lit(&parent.name),
                    d.text(&ref_json),
                    src.from,
                    src.where_,
                    not_null.join(" AND "),
                    d.table(&parent.table),
                    d.tuple("p", &parent.key),
                    d.own("archive"),
                    d.lit(&parent.name),
                );
                let missing = b.finish(missing);
                // Hold the parents until commit, so a concurrent delete of a
                // parent waits for this restore and then sees its children.
                if let Some(lock) = d.share_lock("p") {
                    checks.push(Stmt {
                    sql: format!(
                        "SELECT 'locked', {}, {} FROM (SELECT 1 FROM {} p WHERE {} IN (SELECT {refs} FROM {} WHERE {}){lock}) x",
                        d.lit(&r.describe()),
                        d.text("count(*)"),
                        d.table(&parent.table),
                        d.tuple("p", &parent.key),
                        src.from,
                        src.where_
                    ),
                    params: missing.params.clone(),
                });
                }
                if parent.has_markers() {
                    // Same bound values (the deletion id) as the first query.
                    let deleted = format!(
                        "SELECT 'parent', {}, {}, COALESCE({}, ''), {}, 'soft' FROM {} JOIN {} p ON {} = {refs} WHERE {} AND p.{} IS NOT NULL AND (p.{} IS NULL OR p.{} <> {pid}) LIMIT 10",
                        d.lit(&r.describe()),
                        d.text(&src.key_json),
                        d.text(&format!("p.{}", d.ident(&parent.deletion_id))),
                        d.text(&d.json_of_columns("p", &parent.key)),
                        src.from,
                        d.table(&parent.table),
                        d.tuple("p", &parent.key),
                        src.where_,
                        d.ident(&parent.deleted_at),
                        d.ident(&parent.deletion_id),
                        d.ident(&parent.deletion_id),
                    );
                    checks.push(Stmt {
                        sql: deleted,
                        params: missing.params.clone(),
                    });
                }
                checks.push(missing);
            }
        }
    }

    let mut apply = Vec::new();
    // The rows that come back are exactly the rows the deletion recorded in
    // the outbox (same transaction as the marks): announce them again, part
    // by part, without reading the rows — `restored` for deleted rows,
    // `updated` for rows whose set-null references come back.
    let mut b = Binder::new(d);
    let id = d.deletion_id(&mut b);
    let now = d.now(&mut b);
    apply.push(b.finish(format!(
        "{} SELECT o.deletion_id, CASE o.event WHEN 'deleted' THEN 'restored' ELSE 'updated' END, o.entity, o.part, o.keys, o.row_count, {now}, o.key_columns, o.columns FROM {} o WHERE o.deletion_id = {id} AND o.event IN ('deleted', 'updated') ORDER BY o.{}",
        outbox::insert_into(d),
        d.own("outbox"),
        d.ident("id")
    )));
    // Re-inserted rows, parents first.
    for re in entities {
        let e = re.entity;
        let types = |c: &str| schema.column_type(&e.table, c);
        for g in &re.stored {
            let mut b = Binder::new(d);
            let src = source(d, &mut b, schema, e, Place::Stored(g));
            let values: Vec<String> = g
                .columns
                .iter()
                .map(|(c, fill)| match fill {
                    Fill::Stored => d.snapshot_field("s.row", "r", c),
                    Fill::Given(i) => d.cast(&b.bind(Param::Value(*i)), types(c)),
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}){} SELECT {} FROM {} WHERE {}",
                d.table(&e.table),
                g.columns
                    .iter()
                    .map(|(c, _)| d.ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.insert_overriding(),
                values.join(", "),
                src.from,
                src.where_
            );
            apply.push(b.finish(sql));
        }
    }
    for re in entities.iter().filter(|re| re.marked) {
        let e = re.entity;
        let mut b = Binder::new(d);
        let id = marker_id(d, &mut b, schema, e);
        apply.push(b.finish(format!(
            "UPDATE {} SET {} = NULL, {} = NULL WHERE {} = {id}",
            d.table(&e.table),
            d.ident(&e.deleted_at),
            d.ident(&e.deletion_id),
            d.ident(&e.deletion_id)
        )));
    }
    // Set-null columns back, unless the application has set them since.
    let mut put_back = Vec::new();
    for e in nullified {
        let cols: Vec<&String> = policy
            .parents_of(&e.name)
            .filter(|r| r.on_delete == OnDelete::SetNull)
            .flat_map(|r| r.columns.iter())
            .collect();
        if cols.is_empty() {
            continue;
        }
        let mut b = Binder::new(d);
        let id = d.deletion_id(&mut b);
        let merged = d.json_merge("n.prev", "n.key");
        let sets: Vec<String> = cols
            .iter()
            .map(|c| {
                format!(
                    "{} = CASE WHEN {} AND t.{} IS NULL THEN {} ELSE t.{} END",
                    d.ident(c),
                    d.json_has("n.prev", c),
                    d.ident(c),
                    d.json_field("n.prev", "r", c),
                    d.ident(c)
                )
            })
            .collect();
        let key_match: Vec<String> = e
            .key
            .iter()
            .map(|k| format!("t.{} = {}", d.ident(k), d.json_field("n.key", "r", k)))
            .collect();
        // Only rows with something to put back count.
        let pending: Vec<String> = cols
            .iter()
            .map(|c| format!("({} AND t.{} IS NULL)", d.json_has("n.prev", c), d.ident(c)))
            .collect();
        put_back.push((e.name.clone(), apply.len()));
        apply.push(b.finish(format!(
            "UPDATE {} AS t SET {} FROM {} n{} WHERE n.deletion_id = {id} AND n.entity = {} AND {} AND ({})",
            d.table(&e.table),
            sets.join(", "),
            d.own("nullified"),
            d.json_record_join(&merged, &e.table, "r"),
            d.lit(&e.name),
            key_match.join(" AND "),
            pending.join(" OR ")
        )));
    }
    // The copies are no longer needed once the rows are back.
    for t in ["archive", "nullified"] {
        let mut b = Binder::new(d);
        let id = d.deletion_id(&mut b);
        apply.push(b.finish(format!("DELETE FROM {} WHERE deletion_id = {id}", d.own(t))));
    }
    RestoreProgram {
        checks,
        apply,
        put_back,
    }
}
