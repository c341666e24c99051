//! What a scheduled job does (`[jobs.NAME] run = "purge" | "export"`): the
//! work `lethe worker` (and later the server) hands to
//! `lethe_store::Engine::work`. Lives here because an export needs this
//! crate and a purge needs the store, which this crate already uses.

use std::path::Path;

use lethe_core::{Job, JobKind};
use lethe_store::{Engine, PurgeOptions, purge::DEFAULT_BATCH};
use serde_json::{Value, json};

use crate::export::{ExportOptions, export};
use crate::location::{Location, S3Settings};

/// Runs `job` once; `base` is the policy file's directory (relative export
/// directories are taken from there). The summary or the error, as text.
pub async fn run(engine: &Engine, job: &Job, base: &Path) -> Result<Value, String> {
    match &job.kind {
        JobKind::Purge {
            batch_size,
            max_rows_per_second,
        } => {
            let opts = PurgeOptions {
                entity: job.entity.clone(),
                dry_run: false,
                batch_size: batch_size.unwrap_or(DEFAULT_BATCH),
                max_rows_per_second: *max_rows_per_second,
                actor: Some(format!("job:{}", job.name)),
            };
            let r = engine
                .purge(&opts, &mut |_| {})
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({
                "purge_id": r.purge_id,
                "done": r.done(),
                "held": r.held(),
                "referenced": r.referenced(),
                "batches": r.batches,
                "longest_batch_ms": r.longest_batch_ms,
            }))
        }
        JobKind::Export => {
            let cfg = engine
                .policy()
                .export
                .as_ref()
                .ok_or("no [export] in the policy")?;
            let s3 = S3Settings {
                endpoint: cfg.endpoint.clone(),
                region: cfg.region.clone(),
                credentials: None,
            };
            let loc = Location::open(&cfg.to, &s3, base, true).map_err(|e| e.to_string())?;
            let opts = ExportOptions {
                entity: job.entity.clone(),
                ..Default::default()
            };
            let r = export(engine, &loc, &opts)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({
                "location": r.location,
                "manifest": r.manifest,
                "files": r.files.len(),
                "rows": r.rows(),
            }))
        }
    }
}
