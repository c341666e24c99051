//! `lethe relay` under faults, end to end through the binary on PostgreSQL
//! with the machine's NATS JetStream and RabbitMQ: a relay killed with
//! SIGKILL in the middle of a backlog loses nothing, two relay processes
//! share one backlog without delivering anything twice, and a sink that
//! keeps failing goes dead and is delivered after `lethe replay --dead`.
//!
//! Every test creates a database of its own (`LETHE_TEST_PG`, default
//! `postgres://postgres@127.0.0.1/postgres`), and names its stream, subjects,
//! exchange and queue after a fresh UUID; all of them are removed at the end,
//! also when the test fails. NATS is `LETHE_TEST_NATS` (default
//! `nats://127.0.0.1:4222`), RabbitMQ `LETHE_TEST_AMQP` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). A service that cannot be reached
//! skips the test with a message locally and fails it under CI (`CI=true`).
//!
//! The expected events are computed from the outbox records with the relay's
//! own `message::events` (the ids are pure functions of the record), and
//! checked independently against the rows the test deleted (the CloudEvents
//! `subject` of every row).

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use lethe_store::{DeleteRequest, Engine, QueuedMessage};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection as _, Executor, PgConnection, PgPool};

#[path = "../../lethe-relay/tests/services/mod.rs"]
mod services;
use services::*;

// ------------------------------------------------------------ environment

fn pg_base_url() -> String {
    std::env::var("LETHE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".to_string())
}

/// Runs `f` on a runtime of its own in another thread: for clean-up in
/// `Drop`, which cannot await (and may run inside the test's runtime).
fn block_on_side<F>(f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    })
    .join();
}

// ------------------------------------------------------------- PostgreSQL

/// A database of the test's own, dropped (with its connections) on drop.
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    async fn create() -> Option<PgDb> {
        let base = pg_base_url();
        let mut admin = match PgConnection::connect(&base).await {
            Ok(c) => c,
            Err(e) => return skip(&format!("PostgreSQL at {base} is unreachable: {e}")),
        };
        let name = format!("lethe_relay_faults_{}", run_id());
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let _ = admin.close().await;
        let url = match base.rfind('/') {
            Some(i) if base[..i].ends_with(|c: char| c != '/') => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        Some(PgDb { name, url })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(async move {
            if let Ok(mut admin) = PgConnection::connect(&pg_base_url()).await {
                let _ = admin
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            }
        });
    }
}

/// A temporary directory (policy file, relay logs), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("lethe-relay-faults-{}", run_id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------------------- shop

/// How big a backlog to make: `items` and `tags` are deleted one row each,
/// every account with its `notes_per_account` cascaded notes.
#[derive(Clone, Copy)]
struct Backlog {
    items: u32,
    tags: u32,
    accounts: u32,
    notes_per_account: u32,
}

impl Backlog {
    /// Rows deleted, i.e. events per sink.
    fn rows(&self) -> usize {
        (self.items + self.tags + self.accounts * (1 + self.notes_per_account)) as usize
    }

    /// Outbox records (each becomes one delivery per sink).
    fn records(&self) -> usize {
        let notes = if self.notes_per_account > 0 {
            self.accounts
        } else {
            0
        };
        (self.items + self.tags + self.accounts + notes) as usize
    }

    /// The CloudEvents subject of every row deleted.
    fn subjects(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        for i in 1..=self.items {
            s.insert(format!("items/{i}"));
        }
        for i in 1..=self.tags {
            s.insert(format!("tags/{i}"));
        }
        for a in 1..=self.accounts {
            s.insert(format!("accounts/{a}"));
            for n in 1..=self.notes_per_account {
                s.insert(format!("notes/{}", note_id(a, n)));
            }
        }
        s
    }
}

fn note_id(account: u32, n: u32) -> u64 {
    u64::from(account) * 100_000 + u64::from(n)
}

