//! Runs erasure requests (GDPR Art. 17) from start to end, across the
//! database (`lethe-store`), the sinks (`lethe-relay`) and exported files
//! (`lethe-cold`): the CLI and the server call these, nothing else.
//!
//! A request goes `pending -> in_progress -> completed | failed`:
//! 1. the table step: every subject row deleted or anonymized, in tables
//!    and the archive store, the cold-storage data key destroyed (one
//!    transaction, see `lethe_store::erasure`);
//! 2. the sink steps: the relay delivers `lethe.erased` to caches, search
//!    indexes, brokers and webhooks; a webhook's 2xx is the third party's
//!    acknowledgement, or an operator confirms a step by hand;
//! 3. verification: the database, the exported files and the sinks are
//!    scanned for the subject's rows and original values;
//! 4. completion, with a certificate whose hash enters the audit chain.
//!
//! [`advance`] takes a request as far as it can go now; it is what
//! `lethe erasures resume` runs, and running it again is harmless.

use std::path::PathBuf;

use lethe_cold::Location;
use lethe_store::erasure::{DbScan, EraseRequest, ErasureRecord, LedgerEntry, Residue};
use lethe_store::{Engine, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

/// Where verification looks beyond the database.
#[derive(Default)]
pub struct Places {
    /// The export location (`[export] to`); `None`: no files to scan.
    pub export: Option<Location>,
    /// Where exported files are downloaded to be read (default: the
    /// system's temporary directory).
    pub temp_dir: Option<PathBuf>,
}

/// A verification's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub clean: bool,
    pub at: String,
    /// What was left, and where.
    pub residue: Vec<Residue>,
    /// Database places scanned.
    pub tables: Vec<String>,
    /// Exported files read (`None`: no export location).
    pub files: Option<u64>,
    /// Sealed values of the subject found in files, none readable.
    pub shredded_values: u64,
    /// Cache and search sinks checked, with how many keys or documents.
    pub sinks: Vec<String>,
    /// Rows kept on purpose, with their legal basis.
    pub kept: Vec<lethe_store::erasure::EntityErasure>,
}

fn now() -> String {
    lethe_store::time_text(time::OffsetDateTime::now_utc())
}

/// Creates the request (or finds it by its request id), runs its table
/// step with the subject's key, and [`advance`]s it.
pub async fn erase(
    engine: &Engine,
    req: &EraseRequest,
    places: &Places,
) -> Result<ErasureRecord, StoreError> {
    let rec = engine.erasure_start(req).await?;
    advance(engine, &rec.id, places).await
}

/// Takes request `id` as far as it can go now: the table step if it has
/// not run (finding the subject by its hash), the sinks' state, then, once
/// every step is done or confirmed, verification and completion. A sink
/// with dead deliveries or a verification with residue fails the request
/// (with the reason); fix it and advance again.
pub async fn advance(
    engine: &Engine,
    id: &str,
    places: &Places,
) -> Result<ErasureRecord, StoreError> {
    let rec = engine.erasure(id).await?;
    if rec.state == "completed" {
        return Ok(rec);
    }
    if rec.deletion_id.is_none() {
        engine.erasure_run_tables(&rec, None).await?;
    }
    let rec = engine.erasure_sync_sinks(&rec.id).await?;
    if let Some(s) = rec
        .steps
        .iter()
        .find(|s| s.state == "failed" && s.kind != "verify")
    {
        let why = format!(
            "step \"{}\" failed: {}; fix it (`lethe deliveries --state dead`, then `lethe replay --dead`) or confirm it by hand (`lethe erasures confirm`), then `lethe erasures resume {}`",
            s.name, s.detail, rec.id
        );
        engine
            .erasure_set_state(&rec.id, "failed", Some(&why))
            .await?;
        return engine.erasure(&rec.id).await;
    }
    if !rec.open_steps().is_empty() {
        engine
            .erasure_set_state(&rec.id, "in_progress", None)
            .await?;
        return engine.erasure(&rec.id).await;
    }
    // Caches and search indexes are checked first, while the outbox still
    // holds the original values their keys and documents are made of.
    let sinks = sink_check(engine, &rec).await?;
    // Every sink has what it needed: the outbox's copies of the original
    // values can go, once caches and indexes hold nothing of the rows (a
    // resumed request checks them again, with the values).
    if sinks.0.is_empty() {
        engine.erasure_scrub_outbox(&rec.id).await?;
    }
    let v = verify_with(engine, &rec.id, places, Some(sinks)).await?;
    if !v.clean {
        let first = &v.residue[0];
        let why = format!(
            "verification found {} place(s) with residue, first {}: {} ({} row(s)); `lethe erasures verify {}` lists them all",
            v.residue.len(),
            first.place,
            first.what,
            first.rows,
            rec.id
        );
        engine
            .erasure_set_state(&rec.id, "failed", Some(&why))
            .await?;
        return engine.erasure(&rec.id).await;
    }
    let rec = engine.erasure(&rec.id).await?;
    let cert = certificate(&rec, &v);
    let (done, _) = engine.erasure_complete(&rec.id, &cert).await?;
    Ok(done)
}

