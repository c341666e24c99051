//! One function per command. Each returns an exit code.

use std::path::Path;

use lethe_core::{Level, Policy, parse_policy};
use lethe_store::{ConnectOptions, DeleteRequest, Engine, StoreError};
use serde::Serialize;

use crate::exit;
use crate::table;
use crate::{AuditCommand, Cli, Command};

/// Prints an error the way every command does: `error: ...` and a hint.
pub fn report(e: &StoreError) -> u8 {
    eprintln!("error: {e}");
    match e {
        StoreError::RestoreConflict { conflicts } => {
            for c in conflicts {
                if c.entity.is_empty() {
                    eprintln!("  {}", c.active);
                } else {
                    eprintln!(
                        "  {} {} conflicts on ({}) with active row {}",
                        c.entity, c.restored, c.columns, c.active
                    );
                }
            }
        }
        StoreError::ParentDeleted { parents } => {
            for p in parents {
                let by = if p.deletion_id.is_empty() {
                    "the parent row is missing".to_string()
                } else {
                    format!("parent deleted by {}", p.deletion_id)
                };
                eprintln!("  {} {}: {by}", p.relation, p.child);
            }
        }
        _ => {}
    }
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    exit::code_for(e)
}

fn print_json<T: Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
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
    Ok(parse_policy(&text, &path.display().to_string())?)
}

fn url_for(cli_url: &Option<String>, policy: Option<&Policy>) -> Result<String, StoreError> {
    cli_url
        .clone()
        .or_else(|| policy.and_then(|p| p.database.url.clone()))
        .ok_or(StoreError::NoDatabaseUrl)
}

async fn engine(cli: &Cli) -> Result<Engine, StoreError> {
    let policy = load_policy(&cli.policy)?;
    let url = url_for(&cli.database, Some(&policy))?;
    Engine::connect_with(policy, &url, ConnectOptions::default()).await
}

