//! API tokens for `lethe serve`: a name, a role and the SHA-256 of the
//! secret. The secret itself is shown once, when it is created, and never
//! stored. A name stays taken after its token is revoked, so the audit
//! log's actor names one token for good.

use crate::dialect::Dialect;

/// Params: name, role, hash, created at, created by.
pub fn insert(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (name, role, hash, created_at, created_by) VALUES ($1, $2, $3, {}, $5)",
        d.own("api_tokens"),
        d.cast("$4", d.timestamp_type())
    )
}

/// The active token whose secret hashes to `$1`: `(name, role)`.
pub fn by_hash(d: Dialect) -> String {
    format!(
        "SELECT name, role FROM {} WHERE hash = $1 AND revoked_at IS NULL",
        d.own("api_tokens")
    )
}

/// Every token: `(name, role, created at, created by, revoked at or '')`.
pub fn list(d: Dialect) -> String {
    format!(
        "SELECT name, role, {}, COALESCE(created_by, ''), COALESCE({}, '') FROM {} ORDER BY name",
        d.timestamp_text("created_at"),
        d.timestamp_text("revoked_at"),
        d.own("api_tokens")
    )
}

/// Revokes the active token named `$1` at `$2`.
pub fn revoke(d: Dialect) -> String {
    format!(
        "UPDATE {} SET revoked_at = {} WHERE name = $1 AND revoked_at IS NULL",
        d.own("api_tokens"),
        d.cast("$2", d.timestamp_type())
    )
}

/// Whether a token named `$1` exists, revoked or not.
pub fn exists(d: Dialect) -> String {
    format!("SELECT name FROM {} WHERE name = $1", d.own("api_tokens"))
}