fn schema(b: &Backlog) -> String {
    format!(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE tags (id bigint PRIMARY KEY, label text NOT NULL);
         CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE notes (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), body text NOT NULL);
         CREATE INDEX notes_account ON notes (account_id);
         INSERT INTO items (id, name) SELECT g, 'item ' || g FROM generate_series(1, {items}) g;
         INSERT INTO tags (id, label) SELECT g, 'tag ' || g FROM generate_series(1, {tags}) g;
         INSERT INTO accounts (id, name) SELECT g, 'account ' || g FROM generate_series(1, {accounts}) g;
         INSERT INTO notes (id, account_id, body) SELECT a * 100000 + n, a, 'note' FROM generate_series(1, {accounts}) a, generate_series(1, {notes}) n;",
        items = b.items,
        tags = b.tags,
        accounts = b.accounts,
        notes = b.notes_per_account,
    )
}

/// The policy: every entity publishes to `publish`; `sinks` is the
/// `[sinks.*]` TOML.
fn policy(publish: &[&str], sinks: &str) -> String {
    let list = publish
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut p = String::new();
    for e in ["items", "tags", "accounts", "notes"] {
        p.push_str(&format!(
            "[entities.{e}]\nkey = [\"id\"]\npublish = [{list}]\n\n"
        ));
    }
    p.push_str(
        "[[relations]]\nchild = \"notes\"\ncolumns = [\"account_id\"]\nparent = \"accounts\"\non_delete = \"cascade\"\n\n",
    );
    p.push_str(sinks);
    p
}

/// A migrated database with a backlog of deletions, the policy on disk, and
/// a pool to look at Lethe's tables.
struct Shop {
    dir: TempDir,
    policy: PathBuf,
    pool: PgPool,
    backlog: Backlog,
    // Last: dropped after the pool is closed.
    db: PgDb,
}

struct Out {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

impl Shop {
    async fn new(backlog: Backlog, publish: &[&str], sinks: &str) -> Option<Shop> {
        let db = PgDb::create().await?;
        let dir = TempDir::new();
        let policy_path = dir.0.join("lethe.toml");
        let text = policy(publish, sinks);
        std::fs::write(&policy_path, &text).expect("write policy");
        let pool = PgPool::connect(&db.url)
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(AssertSqlSafe(schema(&backlog)))
            .execute(&pool)
            .await
            .expect("create the shop");
        let shop = Shop {
            dir,
            policy: policy_path,
            pool,
            backlog,
            db,
        };
        let o = shop.lethe(&["migrate"]).await;
        assert_eq!(o.code, Some(0), "migrate:\n{}\n{}", o.stdout, o.stderr);
        shop.delete_backlog(&text).await;
        Some(shop)
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_lethe"));
        c.arg("--policy")
            .arg(&self.policy)
            .arg("--database")
            .arg(&self.db.url)
            .args(args)
            .current_dir(&self.dir.0)
            .env_remove("LETHE_DATABASE_URL")
            .env_remove("LETHE_ACTOR")
            .env_remove("LETHE_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn lethe(&self, args: &[&str]) -> Out {
        let o = self
            .command(args)
            .output()
            .await
            .expect("run the lethe binary");
        Out {
            stdout: String::from_utf8_lossy(&o.stdout).to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).to_string(),
            code: o.status.code(),
        }
    }

    /// Deletes the backlog through the library (300 `lethe delete`
    /// processes would take most of the time budget): accounts spread among
    /// the single-row deletions, so every queue has records early and late.
    async fn delete_backlog(&self, policy_text: &str) {
        let policy = lethe_core::parse_policy(policy_text, "lethe.toml").expect("policy parses");
        let engine = Engine::connect(policy, &self.db.url).await.expect("engine");
        let b = self.backlog;
        let mut work: Vec<(&str, u32)> = Vec::new();
        let n = b.items.max(b.tags).max(1);
        for i in 1..=n {
            if b.accounts > 0 && (i - 1) % n.div_ceil(b.accounts) == 0 {
                work.push(("accounts", (i - 1) / n.div_ceil(b.accounts) + 1));
            }
            if i <= b.items {
                work.push(("items", i));
            }
            if i <= b.tags {
                work.push(("tags", i));
            }
        }
        assert_eq!(
            work.iter().filter(|(e, _)| *e == "accounts").count(),
            b.accounts as usize
        );
        for (entity, id) in work {
            let req = DeleteRequest::new(entity, id.to_string())
                .actor("relay-faults")
                .reason("relay fault test");
            engine
                .delete(&req)
                .await
                .unwrap_or_else(|e| panic!("delete {entity} {id}: {e}"));
        }
        engine.db().close().await;
    }

