//! `lethe archive import`: rows from export files back into Lethe's archive
//! store, from where `lethe restore` brings their deletions back. Every
//! file is checked against its manifest (size, SHA-256) before it is read;
//! sealed personal values are opened with their subject's data key (a
//! shredded subject's values come back as NULL). A row already in the store
//! or still marked in its table is skipped, so importing twice, or files
//! that overlap, is harmless. Deletions whose purged rows came back (an
//! import of every entity) can be restored again.

use std::collections::BTreeSet;
use std::path::PathBuf;

use futures_util::StreamExt;
use lethe_sql::cold;
use lethe_store::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::crypto::parse_sealed;
use crate::error::{ColdError, Result};
use crate::file::{Line, download, get_small, lines};
use crate::keys::{Keys, kek};
use crate::location::Location;
use crate::manifest::{self, Manifest};

const PAGE: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Only this entity's files (deletions are then not reopened: other
    /// entities' rows of them may still be missing).
    pub entity: Option<String>,
    /// Only this day's files.
    pub day: Option<String>,
    /// Only this manifest (relative to the location); default: every one.
    pub manifest: Option<String>,
    pub temp_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImportedFile {
    pub entity: String,
    pub day: String,
    pub path: String,
    /// Lines in the file.
    pub rows: u64,
    /// Rows put back into the archive store.
    pub imported: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    pub location: String,
    pub manifests: Vec<String>,
    pub files: Vec<ImportedFile>,
    /// Personal values opened, and values whose subject's key is shredded
    /// (they come back as NULL).
    pub opened: u64,
    pub shredded: u64,
    /// Deletions that can be restored again.
    pub reopened: Vec<String>,
}

impl ImportReport {
    pub fn imported(&self) -> u64 {
        self.files.iter().map(|f| f.imported).sum()
    }
}

/// Opens `e`'s sealed values in `obj`.
fn open_object(
    pii: &BTreeSet<String>,
    obj: &mut Map<String, Value>,
    keys: &Keys,
    counts: &mut (u64, u64),
) {
    for (col, v) in obj.iter_mut() {
        if !pii.contains(col) {
            continue;
        }
        let opened = match v.get("$sealed").and_then(Value::as_str) {
            Some(sealed) => parse_sealed(sealed)
                .and_then(|(subject, _)| keys.get(subject))
                .and_then(|k| k.open(col, sealed)),
            None if v.get("$shredded").is_some() => None,
            None => continue,
        };
        match opened {
            Some(x) => {
                counts.0 += 1;
                *v = x;
            }
            None => {
                counts.1 += 1;
                *v = Value::Null;
            }
        }
    }
}

