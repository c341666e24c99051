//! The core crate's error types.

use std::fmt;

/// An error in a policy file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub line: Option<usize>,
    /// The TOML key (e.g. `entities.users.strategy`) or the offending line's text.
    pub key: String,
    pub message: String,
}

impl PolicyError {
    pub fn at(
        file: &str,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError {
            file: file.to_string(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: ", self.file, l)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl CoreError {
    /// The table an entity names does not exist in the database.
    pub fn missing_table(table: &str, entity: &str) -> CoreError {
        CoreError::Schema(format!(
            "unknown table \"{table}\" (entity {entity}): it does not exist in the database"
        ))
    }
}

/// Errors of the core crate (planning, key parsing, schema validation).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("unknown entity \"{0}\" (managed entities: {1})")]
    UnknownEntity(String, String),
    #[error("invalid key for {entity}: {message}")]
    BadKey { entity: String, message: String },
    #[error("{0}")]
    Schema(String),
}