    /// Deliveries per state.
    async fn states(&self) -> BTreeMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT state, count(*) FROM lethe.deliveries GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await
        .expect("deliveries per state")
        .into_iter()
        .collect()
    }

    async fn undispatched(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM lethe.outbox WHERE NOT dispatched")
            .fetch_one(&self.pool)
            .await
            .expect("undispatched")
    }

    /// Every event the outbox implies, `id -> subject`, computed with the
    /// relay's own message code from the stored records.
    async fn expected_events(&self) -> BTreeMap<String, String> {
        let rows = sqlx::query_as::<_, (i64, String, String, String, String, String, String)>(
            "SELECT id, deletion_id::text, event, entity, keys::text, key_columns, columns FROM lethe.outbox ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .expect("outbox");
        assert_eq!(rows.len(), self.backlog.records(), "outbox records");
        let mut out = BTreeMap::new();
        for (outbox_id, deletion_id, event, entity, keys, key_columns, columns) in rows {
            let msg = QueuedMessage {
                delivery_id: 0,
                outbox_id,
                attempts: 0,
                due: true,
                event,
                deletion_id,
                keys: serde_json::from_str(&keys).expect("keys"),
                key_columns: serde_json::from_str(&key_columns).expect("key columns"),
                columns: serde_json::from_str(&columns).expect("columns"),
                created_at: String::new(),
                actor: None,
                reason: None,
                rows: 0,
            };
            for ev in lethe_relay::message::events("test", &entity, &msg) {
                let v: Value = serde_json::from_str(&ev.json).expect("event JSON");
                let subject = v["subject"].as_str().expect("subject").to_string();
                assert!(
                    out.insert(ev.id.clone(), subject).is_none(),
                    "event id {} computed twice",
                    ev.id
                );
            }
        }
        assert_eq!(out.len(), self.backlog.rows(), "one event per row deleted");
        let subjects: BTreeSet<String> = out.values().cloned().collect();
        assert_eq!(
            subjects,
            self.backlog.subjects(),
            "the outbox names exactly the rows deleted"
        );
        out
    }

    /// `lethe deliveries --json`: the summary and the undispatched count.
    async fn deliveries_json(&self, extra: &[&str]) -> Value {
        let mut args = vec!["deliveries", "--json", "--limit", "10000"];
        args.extend_from_slice(extra);
        let o = self.lethe(&args).await;
        assert_eq!(o.code, Some(0), "deliveries:\n{}\n{}", o.stdout, o.stderr);
        o.json()
    }

    /// Asserts `lethe deliveries --json` shows every delivery of every sink
    /// delivered: nothing pending, retrying or dead, nothing undispatched.
    async fn assert_all_delivered(&self, sinks: &[&str]) {
        let v = self.deliveries_json(&[]).await;
        assert_eq!(v["undispatched_outbox_records"], 0, "{v:#}");
        let summary = v["summary"].as_array().expect("summary");
        for s in summary {
            assert_eq!(s["state"], "delivered", "left open or dead: {s}");
        }
        for sink in sinks {
            let delivered: u64 = summary
                .iter()
                .filter(|s| s["sink"] == *sink)
                .map(|s| s["deliveries"].as_u64().unwrap())
                .sum();
            let rows: u64 = summary
                .iter()
                .filter(|s| s["sink"] == *sink)
                .map(|s| s["rows"].as_u64().unwrap())
                .sum();
            assert_eq!(delivered as usize, self.backlog.records(), "{sink}: {v:#}");
            assert_eq!(rows as usize, self.backlog.rows(), "{sink}: {v:#}");
        }
    }

    /// Runs `lethe relay --once` (with `args`) until no delivery is pending,
    /// retrying or undispatched, or `limit` passes. Returns the runs' exit
    /// codes.
    async fn relay_until_done(&self, args: &[&str], limit: Duration) -> Vec<Option<i32>> {
        let deadline = Instant::now() + limit;
        let mut codes = Vec::new();
        let mut cmd = vec!["relay", "--once", "--json"];
        cmd.extend_from_slice(args);
        loop {
            let o = self.lethe(&cmd).await;
            codes.push(o.code);
            assert!(
                matches!(o.code, Some(0) | Some(1)),
                "relay --once failed:\n{}\n{}",
                o.stdout,
                o.stderr
            );
            let s = self.states().await;
            let open =
                s.get("pending").copied().unwrap_or(0) + s.get("retrying").copied().unwrap_or(0);
            if open == 0 && self.undispatched().await == 0 {
                return codes;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries still open after {limit:?} of `relay --once` runs: {s:?}; last run:\n{}\n{}",
                o.stdout,
                o.stderr
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

// ------------------------------------------------------------------- NATS

/// A JetStream stream of the test's own (subjects `<prefix>.*.*`), deleted
/// on drop.
struct NatsStream {
    url: String,
    name: String,
    prefix: String,
    js: jetstream::Context,
}

fn stream_name(run: &str) -> String {
    format!("LETHE_RELAY_FAULTS_{run}")
}

fn subject_prefix(run: &str) -> String {
    format!("lethe-relay-faults.{run}")
}

fn exchange_name(run: &str) -> String {
    format!("lethe-relay-faults-{run}")
}

impl NatsStream {
    async fn create(url: &str, run: &str) -> NatsStream {
        let client = async_nats::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to NATS at {url}: {e}"));
        let js = jetstream::new(client);
        let (name, prefix) = (stream_name(run), subject_prefix(run));
        js.create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.*.*")],
            ..Default::default()
        })
        .await
        .expect("create the stream");
        NatsStream {
            url: url.to_string(),
            name,
            prefix,
            js,
        }
    }

    async fn count(&self) -> u64 {
        let mut stream = self.js.get_stream(&self.name).await.expect("stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// Every message in the stream as `(Nats-Msg-Id, subject, body)`.
    async fn read_all(&self) -> Vec<(String, String, Value)> {
        let stream = self.js.get_stream(&self.name).await.expect("stream");
        let n = self.count().await;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ack_policy: jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::with_capacity(n as usize);
        while (out.len() as u64) < n {
            let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} stream messages read", out.len()))
                .expect("message stream ended")
                .expect("message");
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(m.payload.as_ref()).expect("JSON body");
            out.push((id, m.subject.as_str().to_string(), body));
        }
        out
    }
}

impl Drop for NatsStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        block_on_side(async move {
            if let Ok(client) = async_nats::connect(url.as_str()).await {
                let _ = jetstream::new(client).delete_stream(&name).await;
            }
        });
    }
}

// --------------------------------------------------------------- RabbitMQ

/// A connection of the test's own with a topic exchange and an exclusive
/// queue bound to it with `#`. The queue goes with the connection, the
/// auto-delete exchange with its last binding; `cleanup` deletes both
/// explicitly.
struct Rabbit {
    _conn: Connection,
    channel: Channel,
    exchange: String,
    queue: String,
}

impl Rabbit {
    async fn connect(url: &str, exchange: &str) -> Rabbit {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("connect to RabbitMQ: {e}"));
        let channel = conn.create_channel().await.expect("channel");
        Rabbit {
            _conn: conn,
            channel,
            exchange: exchange.to_string(),
            queue: String::new(),
        }
    }

    async fn declare(&mut self) {
        self.channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare exchange");
        let q = self
            .channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare queue");
        self.queue = q.name().as_str().to_string();
        self.channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind queue");
    }

    async fn count(&self) -> u32 {
        self.channel
            .queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue exists")
            .message_count()
    }

    /// Every message in the queue as `(message_id, routing key, body)`.
    async fn read_all(&self) -> Vec<(String, String, Value)> {
        let n = self.count().await as usize;
        let mut consumer = self
            .channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} queued messages read", out.len()))
                .expect("consumer ended")
                .expect("delivery");
            let id = d
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&d.data).expect("JSON body");
            out.push((id, d.routing_key.as_str().to_string(), body));
        }
        // Nothing beyond what the queue said it held.
        let more = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
        assert!(more.is_err(), "more messages than the queue held: {more:?}");
        out
    }

    async fn cleanup(&self) {
        if !self.queue.is_empty() {
            let _ = self
                .channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

// ----------------------------------------------------------------- checks

/// Checks what one broker holds against the expected events: every body's
/// `id` equals its transport id, every expected id arrived, nothing else
/// did, each with its row's subject and a transport subject / routing key
/// `<prefix><entity>.deleted`. Returns `(messages, distinct ids)`.
fn check_arrivals(
    what: &str,
    got: &[(String, String, Value)],
    expected: &BTreeMap<String, String>,
    prefix: &str,
) -> (usize, usize) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, route, body) in got {
        assert_eq!(
            body["id"].as_str(),
            Some(id.as_str()),
            "{what}: the transport id is the CloudEvent id"
        );
        let subject = expected
            .get(id)
            .unwrap_or_else(|| panic!("{what}: unexpected event {id}: {body}"));
        assert_eq!(
            body["subject"].as_str(),
            Some(subject.as_str()),
            "{what}: {body}"
        );
        assert_eq!(body["type"], "lethe.deleted", "{what}: {body}");
        let entity = subject.split('/').next().unwrap();
        assert_eq!(
            route,
            &format!("{prefix}{entity}.deleted"),
            "{what}: {body}"
        );
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .keys()
        .filter(|id| !seen.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} events never arrived, e.g. {:?}",
        missing.len(),
        expected.len(),
        missing
            .iter()
            .take(5)
            .map(|id| &expected[*id])
            .collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), expected.len(), "{what}: distinct ids");
    (got.len(), seen.len())
}

