//! `lethe reconcile`: compares the database with what each cache and search
//! sink holds, and with `fix` repairs the drift:
//! - deleted rows whose cache keys still exist (invalidated);
//! - deleted rows still in a search index (removed);
//! - active rows missing from a search index (indexed from the row).
//!
//! Rows are read a page at a time in key order (flat memory), and each page
//! is checked against the sink in one batched call.

use lethe_core::{Entity, SinkRole};
use lethe_sql::reconcile::{Rows, page, stored_page};
use lethe_store::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::any_sink::AnySink;
use crate::message::{document, render, text};
use crate::relay::RelayError;
use crate::sink::SearchOp;

/// Examples kept per check.
const EXAMPLES: usize = 5;

/// One check of one entity against one sink.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Drift {
    pub sink: String,
    pub entity: String,
    /// `deleted_cached`, `deleted_indexed` or `active_missing`.
    pub check: String,
    /// The search index (search checks).
    pub index: Option<String>,
    /// Cache keys or documents looked at.
    pub checked: u64,
    /// How many were drift.
    pub found: u64,
    /// How many were repaired (with `fix`).
    pub fixed: u64,
    /// Up to five of them: cache keys or document ids.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    pub fix: bool,
    pub checks: Vec<Drift>,
}

impl ReconcileReport {
    pub fn found(&self) -> u64 {
        self.checks.iter().map(|c| c.found).sum()
    }
    pub fn fixed(&self) -> u64 {
        self.checks.iter().map(|c| c.fixed).sum()
    }
}

/// Which rows a page source yields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Active,
    /// Deleted rows still in the table, marked.
    Marked,
    /// Deleted rows in the archive store (hard snapshots, archived rows) of
    /// deletions not restored.
    Stored,
}

/// Rows of an entity, a page at a time, as `{column: value}` maps of the key
/// and the captured columns (stored rows: the stored row's columns). A
/// source of deleted rows reads the marked rows, then the stored ones.
struct Pages<'a> {
    engine: &'a Engine,
    e: &'a Entity,
    /// Sources still to read, the current one first.
    phases: Vec<Which>,
    after: Option<Vec<String>>,
}

impl<'a> Pages<'a> {
    fn active(engine: &'a Engine, e: &'a Entity) -> Self {
        Pages {
            engine,
            e,
            phases: vec![Which::Active],
            after: None,
        }
    }

