//! Identifier validation. Every table and column name from the policy or the user
//! passes through here before it is quoted into SQL; values are always bound.

/// An identifier Lethe accepts: letters (any script), digits, `_`, `$` and `-`,
/// not starting with a digit or `-`, at most 63 bytes (PostgreSQL's limit).
/// Every identifier is double-quoted in SQL; the rule keeps out quotes,
/// whitespace and punctuation that never belong in a name.
pub fn is_valid(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= 63 && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '-')
}

/// A table name, optionally schema-qualified (`schema.table`).
pub fn is_valid_table(s: &str) -> bool {
    match s.split_once('.') {
        Some((schema, table)) => is_valid(schema) && is_valid(table),
        None => is_valid(s),
    }
}

pub fn invalid_message(s: &str) -> String {
    format!(
        "\"{s}\" is not a valid identifier (use letters, digits, _, $ and -, starting with a letter or _, at most 63 bytes)"
    )
}

/// An environment variable name: letters, digits and `_`, not starting with a
/// digit.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_rejects_injection() {
        assert!(is_valid("users"));
        assert!(is_valid("_x1$"));
        assert!(!is_valid("1abc"));
        assert!(!is_valid("users; drop table x"));
        assert!(!is_valid("a\"b"));
        assert!(!is_valid(""));
        assert!(is_valid_table("public.users"));
        assert!(!is_valid_table("a.b.c"));
    }
}
