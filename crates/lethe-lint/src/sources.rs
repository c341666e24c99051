//! Finding SQL text in files: whole `.sql` files, and the string literals of
//! source files in the languages applications call databases from.
//!
//! Each language gets a small lexer that knows its comments and string
//! forms (so a quote inside a comment or a char literal does not start a
//! string) and keeps, for every character of a literal's value, where it
//! stands in the file: a finding inside a literal points at the file's own
//! line and column. Adjacent literals joined by `+` (or by adjacency, as in
//! Python) are read as one, the way long queries are usually written.

use std::path::Path;

/// Marks an interpolation (`${x}`, `#{x}`, `{x}` in an f-string) in a
/// literal's value; replaced by a bind placeholder before parsing.
pub const HOLE: char = '\u{E000}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sql,
    Rust,
    Python,
    Ruby,
    JavaScript,
    Go,
    Java,
}

impl Lang {
    pub fn of(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "sql" => Lang::Sql,
            "rs" => Lang::Rust,
            "py" | "pyi" => Lang::Python,
            "rb" | "rake" => Lang::Ruby,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => Lang::JavaScript,
            "go" => Lang::Go,
            "java" | "kt" | "kts" | "scala" => Lang::Java,
            _ => return None,
        })
    }

    fn hash_comments(self) -> bool {
        matches!(self, Lang::Python | Lang::Ruby)
    }

    fn slash_comments(self) -> bool {
        !self.hash_comments()
    }

    /// Whether `+` between two literals joins them (`"a" + "b"`).
    fn plus_joins(self) -> bool {
        !matches!(self, Lang::Rust)
    }
}

/// A piece of text that may hold SQL, with the file position of each of
/// its characters.
#[derive(Debug, Clone)]
pub struct Snippet {
    pub text: String,
    /// For a literal, the (line, column) in the file of each char of
    /// `text`; empty for a whole `.sql` file (positions are the same).
    pub map: Vec<(u32, u32)>,
    /// The line the literal opens on (for suppression comments above it).
    pub open_line: u32,
    pub literal: bool,
}

impl Snippet {
    pub fn whole(text: String) -> Snippet {
        Snippet {
            text,
            map: Vec::new(),
            open_line: 1,
            literal: false,
        }
    }

    /// The file position of a 1-based (line, column) in `text`.
    pub fn file_pos(&self, line: u64, column: u64, line_starts: &[usize]) -> (u32, u32) {
        if !self.literal {
            return (line.max(1) as u32, column.max(1) as u32);
        }
        let l = (line.max(1) as usize - 1).min(line_starts.len().saturating_sub(1));
        let idx = line_starts.get(l).copied().unwrap_or(0) + column.max(1) as usize - 1;
        self.map
            .get(idx.min(self.map.len().saturating_sub(1)))
            .copied()
            .unwrap_or((self.open_line, 1))
    }
}

/// Char indexes where each line of `text` starts.
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    for (i, c) in text.chars().enumerate() {
        if c == '\n' {
            v.push(i + 1);
        }
    }
    v
}

/// The snippets of a file: the whole text for SQL, the literals otherwise.
pub fn snippets(src: &str, lang: Lang) -> Vec<Snippet> {
    if lang == Lang::Sql {
        return vec![Snippet::whole(blank_psql_commands(src))];
    }
    Lexer::new(src, lang).run()
}

/// psql meta-commands (`\set`, `\i`, `\connect`) are not SQL; blanked
/// (keeping every position) so the statements around them still parse.
fn blank_psql_commands(src: &str) -> String {
    if !src.lines().any(|l| l.trim_start().starts_with('\\')) {
        return src.to_string();
    }
    src.split_inclusive('\n')
        .map(|l| {
            if l.trim_start().starts_with('\\') {
                l.chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect()
            } else {
                l.to_string()
            }
        })
        .collect()
}

struct Lexer {
    s: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    lang: Lang,
}

/// A literal being read: its value and where each char came from.
#[derive(Default)]
struct Lit {
    text: String,
    map: Vec<(u32, u32)>,
}

impl Lit {
    fn push(&mut self, c: char, at: (u32, u32)) {
        self.text.push(c);
        self.map.push(at);
    }
}

