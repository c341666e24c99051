//! `lethe lint`: finds the SQL that leaks soft-deleted rows or bypasses
//! Lethe, in source files and in the statements a database has run.
//!
//! The policy says which tables are managed and which are soft; this crate
//! parses SQL with `sqlparser` in the policy's dialect and checks each
//! statement ([`analyze`]). It reads files but never connects to a
//! database: live statements are handed to [`Linter::lint_text`] by the
//! caller (the CLI reads `pg_stat_statements` through `lethe-store`).

mod analyze;
mod render;
mod rules;
mod sources;
mod suppress;
mod targets;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

pub use render::{render_json, render_sarif, render_text};
pub use rules::{ALL as ALL_RULES, Rule};
pub use sources::Lang;
pub use targets::Targets;

use sources::{HOLE, Snippet};

/// The SQL dialect queries are parsed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlDialect {
    Postgres,
    Sqlite,
    Mysql,
    Generic,
}

impl SqlDialect {
    /// The dialect of a database URL (`postgres://`, `sqlite:`, `mysql://`).
    pub fn from_url(url: &str) -> Option<SqlDialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        Some(match scheme.as_str() {
            "postgres" | "postgresql" => SqlDialect::Postgres,
            "sqlite" => SqlDialect::Sqlite,
            "mysql" | "mariadb" => SqlDialect::Mysql,
            _ => return None,
        })
    }

    fn parser_dialect(self) -> Box<dyn Dialect + Send + Sync> {
        match self {
            SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
            SqlDialect::Sqlite => Box::new(SQLiteDialect {}),
            SqlDialect::Mysql => Box::new(MySqlDialect {}),
            SqlDialect::Generic => Box::new(GenericDialect {}),
        }
    }
}

/// One finding, positioned in its file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub entity: String,
    pub message: String,
    /// Why the rule matters and what to do (the same for every finding of
    /// the rule).
    pub explanation: &'static str,
    /// The statement as linted.
    pub query: String,
    /// The statement with the missing filters added.
    pub fixed_query: Option<String>,
    /// What to run instead when the fix is not a query.
    pub advice: Option<String>,
}

/// A statement the parser could not read: reported, never dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub reason: String,
    /// The first line of the text, to find it.
    pub excerpt: String,
}

/// A finding silenced by `lethe: include-deleted <reason>`.
#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    pub rule: Rule,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
    pub suppressed: Vec<Suppressed>,
    /// Files read.
    pub files: usize,
    /// Statements parsed and checked.
    pub statements: usize,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.findings.extend(other.findings);
        self.skipped.extend(other.skipped);
        self.suppressed.extend(other.suppressed);
        self.files += other.files;
        self.statements += other.statements;
    }

    fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
        });
        self.skipped
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no such file or directory")]
    Missing { path: String },
}

/// Lints SQL against one policy in one dialect.
pub struct Linter {
    targets: Targets,
    dialect: SqlDialect,
    parser: Box<dyn Dialect + Send + Sync>,
}

/// Longer statements are reported as skipped: the syntax tree of a
/// generated query with tens of thousands of conditions is deep enough to
/// exhaust a thread's stack (`lethe lint` runs on a thread with a large one).
const MAX_TOKENS: usize = 40_000;

/// Directories never walked into: dependencies, build output, VCS data.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "target",
    "vendor",
    "venv",
    ".venv",
    "__pycache__",
    "dist",
    "build",
    ".tox",
];

impl Linter {
    pub fn new(policy: &lethe_core::Policy, dialect: SqlDialect) -> Linter {
        Linter {
            targets: Targets::from_policy(policy),
            dialect,
            parser: dialect.parser_dialect(),
        }
    }

