//! One function per command. Each returns an exit code; errors are printed by
//! [`report`] (and as JSON on stdout for `--json` callers).

use std::path::Path;

use lethe_core::{Finding, Level, Policy, parse_policy};
use lethe_store::{ConnectOptions, DeleteRequest, Engine, StoreError};

use crate::exit;
use crate::output::{self, key_text, plural, print_json};
use crate::table;
use crate::{AuditCommand, Cli, Command};

/// Prints an error the way every command does: `error: ...`, the details, and
/// a hint on stderr; with `--json`, also `{"error": ...}` on stdout.
pub fn report(e: &StoreError, json: bool) -> u8 {
    if json {
        print_json(&output::error(e));
    }
    eprintln!("error: {e}");
    if let StoreError::RestoreConflict { conflicts } = e {
        for line in output::refusal_lines(conflicts, &[]) {
            eprintln!("  {line}");
        }
    }
    if let StoreError::ParentDeleted { parents } = e {
        for line in output::refusal_lines(&[], parents) {
            eprintln!("  {line}");
        }
    }
    if let StoreError::RestoreShape { problems } = e {
        // The first is the error's own message.
        for p in problems.iter().skip(1) {
            eprintln!("  {}", p.message);
        }
    }
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    exit::code_for(e)
}

/// `lethe.toml:12: error: entities.users.key: ...` (the same shape as policy
/// parse errors, so editors can jump to the line).
fn finding_line(file: &str, f: &Finding) -> String {
    let level = if f.level == Level::Error {
        "error"
    } else {
        "warning"
    };
    match f.line {
        Some(l) => format!("{file}:{l}: {level}: {}: {}", f.key, f.message),
        None => format!("{file}: {level}: {}: {}", f.key, f.message),
    }
}

pub fn load_policy(path: &Path) -> Result<Policy, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StoreError::Policy(lethe_core::PolicyError::at(
            &path.display().to_string(),
            None,
            "",
            format!("cannot read the policy: {e} (create one with `lethe init --database URL`, or pass --policy PATH)"),
        ))
    })?;
    let mut policy = parse_policy(&text, &path.display().to_string())?;
    resolve_sink_paths(&mut policy, path);
    Ok(policy)
}

/// Relative paths of file and tantivy sinks are relative to the policy file,
/// so the relay finds the same files from any working directory.
pub fn resolve_sink_paths(policy: &mut Policy, policy_path: &Path) {
    let base = policy_path.parent().unwrap_or(Path::new("."));
    for s in policy.sinks.values_mut() {
        if let lethe_core::SinkKind::File { path } | lethe_core::SinkKind::Tantivy { path } =
            &mut s.kind
            && Path::new(path.as_str()).is_relative()
        {
            *path = base.join(&*path).display().to_string();
        }
    }
}

pub(crate) fn url_for(
    cli_url: &Option<String>,
    policy: Option<&Policy>,
) -> Result<String, StoreError> {
    cli_url
        .clone()
        .or_else(|| policy.and_then(|p| p.database.url.clone()))
        .ok_or(StoreError::NoDatabaseUrl)
}

pub async fn engine(cli: &Cli) -> Result<Engine, StoreError> {
    let policy = load_policy(&cli.policy)?;
    let url = url_for(&cli.database, Some(&policy))?;
    Engine::connect_with(policy, &url, ConnectOptions::default()).await
}

pub async fn run(cli: Cli) -> u8 {
    match run_inner(&cli).await {
        Ok(code) => code,
        Err(e) => report(&e, cli.command.json()),
    }
}

