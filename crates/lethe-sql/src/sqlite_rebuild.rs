//! SQLite cannot drop a UNIQUE clause written inside CREATE TABLE: the table
//! must be rebuilt. This module edits the table's CREATE TABLE text to remove
//! exactly the UNIQUE clauses on given column sets, and renders the documented
//! rebuild procedure (create new, copy, drop old, rename, recreate indexes and
//! triggers). Everything else in the definition — CHECK constraints, defaults,
//! collations, foreign keys, AUTOINCREMENT — is kept as written.

use crate::dialect::Dialect;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A word or quoted identifier (text as written).
    Word(String),
    Open,
    Close,
    Comma,
    /// Anything else: strings, operators, numbers, comments, whitespace.
    Other(String),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                i += 1;
                while i < b.len() {
                    if b[i] == '\'' {
                        if i + 1 < b.len() && b[i + 1] == '\'' {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push(Tok::Other(b[start..i].iter().collect()));
            }
            '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                i += 1;
                while i < b.len() {
                    if b[i] == close {
                        if close != ']' && i + 1 < b.len() && b[i + 1] == close {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push(Tok::Word(b[start..i].iter().collect()));
            }
            '-' if b.get(i + 1) == Some(&'-') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
                out.push(Tok::Other(b[start..i].iter().collect()));
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                out.push(Tok::Other(b[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                    i += 1;
                }
                out.push(Tok::Word(b[start..i].iter().collect()));
            }
            _ => {
                i += 1;
                out.push(Tok::Other(c.to_string()));
            }
        }
    }
    out
}

fn render(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Word(w) | Tok::Other(w) => w.as_str(),
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
        })
        .collect()
}

/// An identifier without its quotes, lower-cased for comparison.
fn unquote(w: &str) -> String {
    let t = w.trim();
    let quoted = [('"', '"'), ('`', '`'), ('[', ']')]
        .iter()
        .any(|(a, b)| t.len() >= 2 && t.starts_with(*a) && t.ends_with(*b));
    let inner = if quoted { &t[1..t.len() - 1] } else { t };
    inner.to_lowercase()
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

/// Significant tokens (no whitespace or comments) with their indices.
fn significant(toks: &[Tok]) -> Vec<usize> {
    toks.iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Tok::Other(o) if o.trim().is_empty() || o.starts_with("--") || o.starts_with("/*")))
        .map(|(i, _)| i)
        .collect()
}

