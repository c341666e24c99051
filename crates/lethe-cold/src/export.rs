//! `lethe archive export`: every deleted row (marked in its table, or in
//! the archive store) to compressed JSON Lines files, one per entity and
//! deletion day, plus a manifest. Only complete UTC days are exported, each
//! once per location (a day already recorded is skipped unless forced):
//! all rows of one deletion share its time, so a day's file holds whole
//! deletions. Personal values are sealed per data subject.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use lethe_core::{Entity, Fingerprint};
use lethe_sql::{Param, cold};
use lethe_store::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::error::{ColdError, Result};
use crate::file::{FileWriter, Line, put_small, upload};
use crate::keys::{Keys, kek};
use crate::location::Location;
use crate::manifest::{self, Encryption, FileEntry, FingerprintEntry, Manifest};
use crate::subjects::subjects;

/// Rows read per query.
const PAGE: usize = 1000;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only this entity.
    pub entity: Option<String>,
    /// Only this UTC day (`YYYY-MM-DD`), which must be over.
    pub day: Option<String>,
    /// Export days already exported to this location again (new files, and
    /// the record points at them).
    pub force: bool,
    /// Where temporary files go (default: the system's).
    pub temp_dir: Option<PathBuf>,
}

/// One file written.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportedFile {
    pub entity: String,
    pub day: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportReport {
    pub location: String,
    /// The manifest written (relative to the location); `None` when there
    /// was nothing new to export.
    pub manifest: Option<String>,
    pub files: Vec<ExportedFile>,
    /// `(entity, day)` already exported, skipped.
    pub skipped: Vec<(String, String)>,
    /// Personal values sealed, and values left out because their subject's
    /// key was shredded (erased).
    pub sealed: u64,
    pub shredded: u64,
}

impl ExportReport {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

fn day_start(day: &str) -> Result<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &fmt)
        .map_err(|_| ColdError::Invalid(format!("\"{day}\" is not a day (YYYY-MM-DD)")))?;
    Ok(date.midnight().assume_utc())
}

/// Seals `e`'s personal values in `obj` (a row or a key) for `subject`.
pub(crate) fn seal_object(
    e: &Entity,
    obj: &mut Map<String, Value>,
    subject: &str,
    keys: &Keys,
    counts: &mut (u64, u64),
) -> Result<()> {
    for col in e.pii.keys() {
        let Some(v) = obj.get_mut(col) else { continue };
        if v.is_null() {
            continue;
        }
        *v = match keys.get(subject) {
            Some(k) => {
                counts.0 += 1;
                json!({"$sealed": k.seal(subject, col, v)?})
            }
            // An erased subject: its values are not written at all.
            None => {
                counts.1 += 1;
                json!({"$shredded": true})
            }
        };
    }
    Ok(())
}

struct Page {
    lines: Vec<Line>,
    rows: Vec<Map<String, Value>>,
    keys: Vec<Vec<Value>>,
}

impl Page {
    fn new() -> Page {
        Page {
            lines: Vec::new(),
            rows: Vec::new(),
            keys: Vec::new(),
        }
    }
}

/// Seals a page and writes it.
async fn flush(
    engine: &Engine,
    e: &Entity,
    page: &mut Page,
    keys: &mut Keys,
    w: &mut FileWriter,
    counts: &mut (u64, u64),
) -> Result<()> {
    if page.lines.is_empty() {
        return Ok(());
    }
    if !e.pii.is_empty() {
        let ids = subjects(engine, e, &page.rows, &page.keys).await?;
        keys.load(engine, &ids, true).await?;
        for (line, subject) in page.lines.iter_mut().zip(&ids) {
            for obj in [&mut line.row, &mut line.key] {
                if let Value::Object(m) = obj {
                    seal_object(e, m, subject, keys, counts)?;
                }
            }
        }
    }
    for l in page.lines.drain(..) {
        w.write(&l)?;
    }
    page.rows.clear();
    page.keys.clear();
    Ok(())
}

