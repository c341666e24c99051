//! `lethe erase` and `lethe erasures`: GDPR erasure requests. Thin: the
//! work is in `lethe-erasure` and `lethe-store`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use lethe_erasure::Places;
use lethe_store::erasure::{EraseRequest, ErasurePreview, ErasureRecord, LedgerEntry};
use lethe_store::{ConnectOptions, Engine, StoreError};
use serde_json::json;

use crate::Cli;
use crate::commands::engine;
use crate::exit;
use crate::output::print_json;
use crate::table;

#[derive(Args)]
pub struct EraseArgs {
    /// The subject entity ([erasure] subject in the policy, e.g. users).
    pub entity: String,
    /// The subject's key: `42`, or `col=value,col=value`.
    pub key: String,
    /// Your id for the request (a ticket number). Running `lethe erase`
    /// again with the same id continues that request instead of starting
    /// another.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Why (recorded with the request, in the audit log and the
    /// certificate; do not put personal data here).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who erases (recorded in the audit log).
    #[arg(long, env = "LETHE_ACTOR")]
    pub actor: Option<String>,
    /// Show every row and copy that would be touched, by table and store,
    /// and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait up to this long (e.g. 30s, 5m) for the sinks and third parties
    /// to acknowledge (a relay must be running), then verify and complete.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse_duration)]
    pub wait: Option<Duration>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ErasuresCommand {
    /// Requests, newest first, with their state.
    List {
        /// Only this state: pending, in_progress, completed or failed.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One request (by id or request id): its steps with their state and
    /// counts, its verification and certificate.
    Show {
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Take a request as far as it can go now: the table step if it did
    /// not run, the sinks' deliveries, then verification and completion.
    /// Running it again is harmless.
    Resume {
        id: String,
        /// Wait up to this long for sinks and third parties.
        #[arg(long, value_name = "DURATION", value_parser = crate::parse_duration)]
        wait: Option<Duration>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Scan every managed table (deleted rows included), the archive
    /// store, Lethe's outbox, exported files, caches and search indexes
    /// for the subject's rows and keyed hashes of its original values.
    /// Exit 6 when anything is left, with where.
    Verify {
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Record that a sink or third party confirmed the erasure by other
    /// means (their e-mail, a support ticket): the step counts as done.
    Confirm {
        id: String,
        /// The step: a sink name (e.g. crm) or `sink:crm`.
        #[arg(long)]
        step: String,
        /// How it was confirmed, by whom, when (required; audited).
        #[arg(long)]
        reason: String,
        /// Who records it (audited).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a completed request's certificate (JSON); its SHA-256 is in
    /// the audit log.
    Certificate { id: String },
    /// Print the erasure ledger as JSON Lines: a keyed hash of each erased
    /// subject and what was done, never personal data. Keep a copy
    /// outside the database, with the backups.
    Ledger {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Run every ledger entry again against this database, after it was
    /// restored from a backup older than the erasures: each subject found
    /// (by the keyed hash of its key) is erased again, and its data key
    /// destroyed again.
    Reapply {
        /// A ledger file written by `lethe erasures ledger --out`.
        #[arg(
            long,
            value_name = "PATH",
            required_unless_present = "from",
            conflicts_with = "from"
        )]
        ledger: Option<PathBuf>,
        /// Read the ledger from this database (the one the erasures ran on).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// Who reapplies (audited).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

impl ErasuresCommand {
    pub fn json(&self) -> bool {
        match self {
            ErasuresCommand::List { json, .. }
            | ErasuresCommand::Show { json, .. }
            | ErasuresCommand::Resume { json, .. }
            | ErasuresCommand::Verify { json, .. }
            | ErasuresCommand::Confirm { json, .. }
            | ErasuresCommand::Reapply { json, .. } => *json,
            ErasuresCommand::Certificate { .. } | ErasuresCommand::Ledger { .. } => true,
        }
    }
}

/// Where verification looks beyond the database: the policy's export
/// location, when it has one and anything was exported there.
pub(crate) fn places(cli: &Cli, engine: &Engine) -> Result<Places, StoreError> {
    let export = match engine.policy().export {
        None => None,
        Some(_) => match crate::cold::location(cli, engine.policy(), None, false) {
            Ok(l) => Some(l),
            // A local directory that was never created: nothing exported.
            Err(StoreError::Invalid(m)) if m.contains("nothing was exported") => None,
            Err(e) => return Err(e),
        },
    };
    Ok(Places {
        export,
        temp_dir: None,
    })
}

/// Advances a request until it completes or fails, or `wait` runs out.
async fn advance_for(
    engine: &Engine,
    id: &str,
    places: &Places,
    wait: Option<Duration>,
) -> Result<ErasureRecord, StoreError> {
    let start = Instant::now();
    loop {
        let rec = lethe_erasure::advance(engine, id, places).await?;
        let done = matches!(rec.state.as_str(), "completed" | "failed");
        if done || wait.is_none_or(|w| start.elapsed() >= w) {
            return Ok(rec);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The exit code of a request's state: 0 completed or waiting, 1 failed.
fn code_of(rec: &ErasureRecord) -> u8 {
    if rec.state == "failed" {
        exit::FAILURE
    } else {
        exit::OK
    }
}

pub async fn erase(cli: &Cli, a: &EraseArgs) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    if a.dry_run {
        let p = engine.erasure_preview(&a.entity, &a.key).await?;
        if a.json {
            print_json(&json!(p));
        } else {
            print!("{}", preview_text(&p));
        }
        return Ok(exit::OK);
    }
    let places = places(cli, &engine)?;
    let req = EraseRequest {
        entity: a.entity.clone(),
        key: a.key.clone(),
        request_id: a.request_id.clone(),
        actor: a.actor.clone(),
        reason: a.reason.clone(),
    };
    let rec = lethe_erasure::erase(&engine, &req, &places).await?;
    let rec = match a.wait {
        Some(_) if rec.state == "in_progress" => {
            advance_for(&engine, &rec.id, &places, a.wait).await?
        }
        _ => rec,
    };
    if a.json {
        print_json(&json!(rec));
    } else {
        print!("{}", record_text(&rec));
    }
    Ok(code_of(&rec))
}

pub async fn erasures(cli: &Cli, cmd: &ErasuresCommand) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    match cmd {
        ErasuresCommand::List { state, limit, json } => {
            if let Some(s) = state
                && !["pending", "in_progress", "completed", "failed"].contains(&s.as_str())
            {
                return Err(StoreError::Invalid(format!(
                    "\"{s}\" is not a state (pending, in_progress, completed or failed)"
                )));
            }
            let list = engine.erasures(state.as_deref(), *limit).await?;
            if *json {
                print_json(&json!(list));
            } else if list.is_empty() {
                println!("no erasure requests");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.request_id.clone(),
                            r.state.clone(),
                            r.created_at.clone(),
                            r.completed_at.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["ID", "REQUEST", "STATE", "CREATED", "COMPLETED"], &rows)
                );
            }
            Ok(exit::OK)
        }
        ErasuresCommand::Show { id, json } => {
            let rec = engine.erasure(id).await?;
            if *json {
                print_json(&json!(rec));
            } else {
                print!("{}", record_text(&rec));
            }
            Ok(exit::OK)
        }
        ErasuresCommand::Resume { id, wait, json } => {
            let places = places(cli, &engine)?;
            let rec = advance_for(&engine, id, &places, *wait).await?;
            if *json {
                print_json(&json!(rec));
            } else {
                print!("{}", record_text(&rec));
            }
            Ok(code_of(&rec))
        }
        ErasuresCommand::Verify { id, json } => {
            let places = places(cli, &engine)?;
            let v = lethe_erasure::verify(&engine, id, &places).await?;
            if *json {
                print_json(&json!(v));
            } else if v.clean {
                println!(
                    "clean: nothing of the subject left in {} place(s) of the database{}{}",
                    v.tables.len(),
                    v.files
                        .map(|n| format!(", {n} exported file(s)"))
                        .unwrap_or_default(),
                    if v.sinks.is_empty() {
                        String::new()
                    } else {
                        format!(", sinks {}", v.sinks.join(", "))
                    }
                );
                for k in &v.kept {
                    println!(
                        "kept on purpose: {} row(s) of {} ({})",
                        k.active + k.deleted + k.stored,
                        k.entity,
                        k.legal_basis.clone().unwrap_or_default()
                    );
                }
            } else {
                let rows: Vec<Vec<String>> = v
                    .residue
                    .iter()
                    .map(|r| {
                        vec![
                            r.place.clone(),
                            r.entity.clone().unwrap_or_default(),
                            r.what.clone(),
                            r.rows.to_string(),
                        ]
                    })
                    .collect();
                println!("residue found:");
                print!(
                    "{}",
                    table::render(&["WHERE", "ENTITY", "WHAT", "ROWS"], &rows)
                );
            }
            Ok(if v.clean {
                exit::OK
            } else {
                exit::VERIFY_FAILED
            })
        }
        ErasuresCommand::Confirm {
            id,
            step,
            reason,
            actor,
            json,
        } => {
            engine
                .erasure_confirm(id, step, reason, actor.as_deref())
                .await?;
            let places = places(cli, &engine)?;
            let rec = lethe_erasure::advance(&engine, id, &places).await?;
            if *json {
                print_json(&json!(rec));
            } else {
                print!("{}", record_text(&rec));
            }
            Ok(code_of(&rec))
        }
        ErasuresCommand::Certificate { id } => {
            let rec = engine.erasure(id).await?;
            match rec.certificate {
                Some(c) => {
                    print_json(&c);
                    Ok(exit::OK)
                }
                None => Err(StoreError::Invalid(format!(
                    "erasure {} is {}: a certificate is issued when it completes (`lethe erasures resume {}`)",
                    rec.id, rec.state, rec.id
                ))),
            }
        }
        ErasuresCommand::Ledger { out } => {
            let entries = engine.erasure_ledger().await?;
            let text: String = entries
                .iter()
                .map(|e| format!("{}\n", serde_json::to_string(e).unwrap_or_default()))
                .collect();
            match out {
                Some(p) => {
                    std::fs::write(p, text).map_err(|e| {
                        StoreError::Invalid(format!("cannot write {}: {e}", p.display()))
                    })?;
                    eprintln!(
                        "{} ledger entries written to {}",
                        entries.len(),
                        p.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(exit::OK)
        }
        ErasuresCommand::Reapply {
            ledger,
            from,
            actor,
            json,
        } => {
            let entries = match (ledger, from) {
                (Some(p), _) => read_ledger(p)?,
                (None, Some(url)) => {
                    let src = Engine::connect_with(
                        engine.policy().clone(),
                        url,
                        ConnectOptions::default(),
                    )
                    .await?;
                    src.erasure_ledger().await?
                }
                (None, None) => unreachable!("clap requires --ledger or --from"),
            };
            let unchecked = entries.iter().filter(|e| e.key_check.is_empty()).count();
            if unchecked > 0 {
                eprintln!(
                    "warning: {unchecked} ledger entries carry no key check (written by an older lethe): if they find no one, check that this database is a restore of the one the erasures ran on"
                );
            }
            let places = places(cli, &engine)?;
            let done = lethe_erasure::reapply(&engine, &entries, actor.as_deref(), &places).await?;
            if *json {
                print_json(&json!(done));
            } else {
                println!("{} ledger entries reapplied", done.len());
                for r in &done {
                    println!("  {}  {}  {}", r.id, r.request_id, r.state);
                }
                if done.iter().any(|r| r.state == "in_progress") {
                    println!(
                        "requests in_progress wait for their sinks: run `lethe relay`, then `lethe erasures resume ID`"
                    );
                }
            }
            Ok(if done.iter().any(|r| r.state == "failed") {
                exit::FAILURE
            } else {
                exit::OK
            })
        }
    }
}

fn read_ledger(p: &PathBuf) -> Result<Vec<LedgerEntry>, StoreError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| StoreError::Invalid(format!("cannot read {}: {e}", p.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                StoreError::Invalid(format!(
                    "{} line {} is not a ledger entry: {e}",
                    p.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

fn preview_text(p: &ErasurePreview) -> String {
    let mut out = format!(
        "erasing {} {} would touch (nothing was changed):\n",
        p.entity, p.key
    );
    let rows: Vec<Vec<String>> = p
        .entities
        .iter()
        .map(|e| {
            vec![
                e.entity.clone(),
                e.table.clone(),
                match &e.legal_basis {
                    Some(b) => format!("keep ({b})"),
                    None => e.action.clone(),
                },
                e.active.to_string(),
                e.deleted.to_string(),
                e.stored.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "ENTITY",
            "TABLE",
            "ACTION",
            "ACTIVE",
            "DELETED",
            "ARCHIVE STORE",
        ],
        &rows,
    ));
    out.push_str("\nrows:\n");
    for r in &p.rows {
        out.push_str(&format!("  {} {} {}\n", r.entity, r.place, r.key));
    }
    if !p.sinks.is_empty() {
        out.push_str(&format!("lethe.erased goes to: {}\n", p.sinks.join(", ")));
    }
    out.push_str(if p.data_key {
        "the subject's data key would be destroyed: its PII in exported files can no longer be read\n"
    } else {
        "no data key: nothing of the subject was exported sealed\n"
    });
    out
}

fn record_text(r: &ErasureRecord) -> String {
    let mut out = format!("erasure {} (request {}): {}\n", r.id, r.request_id, r.state);
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {e}\n"));
    }
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            // A step that has not run has nothing to report yet.
            let ran = !(s.detail.is_null() || s.detail == json!({}));
            let detail = match s.kind.as_str() {
                _ if !ran && s.kind != "verify" => String::new(),
                "table" => format!(
                    "{} active {}, deleted {}, stored {}",
                    s.detail["action"].as_str().unwrap_or(""),
                    s.detail["active"],
                    s.detail["deleted"],
                    s.detail["stored"]
                ),
                "cold" => "data key destroyed".to_string(),
                "archive" => format!("{} stored row(s) erased", s.detail["rows"]),
                "verify" if s.state == "done" => "clean".to_string(),
                "verify" if s.state == "failed" => format!(
                    "residue in {} place(s): `lethe erasures verify {}`",
                    s.detail["residue"].as_array().map(Vec::len).unwrap_or(0),
                    r.id
                ),
                _ if !ran => String::new(),
                _ => s.detail.to_string(),
            };
            vec![s.name.clone(), s.state.clone(), detail]
        })
        .collect();
    out.push_str(&table::render(&["STEP", "STATE", "DETAIL"], &rows));
    match r.state.as_str() {
        "completed" => out.push_str(&format!(
            "certificate: `lethe erasures certificate {}` (SHA-256 {} in the audit log)\n",
            r.id,
            r.certificate_hash.clone().unwrap_or_default()
        )),
        "in_progress" => out.push_str(&format!(
            "waiting for the steps above: run `lethe relay` for the sinks (or `lethe erasures confirm {} --step NAME --reason ...`), then `lethe erasures resume {}`\n",
            r.id, r.id
        )),
        _ => {}
    }
    out
}