    /// Lints files and directories (walked recursively; a directory's files
    /// are those with a known extension, a file named explicitly is read
    /// whatever its extension, as SQL when it has none of ours).
    pub fn lint_paths(&self, paths: &[PathBuf]) -> Result<Report, LintError> {
        let mut report = Report::default();
        for p in paths {
            if !p.exists() {
                return Err(LintError::Missing {
                    path: p.display().to_string(),
                });
            }
            if p.is_file() {
                let lang = Lang::of(p).unwrap_or(Lang::Sql);
                self.lint_file(p, lang, &mut report)?;
                continue;
            }
            let walk = walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0
                        || !(e.file_type().is_dir()
                            && e.file_name()
                                .to_str()
                                .is_some_and(|n| SKIP_DIRS.contains(&n)))
                });
            for entry in walk {
                let entry = entry.map_err(|e| LintError::Read {
                    path: e
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| p.display().to_string()),
                    source: e.into(),
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                if let Some(lang) = Lang::of(entry.path()) {
                    self.lint_file(entry.path(), lang, &mut report)?;
                }
            }
        }
        report.sort();
        Ok(report)
    }

    fn lint_file(&self, path: &Path, lang: Lang, report: &mut Report) -> Result<(), LintError> {
        let bytes = std::fs::read(path).map_err(|source| LintError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // Files that are not UTF-8 are read lossily: a query in them is
        // still found, a stray byte elsewhere does not stop the run.
        let src = String::from_utf8_lossy(&bytes);
        report.merge(self.lint_source(&path.display().to_string(), &src, lang));
        Ok(())
    }

    /// Lints one file's text.
    pub fn lint_source(&self, file: &str, src: &str, lang: Lang) -> Report {
        let mut report = Report {
            files: 1,
            ..Report::default()
        };
        // A byte-order mark is not SQL (editors do not count it as a column).
        let src = src.strip_prefix('\u{FEFF}').unwrap_or(src);
        let marks = suppress::Marks::scan(src);
        for snippet in sources::snippets(src, lang) {
            if snippet.literal && !sources::looks_like_sql(&snippet.text) {
                continue;
            }
            self.lint_snippet(file, &snippet, &marks, &mut report);
        }
        for m in marks.without_reason() {
            report.findings.push(Finding {
                rule: Rule::SuppressionWithoutReason,
                file: file.to_string(),
                line: m.line,
                column: m.column,
                entity: String::new(),
                message: "`lethe: include-deleted` needs a reason after it, e.g. `-- lethe: include-deleted the trash page lists deleted orders`; without one it suppresses nothing".into(),
                explanation: Rule::SuppressionWithoutReason.help(),
                query: String::new(),
                fixed_query: None,
                advice: None,
            });
        }
        report.sort();
        report
    }

    /// Lints SQL text that comes from no file (a statement PostgreSQL ran):
    /// `origin` names it in the report.
    pub fn lint_text(&self, origin: &str, sql: &str) -> Report {
        self.lint_source(origin, sql, Lang::Sql)
    }

    fn lint_snippet(
        &self,
        file: &str,
        snippet: &Snippet,
        marks: &suppress::Marks,
        report: &mut Report,
    ) {
        let text = normalize_placeholders(&snippet.text, self.dialect);
        let starts = sources::line_starts(&text);
        let tokens = match Tokenizer::new(self.parser.as_ref(), &text).tokenize_with_location() {
            Ok(t) => t,
            Err(e) => {
                let (line, column) = snippet.file_pos(e.location.line, e.location.column, &starts);
                report.skipped.push(Skipped {
                    file: file.to_string(),
                    line,
                    column,
                    reason: format!("cannot tokenize: {}", e.message),
                    excerpt: excerpt(&snippet.text),
                });
                return;
            }
        };
        for group in statements(tokens) {
            let first = &group[0].span.start;
            if group.len() > MAX_TOKENS {
                let (line, column) = snippet.file_pos(first.line, first.column, &starts);
                report.skipped.push(Skipped {
                    file: file.to_string(),
                    line,
                    column,
                    reason: format!(
                        "statement of {} tokens, over the {MAX_TOKENS} the linter analyses",
                        group.len()
                    ),
                    excerpt: excerpt(
                        &group
                            .iter()
                            .take(40)
                            .map(|t| t.token.to_string())
                            .collect::<String>(),
                    ),
                });
                continue;
            }
            let last = &group[group.len() - 1].span.end;
            let (line, column) = snippet.file_pos(first.line, first.column, &starts);
            let (end_line, _) =
                snippet.file_pos(last.line, last.column.saturating_sub(1).max(1), &starts);
            let query_text: String = group.iter().map(|t| t.token.to_string()).collect();
            let mut parser = Parser::new(self.parser.as_ref()).with_tokens_with_locations(group);
            let parsed = parser
                .parse_statement()
                .and_then(|s| match parser.peek_token().token {
                    Token::EOF | Token::SemiColon => Ok(s),
                    t => Err(sqlparser::parser::ParserError::ParserError(format!(
                        "unexpected {t} after the statement"
                    ))),
                });
            let stmt = match parsed {
                Ok(s) => s,
                Err(e) => {
                    report.skipped.push(Skipped {
                        file: file.to_string(),
                        line,
                        column,
                        reason: e.to_string(),
                        excerpt: excerpt(&query_text),
                    });
                    continue;
                }
            };
            report.statements += 1;
            let a = analyze::analyze(&stmt, &self.targets);
            if a.hits.is_empty() {
                continue;
            }
            let open = if snippet.literal {
                snippet.open_line.min(line)
            } else {
                line
            };
            let suppression = marks.covering(open, end_line);
            for h in a.hits {
                let (hl, hc) = if h.line == 0 {
                    (line, column)
                } else {
                    snippet.file_pos(h.line, h.column, &starts)
                };
                if let Some(reason) = suppression {
                    report.suppressed.push(Suppressed {
                        rule: h.rule,
                        file: file.to_string(),
                        line: hl,
                        column: hc,
                        reason: reason.to_string(),
                    });
                    continue;
                }
                let fixed_query = match h.rule {
                    Rule::UnfilteredRead | Rule::UniqueLookup => a.fixed.clone(),
                    _ => None,
                };
                report.findings.push(Finding {
                    rule: h.rule,
                    file: file.to_string(),
                    line: hl,
                    column: hc,
                    entity: h.entity,
                    message: h.message,
                    explanation: h.rule.help(),
                    query: stmt.to_string(),
                    fixed_query,
                    advice: h.advice,
                });
            }
        }
    }
}