impl Lexer {
    fn new(src: &str, lang: Lang) -> Lexer {
        Lexer {
            s: src.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            lang,
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn at(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(k, c)| self.peek(k) == Some(c))
    }

    fn pos(&self) -> (u32, u32) {
        (self.line, self.col)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn prev_is_word(&self) -> bool {
        self.i > 0 && {
            let p = self.s[self.i - 1];
            p.is_alphanumeric() || p == '_'
        }
    }

    fn run(mut self) -> Vec<Snippet> {
        let mut out = Vec::new();
        while self.peek(0).is_some() {
            if self.skip_comment() {
                continue;
            }
            let open_line = self.line;
            if let Some(mut lit) = self.string() {
                // Joined literals: "a" + "b", or "a" "b" (Python, C-style).
                loop {
                    let save = (self.i, self.line, self.col);
                    self.skip_joiners();
                    match self.string() {
                        Some(next) => {
                            lit.text.push_str(&next.text);
                            lit.map.extend(next.map);
                        }
                        None => {
                            (self.i, self.line, self.col) = save;
                            break;
                        }
                    }
                }
                out.push(Snippet {
                    text: lit.text,
                    map: lit.map,
                    open_line,
                    literal: true,
                });
                continue;
            }
            self.bump();
        }
        out
    }

    fn skip_joiners(&mut self) {
        let mut plus = false;
        while let Some(c) = self.peek(0) {
            if c.is_whitespace() {
                self.bump();
            } else if c == '+' && self.lang.plus_joins() && !plus {
                plus = true;
                self.bump();
            } else if c == '\\' && matches!(self.lang, Lang::Python | Lang::Ruby) {
                self.bump();
            } else if !self.skip_comment() {
                break;
            }
        }
    }

    fn skip_comment(&mut self) -> bool {
        if self.lang.slash_comments() && self.at("//") {
            while self.peek(0).is_some_and(|c| c != '\n') {
                self.bump();
            }
            return true;
        }
        if self.lang.slash_comments() && self.at("/*") {
            self.bump_n(2);
            while self.peek(0).is_some() && !self.at("*/") {
                self.bump();
            }
            self.bump_n(2);
            return true;
        }
        if self.lang.hash_comments() && self.peek(0) == Some('#') {
            while self.peek(0).is_some_and(|c| c != '\n') {
                self.bump();
            }
            return true;
        }
        if self.lang == Lang::Ruby && self.col == 1 && self.at("=begin") {
            while self.peek(0).is_some() && !(self.col == 1 && self.at("=end")) {
                self.bump();
            }
            return true;
        }
        false
    }

    /// Reads a string literal starting here, if one does.
    fn string(&mut self) -> Option<Lit> {
        match self.lang {
            Lang::Rust => self.rust_string(),
            Lang::Python => self.python_string(),
            Lang::Ruby => self.ruby_string(),
            Lang::JavaScript => match self.peek(0)? {
                '\'' | '"' => Some(self.quoted(self.peek(0)?, true, None)),
                '`' => Some(self.quoted('`', true, Some("${"))),
                _ => None,
            },
            Lang::Go => match self.peek(0)? {
                '"' => Some(self.quoted('"', true, None)),
                '`' => Some(self.quoted('`', false, None)),
                '\'' => {
                    self.skip_char_literal();
                    None
                }
                _ => None,
            },
            Lang::Java => {
                if self.at("\"\"\"") {
                    Some(self.triple('"', true, None))
                } else if self.peek(0) == Some('"') {
                    Some(self.quoted('"', true, None))
                } else {
                    if self.peek(0) == Some('\'') {
                        self.skip_char_literal();
                    }
                    None
                }
            }
            Lang::Sql => None,
        }
    }

    /// `'x'`, `'\n'`: skipped so their quote starts nothing; a Rust
    /// lifetime (`'a`) is skipped as one char.
    fn skip_char_literal(&mut self) {
        if self.peek(1) == Some('\\') {
            let mut k = 2;
            while k < 12 && self.peek(k).is_some_and(|c| c != '\'') {
                k += 1;
            }
            self.bump_n(k + 1);
        } else if self.peek(2) == Some('\'') {
            self.bump_n(3);
        } else {
            self.bump();
        }
    }

    /// A string between `q`s, with backslash escapes when `escapes`, and
    /// interpolations opened by `interp` (closed by the matching `}`).
    fn quoted(&mut self, q: char, escapes: bool, interp: Option<&str>) -> Lit {
        self.bump();
        let mut lit = Lit::default();
        while let Some(c) = self.peek(0) {
            let at = self.pos();
            if c == q {
                self.bump();
                break;
            }
            if escapes && c == '\\' {
                self.escape(&mut lit);
                continue;
            }
            if let Some(open) = interp
                && self.at(open)
            {
                self.bump_n(open.len());
                self.skip_braces();
                lit.push(HOLE, at);
                continue;
            }
            // One-line strings cannot span lines: a quote the lexer took
            // for a string start by mistake (a JSX apostrophe, a quote in
            // a regex) costs one line, not the rest of the file.
            if c == '\n' && q != '`' && self.one_line_strings() {
                break;
            }
            self.bump();
            lit.push(c, at);
        }
        lit
    }

    fn one_line_strings(&self) -> bool {
        matches!(
            self.lang,
            Lang::Python | Lang::JavaScript | Lang::Go | Lang::Java
        )
    }

    /// `"""..."""` or `'''...'''`.
    fn triple(&mut self, q: char, escapes: bool, interp: Option<&str>) -> Lit {
        self.bump_n(3);
        let close: String = std::iter::repeat_n(q, 3).collect();
        let mut lit = Lit::default();
        while let Some(c) = self.peek(0) {
            let at = self.pos();
            if self.at(&close) {
                self.bump_n(3);
                break;
            }
            if escapes && c == '\\' {
                self.escape(&mut lit);
                continue;
            }
            if let Some(open) = interp
                && self.at(open)
                && !self.at("{{")
            {
                self.bump_n(open.len());
                self.skip_braces();
                lit.push(HOLE, at);
                continue;
            }
            if interp.is_some() && (self.at("{{") || self.at("}}")) {
                self.bump_n(2);
                lit.push(c, at);
                continue;
            }
            self.bump();
            lit.push(c, at);
        }
        lit
    }

    /// Skips to the `}` closing an interpolation just opened.
    fn skip_braces(&mut self) {
        let mut depth = 1;
        while let Some(c) = self.bump() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn escape(&mut self, lit: &mut Lit) {
        let at = self.pos();
        self.bump();
        let Some(c) = self.bump() else { return };
        match c {
            'n' => lit.push('\n', at),
            't' => lit.push('\t', at),
            'r' => lit.push('\r', at),
            '\n' => {
                // A line continuation: Rust also drops the next line's indent.
                if self.lang == Lang::Rust {
                    while self.peek(0).is_some_and(char::is_whitespace) {
                        self.bump();
                    }
                }
            }
            other => lit.push(other, at),
        }
    }

    fn rust_string(&mut self) -> Option<Lit> {
        if self.prev_is_word() {
            return None;
        }
        // A byte char, `b'"'`: its quote starts no string.
        if self.at("b'") {
            self.bump();
            self.skip_char_literal();
            return None;
        }
        let mut k = 0;
        if self.peek(k) == Some('b') || self.peek(k) == Some('c') {
            k += 1;
        }
        if self.peek(k) == Some('r') {
            let mut hashes = 0;
            while self.peek(k + 1 + hashes) == Some('#') {
                hashes += 1;
            }
            if self.peek(k + 1 + hashes) != Some('"') {
                return None;
            }
            self.bump_n(k + 2 + hashes);
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let mut lit = Lit::default();
            while let Some(c) = self.peek(0) {
                if self.at(&close) {
                    self.bump_n(close.chars().count());
                    break;
                }
                let at = self.pos();
                self.bump();
                lit.push(c, at);
            }
            return Some(lit);
        }
        match self.peek(k) {
            Some('"') => {
                self.bump_n(k);
                Some(self.quoted('"', true, None))
            }
            Some('\'') if k == 0 => {
                self.skip_char_literal();
                None
            }
            _ => None,
        }
    }

    fn python_string(&mut self) -> Option<Lit> {
        if self.prev_is_word() {
            return None;
        }
        let mut k = 0;
        let (mut raw, mut f) = (false, false);
        while k < 2 {
            match self.peek(k).map(|c| c.to_ascii_lowercase()) {
                Some('r') => raw = true,
                Some('f') => f = true,
                Some('b') | Some('u') => {}
                _ => break,
            }
            k += 1;
        }
        let q = self.peek(k)?;
        if q != '\'' && q != '"' {
            return None;
        }
        self.bump_n(k);
        let interp = f.then_some("{");
        if self.at(&std::iter::repeat_n(q, 3).collect::<String>()) {
            return Some(self.triple(q, !raw, interp));
        }
        Some(self.quoted_f(q, !raw, interp))
    }

    /// A one-line Python string (f-strings escape braces by doubling).
    fn quoted_f(&mut self, q: char, escapes: bool, interp: Option<&str>) -> Lit {
        if interp.is_none() {
            return self.quoted(q, escapes, None);
        }
        self.bump();
        let mut lit = Lit::default();
        while let Some(c) = self.peek(0) {
            let at = self.pos();
            if c == q || c == '\n' {
                self.bump();
                break;
            }
            if escapes && c == '\\' {
                self.escape(&mut lit);
            } else if self.at("{{") || self.at("}}") {
                self.bump_n(2);
                lit.push(c, at);
            } else if c == '{' {
                self.bump();
                self.skip_braces();
                lit.push(HOLE, at);
            } else {
                self.bump();
                lit.push(c, at);
            }
        }
        lit
    }

    fn ruby_string(&mut self) -> Option<Lit> {
        match self.peek(0)? {
            '"' => Some(self.quoted('"', true, Some("#{"))),
            '\'' => Some(self.quoted('\'', true, None)),
            '<' if self.at("<<") => self.heredoc(),
            _ => None,
        }
    }

    /// `<<~SQL`, `<<-SQL`, `<<SQL`, `<<~'SQL'`: the body starts on the
    /// next line and ends at the line holding only the identifier.
    fn heredoc(&mut self) -> Option<Lit> {
        let mut k = 2;
        if matches!(self.peek(k), Some('~') | Some('-')) {
            k += 1;
        }
        let quote = self.peek(k).filter(|c| *c == '\'' || *c == '"');
        if quote.is_some() {
            k += 1;
        }
        let mut id = String::new();
        while let Some(c) = self.peek(k).filter(|c| c.is_ascii_uppercase() || *c == '_') {
            id.push(c);
            k += 1;
        }
        if id.is_empty() {
            return None;
        }
        if quote.is_some() {
            k += 1;
        }
        self.bump_n(k);
        // The rest of the opening line is code (`.squish`, `, id)`); skip it.
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
        self.bump();
        let interp = (quote != Some('\'')).then_some("#{");
        let mut lit = Lit::default();
        loop {
            let rest: String = self.s[self.i..]
                .iter()
                .take_while(|c| **c != '\n')
                .collect();
            if rest.trim() == id || self.peek(0).is_none() {
                self.bump_n(rest.chars().count());
                break;
            }
            while let Some(c) = self.peek(0) {
                let at = self.pos();
                if let Some(open) = interp
                    && self.at(open)
                {
                    self.bump_n(2);
                    self.skip_braces();
                    lit.push(HOLE, at);
                    continue;
                }
                self.bump();
                lit.push(c, at);
                if c == '\n' {
                    break;
                }
            }
        }
        Some(lit)
    }
}

/// `text` after its leading whitespace and SQL comments (sqlc and other
/// generators start a query with `-- name: ...`).
fn skip_leading_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return text;
        }
    }
}