fn open_of(s: &BTreeMap<String, i64>) -> i64 {
    s.get("pending").copied().unwrap_or(0) + s.get("retrying").copied().unwrap_or(0)
}

// ------------------------------------------------------------------ tests

/// A relay is SIGKILLed in the middle of a backlog (one outbox record per
/// batch, 2 s leases) to NATS JetStream and RabbitMQ; `relay --once` runs
/// afterwards (taking the dead relay's queues over once their leases ran
/// out) deliver the rest. Every event reaches both brokers with its stable
/// id: JetStream stores each once (Nats-Msg-Id deduplicates the batch that
/// was in flight at the kill), RabbitMQ may hold that batch twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_batch_loses_nothing() {
    let Some(nats) = nats_url() else { return };
    let Some(amqp) = amqp_url() else { return };
    let run = run_id();
    let sinks = format!(
        "[sinks.bus]\nkind = \"nats\"\nurl = \"{nats}\"\nsubject = \"{}.{{entity}}.{{event}}\"\nstream = \"{}\"\n\n\
         [sinks.rabbit]\nkind = \"rabbitmq\"\nurl = \"{amqp}\"\nexchange = \"{}\"\nrouting_key = \"{{entity}}.{{event}}\"\n",
        subject_prefix(&run),
        stream_name(&run),
        exchange_name(&run)
    );
    let backlog = Backlog {
        items: 300,
        tags: 0,
        accounts: 3,
        notes_per_account: 2000,
    };
    let started = Instant::now();
    let Some(shop) = Shop::new(backlog, &["bus", "rabbit"], &sinks).await else {
        return;
    };
    let stream = NatsStream::create(&nats, &run).await;
    let mut rabbit = Rabbit::connect(&amqp, &exchange_name(&run)).await;
    rabbit.declare().await;
    let expected = shop.expected_events().await;
    eprintln!(
        "backlog: {} rows in {} outbox records, made in {:?}",
        expected.len(),
        backlog.records(),
        started.elapsed()
    );

    // The relay, logging to files (a full pipe would stall it).
    let log = |name: &str| std::fs::File::create(shop.dir.0.join(name)).expect("log file");
    let mut relay = shop
        .command(&["relay", "--batch", "1", "--lease", "2s", "--workers", "2"])
        .stdout(log("relay.out"))
        .stderr(log("relay.err"))
        .spawn()
        .expect("start lethe relay");
    let pid = relay.id().expect("running") as libc::pid_t;
    let total = 2 * backlog.records() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = relay.try_wait().expect("relay status") {
            panic!(
                "the relay exited ({status}) before it was killed:\n{}",
                std::fs::read_to_string(shop.dir.0.join("relay.err")).unwrap_or_default()
            );
        }
        let s = shop.states().await;
        if s.get("delivered").copied().unwrap_or(0) >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay delivered too little in 30 s: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: `pid` is our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9");
    let status = relay.wait().await.expect("wait for the relay");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");

    let at_kill = shop.states().await;
    let leased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lethe.delivery_queues WHERE lease_until IS NOT NULL",
    )
    .fetch_one(&shop.pool)
    .await
    .unwrap();
    let (nats_at_kill, rabbit_at_kill) = (stream.count().await, rabbit.count().await);
    eprintln!(
        "at the kill: deliveries {at_kill:?}, {leased} queue(s) still leased; NATS holds {nats_at_kill}, RabbitMQ {rabbit_at_kill} of {} events each",
        expected.len()
    );
    let delivered = at_kill.get("delivered").copied().unwrap_or(0);
    assert!(delivered > 0, "{at_kill:?}");
    assert!(
        open_of(&at_kill) > 0,
        "the relay finished before the kill: {at_kill:?}"
    );
    assert_eq!(
        at_kill.values().sum::<i64>(),
        total,
        "every record was dispatched to both sinks"
    );
    assert!(
        nats_at_kill + u64::from(rabbit_at_kill) < 2 * expected.len() as u64,
        "not everything had arrived at the kill"
    );

    // Restart: `--once` until nothing is open (the dead relay's leases run
    // out after 2 s; until then its queues are skipped).
    let restarted = Instant::now();
    let codes = shop
        .relay_until_done(&["--lease", "2s"], Duration::from_secs(60))
        .await;
    eprintln!(
        "restart: {} `relay --once` run(s) in {:?}, exit codes {codes:?}",
        codes.len(),
        restarted.elapsed()
    );
    assert!(
        codes.iter().all(|c| *c == Some(0)),
        "no delivery failed: {codes:?}"
    );
    shop.assert_all_delivered(&["bus", "rabbit"]).await;

    // NATS: every event once (the in-flight batch was deduplicated).
    let in_nats = stream.read_all().await;
    let (n, distinct) = check_arrivals("NATS", &in_nats, &expected, &format!("{}.", stream.prefix));
    eprintln!("NATS: {n} messages, {distinct} distinct ids");
    assert_eq!(n, expected.len(), "JetStream stored each event once");
    for (id, _, _) in &in_nats {
        assert!(!id.is_empty(), "Nats-Msg-Id set");
    }

    // RabbitMQ: every event at least once; a duplicate carries the same id.
    let in_rabbit = rabbit.read_all().await;
    let (n, distinct) = check_arrivals("RabbitMQ", &in_rabbit, &expected, "");
    eprintln!(
        "RabbitMQ: {n} messages, {distinct} distinct ids ({} redelivered)",
        n - distinct
    );

    rabbit.cleanup().await;
    shop.pool.close().await;
}