/// Exports to `location`.
pub async fn export(
    engine: &Engine,
    location: &Location,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let policy = engine.policy();
    let d = engine.dialect();
    if let Some(name) = &opts.entity
        && policy.entity(name).is_none()
    {
        return Err(lethe_core::plan::unknown_entity(policy, name).into());
    }
    let now = OffsetDateTime::now_utc();
    let today = now.date().midnight().assume_utc();
    let today_text = lethe_store::time_text(today);
    if let Some(day) = &opts.day
        && day_start(day)? >= today
    {
        return Err(ColdError::Invalid(format!(
            "{day} is not over yet (UTC): only whole days are exported, so a day's file holds whole deletions"
        )));
    }
    let done: HashSet<(String, String)> = engine
        .db()
        .rows(&cold::exported_days(d), &[Some(location.name.clone())])
        .await?
        .into_iter()
        .map(|r| {
            (
                r.first().cloned().flatten().unwrap_or_default(),
                r.get(1).cloned().flatten().unwrap_or_default(),
            )
        })
        .collect();
    let (kek, kek_source) = kek(engine, policy).await?;
    let mut keys = Keys::new(kek);
    let run = uuid::Uuid::now_v7().to_string();
    let tmp = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut report = ExportReport {
        location: location.name.clone(),
        manifest: None,
        files: Vec::new(),
        skipped: Vec::new(),
        sealed: 0,
        shredded: 0,
    };
    let mut counts = (0u64, 0u64);
    let mut fingerprints: BTreeSet<String> = BTreeSet::new();
    let mut current: BTreeMap<String, FingerprintEntry> = BTreeMap::new();
    for e in policy.entities.values() {
        if opts.entity.as_ref().is_some_and(|o| *o != e.name) {
            continue;
        }
        let Some(table) = engine.schema().table(&e.table) else {
            continue;
        };
        let fp = Fingerprint::of(table);
        let mut days = BTreeSet::new();
        if e.has_markers() {
            for r in engine
                .db()
                .rows(
                    &cold::marked_days(d, engine.schema(), e),
                    &[Some(today_text.clone())],
                )
                .await?
            {
                days.insert(r.first().cloned().flatten().unwrap_or_default());
            }
        }
        for r in engine
            .db()
            .rows(
                &cold::stored_days(d),
                &[Some(e.name.clone()), Some(today_text.clone())],
            )
            .await?
        {
            days.insert(r.first().cloned().flatten().unwrap_or_default());
        }
        for day in days {
            if opts.day.as_ref().is_some_and(|x| *x != day) {
                continue;
            }
            if done.contains(&(e.name.clone(), day.clone())) && !opts.force {
                report.skipped.push((e.name.clone(), day));
                continue;
            }
            let start = day_start(&day)?;
            let (from, to) = (
                lethe_store::time_text(start),
                lethe_store::time_text(start + time::Duration::days(1)),
            );
            let mut w = FileWriter::create(&tmp)?;
            let mut page = Page::new();
            if e.has_markers() {
                let mut after: Option<Vec<String>> = None;
                loop {
                    let stmt = cold::marked_page(d, engine.schema(), e, after.is_some());
                    let params: Vec<Option<String>> = stmt
                        .params
                        .iter()
                        .map(|p| match p {
                            Param::Value(0) => Some(from.clone()),
                            Param::Value(1) => Some(to.clone()),
                            Param::Value(_) => Some(PAGE.to_string()),
                            Param::Key(i) => after.as_ref().and_then(|a| a.get(*i).cloned()),
                            _ => None,
                        })
                        .collect();
                    let rows = engine.db().rows(&stmt.sql, &params).await?;
                    let n = rows.len();
                    for r in &rows {
                        let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                        let key_vals: Vec<Value> =
                            serde_json::from_str(&text(0)).unwrap_or_default();
                        let row: Map<String, Value> =
                            serde_json::from_str(&text(4)).unwrap_or_default();
                        after = Some(key_vals.iter().map(text_of).collect());
                        fingerprints.insert(fp.id.clone());
                        current
                            .entry(fp.id.clone())
                            .or_insert_with(|| FingerprintEntry {
                                entity: e.name.clone(),
                                table: e.table.clone(),
                                columns: fp.columns.clone(),
                            });
                        page.lines.push(Line {
                            deletion_id: text(2),
                            entity: e.name.clone(),
                            key: serde_json::from_str(&text(1)).unwrap_or(Value::Null),
                            deleted_at: text(3),
                            source: "table".into(),
                            fingerprint: Some(fp.id.clone()),
                            row: Value::Object(row.clone()),
                        });
                        page.rows.push(row);
                        page.keys.push(key_vals);
                    }
                    flush(engine, e, &mut page, &mut keys, &mut w, &mut counts).await?;
                    if n < PAGE {
                        break;
                    }
                }
            }
            let mut after_id = "0".to_string();
            loop {
                let rows = engine
                    .db()
                    .rows(
                        &cold::stored_page(d),
                        &[
                            Some(e.name.clone()),
                            Some(from.clone()),
                            Some(to.clone()),
                            Some(after_id.clone()),
                            Some(PAGE.to_string()),
                        ],
                    )
                    .await?;
                let n = rows.len();
                for r in &rows {
                    let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                    after_id = text(0);
                    let key: Map<String, Value> =
                        serde_json::from_str(&text(1)).unwrap_or_default();
                    let row: Map<String, Value> =
                        serde_json::from_str(&text(4)).unwrap_or_default();
                    let f = Some(text(5)).filter(|f| !f.is_empty());
                    if let Some(f) = &f {
                        fingerprints.insert(f.clone());
                    }
                    page.keys.push(
                        e.key
                            .iter()
                            .map(|k| key.get(k).cloned().unwrap_or(Value::Null))
                            .collect(),
                    );
                    page.lines.push(Line {
                        deletion_id: text(2),
                        entity: e.name.clone(),
                        key: Value::Object(key),
                        deleted_at: text(3),
                        source: text(6),
                        fingerprint: f,
                        row: Value::Object(row.clone()),
                    });
                    page.rows.push(row);
                }
                flush(engine, e, &mut page, &mut keys, &mut w, &mut counts).await?;
                if n < PAGE {
                    break;
                }
            }
            if w.rows == 0 {
                w.discard();
                continue;
            }
            let written = w.finish()?;
            let rel = format!("{}/{day}/{run}.jsonl.zst", e.name);
            upload(location, &written.path, &location.path(&rel)).await?;
            report.files.push(ExportedFile {
                entity: e.name.clone(),
                day,
                path: rel,
                rows: written.rows,
                bytes: written.bytes,
                sha256: written.sha256,
            });
        }
    }
    (report.sealed, report.shredded) = counts;
    if report.files.is_empty() {
        return Ok(report);
    }
    // The column lists of every fingerprint the rows were stored with.
    let mut fp_entries = current;
    let ids: Vec<&String> = fingerprints
        .iter()
        .filter(|f| !fp_entries.contains_key(*f))
        .collect();
    if !ids.is_empty() {
        let list = serde_json::to_string(&ids).unwrap_or_default();
        for r in engine
            .db()
            .rows(&cold::fingerprints(d), &[Some(list)])
            .await?
        {
            let id = r.first().cloned().flatten().unwrap_or_default();
            let cols: Vec<(String, String)> =
                serde_json::from_str(&r.get(1).cloned().flatten().unwrap_or_default())
                    .unwrap_or_default();
            fp_entries.insert(
                id,
                FingerprintEntry {
                    entity: r.get(2).cloned().flatten().unwrap_or_default(),
                    table: r.get(3).cloned().flatten().unwrap_or_default(),
                    columns: cols,
                },
            );
        }
    }
    let manifest = Manifest {
        version: 1,
        id: run.clone(),
        created_at: lethe_store::time_text(now),
        files: report
            .files
            .iter()
            .map(|f| FileEntry {
                entity: f.entity.clone(),
                day: f.day.clone(),
                path: f.path.clone(),
                rows: f.rows,
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            })
            .collect(),
        fingerprints: fp_entries,
        encryption: Encryption {
            scheme: "aes-256-gcm".into(),
            kek: kek_source,
            subject: policy.subject.clone(),
            sealed: policy
                .entities
                .values()
                .filter(|e| !e.pii.is_empty())
                .map(|e| (e.name.clone(), e.pii.keys().cloned().collect()))
                .collect(),
        },
    };
    let rel = format!("{}/{run}.json", manifest::FOLDER);
    let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    put_small(location, &location.path(&rel), body).await?;
    // Recorded once the manifest is there: a run that dies before exports
    // those days again next time.
    let mut tx = engine.db().begin_write().await?;
    let at = lethe_store::time_text(OffsetDateTime::now_utc());
    for f in &report.files {
        tx.exec(
            &cold::record_export(d),
            &[
                Some(location.name.clone()),
                Some(f.entity.clone()),
                Some(f.day.clone()),
                Some(f.path.clone()),
                Some(f.rows.to_string()),
                Some(f.bytes.to_string()),
                Some(f.sha256.clone()),
                Some(rel.clone()),
                Some(at.clone()),
            ],
        )
        .await?;
    }
    lethe_store::audit::append_alone(
        &mut tx,
        d,
        &at,
        "export",
        json!({
            "location": location.name,
            "manifest": rel,
            "files": report.files.len(),
            "rows": report.rows(),
        }),
    )
    .await?;
    tx.commit().await?;
    report.manifest = Some(rel);
    Ok(report)
}

/// A JSON scalar as the text a bound parameter takes.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