pub async fn run(cli: Cli) -> u8 {
    match run_inner(&cli).await {
        Ok(code) => code,
        Err(e) => report(&e),
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
                    print_json(&plan);
                } else {
                    print!("{}", describe_plan(&plan));
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
                #[derive(Serialize)]
                struct Out<'a> {
                    deletion_id: &'a str,
                    at: &'a str,
                    entity: &'a str,
                    key: &'a serde_json::Value,
                    affected: serde_json::Map<String, serde_json::Value>,
                    nullified: serde_json::Map<String, serde_json::Value>,
                    audit_hash: &'a str,
                }
                print_json(&Out {
                    deletion_id: &done.deletion_id,
                    at: &done.at,
                    entity: &done.entity,
                    key: &done.key,
                    affected: done
                        .affected
                        .iter()
                        .map(|c| (c.entity.clone(), c.rows.into()))
                        .collect(),
                    nullified: done
                        .nullified
                        .iter()
                        .map(|c| (c.entity.clone(), c.rows.into()))
                        .collect(),
                    audit_hash: &done.audit_hash,
                });
            } else {
                println!(
                    "deleted {} {} as deletion {}",
                    entity, key, done.deletion_id
                );
                print!("{}", table::counts(&done.affected));
                for n in &done.nullified {
                    println!("set to NULL: {} row(s) of {}", n.rows, n.entity);
                }
                println!("undo with: lethe restore {}", done.deletion_id);
            }
            Ok(exit::OK)
        }
        Command::Restore {
            deletion_id,
            actor,
            dry_run,
            json,
        } => {
            let engine = engine(cli).await?;
            if *dry_run {
                let p = engine.restore_preview(deletion_id).await?;
                if *json {
                    print_json(&p);
                } else {
                    println!("restore of {} would bring back:", p.deletion_id);
                    print!("{}", table::counts(&p.would_restore));
                    for n in &p.nullified {
                        println!(
                            "and put back {} set-null reference(s) in {}",
                            n.rows, n.entity
                        );
                    }
                    for c in &p.conflicts {
                        println!(
                            "conflict: {} {} on ({}) with active row {}",
                            c.entity, c.restored, c.columns, c.active
                        );
                    }
                    for d in &p.deleted_parents {
                        println!(
                            "deleted parent: {} {} (deletion {})",
                            d.relation, d.child, d.deletion_id
                        );
                    }
                }
                return Ok(if p.conflicts.is_empty() && p.deleted_parents.is_empty() {
                    exit::OK
                } else {
                    exit::REFUSED
                });
            }
            let done = engine.restore(deletion_id, actor.as_deref()).await?;
            if *json {
                print_json(&done);
            } else {
                println!("restored deletion {}", done.deletion_id);
                print!("{}", table::counts(&done.restored));
            }
            Ok(exit::OK)
        }
        Command::Deletions {
            entity,
            limit,
            json,
        } => {
            let engine = engine(cli).await?;
            if let Some(e) = entity
                && engine.policy().entity(e).is_none()
            {
                return Err(lethe_core::plan::unknown_entity(engine.policy(), e).into());
            }
            let list = engine.deletions(entity.as_deref(), *limit).await?;
            if *json {
                print_json(&list);
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
                            format!("{} {}", d.entity, key_text(&d.key)),
                            d.affected
                                .iter()
                                .map(|c| format!("{}={}", c.entity, c.rows))
                                .collect::<Vec<_>>()
                                .join(" "),
                            d.restored_at
                                .clone()
                                .map(|_| "restored".to_string())
                                .unwrap_or_default(),
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
        Command::Show { deletion_id, json } => {
            let engine = engine(cli).await?;
            let d = engine.deletion(deletion_id).await?;
            let outbox = engine.outbox(&d.id).await?;
            if *json {
                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    deletion: &'a lethe_store::DeletionRecord,
                    outbox: &'a [lethe_store::OutboxRecord],
                }
                print_json(&Out {
                    deletion: &d,
                    outbox: &outbox,
                });
            } else {
                println!("deletion   {}", d.id);
                println!("at         {}", d.at);
                println!("actor      {}", d.actor.as_deref().unwrap_or("-"));
                println!("reason     {}", d.reason.as_deref().unwrap_or("-"));
                println!("root       {} {}", d.entity, key_text(&d.key));
                match &d.restored_at {
                    Some(at) => println!(
                        "status     restored at {at} by {}",
                        d.restored_by.as_deref().unwrap_or("-")
                    ),
                    None => println!("status     deleted (restore with `lethe restore {}`)", d.id),
                }
                print!("{}", table::counts(&d.affected));
                for n in &d.nullified {
                    println!("set to NULL: {} row(s) of {}", n.rows, n.entity);
                }
                println!("outbox: {} record(s)", outbox.len());
                for o in &outbox {
                    println!("  #{} {} {} ({} key(s))", o.id, o.event, o.entity, o.rows);
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
                        print_json(&r);
                    } else if r.ok {
                        println!("audit log intact: {} entries, head {}", r.entries, r.head);
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
        Command::Demo { dir } => crate::demo::run(dir.clone()).await,
    }
}

pub fn key_text(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(m) if m.len() == 1 => m.values().next().map(value_text).unwrap_or_default(),
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(","),
        None => v.to_string(),
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn describe_plan(plan: &lethe_store::PlanReport) -> String {
    let mut s = format!(
        "plan: delete {} {} ({} row(s) in {} table(s))\n",
        plan.entity,
        key_text(&plan.key),
        plan.total_rows(),
        plan.affected.iter().filter(|c| c.rows > 0).count()
    );
    let rows: Vec<Vec<String>> = plan
        .affected
        .iter()
        .map(|c| {
            let action = if c.strategy == "hard" {
                "remove (snapshot kept)"
            } else {
                "mark deleted"
            };
            vec![c.entity.clone(), action.to_string(), c.rows.to_string()]
        })
        .collect();
    s.push_str(&table::render(&["ENTITY", "ACTION", "ROWS"], &rows));
    for n in &plan.nullified {
        s.push_str(&format!("set to NULL: {} row(s) of {}\n", n.rows, n.entity));
    }
    for b in &plan.blocked_by {
        s.push_str(&format!(
            "BLOCKED by {}: {} active row(s) (on_delete = restrict)\n",
            b.relation, b.rows
        ));
    }
    s.push_str("nothing was changed (dry run)\n");
    s
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
            println!("{}: {f}", engine.policy().source);
        }
        if errors == 0 {
            println!(
                "policy OK: {} entities, {} relations{}",
                engine.policy().entities.len(),
                engine.policy().relations.len(),
                if findings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warning(s)", findings.len())
                }
            );
        } else {
            println!("{errors} error(s)");
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
            eprintln!("{}: {f}", engine.policy().source);
        }
        eprintln!("error: the policy does not match the database; fix it before migrating");
        eprintln!("hint: `lethe check` lists every problem");
        return Ok(exit::VERIFY_FAILED);
    }
    let report = engine.migrate(dry_run).await?;
    if json {
        print_json(&report);
        return Ok(exit::OK);
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
            "-- dry run: {} step(s), nothing was changed",
            report.steps.len()
        );
    } else {
        println!("applied {} step(s)", report.steps.len());
    }
    Ok(exit::OK)
}