fn excerpt(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut e: String = first.chars().take(120).collect();
    if first.chars().count() > 120 {
        e.push('…');
    }
    e
}

/// Splits tokens into statements at top-level semicolons, dropping leading
/// whitespace and comments and groups that hold nothing else.
fn statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = Vec::new();
    let mut cur: Vec<TokenWithSpan> = Vec::new();
    for t in tokens {
        match &t.token {
            Token::SemiColon => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            Token::Whitespace(_) if cur.is_empty() => {}
            Token::EOF => {}
            _ => cur.push(t),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    // Trailing whitespace and comments are not part of the statement.
    for g in &mut out {
        while g
            .last()
            .is_some_and(|t| matches!(t.token, Token::Whitespace(_)))
        {
            g.pop();
        }
    }
    out.retain(|g| !g.is_empty());
    out
}

/// Keywords after which a `?` or `:name` is a bind value.
const VALUE_AFTER: &[&str] = &[
    "limit",
    "offset",
    "in",
    "and",
    "or",
    "then",
    "else",
    "when",
    "select",
    "by",
    "values",
    "like",
    "ilike",
    "between",
    "not",
    "is",
    "set",
    "returning",
    "on",
    "where",
    "any",
    "all",
    "distinct",
];

/// Replaces interpolation holes and driver placeholders (`%s`, `%d`,
/// `%(name)s`, and on PostgreSQL `?` and `:name`, which JDBC, database/sql
/// and ORMs write) that the dialect's parser does not read with a bind
/// value of the same length in chars (the dialect's own placeholder where it
/// has a one-char one, else the number `0`), so every position stays true.
fn normalize_placeholders(text: &str, dialect: SqlDialect) -> String {
    let pg = matches!(dialect, SqlDialect::Postgres | SqlDialect::Generic);
    let native_q = !pg;
    if !text.contains(HOLE)
        && !text.contains('%')
        && !(pg && (text.contains('?') || text.contains(':')))
    {
        return text.to_string();
    }
    let one = if native_q { '?' } else { '0' };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut quote: Option<char> = None;
    // Whether a value may stand here: after an operator, `(`, `,` or a
    // keyword that takes one.
    let value_position = |out: &str| {
        let t = out.trim_end();
        match t.chars().last() {
            None => false,
            Some(c) if "=<>(,+-*/|".contains(c) => true,
            Some(c) if c.is_alphanumeric() || c == '_' => {
                let word: String = t
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                VALUE_AFTER.contains(&word.to_ascii_lowercase().as_str())
            }
            _ => false,
        }
    };
    // PostgreSQL's own `$1` where two chars are free (`%s`, `:id`).
    let pad = |out: &mut String, len: usize| {
        let ph = if !native_q && len >= 2 {
            "$1"
        } else if native_q {
            "?"
        } else {
            "0"
        };
        out.push_str(ph);
        out.extend(std::iter::repeat_n(' ', len - ph.len()));
    };
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            out.push(if c == HOLE { 'x' } else { c });
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        // Comments are copied as they are: an apostrophe in `-- don't`
        // opens no string, a `?` in prose is no placeholder.
        let comment_end = match (c, next) {
            ('-', Some('-')) => Some(
                chars[i..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(chars.len(), |k| i + k),
            ),
            ('/', Some('*')) => Some(
                chars[i + 2..]
                    .windows(2)
                    .position(|w| w == ['*', '/'])
                    .map_or(chars.len(), |k| i + 2 + k + 2),
            ),
            _ => None,
        };
        if let Some(end) = comment_end {
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
                i += 1;
            }
            HOLE => {
                out.push(one);
                i += 1;
            }
            '%' if matches!(next, Some('s' | 'd' | 'f' | 'b')) => {
                pad(&mut out, 2);
                i += 2;
            }
            '%' if next == Some('(') => {
                let close = chars[i..].iter().position(|c| *c == ')');
                match close {
                    Some(k)
                        if chars
                            .get(i + k + 1)
                            .is_some_and(|c| c.is_ascii_alphabetic()) =>
                    {
                        pad(&mut out, k + 2);
                        i += k + 2;
                    }
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            '%' if next == Some('%') => {
                out.push_str("% ");
                i += 2;
            }
            '?' if pg && !matches!(next, Some('|' | '&' | '?')) && value_position(&out) => {
                out.push('0');
                i += 1;
            }
            ':' if pg
                && next.is_some_and(|n| n.is_ascii_alphabetic())
                && i > 0
                && chars[i - 1] != ':'
                && value_position(&out) =>
            {
                let len = 1 + chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                pad(&mut out, len);
                i += len;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