    fn deleted(engine: &'a Engine, e: &'a Entity) -> Self {
        let mut phases = Vec::new();
        if e.has_markers() {
            phases.push(Which::Marked);
        }
        phases.push(Which::Stored);
        Pages {
            engine,
            e,
            phases,
            after: None,
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<Map<String, Value>>>, RelayError> {
        while let Some(&which) = self.phases.first() {
            let rows = self.page(which).await?;
            if rows.len() < lethe_sql::reconcile::PAGE as usize {
                self.phases.remove(0);
                self.after = None;
            }
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
        Ok(None)
    }

    async fn page(&mut self, which: Which) -> Result<Vec<Map<String, Value>>, RelayError> {
        let d = self.engine.dialect();
        let db = self.engine.db();
        if which == Which::Stored {
            let sql = stored_page(d, self.after.is_some());
            let mut params = vec![Some(self.e.name.clone())];
            if let Some(a) = &self.after {
                params.extend(a.iter().cloned().map(Some));
            }
            let rows = db.rows(&sql, &params).await?;
            if let Some(r) = rows.last() {
                self.after = Some(vec![r.first().cloned().flatten().unwrap_or_default()]);
            }
            return Ok(rows
                .iter()
                .map(|r| {
                    let row = r.get(1).cloned().flatten().unwrap_or_default();
                    match serde_json::from_str::<Value>(&row) {
                        Ok(Value::Object(m)) => m,
                        _ => Map::new(),
                    }
                })
                .collect());
        }
        let rows_kind = if which == Which::Active {
            Rows::Active
        } else {
            Rows::SoftDeleted
        };
        let sql = page(
            d,
            self.engine.schema(),
            self.e,
            rows_kind,
            self.after.is_some(),
        );
        let params: Vec<Option<String>> = self
            .after
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(Some)
            .collect();
        let rows = db.rows(&sql, &params).await?;
        let names = lethe_sql::outbox::row_columns(self.e);
        let maps: Vec<Map<String, Value>> = rows
            .iter()
            .map(|r| {
                let arr = r.first().cloned().flatten().unwrap_or_default();
                let values: Vec<Value> = serde_json::from_str(&arr).unwrap_or_default();
                names.iter().cloned().zip(values).collect()
            })
            .collect();
        if let Some(last) = maps.last() {
            self.after = Some(
                self.e
                    .key
                    .iter()
                    .map(|k| last.get(k).and_then(text).unwrap_or_else(|| "null".into()))
                    .collect(),
            );
        }
        Ok(maps)
    }
}

fn drift(sink: &str, e: &Entity, check: &str, index: Option<&str>) -> Drift {
    Drift {
        sink: sink.to_string(),
        entity: e.name.clone(),
        check: check.to_string(),
        index: index.map(str::to_string),
        checked: 0,
        found: 0,
        fixed: 0,
        examples: Vec::new(),
    }
}

fn note(d: &mut Drift, items: &[String]) {
    d.found += items.len() as u64;
    for i in items {
        if d.examples.len() < EXAMPLES {
            d.examples.push(i.clone());
        }
    }
}

/// Compares every cache and search sink (or only `only_sink`) with the
/// database; with `fix`, repairs what differs.
pub async fn reconcile(
    engine: &Engine,
    only_sink: Option<&str>,
    fix: bool,
) -> Result<ReconcileReport, RelayError> {
    let policy = engine.policy();
    if let Some(s) = only_sink
        && !policy.sinks.contains_key(s)
    {
        return Err(RelayError::Store(lethe_store::StoreError::Invalid(
            format!(
                "no sink named \"{s}\" (declared: {})",
                policy.sinks.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )));
    }
    let mut checks = Vec::new();
    for sink in policy.sinks.values() {
        if only_sink.is_some_and(|s| s != sink.name) || sink.role() == SinkRole::Events {
            continue;
        }
        let named = |error| RelayError::Sink {
            sink: sink.name.clone(),
            error,
        };
        let mut conn = AnySink::new(sink).map_err(named)?;
        for e in policy.entities.values() {
            match sink.role() {
                SinkRole::Cache
                    if e.delivery.cache.contains(&sink.name)
                        && !e.delivery.cache_keys.is_empty() =>
                {
                    let mut d = drift(&sink.name, e, "deleted_cached", None);
                    let mut pages = Pages::deleted(engine, e);
                    while let Some(rows) = pages.next().await? {
                        let keys: Vec<String> = rows
                            .iter()
                            .flat_map(|r| e.delivery.cache_keys.iter().filter_map(|t| render(t, r)))
                            .collect();
                        d.checked += keys.len() as u64;
                        let present = conn.existing(&keys).await.map_err(named)?;
                        let found: Vec<String> = keys
                            .into_iter()
                            .zip(present)
                            .filter(|(_, p)| *p)
                            .map(|(k, _)| k)
                            .collect();
                        note(&mut d, &found);
                        if fix && !found.is_empty() {
                            conn.invalidate(&found).await.map_err(named)?;
                            d.fixed += found.len() as u64;
                        }
                    }
                    checks.push(d);
                }
                SinkRole::Search => {
                    for t in e.delivery.search.iter().filter(|t| t.sink == sink.name) {
                        let mut gone = drift(&sink.name, e, "deleted_indexed", Some(&t.index));
                        let mut pages = Pages::deleted(engine, e);
                        while let Some(rows) = pages.next().await? {
                            let ids: Vec<String> =
                                rows.iter().filter_map(|r| render(&t.id, r)).collect();
                            gone.checked += ids.len() as u64;
                            let present = conn.contains(&t.index, &ids).await.map_err(named)?;
                            let found: Vec<String> = ids
                                .into_iter()
                                .zip(present)
                                .filter(|(_, p)| *p)
                                .map(|(k, _)| k)
                                .collect();
                            note(&mut gone, &found);
                            if fix && !found.is_empty() {
                                let ops: Vec<SearchOp> = found
                                    .iter()
                                    .map(|id| SearchOp::Delete { id: id.clone() })
                                    .collect();
                                conn.apply(&t.index, &ops).await.map_err(named)?;
                                gone.fixed += ops.len() as u64;
                            }
                        }
                        checks.push(gone);
                        let mut missing = drift(&sink.name, e, "active_missing", Some(&t.index));
                        let mut pages = Pages::active(engine, e);
                        while let Some(rows) = pages.next().await? {
                            let docs: Vec<(String, &Map<String, Value>)> = rows
                                .iter()
                                .filter_map(|r| Some((render(&t.id, r)?, r)))
                                .collect();
                            let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).collect();
                            missing.checked += ids.len() as u64;
                            let present = conn.contains(&t.index, &ids).await.map_err(named)?;
                            let absent: Vec<&(String, &Map<String, Value>)> = docs
                                .iter()
                                .zip(present)
                                .filter(|(_, p)| !*p)
                                .map(|(d, _)| d)
                                .collect();
                            let names: Vec<String> =
                                absent.iter().map(|(id, _)| id.clone()).collect();
                            note(&mut missing, &names);
                            if fix && !absent.is_empty() {
                                let ops: Vec<SearchOp> = absent
                                    .iter()
                                    .map(|(id, r)| SearchOp::Upsert {
                                        id: id.clone(),
                                        doc: document(t, r),
                                    })
                                    .collect();
                                conn.apply(&t.index, &ops).await.map_err(named)?;
                                missing.fixed += ops.len() as u64;
                            }
                        }
                        checks.push(missing);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(ReconcileReport { fix, checks })
}
