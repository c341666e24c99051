//! Lethe's erasure tables: requests, their steps, and the ledger. Plain
//! SQL strings; every value is bound as text (`$N`).

use crate::dialect::Dialect;

/// Request columns as text, in the order `lethe_store` reads them.
pub fn request_columns(d: Dialect) -> String {
    [
        d.text("id"),
        "request_id".to_string(),
        "entity".to_string(),
        "subject".to_string(),
        "data_key".to_string(),
        "actor".to_string(),
        "reason".to_string(),
        "state".to_string(),
        d.rfc3339("created_at"),
        d.rfc3339("updated_at"),
        format!(
            "CASE WHEN completed_at IS NULL THEN NULL ELSE {} END",
            d.rfc3339("completed_at")
        ),
        "error".to_string(),
        d.text("deletion_id"),
        "pii_hashes".to_string(),
        "summary".to_string(),
        "verification".to_string(),
        "certificate".to_string(),
        "certificate_hash".to_string(),
    ]
    .join(", ")
}

/// Inserts a pending request: `$1` id, `$2` request id, `$3` entity, `$4`
/// subject hash, `$5` data-key subject, `$6` actor, `$7` reason, `$8` time.
pub fn insert_request(d: Dialect) -> String {
    let ts = |p: &str| d.cast(p, d.timestamp_type());
    format!(
        "INSERT INTO {} (id, request_id, entity, subject, data_key, actor, reason, state, created_at, updated_at) \
         VALUES ({}, $2, $3, $4, $5, $6, $7, 'pending', {}, {})",
        d.own("erasures"),
        d.cast("$1", d.uuid_type()),
        ts("$8"),
        ts("$8")
    )
}

/// A request by its id or its request id (`$1`).
pub fn request(d: Dialect) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} = $1 OR request_id = $1",
        request_columns(d),
        d.own("erasures"),
        d.text("id")
    )
}

/// Requests, newest first (`$1` limit, `$2` state or '').
pub fn list_requests(d: Dialect) -> String {
    format!(
        "SELECT {} FROM {} WHERE $2 = '' OR state = $2 ORDER BY created_at DESC, id DESC LIMIT {}",
        request_columns(d),
        d.own("erasures"),
        d.cast("$1", "bigint")
    )
}

/// Sets a request's state (`$1` id, `$2` state, `$3` time, `$4` error or
/// NULL). `completed` also sets `completed_at`.
pub fn set_state(d: Dialect) -> String {
    let now = d.cast("$3", d.timestamp_type());
    format!(
        "UPDATE {} SET state = $2, updated_at = {now}, error = $4, \
         completed_at = CASE WHEN $2 = 'completed' THEN {now} ELSE completed_at END WHERE {} = $1",
        d.own("erasures"),
        d.text("id")
    )
}

/// Records the table step's outcome on the request (`$1` id, `$2`
/// deletion id, `$3` PII hashes JSON, `$4` summary JSON, `$5` time).
pub fn record_tables(d: Dialect) -> String {
    format!(
        "UPDATE {} SET deletion_id = {}, pii_hashes = $3, summary = $4, state = 'in_progress', updated_at = {} WHERE {} = $1",
        d.own("erasures"),
        d.cast("$2", d.uuid_type()),
        d.cast("$5", d.timestamp_type()),
        d.text("id")
    )
}

/// Stores a verification report (`$1` id, `$2` JSON, `$3` time).
pub fn record_verification(d: Dialect) -> String {
    format!(
        "UPDATE {} SET verification = $2, updated_at = {} WHERE {} = $1",
        d.own("erasures"),
        d.cast("$3", d.timestamp_type()),
        d.text("id")
    )
}

/// Completes a request with its certificate (`$1` id, `$2` certificate,
/// `$3` its hash, `$4` time).
pub fn complete(d: Dialect) -> String {
    let now = d.cast("$4", d.timestamp_type());
    format!(
        "UPDATE {} SET state = 'completed', certificate = $2, certificate_hash = $3, error = NULL, updated_at = {now}, completed_at = {now} WHERE {} = $1",
        d.own("erasures"),
        d.text("id")
    )
}

