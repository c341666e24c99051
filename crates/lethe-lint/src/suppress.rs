//! `lethe: include-deleted <reason>` comments: a query that reads deleted
//! rows on purpose says so, and says why.
//!
//! A mark applies to the statement it stands in, or to the statement right
//! below the comment block it is part of. It works in any comment syntax
//! (`--`, `//`, `#`, `/* */`), so it can sit in the SQL or in the code
//! around a literal.

const MARK: &str = "lethe: include-deleted";

#[derive(Debug, Clone)]
pub struct Mark {
    pub line: u32,
    pub column: u32,
    pub reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct Marks {
    marks: Vec<Mark>,
    /// Per line (0-based): whether it holds only a comment.
    comment_lines: Vec<bool>,
    /// Per line (0-based): whether it opens a call or an assignment whose
    /// argument starts on the next line (`cur.execute(`, `sql = (`).
    opener_lines: Vec<bool>,
}

fn is_comment_line(l: &str) -> bool {
    let t = l.trim_start();
    ["--", "//", "#", "/*", "*"]
        .iter()
        .any(|p| t.starts_with(p))
}

impl Marks {
    pub fn scan(src: &str) -> Marks {
        if !src.contains(MARK) {
            return Marks::default();
        }
        let mut m = Marks::default();
        for (i, l) in src.lines().enumerate() {
            m.comment_lines.push(is_comment_line(l));
            m.opener_lines
                .push(l.trim_end().ends_with(['(', '=', ',', '[']) && !is_comment_line(l));
            if let Some(at) = l.find(MARK) {
                let rest = &l[at + MARK.len()..];
                let reason = rest
                    .trim()
                    .trim_end_matches("*/")
                    .trim_end_matches("\"\"\"")
                    .trim()
                    .trim_start_matches([':', '-', ' '])
                    .trim();
                m.marks.push(Mark {
                    line: i as u32 + 1,
                    column: l[..at].chars().count() as u32 + 1,
                    reason: (!reason.is_empty()).then(|| reason.to_string()),
                });
            }
        }
        m
    }

    /// Marks without a reason: each is a finding of its own.
    pub fn without_reason(&self) -> impl Iterator<Item = &Mark> {
        self.marks.iter().filter(|m| m.reason.is_none())
    }

    /// The reason of a mark covering a statement on lines `first..=last`.
    pub fn covering(&self, first: u32, last: u32) -> Option<&str> {
        if self.marks.is_empty() {
            return None;
        }
        // The comment block right above the statement, or above the line
        // that opens the call the literal is an argument of.
        let is =
            |v: &[bool], line: u32| line >= 1 && v.get(line as usize - 1).copied().unwrap_or(false);
        let mut top = first;
        if is(&self.opener_lines, top.saturating_sub(1)) {
            top -= 1;
        }
        while top > 1 && is(&self.comment_lines, top - 1) {
            top -= 1;
        }
        self.marks
            .iter()
            .filter(|m| m.line >= top && m.line <= last)
            .find_map(|m| m.reason.as_deref())
    }
}