/// Scans every place for what request `id` should have removed, records
/// the result on the request (its verification step is then done or
/// failed) and returns it.
///
/// On a completed request the scan runs and is returned but not recorded:
/// the certificate keeps the verification it was issued on.
pub async fn verify(
    engine: &Engine,
    id: &str,
    places: &Places,
) -> Result<Verification, StoreError> {
    verify_with(engine, id, places, None).await
}

/// What the caches and search indexes still hold of the erased rows, and
/// which sinks were checked.
type SinkCheck = (Vec<Residue>, Vec<String>);

async fn sink_check(engine: &Engine, rec: &ErasureRecord) -> Result<SinkCheck, StoreError> {
    match &rec.deletion_id {
        Some(deletion) => lethe_relay::erasure::sink_residue(engine, deletion)
            .await
            .map_err(StoreError::from),
        None => Ok((Vec::new(), Vec::new())),
    }
}

/// [`verify`], with the sinks checked already (`sinks`) or now.
async fn verify_with(
    engine: &Engine,
    id: &str,
    places: &Places,
    sinks: Option<SinkCheck>,
) -> Result<Verification, StoreError> {
    let rec = engine.erasure(id).await?;
    let DbScan {
        mut residue,
        kept,
        scanned,
    } = engine.erasure_scan(&rec.id).await?;
    let mut v = Verification {
        clean: false,
        at: now(),
        residue: Vec::new(),
        tables: scanned,
        files: None,
        shredded_values: 0,
        sinks: Vec::new(),
        kept,
    };
    if let Some(loc) = &places.export {
        let f = lethe_cold::erasure::file_residue(
            engine,
            loc,
            &rec.data_key,
            &rec.pii_hashes,
            places.temp_dir.as_deref(),
        )
        .await
        .map_err(StoreError::from)?;
        residue.extend(f.residue);
        v.files = Some(f.files);
        v.shredded_values = f.shredded_values;
    }
    let (r, checked) = match sinks {
        Some(s) => s,
        None => sink_check(engine, &rec).await?,
    };
    residue.extend(r);
    v.sinks = checked;
    v.clean = residue.is_empty() && rec.deletion_id.is_some();
    v.residue = residue;
    if rec.state != "completed" {
        engine
            .erasure_record_verification(
                &rec.id,
                &serde_json::to_value(&v).unwrap_or(Value::Null),
                v.clean,
            )
            .await?;
    }
    Ok(v)
}

/// The certificate of a completed request: what was done where, and the
/// clean verification. It names the subject only by keyed hash.
pub fn certificate(rec: &ErasureRecord, v: &Verification) -> Value {
    json!({
        "type": "lethe.erasure-certificate",
        "version": 1,
        "erasure_id": rec.id,
        "request_id": rec.request_id,
        "entity": rec.entity,
        "subject": rec.subject,
        "actor": rec.actor,
        "reason": rec.reason,
        "requested_at": rec.created_at,
        "completed_at": v.at,
        "deletion_id": rec.deletion_id,
        "counts": rec.summary,
        "steps": rec.steps.iter().map(|s| json!({
            "name": s.name, "kind": s.kind, "state": s.state, "detail": s.detail,
        })).collect::<Vec<_>>(),
        "verification": v,
    })
}

/// Runs every ledger entry again on `engine`'s database (restored from a
/// backup older than the erasures), then advances each request.
pub async fn reapply(
    engine: &Engine,
    entries: &[LedgerEntry],
    actor: Option<&str>,
    places: &Places,
) -> Result<Vec<ErasureRecord>, StoreError> {
    // Every entry is checked before any runs: a foreign ledger changes
    // nothing at all.
    for e in entries {
        engine.erasure_ledger_check(e)?;
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let rec = engine.erasure_reapply(e, actor).await?;
        out.push(advance(engine, &rec.id, places).await?);
    }
    Ok(out)
}