/// Inserts a request's steps, all pending, in one statement (`$1`
/// erasure id, `$2` the steps in order as a JSON array of `[name, kind]`,
/// `$3` time); seq counts from 1.
pub fn insert_steps(d: Dialect) -> String {
    let (from, seq, name, kind) = match d {
        Dialect::Postgres => (
            "jsonb_array_elements(CAST($2 AS jsonb)) WITH ORDINALITY AS e(v, n)",
            "CAST(e.n AS integer)",
            "e.v ->> 0",
            "e.v ->> 1",
        ),
        Dialect::Sqlite => (
            "json_each($2) AS e",
            "e.key + 1",
            "json_extract(e.value, '$[0]')",
            "json_extract(e.value, '$[1]')",
        ),
    };
    format!(
        "INSERT INTO {} (erasure_id, seq, name, kind, state, updated_at) SELECT {}, {seq}, {name}, {kind}, 'pending', {} FROM {from} WHERE TRUE \
         ON CONFLICT (erasure_id, name) DO NOTHING",
        d.own("erasure_steps"),
        d.cast("$1", d.uuid_type()),
        d.cast("$3", d.timestamp_type())
    )
}

/// Sets the state of several steps at once, each with its own detail
/// (`$1` erasure id, `$2` a JSON object of step name to detail, `$3`
/// state, `$4` time).
pub fn set_steps(d: Dialect) -> String {
    let t = d.own("erasure_steps");
    let (detail, names) = match d {
        Dialect::Postgres => (
            format!(
                "(SELECT e.value::text FROM jsonb_each(CAST($2 AS jsonb)) e WHERE e.key = {t}.name)"
            ),
            "SELECT e.key FROM jsonb_each(CAST($2 AS jsonb)) e",
        ),
        Dialect::Sqlite => (
            format!("(SELECT e.value FROM json_each($2) e WHERE e.key = {t}.name)"),
            "SELECT e.key FROM json_each($2) e",
        ),
    };
    format!(
        "UPDATE {t} SET state = $3, detail = {detail}, updated_at = {} WHERE erasure_id = {} AND name IN ({names})",
        d.cast("$4", d.timestamp_type()),
        d.cast("$1", d.uuid_type())
    )
}

/// Sets a step's state and detail (`$1` erasure id, `$2` name, `$3` state,
/// `$4` detail JSON, `$5` time).
pub fn set_step(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = $3, detail = $4, updated_at = {} WHERE erasure_id = {} AND name = $2",
        d.own("erasure_steps"),
        d.cast("$5", d.timestamp_type()),
        d.cast("$1", d.uuid_type())
    )
}

/// A request's steps in order (`$1` erasure id): `(seq, name, kind, state,
/// detail, updated_at)`.
pub fn steps(d: Dialect) -> String {
    format!(
        "SELECT {}, name, kind, state, detail, {} FROM {} WHERE erasure_id = {} ORDER BY seq",
        d.text("seq"),
        d.rfc3339("updated_at"),
        d.own("erasure_steps"),
        d.cast("$1", d.uuid_type())
    )
}

/// Per sink, the deliveries of deletion `$1` by state: `(sink, state,
/// count)`, plus `('', 'undispatched', count)` for outbox records the
/// relay has not turned into deliveries yet.
pub fn delivery_states(d: Dialect) -> String {
    format!(
        "SELECT sink, state, {} FROM {} WHERE {} = $1 GROUP BY sink, state \
         UNION ALL SELECT '', 'undispatched', {} FROM {} WHERE deletion_id = {id} AND NOT dispatched",
        d.text("count(*)"),
        d.own("deliveries"),
        d.text("deletion_id"),
        d.text("count(*)"),
        d.own("outbox"),
        id = d.cast("$1", d.uuid_type())
    )
}

/// Appends a ledger entry (`$1` erasure id, `$2` entity, `$3` subject
/// hash, `$4` data-key subject, `$5` actions JSON, `$6` time); a second
/// append for the same erasure changes nothing.
pub fn insert_ledger(d: Dialect) -> String {
    format!(
        "INSERT INTO {} (erasure_id, entity, subject, data_key, actions, erased_at) VALUES ({}, $2, $3, $4, $5, {}) \
         ON CONFLICT (erasure_id) DO NOTHING",
        d.own("erasure_ledger"),
        d.cast("$1", d.uuid_type()),
        d.cast("$6", d.timestamp_type())
    )
}

/// The ledger in order: `(seq, erasure id, entity, subject, data key,
/// actions, erased_at)`.
pub fn ledger(d: Dialect) -> String {
    format!(
        "SELECT {}, {}, entity, subject, data_key, actions, {} FROM {} ORDER BY seq",
        d.text("seq"),
        d.text("erasure_id"),
        d.rfc3339("erased_at"),
        d.own("erasure_ledger")
    )
}

/// Stops the retries of deletion `$1`'s deliveries to sink `$2` (a step an
/// operator confirmed by hand): they become dead with `$3` as their error.
pub fn stop_deliveries(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = 'dead', last_error = $3 WHERE deletion_id = {} AND sink = $2 AND state IN ('pending', 'retrying')",
        d.own("deliveries"),
        d.cast("$1", d.uuid_type())
    )
}
