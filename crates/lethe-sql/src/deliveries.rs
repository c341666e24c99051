//! The delivery queue: outbox records become one delivery per sink
//! (dispatch), a relay leases one `(sink, entity)` queue at a time and works
//! through its deliveries in outbox order, then marks them delivered,
//! retrying or dead.
//!
//! Every statement binds its values (`$N`, as text) and casts them here; ids
//! lists are bound as one JSON array.

use crate::dialect::Dialect;

fn p(n: usize) -> String {
    format!("${n}")
}

fn ts(d: Dialect, n: usize) -> String {
    d.cast(&p(n), d.timestamp_type())
}

/// States a delivery still has work in.
const OPEN: &str = "('pending', 'retrying')";

/// `(entity, sink)` pairs as a row source with columns `entity`, `sink`.
fn routes_source(d: Dialect, routes: &[(String, String)]) -> String {
    if routes.is_empty() {
        return "(SELECT CAST(NULL AS TEXT) AS entity, CAST(NULL AS TEXT) AS sink WHERE 1 = 0)"
            .to_string();
    }
    let rows: Vec<String> = routes
        .iter()
        .map(|(e, s)| format!("SELECT {} AS entity, {} AS sink", d.lit(e), d.lit(s)))
        .collect();
    format!("({})", rows.join(" UNION ALL "))
}

/// Run first in the relay's own write transactions: their commit need not
/// wait for the WAL flush. A crash can lose such a commit, which only means a
/// message is sent again (at least once) or a lease must run out again;
/// user data and the outbox are written by Lethe's deletes, which keep the
/// database's full durability.
pub fn relaxed_commit(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Postgres => Some("SET LOCAL synchronous_commit = off"),
        Dialect::Sqlite => None,
    }
}

/// Serializes dispatchers until commit: two relays must not dispatch at once,
/// or one could create (and deliver) a later record's deliveries while an
/// earlier record of the same rows is still being dispatched by the other.
/// SQLite's `BEGIN IMMEDIATE` already holds the write lock.
pub fn dispatch_lock(d: Dialect) -> Option<&'static str> {
    match d {
        Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(7403290001)"),
        Dialect::Sqlite => None,
    }
}

/// Creates the queue rows for `routes` (idempotent). (SQLite needs a WHERE
/// before ON CONFLICT in INSERT ... SELECT, or it reads ON as a join's.)
pub fn ensure_queues(d: Dialect, routes: &[(String, String)]) -> String {
    format!(
        "INSERT INTO {} (sink, entity) SELECT r.sink, r.entity FROM {} r WHERE 1 = 1 ON CONFLICT (sink, entity) DO NOTHING",
        d.own("delivery_queues"),
        routes_source(d, routes)
    )
}

/// Turns up to `limit` undispatched outbox records into deliveries, one per
/// sink the record's entity routes to, and marks them dispatched. Reads
/// undispatched records by flag, never by position: a transaction that took
/// an early outbox id and commits late is dispatched when it commits.
/// Param `$1`: now. Returns statements to run in order in one transaction;
/// the last returns `(records)` on PostgreSQL, nothing on SQLite.
pub fn dispatch(d: Dialect, routes: &[(String, String)], limit: u32) -> Vec<String> {
    let outbox = d.own("outbox");
    let deliveries = d.own("deliveries");
    let cols = "outbox_id, sink, entity, deletion_id, event, state, attempts, next_at, created_at";
    match d {
        Dialect::Postgres => vec![format!(
            "WITH o AS (UPDATE {outbox} SET dispatched = TRUE WHERE id IN (SELECT id FROM {outbox} WHERE NOT dispatched ORDER BY id LIMIT {limit}) RETURNING id, entity, deletion_id, event), \
             i AS (INSERT INTO {deliveries} ({cols}) SELECT o.id, r.sink, o.entity, o.deletion_id, o.event, 'pending', 0, {now}, {now} FROM o JOIN {routes} r ON r.entity = o.entity ON CONFLICT (outbox_id, sink) DO NOTHING RETURNING 1) \
             SELECT (SELECT count(*) FROM o)::text, (SELECT count(*) FROM i)::text",
            now = ts(d, 1),
            routes = routes_source(d, routes)
        )],
        Dialect::Sqlite => {
            let pick =
                format!("SELECT id FROM {outbox} WHERE NOT dispatched ORDER BY id LIMIT {limit}");
            vec![
                format!(
                    "INSERT INTO {deliveries} ({cols}) SELECT o.id, r.sink, o.entity, o.deletion_id, o.event, 'pending', 0, {now}, {now} FROM {outbox} o JOIN {routes} r ON r.entity = o.entity WHERE o.id IN ({pick}) ON CONFLICT (outbox_id, sink) DO NOTHING",
                    now = p(1),
                    routes = routes_source(d, routes)
                ),
                format!("SELECT CAST(count(*) AS TEXT), '0' FROM {outbox} WHERE id IN ({pick})"),
                format!("UPDATE {outbox} SET dispatched = TRUE WHERE id IN ({pick})"),
            ]
        }
    }
}