/// Removes the UNIQUE clauses on exactly `cols` (any order) from a CREATE
/// TABLE statement. Returns `None` when no such clause is found.
pub fn drop_unique(create_sql: &str, cols: &[String]) -> Option<String> {
    let want: std::collections::BTreeSet<String> = cols.iter().map(|c| c.to_lowercase()).collect();
    let toks = tokenize(create_sql);
    let open = toks.iter().position(|t| *t == Tok::Open)?;
    // Split the body into top-level items.
    let mut depth = 0;
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut start = open + 1;
    let mut close = None;
    for (i, t) in toks.iter().enumerate().skip(open + 1) {
        match t {
            Tok::Open => depth += 1,
            Tok::Close if depth == 0 => {
                items.push((start, i));
                close = Some(i);
                break;
            }
            Tok::Close => depth -= 1,
            Tok::Comma if depth == 0 => {
                items.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    let close = close?;
    let mut kept: Vec<Vec<Tok>> = Vec::new();
    let mut changed = false;
    for (s, e) in items {
        let item = &toks[s..e];
        let sig = significant(item);
        let first = sig.first().map(|&i| &item[i]);
        // Table constraint: [CONSTRAINT name] UNIQUE (a, b) [ON CONFLICT x]
        let mut k = 0;
        if first.is_some_and(|t| is_kw(t, "constraint")) {
            k = 2;
        }
        if sig.get(k).is_some_and(|&i| is_kw(&item[i], "unique")) {
            let names: std::collections::BTreeSet<String> = sig
                .iter()
                .skip(k + 1)
                .map(|&i| &item[i])
                .take_while(|t| **t != Tok::Close)
                .filter_map(|t| match t {
                    Tok::Word(w) => Some(unquote(w)),
                    _ => None,
                })
                .collect();
            if names == want {
                changed = true;
                continue;
            }
            kept.push(item.to_vec());
            continue;
        }
        let is_table_constraint = first.is_some_and(|t| {
            ["primary", "check", "foreign", "constraint"]
                .iter()
                .any(|kw| is_kw(t, kw))
        });
        // Column definition whose name is the single wanted column.
        if !is_table_constraint
            && want.len() == 1
            && first.is_some_and(|t| matches!(t, Tok::Word(w) if want.contains(&unquote(w))))
        {
            let mut out: Vec<Tok> = Vec::new();
            let mut j = 0;
            let mut depth = 0;
            while j < item.len() {
                let t = &item[j];
                match t {
                    Tok::Open => depth += 1,
                    Tok::Close => depth -= 1,
                    _ => {}
                }
                if depth == 0 && is_kw(t, "unique") {
                    changed = true;
                    // Drop a preceding `CONSTRAINT name`.
                    let sig_out = significant(&out);
                    if sig_out.len() >= 2 && is_kw(&out[sig_out[sig_out.len() - 2]], "constraint") {
                        out.truncate(sig_out[sig_out.len() - 2]);
                    }
                    while matches!(out.last(), Some(Tok::Other(o)) if o.trim().is_empty()) {
                        out.pop();
                    }
                    j += 1;
                    // And a following `ON CONFLICT <algorithm>`.
                    let rest = significant(&item[j..]);
                    if rest.len() >= 3
                        && is_kw(&item[j + rest[0]], "on")
                        && is_kw(&item[j + rest[1]], "conflict")
                    {
                        j += rest[2] + 1;
                    }
                    continue;
                }
                out.push(t.clone());
                j += 1;
            }
            kept.push(out);
            continue;
        }
        kept.push(item.to_vec());
    }
    if !changed {
        return None;
    }
    let body: Vec<String> = kept.iter().map(|i| render(i).trim().to_string()).collect();
    Some(format!(
        "{}({}){}",
        render(&toks[..open]),
        body.join(", "),
        render(&toks[close + 1..])
    ))
}

/// The statements that rebuild `table` from `new_create` (its CREATE TABLE with
/// the new name substituted by the caller), copying `columns` and recreating
/// `extra` (the table's index and trigger definitions).
pub fn rebuild_statements(
    table: &str,
    new_create_sql: &str,
    columns: &[String],
    extra: &[String],
) -> Vec<String> {
    let d = Dialect::Sqlite;
    let tmp = format!("lethe_rebuild_{table}");
    let cols = columns
        .iter()
        .map(|c| d.ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = vec![
        new_create_sql.to_string(),
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
            d.ident(&tmp),
            d.ident(table)
        ),
    ];
    // AUTOINCREMENT never reuses an id: carry the counter over, or ids of
    // deleted rows would be handed out again.
    if new_create_sql
        .to_ascii_uppercase()
        .contains("AUTOINCREMENT")
    {
        s.push(format!(
            "DELETE FROM sqlite_sequence WHERE name = {}",
            d.lit(&tmp)
        ));
        s.push(format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {}, seq FROM sqlite_sequence WHERE name = {}",
            d.lit(&tmp),
            d.lit(table)
        ));
    }
    s.push(format!("DROP TABLE {}", d.ident(table)));
    s.push(format!(
        "ALTER TABLE {} RENAME TO {}",
        d.ident(&tmp),
        d.ident(table)
    ));
    s.extend(extra.iter().cloned());
    s
}

/// Replaces the table name of a CREATE TABLE statement with `new_name`.
pub fn rename_create(create_sql: &str, new_name: &str) -> Option<String> {
    let toks = tokenize(create_sql);
    let sig = significant(&toks);
    // CREATE [TEMP] TABLE [IF NOT EXISTS] [schema.]name (
    let mut k = 0;
    while k < sig.len() && !is_kw(&toks[sig[k]], "table") {
        k += 1;
    }
    k += 1;
    if sig.get(k).is_some_and(|&i| is_kw(&toks[i], "if")) {
        k += 3;
    }
    let name_at = *sig.get(k)?;
    let mut out = toks.clone();
    // Skip `schema .` if present.
    let (from, to) = if sig
        .get(k + 1)
        .is_some_and(|&i| toks[i] == Tok::Other(".".into()))
    {
        (name_at, *sig.get(k + 2)?)
    } else {
        (name_at, name_at)
    };
    out.splice(from..=to, [Tok::Word(Dialect::Sqlite.ident(new_name))]);
    Some(render(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn removes_column_unique_and_keeps_the_rest() {
        let sql = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE ON CONFLICT ABORT CHECK (email LIKE '%@%, unique'), name TEXT UNIQUE)";
        let out = drop_unique(sql, &cols(&["email"])).unwrap();
        assert_eq!(
            out,
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL CHECK (email LIKE '%@%, unique'), name TEXT UNIQUE)"
        );
    }

    #[test]
    fn removes_table_constraint_on_the_same_set() {
        let sql = "CREATE TABLE \"t\" (a INT, \"B\" INT, c INT, CONSTRAINT u1 UNIQUE (\"b\", a), UNIQUE (c), FOREIGN KEY (c) REFERENCES x (id))";
        let out = drop_unique(sql, &cols(&["a", "b"])).unwrap();
        assert_eq!(
            out,
            "CREATE TABLE \"t\" (a INT, \"B\" INT, c INT, UNIQUE (c), FOREIGN KEY (c) REFERENCES x (id))"
        );
        assert_eq!(drop_unique(sql, &cols(&["a"])), None);
    }

    #[test]
    fn named_column_constraint_and_comments() {
        let sql = "CREATE TABLE t (\n  -- the login\n  login TEXT CONSTRAINT login_u UNIQUE /* once */ NOT NULL\n)";
        let out = drop_unique(sql, &cols(&["login"])).unwrap();
        assert!(
            !out.to_lowercase().contains("unique")
                && out.contains("NOT NULL")
                && !out.contains("login_u"),
            "{out}"
        );
    }

    #[test]
    fn renames_the_table() {
        assert_eq!(
            rename_create(
                "CREATE TABLE IF NOT EXISTS main.\"users\" (id INT)",
                "lethe_rebuild_users"
            )
            .unwrap(),
            "CREATE TABLE IF NOT EXISTS \"lethe_rebuild_users\" (id INT)"
        );
        assert_eq!(
            rename_create("create table users(id)", "x").unwrap(),
            "create table \"x\"(id)"
        );
    }
}
