//! The hash-chained audit log. Each entry's hash is
//! `sha256(prev_hash || "\n" || entry)`, where `entry` is the canonical JSON
//! (keys sorted, no whitespace) stored verbatim. Entries hold keys, counts,
//! actor and reason — never the values of PII columns.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, Tx, col};
use crate::error::Result;
use lethe_sql::{Dialect, queries};

/// Canonical JSON: object keys sorted at every level, compact.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: std::collections::BTreeMap<String, Value> =
                    m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

pub fn chain_hash(prev: &str, entry: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(entry.as_bytes());
    hex::encode(h.finalize())
}

/// Appends an entry inside `tx` (after the data changes, so the head lock is
/// held only for the end of the transaction), in the same round trip as
/// `companion` (SQL and params: the record the entry is about). `fields` must
/// not contain `seq`/`at`/`action`/`deletion_id`; they are added here. Returns
/// the new hash.
pub async fn append(
    tx: &mut Tx,
    d: Dialect,
    at: &str,
    action: &str,
    deletion_id: Option<&str>,
    fields: Value,
    companion: (&str, Vec<Option<String>>),
) -> Result<String> {
    let head = tx.rows(&queries::lock_audit_head(d), &[]).await?;
    let row = head
        .first()
        .ok_or_else(|| crate::error::StoreError::NotMigrated("the audit head is missing".into()))?;
    let seq: i64 = col(row, 0).parse().unwrap_or(0) + 1;
    let prev = col(row, 1);
    let mut obj = match fields {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    obj.insert("seq".into(), Value::from(seq));
    obj.insert("at".into(), Value::from(at));
    obj.insert("action".into(), Value::from(action));
    obj.insert(
        "deletion_id".into(),
        deletion_id.map(Value::from).unwrap_or(Value::Null),
    );
    let entry = canonical(&Value::Object(obj));
    let hash = chain_hash(&prev, &entry);
    let (sql, mut params) = companion;
    let offset = params.len();
    params.extend([
        Some(seq.to_string()),
        Some(at.to_string()),
        Some(action.to_string()),
        deletion_id.map(str::to_string),
        Some(entry),
        Some(prev),
        Some(hash.clone()),
    ]);
    tx.exec(&queries::audit_append(d, sql, offset), &params)
        .await?;
    Ok(hash)
}

/// [`append`] for an entry that stands alone (a hold, a purge batch whose
/// record was written by the same transaction already).
pub async fn append_alone(
    tx: &mut Tx,
    d: Dialect,
    at: &str,
    action: &str,
    fields: Value,
) -> Result<String> {
    append(tx, d, at, action, None, fields, ("SELECT 1", Vec::new())).await
}

/// The result of [`verify`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The latest hash in the log.
    pub head: String,
    /// The first broken entry's seq and why, when not ok.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// The head: `(seq, hash)` of the latest entry.
pub async fn head(db: &Db) -> Result<(i64, String)> {
    let rows = db.rows(&queries::audit_head(db.dialect()), &[]).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::error::StoreError::NotMigrated("the audit head is missing".into()))?;
    Ok((col(r, 0).parse().unwrap_or(0), col(r, 1)))
}

/// Walks the whole chain in pages (memory stays flat) and reports the first
/// entry that does not fit: edited, deleted, inserted or reordered. With
/// `expect_head`, also fails when no entry has that hash (the tail was cut or
/// the chain rewritten).
pub async fn verify(db: &Db, expect_head: Option<&str>) -> Result<VerifyReport> {
    const PAGE: i64 = 1000;
    let d = db.dialect();
    let mut expected_seq = 1i64;
    let mut prev = lethe_sql::GENESIS_HASH.to_string();
    let mut found_expected = expect_head.is_none();
    let mut checked = 0u64;
    let fail = |seq: i64, checked: u64, head: &str, problem: String| VerifyReport {
        ok: false,
        entries: checked,
        head: head.to_string(),
        broken_at: Some(seq),
        problem: Some(problem),
    };
    loop {
        let rows = db
            .rows(
                &queries::audit_entries(d),
                &[Some(expected_seq.to_string()), Some(PAGE.to_string())],
            )
            .await?;
        let n = rows.len();
        for r in rows {
            let seq: i64 = col(&r, 0).parse().unwrap_or(-1);
            let (entry, prev_hash, hash, action, deletion_id, at) = (
                col(&r, 1),
                col(&r, 2),
                col(&r, 3),
                col(&r, 4),
                col(&r, 5),
                col(&r, 6),
            );
            if seq != expected_seq {
                return Ok(fail(
                    expected_seq,
                    checked,
                    &prev,
                    format!(
                        "entry {expected_seq} is missing (the next entry is {seq}): an entry was deleted"
                    ),
                ));
            }
            if prev_hash != prev {
                return Ok(fail(
                    seq,
                    checked,
                    &prev,
                    format!(
                        "entry {seq} does not follow entry {}: its previous hash differs (an entry before it was deleted, inserted or edited)",
                        seq - 1
                    ),
                ));
            }
            if chain_hash(&prev, &entry) != hash {
                return Ok(fail(
                    seq,
                    checked,
                    &prev,
                    format!("entry {seq} was edited: its content does not match its hash"),
                ));
            }
            let parsed: Value = serde_json::from_str(&entry).unwrap_or(Value::Null);
            // The columns beside the hashed entry must say the same: an edited
            // column (time, action, deletion) is tampering too.
            let same = parsed.get("seq").and_then(Value::as_i64) == Some(seq)
                && parsed.get("at").and_then(Value::as_str) == Some(at.as_str())
                && parsed.get("action").and_then(Value::as_str) == Some(action.as_str())
                && parsed
                    .get("deletion_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    == deletion_id;
            if !same {
                return Ok(fail(
                    seq,
                    checked,
                    &prev,
                    format!("entry {seq} was edited: its columns do not match its hashed content"),
                ));
            }
            if Some(hash.as_str()) == expect_head {
                found_expected = true;
            }
            prev = hash;
            expected_seq += 1;
            checked += 1;
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    let (head_seq, head_hash) = head(db).await?;
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Ok(fail(
            expected_seq,
            checked,
            &prev,
            format!(
                "the log ends at entry {} but the head says entry {head_seq}: entries at the end were deleted",
                expected_seq - 1
            ),
        ));
    }
    if !found_expected {
        return Ok(VerifyReport {
            ok: false,
            entries: checked,
            head: prev,
            broken_at: None,
            problem: Some(format!(
                "the expected head {} is not in the log: the log was cut off or rewritten after it",
                expect_head.unwrap_or_default()
            )),
        });
    }
    Ok(VerifyReport {
        ok: true,
        entries: checked,
        head: prev,
        broken_at: None,
        problem: None,
    })
}