/// Leases the queue with the oldest ready work among `sinks`: its earliest
/// open delivery is due. Params: owner, now, lease until. Returns
/// `(sink, entity)`, or no row.
pub fn claim_queue(d: Dialect, sinks: &[String]) -> String {
    let q = d.own("delivery_queues");
    let dl = d.own("deliveries");
    let names = if sinks.is_empty() {
        "NULL".to_string()
    } else {
        sinks
            .iter()
            .map(|s| d.lit(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let head = format!(
        "(SELECT min(h.outbox_id) FROM {dl} h WHERE h.sink = c.sink AND h.entity = c.entity AND h.state IN {OPEN})"
    );
    format!(
        "UPDATE {q} SET owner = {owner}, lease_until = {until} WHERE (sink, entity) IN (\
         SELECT c.sink, c.entity FROM {q} c WHERE c.sink IN ({names}) AND (c.lease_until IS NULL OR c.lease_until < {now}) \
         AND EXISTS (SELECT 1 FROM {dl} x WHERE x.sink = c.sink AND x.entity = c.entity AND x.state IN {OPEN} AND x.next_at <= {now} AND x.outbox_id = {head}) \
         ORDER BY {head} LIMIT 1{lock}) RETURNING sink, entity",
        owner = p(1),
        now = ts(d, 2),
        until = ts(d, 3),
        lock = d.skip_locked()
    )
}

/// Extends a lease; updates no row when the lease was lost. Params: sink,
/// entity, owner, until.
pub fn renew_queue(d: Dialect) -> String {
    format!(
        "UPDATE {} SET lease_until = {} WHERE sink = {} AND entity = {} AND owner = {}",
        d.own("delivery_queues"),
        ts(d, 4),
        p(1),
        p(2),
        p(3)
    )
}

/// Gives a queue back. Params: sink, entity, owner.
pub fn release_queue(d: Dialect) -> String {
    format!(
        "UPDATE {} SET owner = NULL, lease_until = NULL WHERE sink = {} AND entity = {} AND owner = {}",
        d.own("delivery_queues"),
        p(1),
        p(2),
        p(3)
    )
}

/// The open deliveries of one queue in outbox order, with what a message
/// needs. Params: sink, entity, limit, now. Columns: delivery id, outbox id,
/// attempts, due ('1'/'0'), event, deletion id, keys, key columns, columns,
/// created at, actor, reason, row count.
pub fn queue_messages(d: Dialect) -> String {
    let actor = "CASE WHEN x.restored_at IS NOT NULL AND o.created_at >= x.restored_at THEN x.restored_by ELSE x.actor END";
    let reason = "CASE WHEN x.restored_at IS NOT NULL AND o.created_at >= x.restored_at THEN x.restored_reason ELSE x.reason END";
    format!(
        "SELECT {}, {}, {}, CASE WHEN dl.next_at <= {now} THEN '1' ELSE '0' END, o.event, {}, {}, o.key_columns, o.columns, {}, {actor}, {reason}, {} \
         FROM {} dl JOIN {} o ON o.id = dl.outbox_id LEFT JOIN {} x ON x.id = o.deletion_id \
         WHERE dl.sink = {} AND dl.entity = {} AND dl.state IN {OPEN} ORDER BY dl.outbox_id LIMIT {}",
        d.text("dl.id"),
        d.text("dl.outbox_id"),
        d.text("dl.attempts"),
        d.text("o.deletion_id"),
        d.text("o.keys"),
        d.rfc3339("o.created_at"),
        d.text("o.row_count"),
        d.own("deliveries"),
        d.own("outbox"),
        d.own("deletions"),
        p(1),
        p(2),
        d.cast(&p(3), "bigint"),
        now = ts(d, 4),
    )
}

/// `id IN (<JSON array of ids bound at $n>)`.
fn ids_in(d: Dialect, n: usize) -> String {
    format!("id IN ({})", d.json_int_elements(&p(n)))
}

/// `AND` the queue `$a`, `$b` (sink, entity) is still leased by `$c`: a relay
/// that lost its lease (it stalled past it, and another relay took the
/// queue) records nothing; the new owner sends the messages again.
fn still_owner(d: Dialect, sink: usize, entity: usize, owner: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {} q WHERE q.sink = {} AND q.entity = {} AND q.owner = {})",
        d.own("delivery_queues"),
        p(sink),
        p(entity),
        p(owner)
    )
}

/// Marks deliveries done. Params: ids (JSON array), now, sink, entity, owner.
pub fn mark_delivered(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = 'delivered', delivered_at = {}, last_error = NULL WHERE {} AND state IN {OPEN} AND {}",
        d.own("deliveries"),
        ts(d, 2),
        ids_in(d, 1),
        still_owner(d, 3, 4, 5)
    )
}

