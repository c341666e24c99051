//! The report as text for people, JSON for scripts and SARIF 2.1.0 for
//! code-scanning tools (GitHub code scanning, GitLab, IDE viewers).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::Report;
use crate::rules::{ALL, Rule};

pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let mut explained: Vec<Rule> = Vec::new();
    for f in &r.findings {
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}] {}",
            f.file,
            f.line,
            f.column,
            f.rule.level(),
            f.rule.id(),
            f.message
        );
        if !f.query.is_empty() {
            let _ = writeln!(out, "  query: {}", f.query);
        }
        if let Some(fixed) = &f.fixed_query {
            let _ = writeln!(out, "  fixed: {fixed}");
        }
        if let Some(advice) = &f.advice {
            let label = if f.fixed_query.is_some() {
                "  also:"
            } else {
                "  instead:"
            };
            let _ = writeln!(out, "{label} {advice}");
        }
        if !explained.contains(&f.rule) {
            explained.push(f.rule);
            let _ = writeln!(out, "  why: {}", f.explanation);
        }
        out.push('\n');
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "{}:{}:{}: skipped: {} ({})",
            s.file, s.line, s.column, s.reason, s.excerpt
        );
    }
    for s in &r.suppressed {
        let _ = writeln!(
            out,
            "{}:{}:{}: suppressed[{}]: {}",
            s.file,
            s.line,
            s.column,
            s.rule.id(),
            s.reason
        );
    }
    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.findings {
        *by_rule.entry(f.rule.id()).or_default() += 1;
    }
    let rules: Vec<String> = by_rule.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        out,
        "{} finding{}{}, {} skipped (could not be parsed), {} suppressed; {} statement{} checked in {} file{}",
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" },
        if rules.is_empty() {
            String::new()
        } else {
            format!(" ({})", rules.join(", "))
        },
        r.skipped.len(),
        r.suppressed.len(),
        r.statements,
        if r.statements == 1 { "" } else { "s" },
        r.files,
        if r.files == 1 { "" } else { "s" },
    );
    out
}

pub fn render_json(r: &Report) -> String {
    let v = json!({
        "findings": r.findings,
        "skipped": r.skipped,
        "suppressed": r.suppressed,
        "summary": {
            "findings": r.findings.len(),
            "skipped": r.skipped.len(),
            "suppressed": r.suppressed.len(),
            "statements": r.statements,
            "files": r.files,
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A file path as a SARIF `uri`: forward slashes, percent-encoded where a
/// URI reference needs it, relative paths kept relative (viewers resolve
/// them against the checkout).
fn uri(path: &str) -> String {
    let mut p = path.replace('\\', "/");
    // Absolute paths under the working directory become relative to it.
    if let Ok(cwd) = std::env::current_dir() {
        let cwd = format!("{}/", cwd.display().to_string().replace('\\', "/"));
        if let Some(rest) = p.strip_prefix(&cwd) {
            p = rest.to_string();
        }
    }
    let p = p.strip_prefix("./").unwrap_or(&p);
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn location(file: &str, line: u32, column: u32) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(file) },
            "region": { "startLine": line.max(1), "startColumn": column.max(1) }
        }
    })
}

pub fn render_sarif(r: &Report) -> String {
    let rules: Vec<Value> = ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.id().replace('-', "_"),
                "shortDescription": { "text": rule.title() },
                "fullDescription": { "text": rule.help() },
                "help": { "text": rule.help() },
                "defaultConfiguration": { "level": rule.level() },
            })
        })
        .collect();
    let index = |rule: Rule| ALL.iter().position(|r| *r == rule).unwrap_or(0);
    let mut results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            if let Some(fixed) = &f.fixed_query {
                text.push_str(&format!("\nFixed query: {fixed}"));
            }
            if let Some(advice) = &f.advice {
                text.push_str(&format!("\nInstead: {advice}"));
            }
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index(f.rule),
                "level": f.rule.level(),
                "message": { "text": text },
                "locations": [location(&f.file, f.line, f.column)],
            })
        })
        .collect();
    results.extend(r.suppressed.iter().map(|s| {
        json!({
            "ruleId": s.rule.id(),
            "ruleIndex": index(s.rule),
            "level": s.rule.level(),
            "message": { "text": format!("suppressed: {}", s.reason) },
            "locations": [location(&s.file, s.line, s.column)],
            "suppressions": [{ "kind": "inSource", "justification": s.reason }],
        })
    }));
    let notifications: Vec<Value> = r
        .skipped
        .iter()
        .map(|s| {
            json!({
                "level": "warning",
                "descriptor": { "id": "skipped" },
                "message": { "text": format!("skipped, could not be parsed: {} ({})", s.reason, s.excerpt) },
                "locations": [location(&s.file, s.line, s.column)],
            })
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "lethe-lint",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/lethe-db/lethe",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
