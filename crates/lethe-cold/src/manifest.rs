//! The manifest of one export run: what it wrote, with row counts and
//! checksums, the column lists the rows were stored with, and how personal
//! values are sealed. Written last, so a run that died midway leaves no
//! manifest and import never sees its files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Manifests live under this folder of the location.
pub const FOLDER: &str = "manifests";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: u32,
    /// The export run (also in the file names).
    pub id: String,
    pub created_at: String,
    pub files: Vec<FileEntry>,
    /// Fingerprint id -> the columns rows were stored with.
    pub fingerprints: BTreeMap<String, FingerprintEntry>,
    pub encryption: Encryption,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub entity: String,
    /// The UTC day the rows were deleted on.
    pub day: String,
    /// Relative to the location.
    pub path: String,
    pub rows: u64,
    /// Size of the compressed file.
    pub bytes: u64,
    /// SHA-256 of the compressed file, hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FingerprintEntry {
    pub entity: String,
    pub table: String,
    /// `[name, type]` pairs in table order.
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Encryption {
    /// `aes-256-gcm`, one data key per subject.
    pub scheme: String,
    /// Where the key-encryption key was: `env:NAME` or `database`.
    pub kek: String,
    /// The subject entity (`[erasure] subject`); rows that reach none are
    /// sealed under a key of their own.
    pub subject: Option<String>,
    /// Entity -> the columns whose values are sealed.
    pub sealed: BTreeMap<String, Vec<String>>,
}
