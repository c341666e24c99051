//! `lethe archive export | import | list`: cold storage of deleted and
//! archived rows. Thin: the work is in `lethe-cold`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use lethe_cold::{ExportOptions, ImportOptions, Location, S3Settings};
use lethe_store::StoreError;
use serde_json::json;

use crate::Cli;
use crate::commands::engine;
use crate::exit;
use crate::output::{plural, print_json};
use crate::table;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Export deleted and archived rows to files: JSON Lines compressed
    /// with zstd, one file per entity and deletion day (whole UTC days
    /// only, each day once per location), and a manifest with row counts
    /// and SHA-256 checksums. Personal (pii) values are sealed with a data
    /// key per data subject. Rows stay in the database; `lethe purge`
    /// removes them on their retention.
    Export {
        /// A directory, file:///dir or s3://bucket/prefix (default: [export] to).
        #[arg(long, value_name = "LOCATION")]
        to: Option<String>,
        /// Only this entity.
        #[arg(long)]
        entity: Option<String>,
        /// Only this UTC day (YYYY-MM-DD, over already).
        #[arg(long, value_name = "DAY")]
        day: Option<String>,
        /// Export days already exported to this location again.
        #[arg(long)]
        force: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Import exported rows back into Lethe's archive store (checked
    /// against their manifest first), from where `lethe restore` brings
    /// their deletions back. Rows already there are skipped.
    Import {
        /// A directory, file:///dir or s3://bucket/prefix (default: [export] to).
        #[arg(long, value_name = "LOCATION")]
        from: Option<String>,
        /// Only this entity's files.
        #[arg(long)]
        entity: Option<String>,
        /// Only this day's files.
        #[arg(long, value_name = "DAY")]
        day: Option<String>,
        /// Only this manifest (a path relative to the location).
        #[arg(long, value_name = "PATH")]
        manifest: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List what was exported, where, with row counts and checksums.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

impl ArchiveCommand {
    pub fn json(&self) -> bool {
        match self {
            ArchiveCommand::Export { json, .. }
            | ArchiveCommand::Import { json, .. }
            | ArchiveCommand::List { json } => *json,
        }
    }
}

/// The policy file's directory: relative export directories start there.
pub(crate) fn policy_dir(cli: &Cli) -> PathBuf {
    cli.policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The location named on the command line or in `[export] to`.
pub fn location(
    cli: &Cli,
    policy: &lethe_core::Policy,
    given: Option<&str>,
    create: bool,
) -> Result<Location, StoreError> {
    let cfg = policy.export.as_ref();
    let to = given.or(cfg.map(|c| c.to.as_str())).ok_or_else(|| {
        StoreError::Invalid(
            "no export location: pass --to DIR (or s3://bucket/prefix), or set [export] to = \"...\" in the policy".into(),
        )
    })?;
    let s3 = S3Settings {
        endpoint: cfg.and_then(|c| c.endpoint.clone()),
        region: cfg.and_then(|c| c.region.clone()),
        credentials: None,
    };
    Location::open(to, &s3, &policy_dir(cli), create).map_err(StoreError::from)
}

pub async fn archive(cli: &Cli, cmd: &ArchiveCommand) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    match cmd {
        ArchiveCommand::Export {
            to,
            entity,
            day,
            force,
            json,
        } => {
            let loc = location(cli, engine.policy(), to.as_deref(), true)?;
            let opts = ExportOptions {
                entity: entity.clone(),
                day: day.clone(),
                force: *force,
                temp_dir: None,
            };
            let r = lethe_cold::export(&engine, &loc, &opts)
                .await
                .map_err(StoreError::from)?;
            if *json {
                print_json(&json!({
                    "location": r.location,
                    "manifest": r.manifest,
                    "rows": r.rows(),
                    "files": r.files,
                    "skipped": r.skipped.iter().map(|(e, d)| json!({"entity": e, "day": d})).collect::<Vec<_>>(),
                    "sealed": r.sealed,
                    "shredded": r.shredded,
                }));
                return Ok(exit::OK);
            }
            match &r.manifest {
                None => println!(
                    "nothing new to export to {} ({} already there)",
                    r.location,
                    plural(r.skipped.len(), "entity-day", "entity-days")
                ),
                Some(m) => {
                    println!(
                        "exported {} in {} to {} (manifest {m}); {} sealed",
                        plural(r.rows() as usize, "row", "rows"),
                        plural(r.files.len(), "file", "files"),
                        r.location,
                        plural(r.sealed as usize, "personal value", "personal values")
                    );
                    let rows: Vec<Vec<String>> = r
                        .files
                        .iter()
                        .map(|f| {
                            vec![
                                f.entity.clone(),
                                f.day.clone(),
                                f.rows.to_string(),
                                f.bytes.to_string(),
                                f.path.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table::render(&["ENTITY", "DAY", "ROWS", "BYTES", "FILE"], &rows)
                    );
                }
            }
            if r.shredded > 0 {
                println!(
                    "{} of erased subjects left out",
                    plural(r.shredded as usize, "personal value", "personal values")
                );
            }
        }
        ArchiveCommand::Import {
            from,
            entity,
            day,
            manifest,
            json,
        } => {
            let loc = location(cli, engine.policy(), from.as_deref(), false)?;
            let opts = ImportOptions {
                entity: entity.clone(),
                day: day.clone(),
                manifest: manifest.clone(),
                temp_dir: None,
            };
            let r = lethe_cold::import(&engine, &loc, &opts)
                .await
                .map_err(StoreError::from)?;
            if *json {
                print_json(&json!({
                    "location": r.location,
                    "manifests": r.manifests,
                    "imported": r.imported(),
                    "files": r.files,
                    "opened": r.opened,
                    "shredded": r.shredded,
                    "reopened": r.reopened,
                }));
                return Ok(exit::OK);
            }
            println!(
                "imported {} from {} ({} read, checksums verified) into the archive store",
                plural(r.imported() as usize, "row", "rows"),
                r.location,
                plural(r.files.len(), "file", "files")
            );
            let skipped: u64 = r.files.iter().map(|f| f.rows - f.imported).sum();
            if skipped > 0 {
                println!(
                    "{} already in the database, skipped",
                    plural(skipped as usize, "row was", "rows were")
                );
            }
            if r.shredded > 0 {
                println!(
                    "{} of erased subjects came back empty (their keys are shredded)",
                    plural(r.shredded as usize, "personal value", "personal values")
                );
            }
            if !r.reopened.is_empty() {
                println!(
                    "{} can be restored again: lethe restore {}",
                    plural(r.reopened.len(), "purged deletion", "purged deletions"),
                    r.reopened[0]
                );
            }
        }
        ArchiveCommand::List { json } => {
            let rows = engine.exports(None).await?;
            if *json {
                print_json(&json!(rows));
            } else if rows.is_empty() {
                println!("nothing exported yet (`lethe archive export`)");
            } else {
                let t: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.entity.clone(),
                            r.day.clone(),
                            r.rows.to_string(),
                            r.location.clone(),
                            r.path.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["ENTITY", "DAY", "ROWS", "LOCATION", "FILE"], &t)
                );
            }
        }
    }
    Ok(exit::OK)
}

/// `lethe worker`: runs the policy's `[jobs.NAME]` on their schedules.
pub async fn worker(cli: &Cli, once: bool, json: bool) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let jobs: Vec<lethe_core::Job> = engine.policy().jobs.values().cloned().collect();
    if jobs.is_empty() {
        return Err(StoreError::Invalid(
            "the policy has no [jobs.NAME]: add one, e.g. [jobs.nightly] run = \"purge\" schedule = \"0 3 * * *\"".into(),
        ));
    }
    let base = policy_dir(cli);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let opts = lethe_store::WorkerOptions {
        owner: format!("{host}:{}", std::process::id()),
        once,
        ..Default::default()
    };
    if !once && !json {
        for j in &jobs {
            eprintln!(
                "job {}: {} {}on \"{}\" (UTC)",
                j.name,
                j.kind.as_str(),
                j.entity
                    .as_ref()
                    .map(|e| format!("of {e} "))
                    .unwrap_or_default(),
                j.schedule.text
            );
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    if !once {
        tokio::spawn(async move {
            crate::delivery::shutdown_signal().await;
            eprintln!("stopping: finishing the job in hand");
            let _ = tx.send(true);
        });
    }
    let engine_ref = &engine;
    let base_ref = &base;
    let run = move |job: &lethe_core::Job| -> lethe_store::JobFuture<'_> {
        let job = job.clone();
        Box::pin(async move { lethe_cold::jobs::run(engine_ref, &job, base_ref).await })
    };
    let stats = engine.work(&jobs, &opts, rx, &run).await?;
    if json {
        print_json(&json!(stats));
    } else {
        println!(
            "ran {} ({} failed); {} taken by other workers, {} skipped while a previous run went on",
            plural(stats.ran as usize, "job", "jobs"),
            stats.failed,
            stats.taken,
            stats.busy
        );
    }
    Ok(if stats.failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// `lethe jobs`: the jobs, when each runs next, and the latest runs.
pub async fn jobs(cli: &Cli, limit: u32, json: bool) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let next = |j: &lethe_core::Job| {
        j.schedule
            .next_after(now)
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(lethe_store::time_text)
    };
    let runs = engine.job_runs(limit).await?;
    if json {
        let jobs: Vec<serde_json::Value> = engine
            .policy()
            .jobs
            .values()
            .map(|j| json!({"name": j.name, "run": j.kind.as_str(), "entity": j.entity, "schedule": j.schedule.text, "next": next(j)}))
            .collect();
        print_json(&json!({"jobs": jobs, "runs": runs}));
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = engine
        .policy()
        .jobs
        .values()
        .map(|j| {
            vec![
                j.name.clone(),
                j.kind.as_str().to_string(),
                j.entity.clone().unwrap_or_else(|| "*".into()),
                j.schedule.text.clone(),
                next(j).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no [jobs.NAME] in the policy");
    } else {
        print!(
            "{}",
            table::render(&["JOB", "RUN", "ENTITY", "SCHEDULE (UTC)", "NEXT"], &rows)
        );
    }
    if !runs.is_empty() {
        println!("\nlatest runs:");
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                vec![
                    r.job.clone(),
                    r.scheduled_for.clone(),
                    r.state.clone(),
                    r.owner.clone(),
                    r.error
                        .clone()
                        .or_else(|| r.summary.as_ref().map(|s| s.to_string()))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["JOB", "SCHEDULED FOR", "STATE", "WORKER", "RESULT"],
                &rows
            )
        );
    }
    Ok(exit::OK)
}