/// Records a failed attempt. Params: ids (JSON array), next attempt at, error,
/// max attempts, sink, entity, owner.
pub fn mark_failed(d: Dialect) -> String {
    format!(
        "UPDATE {} SET attempts = attempts + 1, state = CASE WHEN attempts + 1 >= CAST({} AS INTEGER) THEN 'dead' ELSE 'retrying' END, next_at = {}, last_error = {} WHERE {} AND state IN {OPEN} AND {}",
        d.own("deliveries"),
        p(4),
        ts(d, 2),
        p(3),
        ids_in(d, 1),
        still_owner(d, 5, 6, 7)
    )
}

/// Deliveries, newest first. Params: state or NULL, sink or NULL, limit.
/// Columns: id, sink, entity, event, deletion id, state, attempts, next at,
/// last error, created at, delivered at, rows.
pub fn list(d: Dialect) -> String {
    format!(
        "SELECT {}, dl.sink, dl.entity, dl.event, {}, dl.state, {}, {}, dl.last_error, {}, {}, {} \
         FROM {} dl JOIN {} o ON o.id = dl.outbox_id \
         WHERE ({s} IS NULL OR dl.state = {s}) AND ({k} IS NULL OR dl.sink = {k}) ORDER BY dl.id DESC LIMIT {}",
        d.text("dl.id"),
        d.text("dl.deletion_id"),
        d.text("dl.attempts"),
        d.text("dl.next_at"),
        d.text("dl.created_at"),
        d.text("dl.delivered_at"),
        d.text("o.row_count"),
        d.own("deliveries"),
        d.own("outbox"),
        d.cast(&p(3), "bigint"),
        s = p(1),
        k = p(2),
    )
}

/// Counts per sink and state: `(sink, state, deliveries, rows)`.
pub fn summary(d: Dialect) -> String {
    format!(
        "SELECT dl.sink, dl.state, {}, {} FROM {} dl JOIN {} o ON o.id = dl.outbox_id GROUP BY dl.sink, dl.state ORDER BY dl.sink, dl.state",
        d.text("count(*)"),
        d.text("coalesce(sum(o.row_count), 0)"),
        d.own("deliveries"),
        d.own("outbox")
    )
}

/// Outbox records not yet dispatched: `(count)`.
pub fn undispatched(d: Dialect) -> String {
    format!(
        "SELECT {} FROM {} WHERE NOT dispatched",
        d.text("count(*)"),
        d.own("outbox")
    )
}

/// Re-queues one delivery, whatever its state. Params: id, now.
pub fn replay_one(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = 'pending', attempts = 0, next_at = {}, last_error = NULL, delivered_at = NULL WHERE id = {}",
        d.own("deliveries"),
        ts(d, 2),
        d.cast(&p(1), "bigint")
    )
}

/// Re-queues dead deliveries. Params: sink or NULL, now.
pub fn replay_dead(d: Dialect) -> String {
    format!(
        "UPDATE {} SET state = 'pending', attempts = 0, next_at = {}, last_error = NULL WHERE state = 'dead' AND ({s} IS NULL OR sink = {s})",
        d.own("deliveries"),
        ts(d, 2),
        s = p(1)
    )
}