async fn run_inner(cli: &Cli) -> Result<u8, StoreError> {
    match &cli.command {
        Command::Init { out, force } => init(cli, out, *force).await,
        Command::Check { json } => check(cli, *json).await,
        Command::Migrate { dry_run, json } => migrate(cli, *dry_run, *json).await,
        Command::Delete {
            entity,
            key,
            actor,
            reason,
            dry_run,
            json,
        } => {
            let engine = engine(cli).await?;
            if *dry_run {
                let plan = engine.plan(entity, key).await?;
                if *json {
                    print_json(&output::plan(&plan));
                } else {
                    print!("{}", output::describe_plan(&plan));
                }
                return Ok(if plan.blocked_by.is_empty() {
                    exit::OK
                } else {
                    exit::BLOCKED
                });
            }
            let mut req = DeleteRequest::new(entity.clone(), key.clone());
            req.actor = actor.clone();
            req.reason = reason.clone();
            let done = engine.delete(&req).await?;
            if *json {
                print_json(&output::outcome(&done));
            } else {
                println!("deleted {entity} {key} as deletion {}", done.deletion_id);
                print!("{}", table::counts(&done.affected));
                for n in &done.nullified {
                    println!(
                        "set to NULL: {} of {}",
                        plural(n.rows as usize, "row", "rows"),
                        n.entity
                    );
                }
                println!("undo with: lethe restore {}", done.deletion_id);
            }
            Ok(exit::OK)
        }
        Command::Restore {
            deletion_id,
            actor,
            reason,
            set,
            drop_missing,
            dry_run,
            json,
        } => {
            let engine = engine(cli).await?;
            let opts = lethe_store::RestoreOptions {
                actor: actor.clone(),
                reason: reason.clone(),
                set: set.clone(),
                drop_missing: *drop_missing,
                ..Default::default()
            };
            if *dry_run {
                let p = engine.restore_preview_with(deletion_id, &opts).await?;
                let refused = output::preview_refused(&p);
                if *json {
                    print_json(&output::preview(&p));
                } else {
                    if refused {
                        println!("restore of {} would be REFUSED:", p.deletion_id);
                        for line in output::refusal_lines(&p.conflicts, &p.deleted_parents) {
                            println!("  {line}");
                        }
                        for pr in &p.problems {
                            println!("  {}", pr.message);
                        }
                        println!("once that is resolved, it would bring back:");
                    } else {
                        println!("restore of {} would bring back:", p.deletion_id);
                    }
                    print!("{}", table::counts(&p.would_restore));
                    if !p.schema_changes.is_empty() {
                        println!("columns changed since the rows were stored:");
                        for c in &p.schema_changes {
                            println!(
                                "  {}.{} {}: {} ({})",
                                c.entity,
                                c.column,
                                c.change,
                                c.outcome,
                                plural(c.rows as usize, "row", "rows")
                            );
                        }
                    }
                    for n in &p.nullified {
                        println!(
                            "and put back {} set to NULL in {}",
                            plural(n.rows as usize, "reference", "references"),
                            n.entity
                        );
                    }
                    println!("nothing was changed (dry run)");
                }
                return Ok(if refused { exit::REFUSED } else { exit::OK });
            }
            let done = engine.restore_with(deletion_id, &opts).await?;
            if *json {
                print_json(&output::restored(&done));
            } else {
                println!("restored deletion {}", done.deletion_id);
                print!("{}", table::counts(&done.restored));
                for n in &done.nullified_restored {
                    println!(
                        "put back {} set to NULL in {}",
                        plural(n.rows as usize, "reference", "references"),
                        n.entity
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Deletions {
            entity,
            limit,
            json,
        } => {
            let engine = engine(cli).await?;
            let list = engine.deletions(entity.as_deref(), *limit).await?;
            if *json {
                print_json(&serde_json::Value::Array(
                    list.iter().map(output::record).collect(),
                ));
            } else if list.is_empty() {
                println!("no deletions");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.clone(),
                            d.at.clone(),
                            d.actor.clone().unwrap_or_default(),
                            d.root_text(&key_text(&d.key)),
                            d.affected
                                .iter()
                                .map(|c| format!("{}={}", c.entity, c.rows))
                                .collect::<Vec<_>>()
                                .join(" "),
                            d.status().to_string(),
                            d.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &[
                            "DELETION", "AT", "ACTOR", "ROOT", "ROWS", "STATUS", "REASON"
                        ],
                        &rows
                    )
                );
            }
            Ok(exit::OK)
        }
        Command::Purge(a) => crate::retention::purge(cli, a).await,
        Command::Hold { command } => crate::retention::hold(cli, command).await,
        Command::Erase(a) => crate::erasure::erase(cli, a).await,
        Command::Erasures { command } => crate::erasure::erasures(cli, command).await,
        Command::Archive { command } => crate::cold::archive(cli, command).await,
        Command::Worker { once, json } => crate::cold::worker(cli, *once, *json).await,
        Command::Jobs { limit, json } => crate::cold::jobs(cli, *limit, *json).await,
        Command::MigrateStrategy(a) => crate::retention::migrate_strategy(cli, a).await,
        Command::Stats { entity, json } => {
            crate::retention::stats(cli, entity.as_deref(), *json).await
        }
        Command::Relay {
            once,
            workers,
            batch,
            lease,
            poll,
            json,
        } => {
            let args = crate::delivery::RelayArgs {
                once: *once,
                workers: *workers as usize,
                batch: *batch,
                lease: *lease,
                poll: *poll,
                json: *json,
            };
            crate::delivery::relay(cli, &args).await
        }
        Command::Deliveries {
            state,
            sink,
            limit,
            json,
        } => {
            crate::delivery::deliveries(cli, state.as_deref(), sink.as_deref(), *limit, *json).await
        }
        Command::Replay {
            id,
            dead,
            sink,
            json,
        } => crate::delivery::replay(cli, *id, *dead, sink.as_deref(), *json).await,
        Command::Reconcile { sink, fix, json } => {
            crate::delivery::reconcile(cli, sink.as_deref(), *fix, *json).await
        }
        Command::Show { deletion_id, json } => {
            let engine = engine(cli).await?;
            let d = engine.deletion(deletion_id).await?;
            let outbox = engine.outbox(&d.id).await?;
            if *json {
                print_json(&output::record_with_outbox(&d, &outbox));
            } else {
                println!("deletion   {}", d.id);
                println!("at         {}", d.at);
                println!("actor      {}", d.actor.as_deref().unwrap_or("-"));
                println!("reason     {}", d.reason.as_deref().unwrap_or("-"));
                println!("root       {}", d.root_text(&key_text(&d.key)));
                match d.status() {
                    "restored" => {
                        println!(
                            "status     restored at {} by {}",
                            d.restored_at.as_deref().unwrap_or("-"),
                            d.restored_by.as_deref().unwrap_or("-")
                        );
                        if let Some(r) = &d.restored_reason {
                            println!("           because: {r}");
                        }
                    }
                    "purged" => println!(
                        "status     purged at {} (its retention ran out, or a GDPR erasure removed its rows; after a retention purge `lethe archive import` can bring exported rows back)",
                        d.purged_at.as_deref().unwrap_or("-")
                    ),
                    "erased" => println!(
                        "status     erased (GDPR Art. 17: the subject's rows are gone for good and cannot be restored; `lethe erasures list` shows the request)"
                    ),
                    "deleted" => {
                        println!("status     deleted (restore with `lethe restore {}`)", d.id)
                    }
                    run => {
                        println!("status     a {run} run (not a deletion: it cannot be restored)")
                    }
                }
                print!("{}", table::counts(&d.affected));
                for n in &d.nullified {
                    println!(
                        "set to NULL: {} of {}",
                        plural(n.rows as usize, "row", "rows"),
                        n.entity
                    );
                }
                println!("outbox: {}", plural(outbox.len(), "record", "records"));
                for o in &outbox {
                    println!(
                        "  #{} {} {} ({})",
                        o.id,
                        o.event,
                        o.entity,
                        plural(o.rows as usize, "key", "keys")
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Audit { command } => {
            let engine = engine(cli).await?;
            match command {
                AuditCommand::Head { json } => {
                    let (seq, hash) = engine.audit_head().await?;
                    if *json {
                        print_json(&serde_json::json!({"seq": seq, "hash": hash}));
                    } else {
                        println!("{hash}");
                        eprintln!(
                            "(entry {seq}; keep this hash outside the database and check it with `lethe audit verify --expect-head HASH`)"
                        );
                    }
                    Ok(exit::OK)
                }
                AuditCommand::Verify { expect_head, json } => {
                    let r = engine.audit_verify(expect_head.as_deref()).await?;
                    if *json {
                        print_json(&serde_json::to_value(&r).unwrap_or_default());
                    } else if r.ok {
                        println!(
                            "audit log intact: {}, head {}",
                            plural(r.entries as usize, "entry", "entries"),
                            r.head
                        );
                    } else {
                        println!(
                            "audit log BROKEN: {}",
                            r.problem.clone().unwrap_or_default()
                        );
                        if let Some(seq) = r.broken_at {
                            println!("first broken entry: {seq}");
                        }
                    }
                    Ok(if r.ok { exit::OK } else { exit::VERIFY_FAILED })
                }
            }
        }
        Command::Demo { dir, serve, listen } => {
            crate::demo::run(dir.clone(), serve.then_some(*listen)).await
        }
        Command::Serve(a) => crate::serve::serve(cli, a).await,
        Command::Lint(a) => Ok(crate::lint::lint(cli, a).await),
        Command::Token { command } => crate::serve::token(cli, command).await,
    }
}

async fn init(cli: &Cli, out: &Path, force: bool) -> Result<u8, StoreError> {
    if out.exists() && !force {
        eprintln!("error: {} already exists", out.display());
        eprintln!("hint: pass --force to overwrite it, or --out PATH to write elsewhere");
        return Ok(exit::USAGE);
    }
    let url = url_for(&cli.database, None)?;
    let db = lethe_store::Db::connect(&url, ConnectOptions::default()).await?;
    let schema = lethe_store::introspect::load_schema(&db).await?;
    let text = lethe_core::policy_from_schema(&schema, &url);
    // What we write must parse: a policy Lethe cannot read is worse than none.
    if let Err(e) = parse_policy(&text, &out.display().to_string()) {
        eprintln!("warning: the generated policy needs editing before use: {e}");
    }
    std::fs::write(out, &text)
        .map_err(|e| StoreError::Database(format!("cannot write {}: {e}", out.display())))?;
    let n = schema
        .tables
        .keys()
        .filter(|t| !t.starts_with("lethe_"))
        .count();
    println!(
        "wrote {} ({n} entities); review it, then run `lethe check` and `lethe migrate --dry-run`",
        out.display()
    );
    Ok(exit::OK)
}

async fn check(cli: &Cli, json: bool) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let findings = engine.check();
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if json {
        let v: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "level": if f.level == Level::Error { "error" } else { "warning" },
                    "key": f.key, "line": f.line, "message": f.message
                })
            })
            .collect();
        print_json(&serde_json::json!({"ok": errors == 0, "findings": v}));
    } else {
        for f in &findings {
            println!("{}", finding_line(&engine.policy().source, f));
        }
        if errors == 0 {
            println!(
                "policy OK: {}, {}{}",
                plural(engine.policy().entities.len(), "entity", "entities"),
                plural(engine.policy().relations.len(), "relation", "relations"),
                if findings.is_empty() {
                    String::new()
                } else {
                    format!(", {}", plural(findings.len(), "warning", "warnings"))
                }
            );
        } else {
            println!("{}", plural(errors, "error", "errors"));
        }
    }
    Ok(if errors == 0 {
        exit::OK
    } else {
        exit::VERIFY_FAILED
    })
}

async fn migrate(cli: &Cli, dry_run: bool, json: bool) -> Result<u8, StoreError> {
    let mut engine = engine(cli).await?;
    let errors: Vec<_> = engine
        .check()
        .into_iter()
        .filter(|f| f.level == Level::Error)
        .collect();
    if !errors.is_empty() {
        for f in &errors {
            eprintln!("{}", finding_line(&engine.policy().source, f));
        }
        eprintln!("error: the policy does not match the database; fix it before migrating");
        eprintln!("hint: `lethe check` lists every problem");
        return Ok(exit::VERIFY_FAILED);
    }
    let report = engine.migrate(dry_run).await?;
    // A step Lethe cannot apply makes even a dry run fail: it is what the
    // real run would do.
    let code = if report.steps.iter().any(|s| s.blocked.is_some()) {
        exit::REFUSED
    } else {
        exit::OK
    };
    if json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
        return Ok(code);
    }
    if report.steps.is_empty() {
        println!("nothing to do: the database already matches the policy");
        return Ok(exit::OK);
    }
    for s in &report.steps {
        println!("-- {}: {}", s.id, s.description);
        if let Some(b) = &s.blocked {
            println!("-- BLOCKED: {b}");
        }
        for sql in &s.statements {
            println!("{sql};");
        }
        println!();
    }
    if dry_run {
        println!(
            "-- dry run: {}, nothing was changed",
            plural(report.steps.len(), "step", "steps")
        );
    } else {
        println!("applied {}", plural(report.steps.len(), "step", "steps"));
    }
    Ok(code)
}