/// Whether a literal's text reads like a statement: it starts with a
/// statement keyword and has a clause keyword after it. Literals that do
/// not look like SQL are not queries; those that do and fail to parse are
/// reported as skipped.
pub fn looks_like_sql(text: &str) -> bool {
    let text = skip_leading_comments(text);
    let mut words = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let Some(first_word) = words.next() else {
        return false;
    };
    let first = first_word.to_ascii_lowercase();
    let clause: &[&str] = match first.as_str() {
        "select" => &["from"],
        "with" => &["as"],
        "insert" | "replace" => &["into"],
        "update" => &["set"],
        "delete" => &["from"],
        "truncate" => &["table"],
        "merge" => &["into"],
        _ => return false,
    };
    let rest: Vec<&str> = words.take(400).collect();
    if first == "truncate" {
        return rest.len() <= 6;
    }
    let Some(kw) = rest
        .iter()
        .find(|w| clause.contains(&w.to_ascii_lowercase().as_str()))
    else {
        return false;
    };
    // Prose ("Select an order from the list") has the words but not the
    // shape: SQL writes its keywords in capitals or has SQL punctuation.
    let caps = |w: &str| w.chars().all(|c| !c.is_ascii_lowercase());
    caps(first_word) || caps(kw) || text.contains(['*', '=', '(', '$', '?', ';'])
}
