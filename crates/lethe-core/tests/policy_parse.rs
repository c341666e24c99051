//! Policy parsing, data-driven: each case is a policy text, the substrings the
//! error message must contain, and the key the error must name. The line the
//! error must point at is marked in the text with a trailing `#<` comment, so
//! the expectation sits next to the offending line.

use lethe_core::{OnDelete, PolicyError, Strategy, parse_policy};

const FILE: &str = "conf/lethe.toml";

struct Case {
    name: &'static str,
    text: &'static str,
    /// Substrings the message must contain.
    message: &'static [&'static str],
    /// The exact `PolicyError::key`, or a prefix of it ending in `*`.
    key: &'static str,
}

/// The 1-based line carrying the `#<` marker.
fn marked_line(text: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("#<"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one #< marker expected in:\n{text}");
    lines[0]
}

const CASES: &[Case] = &[
    Case {
        name: "unknown top-level key",
        text: r#"
[database]
url = "sqlite:shop.db"

[entitys.users]  #<
key = ["id"]
"#,
        message: &["unknown field", "entitys"],
        key: "*",
    },
    Case {
        name: "unknown key in [database]",
        text: r#"
[database]
url = "sqlite:shop.db"
row_securty = true  #<
"#,
        message: &["unknown field", "row_securty"],
        key: "*",
    },
    Case {
        name: "unknown entity field (typo)",
        text: r#"
[entities.users]
key = ["id"]
strtegy = "hard"  #<
"#,
        message: &["unknown field", "strtegy"],
        key: "*",
    },
    Case {
        name: "entity without key",
        text: r#"
[entities.users]  #<
strategy = "soft"
"#,
        message: &["missing field", "key"],
        key: "*",
    },
    Case {
        name: "unknown strategy",
        text: r#"
[entities.users]
key = ["id"]
strategy = "sof"  #<
"#,
        message: &["unknown strategy \"sof\"", "expected soft, archive or hard"],
        key: "entities.users.strategy",
    },
    Case {
        name: "unknown default strategy",
        text: r#"
[defaults]
strategy = "purge"  #<

[entities.users]
key = ["id"]
"#,
        message: &["unknown strategy \"purge\""],
        key: "defaults.strategy",
    },
    Case {
        name: "retention that is not a duration",
        text: r#"
[entities.users]
key = ["id"]
retention = "90 days"  #<
"#,
        message: &["\"90 days\" is not a duration", "90d"],
        key: "entities.users.retention",
    },
    Case {
        name: "retention of zero",
        text: r#"
[entities.users]
key = ["id"]
retention = "0d"  #<
"#,
        message: &["zero", "no time to restore"],
        key: "entities.users.retention",
    },
    Case {
        name: "unknown then",
        text: r#"
[entities.users]
key = ["id"]
retention = "30d"
then = "delete"  #<
"#,
        message: &["unknown \"then\" value \"delete\"", "purge or archive"],
        key: "entities.users.then",
    },
    Case {
        name: "then without a retention",
        text: r#"
[entities.users]
key = ["id"]
then = "archive"  #<
"#,
        message: &["needs a retention"],
        key: "entities.users.then",
    },
    Case {
        name: "archive entity archived again after retention",
        text: r#"
[entities.logs]
key = ["id"]
strategy = "archive"
retention = "30d"
then = "archive"  #<
"#,
        message: &["in the archive already", "then = \"purge\""],
        key: "entities.logs.then",
    },
    Case {
        name: "default retention that is not a duration",
        text: r#"
[defaults]
retention = "forever"  #<

[entities.users]
key = ["id"]
"#,
        message: &["\"forever\" is not a duration"],
        key: "defaults.retention",
    },
    Case {
        name: "bad default then, even when every entity has its own",
        text: r#"
[defaults]
retention = "30d"
then = "delete"  #<

[entities.users]
key = ["id"]
retention = "10d"
"#,
        message: &["unknown \"then\" value \"delete\""],
        key: "defaults.then",
    },
    Case {
        name: "default then without a default retention",
        text: r#"
[defaults]
then = "archive"  #<

[entities.logs]
key = ["id"]
strategy = "archive"
"#,
        message: &["needs a retention"],
        key: "defaults.then",
    },
    Case {
        name: "job with a bad schedule",
        text: r#"
[entities.users]
key = ["id"]

[jobs.nightly]
run = "purge"
schedule = "0 25 * * *"  #<
"#,
        message: &["not a cron schedule", "0 3 * * *"],
        key: "jobs.nightly.schedule",
    },
    Case {
        name: "job of an unknown kind",
        text: r#"
[entities.users]
key = ["id"]

[jobs.nightly]
run = "vacuum"  #<
schedule = "0 3 * * *"
"#,
        message: &["unknown job \"vacuum\"", "purge or export"],
        key: "jobs.nightly.run",
    },
    Case {
        name: "job for an unknown entity",
        text: r#"
[entities.users]
key = ["id"]

[jobs.nightly]
run = "purge"
schedule = "0 3 * * *"
entity = "user"  #<
"#,
        message: &["\"user\" is not a managed entity", "users"],
        key: "jobs.nightly.entity",
    },
    Case {
        name: "purge job with a zero batch",
        text: r#"
[entities.users]
key = ["id"]

[jobs.nightly]
run = "purge"
schedule = "0 3 * * *"
batch_size = 0  #<
"#,
        message: &["at least 1"],
        key: "jobs.nightly.batch_size",
    },
    Case {
        name: "export job without [export]",
        text: r#"
[entities.users]
key = ["id"]

[jobs.cold]
run = "export"  #<
schedule = "0 4 * * *"
"#,
        message: &["needs [export]"],
        key: "jobs.cold.run",
    },
    Case {
        name: "export to an unknown scheme",
        text: r#"
[entities.users]
key = ["id"]

[export]
to = "ftp://host/dir"  #<
"#,
        message: &["not a directory, file:// or s3://"],
        key: "export.to",
    },
    Case {
        name: "export to s3 without a bucket",
        text: r#"
[entities.users]
key = ["id"]

[export]
to = "s3:///prefix"  #<
"#,
        message: &["needs a bucket"],
        key: "export.to",
    },
    Case {
        name: "erasure subject that is not an entity",
        text: r#"
[entities.users]
key = ["id"]

[erasure]
subject = "customers"  #<
"#,
        message: &["\"customers\" is not a managed entity"],
        key: "erasure.subject",
    },
    Case {
        name: "subject_columns without a subject",
        text: r#"
[entities.users]
key = ["id"]

[entities.events]  #<
key = ["id"]
subject_columns = ["user_id"]
"#,
        message: &["needs the subject entity", "[erasure] subject"],
        key: "entities.events.subject_columns",
    },
    Case {
        name: "unknown on_delete",
        text: r#"
[entities.users]
key = ["id"]

[entities.orders]
key = ["id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "nullify"  #<
"#,
        message: &[
            "unknown on_delete \"nullify\"",
            "cascade, restrict, set_null or keep",
        ],
        key: "relations[0].on_delete",
    },
    Case {
        name: "relation to an unmanaged parent",
        text: r#"
[entities.orders]
key = ["id"]

[[relations]]
child = "orders"
columns = ["account_id"]
parent = "accounts"  #<
on_delete = "cascade"
"#,
        message: &["unmanaged", "\"accounts\""],
        key: "relations[0].parent",
    },
    Case {
        name: "unknown child",
        text: r#"
[entities.users]
key = ["id"]

[[relations]]
child = "ordrs"  #<
columns = ["user_id"]
parent = "users"
on_delete = "cascade"
"#,
        message: &["\"ordrs\" is not a managed entity"],
        key: "relations[0].child",
    },
    Case {
        name: "key length mismatch names both column counts",
        text: r#"
[entities.order_items]
key = ["order_id", "product_id"]

[entities.shipments]
key = ["id"]

[[relations]]
child = "shipments"
columns = ["order_id"]  #<
parent = "order_items"
on_delete = "cascade"
"#,
        message: &["key length mismatch", "1 column(s)", "which has 2"],
        key: "relations[0].columns",
    },
    Case {
        name: "set_null on a key column",
        text: r#"
[entities.orders]
key = ["id"]

[entities.order_items]
key = ["order_id", "line"]

[[relations]]
child = "order_items"
columns = ["order_id"]  #<
parent = "orders"
on_delete = "set_null"
"#,
        message: &[
            "set_null cannot clear \"order_id\"",
            "key of \"order_items\"",
        ],
        key: "relations[0].columns",
    },
    Case {
        name: "duplicate relation",
        text: r#"
[entities.users]
key = ["id"]

[entities.orders]
key = ["id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "cascade"

[[relations]]
child = "orders"
columns = ["user_id"]  #<
parent = "users"
on_delete = "restrict"
"#,
        message: &["duplicate relation orders.user_id -> users"],
        key: "relations[1]",
    },
    Case {
        name: "empty key",
        text: r#"
[entities.users]
key = []  #<
"#,
        message: &["at least one column"],
        key: "entities.users.key",
    },
    Case {
        name: "empty relation columns",
        text: r#"
[entities.users]
key = ["id"]

[[relations]]
child = "users"
columns = []  #<
parent = "users"
on_delete = "cascade"
"#,
        message: &["at least one column"],
        key: "relations[0].columns",
    },
    Case {
        name: "invalid table identifier",
        text: r#"
[entities.users]
table = "users; drop"  #<
key = ["id"]
"#,
        message: &["\"users; drop\" is not a valid identifier"],
        key: "entities.users.table",
    },
    Case {
        name: "invalid key column identifier",
        text: r#"
[entities.users]
key = ["id", "users; drop"]  #<
"#,
        message: &["\"users; drop\" is not a valid identifier"],
        key: "entities.users.key",
    },
    Case {
        name: "invalid entity name",
        text: r#"
[entities."users; drop"]  #<
key = ["id"]
"#,
        message: &["\"users; drop\" is not a valid identifier"],
        key: "entities.users; drop",
    },
    Case {
        name: "invalid marker column",
        text: r#"
[entities.users]
key = ["id"]
deleted_at = "gone at"  #<
"#,
        message: &["\"gone at\" is not a valid identifier"],
        key: "entities.users.deleted_at",
    },
    Case {
        name: "invalid pii column",
        text: r#"
[entities.users]
key = ["id"]
pii = { "e mail" = "hash" }  #<
"#,
        message: &["\"e mail\" is not a valid identifier"],
        key: "entities.users.pii.e mail",
    },
    Case {
        name: "unknown pii rule",
        text: r#"
[entities.users]
key = ["id"]
pii = { email = "encrypt" }  #<
"#,
        message: &["unknown PII rule \"encrypt\""],
        key: "entities.users.pii.email",
    },
    Case {
        name: "duplicate column in key",
        text: r#"
[entities.order_items]
key = ["order_id", "order_id"]  #<
"#,
        message: &["column \"order_id\" is listed twice"],
        key: "entities.order_items.key",
    },
    Case {
        name: "duplicate column in a unique set",
        text: r#"
[entities.users]
key = ["id"]
unique = [
  ["email"],
  ["tenant", "handle", "tenant"],  #<
]
"#,
        message: &["column \"tenant\" is listed twice"],
        key: "entities.users.unique[1]",
    },
    Case {
        name: "duplicate column in relation columns",
        text: r#"
[entities.order_items]
key = ["order_id", "product_id"]

[entities.notes]
key = ["id"]

[[relations]]
child = "notes"
columns = ["a", "a"]  #<
parent = "order_items"
on_delete = "cascade"
"#,
        message: &["column \"a\" is listed twice"],
        key: "relations[0].columns",
    },
    Case {
        name: "deleted_at == deletion_id",
        text: r#"
[entities.users]
key = ["id"]

[entities.orders]  #<
key = ["id"]
deleted_at = "gone"
deletion_id = "gone"
"#,
        message: &["deleted_at and deletion_id must be different", "\"gone\""],
        key: "entities.orders",
    },
    Case {
        name: "deleted_at == deletion_id through [defaults]",
        text: r#"
[defaults]
deletion_id = "deleted_at"

[entities.users]  #<
key = ["id"]
"#,
        message: &["deleted_at and deletion_id must be different"],
        key: "entities.users",
    },
    Case {
        name: "key contains a marker column",
        text: r#"
[entities.users]
key = ["id", "deleted_at"]  #<
"#,
        message: &["marker column \"deleted_at\""],
        key: "entities.users.key",
    },
    Case {
        name: "two entities on one table",
        text: r#"
[entities.customers]
table = "users"
key = ["id"]

[entities.users]  #<
key = ["id"]
"#,
        message: &["table \"users\" is already managed by entity \"customers\""],
        key: "entities.users.table",
    },
    Case {
        name: "two-entity cascade cycle",
        text: r#"
[entities.a]
key = ["id"]

[entities.b]
key = ["id"]

[[relations]]  #<
child = "b"
columns = ["a_id"]
parent = "a"
on_delete = "cascade"

[[relations]]
child = "a"
columns = ["b_id"]
parent = "b"
on_delete = "cascade"
"#,
        message: &["cascade cycle a -> b -> a"],
        key: "relations",
    },
    Case {
        name: "unknown sink kind",
        text: r#"
[sinks.cache]
kind = "kafka"  #<
url = "x"
"#,
        message: &["unknown sink kind \"kafka\"", "redis, memcached, nats"],
        key: "sinks.cache.kind",
    },
    Case {
        name: "sink setting of another kind",
        text: r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"
subject = "x"  #<
"#,
        message: &["a redis sink has no \"subject\" setting", "it takes: url"],
        key: "sinks.cache.subject",
    },
    Case {
        name: "sink without its url",
        text: r#"
[sinks.events]  #<
kind = "nats"
"#,
        message: &["a nats sink needs \"url\""],
        key: "sinks.events",
    },
    Case {
        name: "webhook without a secret",
        text: r#"
[sinks.hook]  #<
kind = "webhook"
url = "https://example.com/hook"
"#,
        message: &["needs \"secret_env\"", "HMAC-SHA256"],
        key: "sinks.hook",
    },
    Case {
        name: "webhook secret written as a value",
        text: r#"
[sinks.hook]
kind = "webhook"
url = "https://example.com/hook"
secret_env = "s3cr3t value!"  #<
"#,
        message: &["is not an environment variable name"],
        key: "sinks.hook.secret_env",
    },
    Case {
        name: "bad backoff",
        text: r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"
backoff = "soon"  #<
"#,
        message: &["\"soon\" is not a duration", "500ms, 30s"],
        key: "sinks.cache.backoff",
    },
    Case {
        name: "subject using a column",
        text: r#"
[sinks.events]
kind = "nats"
url = "nats://127.0.0.1:4222"
subject = "shop.{entity}.{id}"  #<
"#,
        message: &["\"{id}\" is not available here", "{entity} and {event}"],
        key: "sinks.events.subject",
    },
    Case {
        name: "cache keys without a cache sink",
        text: r#"
[entities.products]
key = ["id"]
cache_keys = ["product:{id}"]  #<
"#,
        message: &["cache keys need a cache sink", "kind = \"redis\""],
        key: "entities.products.cache_keys",
    },
    Case {
        name: "cache key with a broken template",
        text: r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"

[entities.products]
key = ["id"]
cache_keys = ["product:{id"]  #<
"#,
        message: &["unclosed \"{\" in template \"product:{id\""],
        key: "entities.products.cache_keys",
    },
    Case {
        name: "cache key naming no column",
        text: r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"

[entities.products]
key = ["id"]
cache_keys = ["all-products"]  #<
"#,
        message: &["uses no column", "same key for every row"],
        key: "entities.products.cache_keys",
    },
    Case {
        name: "publish to an unknown sink",
        text: r#"
[sinks.events]
kind = "file"
path = "events.jsonl"

[entities.products]
key = ["id"]
publish = ["evnets"]  #<
"#,
        message: &["no sink named \"evnets\"", "declared: events"],
        key: "entities.products.publish",
    },
    Case {
        name: "publish to a cache sink",
        text: r#"
[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1/"

[entities.products]
key = ["id"]
publish = ["cache"]  #<
"#,
        message: &[
            "sink \"cache\" is a cache sink (redis)",
            "needs an events sink",
        ],
        key: "entities.products.publish",
    },
    Case {
        name: "search in an event sink",
        text: r#"
[sinks.events]
kind = "file"
path = "e.jsonl"

[entities.products]
key = ["id"]
search = { sink = "events", index = "products", fields = ["name"] }  #<
"#,
        message: &[
            "sink \"events\" is an events sink (file)",
            "needs a search sink",
        ],
        key: "entities.products.search.sink",
    },
    Case {
        name: "search with an unknown setting",
        text: r#"
[sinks.search]
kind = "tantivy"
path = "idx"

[entities.products]
key = ["id"]
search = { sink = "search", index = "products", feilds = ["name"] }  #<
"#,
        message: &["feilds"],
        key: "*",
    },
    Case {
        name: "unknown erase action",
        text: r#"
[entities.users]
key = ["id"]
erase = "forget"  #<

[erasure]
subject = "users"
"#,
        message: &[
            "unknown erase action \"forget\"",
            "delete, anonymize or keep",
        ],
        key: "entities.users.erase",
    },
    Case {
        name: "keep without a legal basis",
        text: r#"
[entities.users]
key = ["id"]

[entities.invoices]
key = ["id"]
subject_columns = ["user_id"]
erase = "keep"  #<

[erasure]
subject = "users"
"#,
        message: &["erase = \"keep\" needs legal_basis"],
        key: "entities.invoices.legal_basis",
    },
    Case {
        name: "keep with a blank legal basis",
        text: r#"
[entities.users]
key = ["id"]

[entities.invoices]
key = ["id"]
subject_columns = ["user_id"]
erase = "keep"
legal_basis = "   "  #<

[erasure]
subject = "users"
"#,
        message: &["needs legal_basis"],
        key: "entities.invoices.legal_basis",
    },
    Case {
        name: "legal basis on a deleted entity",
        text: r#"
[entities.users]
key = ["id"]

[entities.invoices]
key = ["id"]
subject_columns = ["user_id"]
erase = "delete"
legal_basis = "tax law"  #<

[erasure]
subject = "users"
"#,
        message: &[
            "legal_basis goes with erase = \"keep\"",
            "erase = \"delete\"",
        ],
        key: "entities.invoices.legal_basis",
    },
    Case {
        name: "legal basis without erase",
        text: r#"
[entities.users]
key = ["id"]
legal_basis = "tax law"  #<

[erasure]
subject = "users"
"#,
        message: &["legal_basis goes with erase = \"keep\""],
        key: "entities.users.legal_basis",
    },
    Case {
        name: "anonymize without pii rules",
        text: r#"
[entities.users]
key = ["id"]
erase = "anonymize"  #<

[erasure]
subject = "users"
"#,
        message: &["needs pii rules"],
        key: "entities.users.erase",
    },
    Case {
        name: "erase without a subject",
        text: r#"
[entities.users]  #<
key = ["id"]
erase = "delete"
"#,
        message: &["erase needs the subject entity", "[erasure] subject"],
        key: "entities.users.erase",
    },
    Case {
        name: "erase on an entity that does not lead to the subject",
        text: r#"
[entities.users]
key = ["id"]

[entities.products]  #<
key = ["id"]
erase = "delete"

[erasure]
subject = "users"
"#,
        message: &[
            "rows of \"products\" do not belong to the subject \"users\"",
            "subject_columns",
        ],
        key: "entities.products.erase",
    },
    Case {
        name: "anonymize that would change the key",
        text: r#"
[entities.users]  #<
key = ["email"]
erase = "anonymize"
pii = { email = "fake", name = "redact" }

[erasure]
subject = "users"
"#,
        message: &["cannot change their key column \"email\""],
        key: "entities.users.erase",
    },
];

fn check_case(c: &Case) -> Result<(), String> {
    let line = marked_line(c.text);
    let err: PolicyError = match parse_policy(c.text, FILE) {
        Ok(_) => return Err("parsed, but an error was expected".into()),
        Err(e) => e,
    };
    let shown = err.to_string();
    let mut problems = Vec::new();
    if err.file != FILE {
        problems.push(format!("file is {:?}", err.file));
    }
    if err.line != Some(line) {
        problems.push(format!("line is {:?}, expected {line}", err.line));
    }
    for m in c.message {
        if !err.message.contains(m) {
            problems.push(format!("message lacks {m:?}"));
        }
    }
    match c.key.strip_suffix('*') {
        Some(prefix) => {
            if !err.key.starts_with(prefix) {
                problems.push(format!("key {:?} does not start with {prefix:?}", err.key));
            }
        }
        None => {
            if err.key != c.key {
                problems.push(format!("key is {:?}, expected {:?}", err.key, c.key));
            }
        }
    }
    let loc = format!("{FILE}:{line}:");
    if !shown.starts_with(&loc) {
        problems.push(format!("Display does not start with {loc:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n  error: {shown}", problems.join("; ")))
    }
}

#[test]
fn policy_errors_name_file_line_key_and_cause() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|c| check_case(c).err().map(|e| format!("[{}] {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn self_referencing_cascade_is_accepted() {
    let p = parse_policy(
        r#"
[entities.categories]
key = ["id"]

[[relations]]
child = "categories"
columns = ["parent_id"]
parent = "categories"
on_delete = "cascade"
"#,
        FILE,
    )
    .expect("a self-referencing cascade is walked recursively, not a cycle");
    assert_eq!(p.relations.len(), 1);
    assert!(p.relations[0].is_self_reference());
    assert_eq!(p.relations[0].on_delete, OnDelete::Cascade);
    assert_eq!(p.relations[0].line, 5);
}

#[test]
fn cycle_through_a_non_cascade_relation_is_accepted() {
    let p = parse_policy(
        r#"
[entities.a]
key = ["id"]

[entities.b]
key = ["id"]

[[relations]]
child = "b"
columns = ["a_id"]
parent = "a"
on_delete = "cascade"

[[relations]]
child = "a"
columns = ["b_id"]
parent = "b"
on_delete = "set_null"
"#,
        FILE,
    );
    assert!(p.is_ok(), "{}", p.unwrap_err());
}

#[test]
fn three_entity_cascade_cycle_is_refused() {
    let err = parse_policy(
        r#"
[entities.x]
key = ["id"]
[entities.y]
key = ["id"]
[entities.z]
key = ["id"]
[[relations]]
child = "y"
columns = ["x_id"]
parent = "x"
on_delete = "cascade"
[[relations]]
child = "z"
columns = ["y_id"]
parent = "y"
on_delete = "cascade"
[[relations]]
child = "x"
columns = ["z_id"]
parent = "z"
on_delete = "cascade"
"#,
        FILE,
    )
    .unwrap_err();
    assert!(err.message.contains("x -> y -> z -> x"), "{err}");
}

#[test]
fn defaults_are_applied() {
    let p = parse_policy(
        r#"
[entities.users]
key = ["id"]
"#,
        FILE,
    )
    .unwrap();
    let u = &p.entities["users"];
    assert_eq!(u.name, "users");
    assert_eq!(u.table, "users", "table defaults to the entity name");
    assert_eq!(u.strategy, Strategy::Soft, "strategy defaults to soft");
    assert_eq!(u.deleted_at, "deleted_at");
    assert_eq!(u.deletion_id, "deletion_id");
    assert!(u.unique.is_empty());
    assert!(u.pii.is_empty());
    assert_eq!(u.line, 2);
    assert_eq!(p.source, FILE);
    assert!(!p.database.row_security);
    assert_eq!(p.database.url, None);
}

#[test]
fn defaults_section_applies_unless_the_entity_overrides() {
    let p = parse_policy(
        r#"
[database]
url = "postgres://localhost/shop"
row_security = true

[defaults]
strategy = "hard"
deleted_at = "removed_at"
deletion_id = "removal_id"

[entities.logs]
key = ["id"]

[entities.users]
key = ["id"]
strategy = "soft"
deleted_at = "gone_at"
"#,
        FILE,
    )
    .unwrap();
    assert_eq!(p.database.url.as_deref(), Some("postgres://localhost/shop"));
    assert!(p.database.row_security);
    let logs = &p.entities["logs"];
    assert_eq!(logs.strategy, Strategy::Hard);
    assert_eq!(logs.deleted_at, "removed_at");
    assert_eq!(logs.deletion_id, "removal_id");
    let users = &p.entities["users"];
    assert_eq!(users.strategy, Strategy::Soft);
    assert_eq!(users.deleted_at, "gone_at");
    assert_eq!(users.deletion_id, "removal_id");
    assert_eq!(users.line, 14);
}

#[test]
fn schema_qualified_table_is_accepted() {
    let p = parse_policy(
        r#"
[entities.users]
table = "public.users"
key = ["id"]
"#,
        FILE,
    )
    .unwrap();
    assert_eq!(p.entities["users"].table, "public.users");
}

#[test]
fn full_entity_and_relation_are_parsed() {
    let p = parse_policy(
        r#"
[entities.users]
key = ["id"]
unique = [["email"], ["tenant_id", "handle"]]
pii = { email = "hash", name = "redact", phone = "null", city = "fake" }

[entities.order_items]
key = ["order_id", "product_id"]
strategy = "hard"

[entities.orders]
key = ["id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "restrict"

[[relations]]
child = "order_items"
columns = ["order_id"]
parent = "orders"
on_delete = "keep"
"#,
        FILE,
    )
    .unwrap();
    let u = &p.entities["users"];
    assert_eq!(
        u.unique,
        vec![
            vec!["email".to_string()],
            vec!["tenant_id".to_string(), "handle".to_string()]
        ]
    );
    assert_eq!(u.pii.len(), 4);
    assert_eq!(u.pii["email"].as_str(), "hash");
    assert_eq!(u.pii["city"].as_str(), "fake");
    assert_eq!(
        p.entities["order_items"].key,
        vec!["order_id".to_string(), "product_id".to_string()]
    );
    assert_eq!(p.entities["order_items"].strategy, Strategy::Hard);
    assert_eq!(p.relations.len(), 2);
    assert_eq!(p.relations[0].on_delete, OnDelete::Restrict);
    assert_eq!(p.relations[0].line, 14);
    assert_eq!(p.relations[1].on_delete, OnDelete::Keep);
    assert_eq!(p.relations[1].line, 20);
    assert_eq!(p.relations[1].describe(), "order_items.order_id -> orders");
}

#[test]
fn toml_syntax_error_has_a_line() {
    let err = parse_policy("[entities.users]\nkey = [\"id\"\n", FILE).unwrap_err();
    assert_eq!(err.file, FILE);
    assert!(err.line.is_some(), "{err}");
    assert!(err.to_string().starts_with(&format!("{FILE}:")), "{err}");
}

#[test]
fn empty_policy_parses_to_nothing() {
    let p = parse_policy("", FILE).unwrap();
    assert!(p.entities.is_empty());
    assert!(p.relations.is_empty());
}

#[test]
fn sinks_and_delivery_are_parsed() {
    let p = parse_policy(
        r#"
[relay]
source = "shop-db"

[sinks.cache]
kind = "redis"
url = "redis://127.0.0.1:6379"
max_attempts = 3
backoff = "200ms"
max_backoff = "1m"

[sinks.mc]
kind = "memcached"
address = "memcached://127.0.0.1:11211"

[sinks.search]
kind = "meilisearch"
url = "http://127.0.0.1:7700"
api_key_env = "MEILI_KEY"

[sinks.events]
kind = "nats"
url = "nats://127.0.0.1:4222"
subject = "shop.{entity}.{event}"

[entities.order_items]
key = ["order_id", "product_id"]
cache_keys = ["order:{order_id}", "cart:{user_id}"]
cache = ["cache"]
search = [{ sink = "search", index = "items", fields = ["title"] }]
publish = ["events"]
"#,
        FILE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.relay.source, "shop-db");
    let cache = &p.sinks["cache"];
    assert_eq!(cache.retry.max_attempts, 3);
    assert_eq!(cache.retry.initial, std::time::Duration::from_millis(200));
    assert_eq!(cache.retry.max, std::time::Duration::from_secs(60));
    assert_eq!(
        p.sinks["mc"].kind,
        lethe_core::SinkKind::Memcached {
            address: "127.0.0.1:11211".into()
        }
    );
    let e = &p.entities["order_items"];
    assert_eq!(e.delivery.cache, vec!["cache"]);
    assert_eq!(e.delivery.search[0].id.source, "{order_id}-{product_id}");
    assert_eq!(e.captured_columns(), vec!["user_id", "title"]);
    assert_eq!(
        p.routes(),
        vec![
            ("order_items".to_string(), "cache".to_string()),
            ("order_items".to_string(), "search".to_string()),
            ("order_items".to_string(), "events".to_string())
        ]
    );
}

#[test]
fn cache_keys_go_to_every_cache_sink_by_default() {
    let p = parse_policy(
        r#"
[sinks.a]
kind = "redis"
url = "redis://127.0.0.1/"

[sinks.b]
kind = "memcached"
address = "127.0.0.1:11211"

[entities.users]
key = ["id"]
cache_keys = ["user:{id}"]
"#,
        FILE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.entities["users"].delivery.cache, vec!["a", "b"]);
}

#[test]
fn retention_jobs_export_and_subject_are_parsed() {
    use lethe_core::{AfterRetention, JobKind};
    use std::time::Duration;
    let p = parse_policy(
        r#"
[defaults]
retention = "30d"

[entities.users]
key = ["id"]
retention = "90d"
then = "archive"

[entities.orders]
key = ["id"]
strategy = "archive"

[entities.logs]
key = ["id"]
strategy = "hard"
then = "archive"

[entities.events]
key = ["id"]
subject_columns = ["user_id"]

[erasure]
subject = "users"

[export]
to = "s3://cold/lethe"
endpoint = "http://127.0.0.1:5000"
key_env = "LETHE_KEK"

[jobs.nightly]
run = "purge"
schedule = "0 3 * * *"
entity = "users"
batch_size = 500
max_rows_per_second = 2000

[jobs.cold]
run = "export"
schedule = "30 3 * * *"
"#,
        FILE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let users = p.entities["users"]
        .retention
        .as_ref()
        .expect("users retention");
    assert_eq!(users.after, Duration::from_secs(90 * 86_400));
    assert_eq!(users.then, AfterRetention::Archive);
    let orders = p.entities["orders"]
        .retention
        .as_ref()
        .expect("default retention");
    assert_eq!(orders.after, Duration::from_secs(30 * 86_400));
    assert_eq!(orders.then, AfterRetention::Purge);
    assert_eq!(p.entities["orders"].strategy, Strategy::Archive);
    // A `then` of its own takes the default duration.
    let logs = p.entities["logs"]
        .retention
        .as_ref()
        .expect("logs retention");
    assert_eq!(
        (logs.text.as_str(), logs.then),
        ("30d", AfterRetention::Archive)
    );
    assert_eq!(p.entities["events"].subject_columns, ["user_id"]);
    assert_eq!(p.subject.as_deref(), Some("users"));
    let export = p.export.as_ref().expect("export");
    assert_eq!(export.to, "s3://cold/lethe");
    assert_eq!(export.key_env.as_deref(), Some("LETHE_KEK"));
    let nightly = &p.jobs["nightly"];
    assert_eq!(nightly.entity.as_deref(), Some("users"));
    assert_eq!(
        nightly.kind,
        JobKind::Purge {
            batch_size: Some(500),
            max_rows_per_second: Some(2000)
        }
    );
    assert_eq!(p.jobs["cold"].kind, JobKind::Export);
    assert_eq!(p.jobs["cold"].schedule.text, "30 3 * * *");
    // Only soft tables are marked until the store has seen the schema.
    assert!(p.entities["users"].marked && !p.entities["orders"].marked);
}

#[test]
fn erase_settings_and_their_defaults() {
    use lethe_core::Erase;
    let p = parse_policy(
        r#"
[entities.users]
key = ["id"]
erase = "anonymize"
pii = { email = "fake", name = "redact", phone = "null" }

[entities.orders]
key = ["id"]
erase = "keep"
legal_basis = "  invoices: 10 years (tax law)  "

[entities.reviews]
key = ["id"]

[entities.events]
key = ["id"]
subject_columns = ["user_id"]
erase = "delete"

[entities.products]
key = ["id"]

[[relations]]
child = "orders"
columns = ["user_id"]
parent = "users"
on_delete = "restrict"

[[relations]]
child = "reviews"
columns = ["order_id"]
parent = "orders"
on_delete = "cascade"

[[relations]]
child = "reviews"
columns = ["product_id"]
parent = "products"
on_delete = "cascade"

[erasure]
subject = "users"
"#,
        FILE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.erase_of("users"), Some(Erase::Anonymize));
    assert_eq!(
        p.erase_of("orders"),
        Some(Erase::Keep {
            legal_basis: "invoices: 10 years (tax law)".into()
        })
    );
    // Not said, but the rows lead to the subject (two relations up): deleted.
    assert_eq!(p.entities["reviews"].erase, None);
    assert_eq!(p.erase_of("reviews"), Some(Erase::Delete));
    assert_eq!(p.erase_of("events"), Some(Erase::Delete));
    // Products belong to no subject; erasure leaves them alone.
    assert_eq!(p.erase_of("products"), None);
    assert_eq!(p.erase_of("nope"), None);
}