/// Two `lethe relay --once --workers 2` processes started together on one
/// backlog: each queue is leased by one relay at a time, so every event
/// arrives exactly once (no crash, no redelivery) and the rows the two
/// report add up to the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relay_processes_share_the_work() {
    let Some(amqp) = amqp_url() else { return };
    let run = run_id();
    let sinks = format!(
        "[sinks.rabbit]\nkind = \"rabbitmq\"\nurl = \"{amqp}\"\nexchange = \"{}\"\nrouting_key = \"{{entity}}.{{event}}\"\n",
        exchange_name(&run)
    );
    let backlog = Backlog {
        items: 200,
        tags: 150,
        accounts: 6,
        notes_per_account: 50,
    };
    let Some(shop) = Shop::new(backlog, &["rabbit"], &sinks).await else {
        return;
    };
    let mut rabbit = Rabbit::connect(&amqp, &exchange_name(&run)).await;
    rabbit.declare().await;
    let expected = shop.expected_events().await;

    let args = ["relay", "--once", "--workers", "2", "--json"];
    let (a, b) = tokio::join!(shop.lethe(&args), shop.lethe(&args));
    let mut delivered = 0;
    let mut rows = 0;
    for (name, o) in [("first", &a), ("second", &b)] {
        assert_eq!(o.code, Some(0), "{name} relay:\n{}\n{}", o.stdout, o.stderr);
        let v = o.json();
        eprintln!("{name} relay: {}", v["stats"]);
        assert_eq!(v["stats"]["failed"], 0, "{v}");
        delivered += v["stats"]["delivered"].as_u64().unwrap();
        rows += v["stats"]["rows"].as_u64().unwrap();
    }
    // A delivery sent by both relays would count its rows twice.
    assert_eq!(
        delivered as usize,
        backlog.records(),
        "deliveries marked delivered"
    );
    assert_eq!(
        rows as usize,
        backlog.rows(),
        "rows sent, summed over both relays"
    );
    shop.assert_all_delivered(&["rabbit"]).await;

    let got = rabbit.read_all().await;
    let (n, distinct) = check_arrivals("RabbitMQ", &got, &expected, "");
    assert_eq!(n, distinct, "no event delivered twice");
    assert_eq!(n, expected.len());

    rabbit.cleanup().await;
    shop.pool.close().await;
}