/// The subjects whose keys a page needs.
fn sealed_subjects(lines: &[Line]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for l in lines {
        for obj in [&l.row, &l.key] {
            if let Value::Object(m) = obj {
                for v in m.values() {
                    if let Some((s, _)) = v
                        .get("$sealed")
                        .and_then(Value::as_str)
                        .and_then(parse_sealed)
                    {
                        out.insert(s.to_string());
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

pub(crate) async fn manifests(
    location: &Location,
    only: Option<&str>,
) -> Result<Vec<(String, Manifest)>> {
    let mut paths = Vec::new();
    match only {
        Some(p) => paths.push(location.path(p)),
        None => {
            let mut list = location.store.list(Some(&location.path(manifest::FOLDER)));
            while let Some(meta) = list.next().await {
                let meta = meta?;
                if meta.location.as_ref().ends_with(".json") {
                    paths.push(meta.location);
                }
            }
            paths.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let body = get_small(location, &p).await?;
        let m: Manifest = serde_json::from_slice(&body).map_err(|e| {
            ColdError::Corrupt(format!(
                "{} is not a Lethe manifest: {e}",
                location.relative(&p)
            ))
        })?;
        if m.version != 1 {
            return Err(ColdError::Corrupt(format!(
                "{} is manifest version {}; this Lethe reads version 1",
                location.relative(&p),
                m.version
            )));
        }
        out.push((location.relative(&p), m));
    }
    Ok(out)
}

/// Imports from `location`.
pub async fn import(
    engine: &Engine,
    location: &Location,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let policy = engine.policy();
    let d = engine.dialect();
    if let Some(name) = &opts.entity
        && policy.entity(name).is_none()
    {
        return Err(lethe_core::plan::unknown_entity(policy, name).into());
    }
    let found = manifests(location, opts.manifest.as_deref()).await?;
    if found.is_empty() {
        return Err(ColdError::Invalid(format!(
            "no manifest under {}/{}: nothing was exported there",
            location.name,
            manifest::FOLDER
        )));
    }
    let (kek, _) = kek(engine, policy).await?;
    let mut keys = Keys::new(kek);
    let tmp = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut report = ImportReport {
        location: location.name.clone(),
        manifests: Vec::new(),
        files: Vec::new(),
        opened: 0,
        shredded: 0,
        reopened: Vec::new(),
    };
    let mut counts = (0u64, 0u64);
    let mut deletions: BTreeSet<String> = BTreeSet::new();
    for (name, m) in found {
        // The column lists the rows were stored with, for restore.
        let now = lethe_store::time_text(OffsetDateTime::now_utc());
        let mut tx = engine.db().begin_write().await?;
        for (id, f) in &m.fingerprints {
            tx.exec(
                &cold::register_fingerprint(d),
                &[
                    Some(id.clone()),
                    Some(f.entity.clone()),
                    Some(f.table.clone()),
                    Some(serde_json::to_string(&f.columns).unwrap_or_default()),
                    Some(now.clone()),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        for f in &m.files {
            if opts.entity.as_ref().is_some_and(|e| *e != f.entity)
                || opts.day.as_ref().is_some_and(|x| *x != f.day)
            {
                continue;
            }
            let e = policy.entity(&f.entity).ok_or_else(|| {
                ColdError::Invalid(format!(
                    "{} holds rows of entity \"{}\", which the policy no longer manages",
                    f.path, f.entity
                ))
            })?;
            let pii: BTreeSet<String> = e.pii.keys().cloned().collect();
            let local = download(
                location,
                &location.path(&f.path),
                &tmp,
                f.bytes,
                f.sha256.clone().as_str(),
            )
            .await?;
            let mut imported = 0u64;
            let mut page: Vec<Line> = Vec::new();
            let mut it = lines(&local, &f.path)?;
            loop {
                let next = it.next();
                let end = next.is_none();
                if let Some(l) = next {
                    let l = l?;
                    if l.entity != f.entity {
                        return Err(ColdError::Corrupt(format!(
                            "{}: a row of \"{}\" in a file of \"{}\"",
                            f.path, l.entity, f.entity
                        )));
                    }
                    page.push(l);
                }
                if page.len() >= PAGE || (end && !page.is_empty()) {
                    keys.load(engine, &sealed_subjects(&page), false).await?;
                    let mut items = Vec::with_capacity(page.len());
                    for mut l in page.drain(..) {
                        for obj in [&mut l.row, &mut l.key] {
                            if let Value::Object(mm) = obj {
                                open_object(&pii, mm, &keys, &mut counts);
                            }
                        }
                        items.push(json!({
                            "deletion_id": l.deletion_id,
                            "key": l.key,
                            "row": l.row,
                            "fingerprint": l.fingerprint.unwrap_or_default(),
                            "deleted_at": l.deleted_at,
                        }));
                    }
                    let at = lethe_store::time_text(OffsetDateTime::now_utc());
                    let mut tx = engine.db().begin_write().await?;
                    let rows = tx
                        .rows(
                            &cold::import_rows(d, engine.schema(), e),
                            &[Some(Value::from(items).to_string()), Some(at.clone())],
                        )
                        .await?;
                    let n = rows.len() as u64;
                    if n > 0 {
                        lethe_store::audit::append_alone(
                            &mut tx,
                            d,
                            &at,
                            "import",
                            json!({"location": location.name, "file": f.path, "entity": f.entity, "rows": n}),
                        )
                        .await?;
                    }
                    tx.commit().await?;
                    imported += n;
                    for r in rows {
                        deletions.insert(r.first().cloned().flatten().unwrap_or_default());
                    }
                }
                if end {
                    break;
                }
            }
            let _ = std::fs::remove_file(&local);
            report.files.push(ImportedFile {
                entity: f.entity.clone(),
                day: f.day.clone(),
                path: f.path.clone(),
                rows: f.rows,
                imported,
            });
        }
        report.manifests.push(name);
    }
    (report.opened, report.shredded) = counts;
    // Whole days of every entity came back: their deletions are whole
    // again and can be restored.
    if opts.entity.is_none() && !deletions.is_empty() {
        let list: Vec<&String> = deletions.iter().collect();
        let at = lethe_store::time_text(OffsetDateTime::now_utc());
        let mut tx = engine.db().begin_write().await?;
        let reopened: Vec<String> = tx
            .rows(
                &cold::reopen_deletions(d),
                &[Some(serde_json::to_string(&list).unwrap_or_default())],
            )
            .await?
            .into_iter()
            .map(|r| r.first().cloned().flatten().unwrap_or_default())
            .collect();
        if !reopened.is_empty() {
            lethe_store::audit::append_alone(
                &mut tx,
                d,
                &at,
                "reopen",
                json!({"location": location.name, "deletions": reopened}),
            )
            .await?;
        }
        tx.commit().await?;
        report.reopened = reopened;
    }
    Ok(report)
}
