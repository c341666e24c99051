//! Lethe's cold storage: deleted and archived rows exported to files (JSON
//! Lines compressed with zstd, one file per entity and deletion day, and a
//! manifest with row counts and checksums) in a local directory or
//! S3-compatible object storage, and imported back into the archive store.
//! Personal values in the files are sealed with a data key per data
//! subject, so destroying that key (erasure) shreds every copy.
//!
//! **Architecture invariant:** reads and writes the database only through
//! `lethe-store` (its `Db`, its audit log) and `lethe-sql`'s statements;
//! never changes user tables (rows come back through the archive store and
//! `lethe restore`).

pub mod crypto;
pub mod erasure;
pub mod error;
pub mod export;
pub mod file;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod location;
pub mod manifest;
pub mod subjects;

pub use error::ColdError;
pub use export::{ExportOptions, ExportReport, ExportedFile, export};
pub use import::{ImportOptions, ImportReport, ImportedFile, import};
pub use location::{Location, S3Settings};
