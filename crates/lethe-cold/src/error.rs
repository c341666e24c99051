//! The cold-storage crate's error type.

use lethe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ColdError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The export location (a directory, object storage) failed or refused.
    #[error("{0}")]
    Storage(String),
    /// A file that is not what its manifest says (checksum, format).
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    Crypto(String),
    /// Bad settings or arguments.
    #[error("{0}")]
    Invalid(String),
}

impl From<object_store::Error> for ColdError {
    fn from(e: object_store::Error) -> Self {
        ColdError::Storage(format!("the export location failed: {e}"))
    }
}

impl From<std::io::Error> for ColdError {
    fn from(e: std::io::Error) -> Self {
        ColdError::Storage(format!("a local file failed: {e}"))
    }
}

impl From<lethe_core::CoreError> for ColdError {
    fn from(e: lethe_core::CoreError) -> Self {
        ColdError::Store(e.into())
    }
}

pub type Result<T, E = ColdError> = std::result::Result<T, E>;

/// At the edges (CLI, server, erasure) every error is a `StoreError`, with
/// its code, exit status and hint.
impl From<ColdError> for lethe_store::StoreError {
    fn from(e: ColdError) -> Self {
        match e {
            ColdError::Store(s) => s,
            ColdError::Invalid(m) => lethe_store::StoreError::Invalid(m),
            e @ (ColdError::Storage(_) | ColdError::Corrupt(_) | ColdError::Crypto(_)) => {
                lethe_store::StoreError::Storage(e.to_string())
            }
        }
    }
}