/// A RabbitMQ sink whose exchange does not exist: the broker closes the
/// channel on every publish; after `max_attempts = 2` the deliveries are
/// dead, holding the error. Once the exchange exists, `lethe replay --dead`
/// and one `relay --once` deliver them, and nothing is dead any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_that_keeps_failing_goes_dead_and_replay_delivers() {
    let Some(amqp) = amqp_url() else { return };
    let run = run_id();
    let sinks = format!(
        "[sinks.rabbit]\nkind = \"rabbitmq\"\nurl = \"{amqp}\"\nexchange = \"{}\"\nrouting_key = \"{{entity}}.{{event}}\"\nmax_attempts = 2\nbackoff = \"10ms\"\n",
        exchange_name(&run)
    );
    let backlog = Backlog {
        items: 5,
        tags: 3,
        accounts: 1,
        notes_per_account: 10,
    };
    let Some(shop) = Shop::new(backlog, &["rabbit"], &sinks).await else {
        return;
    };
    // Connected, but nothing declared: the exchange does not exist yet.
    let mut rabbit = Rabbit::connect(&amqp, &exchange_name(&run)).await;
    let expected = shop.expected_events().await;

    let codes = shop.relay_until_done(&[], Duration::from_secs(30)).await;
    assert!(
        codes.contains(&Some(1)),
        "failed attempts exit 1: {codes:?}"
    );
    let v = shop.deliveries_json(&["--state", "dead"]).await;
    let dead = v["deliveries"].as_array().expect("deliveries");
    assert_eq!(
        dead.len(),
        backlog.records(),
        "every delivery is dead: {v:#}"
    );
    for d in dead {
        assert_eq!(d["state"], "dead", "{d}");
        assert_eq!(d["attempts"], 2, "{d}");
        let err = d["last_error"].as_str().unwrap_or_default();
        assert!(
            err.contains("rejected") && err.contains(&rabbit.exchange),
            "the broker's refusal is kept: {d}"
        );
    }
    assert_eq!(
        shop.states().await.get("dead").copied(),
        Some(backlog.records() as i64)
    );

    // The exchange appears; replay the dead and relay once.
    rabbit.declare().await;
    let o = shop
        .lethe(&["replay", "--dead", "--sink", "rabbit", "--json"])
        .await;
    assert_eq!(o.code, Some(0), "replay:\n{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.json()["requeued"], backlog.records(), "{}", o.stdout);
    let o = shop.lethe(&["relay", "--once", "--json"]).await;
    assert_eq!(o.code, Some(0), "relay:\n{}\n{}", o.stdout, o.stderr);
    let v = o.json();
    assert_eq!(v["open"], 0, "{v}");
    assert_eq!(v["dead"], 0, "{v}");
    shop.assert_all_delivered(&["rabbit"]).await;
    let v = shop.deliveries_json(&["--state", "dead"]).await;
    assert_eq!(v["deliveries"], serde_json::json!([]), "{v:#}");

    let got = rabbit.read_all().await;
    let (n, distinct) = check_arrivals("RabbitMQ", &got, &expected, "");
    assert_eq!(
        n, distinct,
        "nothing reached the queue before the exchange existed"
    );

    rabbit.cleanup().await;
    shop.pool.close().await;
}
