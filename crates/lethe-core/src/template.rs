//! Key templates such as `product:{id}` or `shop.{entity}.{event}`: literal
//! text with `{name}` placeholders (`{{` and `}}` write a brace).

use std::collections::BTreeSet;
use std::fmt;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(format!("unclosed \"{{\" in template \"{source}\""));
                            }
                        }
                    }
                    let name = name.trim().to_string();
                    if !crate::ident::is_valid(&name) {
                        return Err(format!(
                            "\"{{{name}}}\" in template \"{source}\" is not a column name"
                        ));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => {
                    return Err(format!(
                        "unmatched \"}}\" in template \"{source}\" (write \"}}}}\" for a brace)"
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// The names the template uses, in order of first use.
    pub fn fields(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field(f) if seen.insert(f.as_str()) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Fills the template; `None` when a field has no value (`lookup` says
    /// so), because a key built from a missing value names nothing.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&lookup(f)?),
            }
        }
        Some(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("product:{id}:{{x}}:{ sku }").unwrap();
        assert_eq!(t.fields(), vec!["id", "sku"]);
        let v = t.render(|f| Some(format!("<{f}>")));
        assert_eq!(v.as_deref(), Some("product:<id>:{x}:<sku>"));
        assert_eq!(t.render(|f| (f == "id").then(|| "1".into())), None);
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(Template::parse("a{id").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a}b").unwrap_err().contains("unmatched"));
        assert!(
            Template::parse("a{1x}")
                .unwrap_err()
                .contains("not a column")
        );
    }
}
