//! The accuracy corpus: real-world-shaped queries (e-commerce, ticketing,
//! multi-tenant SaaS, the seeds' own) with the findings each must give.
//! Every case must match exactly: no false positive, no missed finding.
//! Statements the parser cannot read are counted and shown.
//!
//! Format of `tests/corpus/*.sql`: `-- case: NAME`, then one
//! `-- expect: RULE ENTITY` per finding (`clean` for none, `skipped` for a
//! statement that must not parse), then the SQL.

use std::collections::BTreeMap;
use std::path::Path;

use lethe_lint::{Linter, SqlDialect};

struct Case {
    file: String,
    name: String,
    line: usize,
    expect: Vec<(String, String)>,
    skipped: bool,
    sql: String,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        let mut cur: Option<Case> = None;
        for (i, line) in text.lines().enumerate() {
            if let Some(name) = line.strip_prefix("-- case:") {
                out.extend(cur.take());
                cur = Some(Case {
                    file: file.clone(),
                    name: name.trim().to_string(),
                    line: i + 1,
                    expect: Vec::new(),
                    skipped: false,
                    sql: String::new(),
                });
                continue;
            }
            let Some(c) = cur.as_mut() else { continue };
            if let Some(e) = line.strip_prefix("-- expect:") {
                match e.trim() {
                    "clean" => {}
                    "skipped" => c.skipped = true,
                    other => {
                        let (rule, entity) = other.split_once(' ').unwrap_or((other, "-"));
                        c.expect.push((rule.to_string(), entity.trim().to_string()));
                    }
                }
                continue;
            }
            // Blank lines keep the SQL's own line numbers honest in messages.
            c.sql.push_str(line);
            c.sql.push('\n');
        }
        out.extend(cur);
    }
    out
}

#[test]
fn corpus_has_no_false_positive_and_no_missed_finding() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let policy_text = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let policy = lethe_core::parse_policy(&policy_text, "policy.toml").unwrap();
    let linter = Linter::new(&policy, SqlDialect::Postgres);
    let cases = cases(&dir);
    let mut wrong = Vec::new();
    let (mut findings, mut skipped, mut clean) = (0, 0, 0);
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        *per_file.entry(c.file.clone()).or_default() += 1;
        let r = linter.lint_text(&c.name, &c.sql);
        let mut got: Vec<(String, String)> = r
            .findings
            .iter()
            .map(|f| {
                let entity = if f.entity.is_empty() {
                    "-".to_string()
                } else {
                    f.entity.clone()
                };
                (f.rule.id().to_string(), entity)
            })
            .collect();
        got.sort();
        let mut want = c.expect.clone();
        want.sort();
        let got_skipped = !r.skipped.is_empty();
        if got != want || got_skipped != c.skipped {
            wrong.push(format!(
                "{}:{} {}: expected {:?}{}, got {:?}{}{}",
                c.file,
                c.line,
                c.name,
                want,
                if c.skipped { " + skipped" } else { "" },
                got,
                if got_skipped { " + skipped" } else { "" },
                r.skipped
                    .first()
                    .map(|s| format!(" ({})", s.reason))
                    .unwrap_or_default()
            ));
        }
        if !c.skipped && r.statements == 0 {
            wrong.push(format!(
                "{}:{} {}: no statement parsed",
                c.file, c.line, c.name
            ));
        }
        findings += r.findings.len();
        skipped += r.skipped.len();
        if r.findings.is_empty() && r.skipped.is_empty() {
            clean += 1;
        }
    }
    println!(
        "corpus: {} queries ({per_file:?}), {clean} clean, {findings} findings, {skipped} could not be parsed (skipped, as expected)",
        cases.len()
    );
    assert!(cases.len() >= 150, "the corpus has {} queries", cases.len());
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
