//! The NATS, RabbitMQ and memcached sinks against real servers.
//!
//! NATS JetStream (`LETHE_TEST_NATS`, default `nats://127.0.0.1:4222`) and
//! RabbitMQ (`LETHE_TEST_AMQP`, default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! are the machine's services; the reconnect tests start private
//! `nats-server` and `memcached` processes on free ports so they can stop and
//! restart them. Every test names its streams, subjects, exchanges, queues
//! and keys after a fresh UUID, so runs do not see each other's data.
//!
//! When a server or binary is missing the test is skipped with a message
//! locally, but fails under CI (`CI=true`): CI must never pass by skipping.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use lethe_core::Template;
use lethe_relay::sinks::memcached::MemcachedSink;
use lethe_relay::sinks::nats::NatsSink;
use lethe_relay::sinks::rabbitmq::RabbitMqSink;
use lethe_relay::{Event, SinkError};

mod services;
use services::*;

// ---------------------------------------------------------------- helpers

/// Whether `program` can be run (it answers `flag`).
fn has_program(program: &str, flag: &str) -> bool {
    Command::new(program)
        .arg(flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A port nothing listens on, never the same twice in this process (tests
/// run in parallel, and the kernel may hand a released port out again).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A server process of the test's own, killed on drop.
struct Server {
    program: &'static str,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn start(program: &'static str, args: Vec<String>, port: u16) -> Server {
        let mut server = Server {
            program,
            args,
            port,
            child: None,
        };
        server.restart();
        server
    }

    /// Starts the process (again) and waits until it accepts connections.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.program);
        let child = Command::new(self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program));
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reachable(&addr) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr}",
                self.program
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Someone else may hold the port: make sure it is ours that answers.
        std::thread::sleep(Duration::from_millis(100));
        self.assert_running();
    }

    fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("started");
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{} {:?} exited with {status} (port {} taken?)",
                self.program, self.args, self.port
            );
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("lethe-test-{}", run_id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` events with ids unique to `run`, over two entities and two kinds.
fn events(run: &str, from: usize, n: usize) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let entity = if i % 2 == 0 { "customer" } else { "order" };
            let event = if i % 3 == 0 { "restored" } else { "deleted" };
            let id = format!("{run}-{i}");
            let json = serde_json::json!({
                "specversion": "1.0",
                "id": id,
                "source": "lethe/test",
                "type": format!("lethe.{event}"),
                "data": {"entity": entity, "key": {"id": i}},
            })
            .to_string();
            Event {
                id,
                entity: entity.to_string(),
                event: event.to_string(),
                json,
            }
        })
        .collect()
}

fn template(source: &str) -> Template {
    Template::parse(source).unwrap()
}

// ------------------------------------------------------------------- NATS

const CLOUDEVENTS: &str = "application/cloudevents+json";

/// Deletes a test stream on drop, even when the test failed.
struct StreamGuard {
    url: String,
    name: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await: delete from a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(client) = async_nats::connect(url.as_str()).await {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&name)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn stream_count(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    let mut stream = js.get_stream(name).await.expect("stream exists");
    stream.info().await.expect("stream info").state.messages
}

#[tokio::test]
async fn nats_stores_each_event_once_on_rendered_subjects() {
    let Some(url) = nats_url() else { return };
    let run = run_id();
    let name = format!("LETHE_TEST_{run}");
    let _guard = StreamGuard {
        url: url.clone(),
        name: name.clone(),
    };
    let prefix = format!("lethe-test.{run}");
    let mut sink = NatsSink::new(
        &url,
        template(&format!("{prefix}.{{entity}}.{{event}}")),
        Some(name.clone()),
    );
    assert_eq!(sink.stream_subject(), format!("{prefix}.*.*"));

    let batch = events(&run, 0, 30);
    sink.publish(&batch).await.expect("publish");

    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    assert_eq!(stream_count(&js, &name).await, 30);
    let stream = js.get_stream(&name).await.unwrap();
    assert_eq!(
        stream.cached_info().config.subjects,
        vec![format!("{prefix}.*.*")]
    );
    for (seq, ev) in (1u64..).zip(&batch) {
        let m = stream.get_raw_message(seq).await.expect("message");
        assert_eq!(
            m.subject.as_str(),
            format!("{prefix}.{}.{}", ev.entity, ev.event)
        );
        assert_eq!(
            m.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(ev.id.as_str())
        );
        assert_eq!(
            m.headers.get("Content-Type").map(|v| v.as_str()),
            Some(CLOUDEVENTS)
        );
        assert_eq!(m.payload.as_ref(), ev.json.as_bytes());
    }

    // The same batch again, on the same connection and on a new one: the
    // ids are inside the duplicate window, so nothing more is stored.
    sink.publish(&batch).await.expect("republish");
    let mut fresh = NatsSink::new(
        &url,
        template(&format!("{prefix}.{{entity}}.{{event}}")),
        Some(name.clone()),
    );
    fresh
        .publish(&batch[..10])
        .await
        .expect("republish, new client");
    assert_eq!(stream_count(&js, &name).await, 30);

    // New ids are stored.
    sink.publish(&events(&run, 30, 5)).await.expect("more");
    assert_eq!(stream_count(&js, &name).await, 35);
}

#[tokio::test]
async fn nats_without_a_stream_is_rejected_until_one_exists() {
    let Some(url) = nats_url() else { return };
    let run = run_id();
    let name = format!("LETHE_TEST_{run}");
    let _guard = StreamGuard {
        url: url.clone(),
        name: name.clone(),
    };
    let subject = format!("lethe-test.{run}.{{entity}}");
    let mut sink = NatsSink::new(&url, template(&subject), None);
    let batch = events(&run, 0, 3);
    match sink.publish(&batch).await {
        Err(SinkError::Rejected(m)) => assert!(m.contains(&batch[0].id), "{m}"),
        other => panic!("expected Rejected, got {other:?}"),
    }

    // Once a stream captures the subjects, the same sink delivers.
    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("lethe-test.{run}.*")],
        ..Default::default()
    })
    .await
    .unwrap();
    sink.publish(&batch)
        .await
        .expect("publish once the stream exists");
    assert_eq!(stream_count(&js, &name).await, 3);
}

#[tokio::test]
async fn nats_unreachable_server_fails_fast() {
    let mut sink = NatsSink::new("nats://127.0.0.1:1", template("a.{entity}"), None);
    let started = Instant::now();
    let result = sink.publish(&events("x", 0, 2)).await;
    assert!(
        matches!(result, Err(SinkError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Nothing to send is not an error, and needs no server.
    sink.publish(&[]).await.unwrap();
}

#[tokio::test]
async fn nats_reconnects_after_the_server_comes_back() {
    if !has_program("nats-server", "--version") {
        skip::<()>("nats-server is not installed");
        return;
    }
    let run = run_id();
    let port = free_port();
    let store = TempDir::new();
    let url = format!("nats://127.0.0.1:{port}");
    let name = format!("LETHE_TEST_{run}");
    let mut sink = NatsSink::new(&url, template("lethe.{entity}.{event}"), Some(name.clone()));

    // Not started yet.
    let started = Instant::now();
    let result = sink.publish(&events(&run, 0, 3)).await;
    assert!(
        matches!(result, Err(SinkError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let args = vec![
        "-a".to_string(),
        "127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "-js".to_string(),
        "-sd".to_string(),
        store.0.display().to_string(),
    ];
    let mut server = Server::start("nats-server", args, port);
    sink.publish(&events(&run, 0, 3)).await.expect("server up");

    server.stop();
    let started = Instant::now();
    let result = sink.publish(&events(&run, 3, 3)).await;
    assert!(
        matches!(result, Err(SinkError::Unavailable(_))),
        "{result:?}"
    );
    // The lost connection is noticed at once, not after the ack timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    server.restart();
    sink.publish(&events(&run, 3, 3))
        .await
        .expect("server back");
    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    assert_eq!(stream_count(&js, &name).await, 6);
}

// --------------------------------------------------------------- RabbitMQ

/// A connection and channel of the test's own: what it declares is
/// exclusive or auto-deleted, so it goes away with the connection.
async fn amqp_channel(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = conn.create_channel().await.expect("channel");
    (conn, channel)
}

async fn declare_exchange(channel: &Channel, name: &str) {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare exchange");
}

/// An exclusive queue named `name` ("" lets the broker name it).
async fn declare_queue(channel: &Channel, name: &str) -> String {
    let queue = channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare queue");
    queue.name().as_str().to_string()
}

async fn bind(channel: &Channel, queue: &str, exchange: &str) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind queue");
}

/// Takes `n` messages off `queue`, waiting up to 5 s for them.
async fn take(channel: &Channel, queue: &str, n: usize) -> Vec<lapin::message::Delivery> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            Some(m) => got.push(m.delivery),
            None => {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {n} messages arrived",
                    got.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    got
}

fn check_delivery(d: &lapin::message::Delivery, ev: &Event, routing_key: &str) {
    let p = &d.properties;
    assert_eq!(d.routing_key.as_str(), routing_key);
    assert_eq!(
        p.message_id().as_ref().map(|s| s.as_str()),
        Some(ev.id.as_str())
    );
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some(CLOUDEVENTS)
    );
    assert_eq!(*p.delivery_mode(), Some(2));
    assert_eq!(
        p.kind().as_ref().map(|s| s.as_str()),
        Some(format!("lethe.{}", ev.event).as_str())
    );
    assert_eq!(d.data, ev.json.as_bytes());
}

#[tokio::test]
async fn rabbitmq_publishes_a_confirmed_batch() {
    let Some(url) = amqp_url() else { return };
    let run = run_id();
    let (_conn, channel) = amqp_channel(&url).await;
    let exchange = format!("lethe-test-{run}");
    declare_exchange(&channel, &exchange).await;
    let queue = declare_queue(&channel, "").await;
    bind(&channel, &queue, &exchange).await;

    let mut sink = RabbitMqSink::new(&url, &exchange, template("lethe.{entity}.{event}"));
    let batch = events(&run, 0, 40);
    sink.publish(&batch).await.expect("publish");
    let got = take(&channel, &queue, batch.len()).await;
    for (d, ev) in got.iter().zip(&batch) {
        check_delivery(d, ev, &format!("lethe.{}.{}", ev.entity, ev.event));
    }

    // The connection is reused for the next batch.
    let more = events(&run, 40, 3);
    sink.publish(&more).await.expect("second batch");
    let got = take(&channel, &queue, more.len()).await;
    assert_eq!(
        got[2].properties.message_id().as_ref().unwrap().as_str(),
        more[2].id
    );
}

#[tokio::test]
async fn rabbitmq_default_exchange_routes_on_the_queue_name() {
    let Some(url) = amqp_url() else { return };
    let run = run_id();
    let (_conn, channel) = amqp_channel(&url).await;
    let queue = declare_queue(&channel, &format!("lethe-test-{run}")).await;

    let mut sink = RabbitMqSink::new(&url, "", template(&queue));
    let batch = events(&run, 0, 5);
    sink.publish(&batch).await.expect("publish");
    let got = take(&channel, &queue, batch.len()).await;
    for (d, ev) in got.iter().zip(&batch) {
        check_delivery(d, ev, &queue);
    }
}

#[tokio::test]
async fn rabbitmq_missing_exchange_is_rejected_until_declared() {
    let Some(url) = amqp_url() else { return };
    let run = run_id();
    let exchange = format!("lethe-test-{run}");
    let mut sink = RabbitMqSink::new(&url, &exchange, template("{entity}"));
    let batch = events(&run, 0, 3);
    for _ in 0..2 {
        // The broker closes the channel; the sink must start over each time
        // rather than reuse a dead channel.
        match sink.publish(&batch).await {
            Err(SinkError::Rejected(m)) => assert!(m.contains(&exchange), "{m}"),
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    let (_conn, channel) = amqp_channel(&url).await;
    declare_exchange(&channel, &exchange).await;
    let queue = declare_queue(&channel, "").await;
    bind(&channel, &queue, &exchange).await;
    sink.publish(&batch).await.expect("publish once declared");
    assert_eq!(take(&channel, &queue, 3).await.len(), 3);
}

#[tokio::test]
async fn rabbitmq_unreachable_server_fails_fast() {
    let mut sink = RabbitMqSink::new("amqp://guest:guest@127.0.0.1:1/%2f", "x", template("k"));
    let started = Instant::now();
    let result = sink.publish(&events("x", 0, 2)).await;
    match &result {
        Err(SinkError::Unavailable(m)) => assert!(!m.contains("guest:guest"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

// -------------------------------------------------------------- memcached

/// A private memcached on a free port, or `None` (skipped) when memcached is
/// not installed outside CI.
fn memcached() -> Option<Server> {
    if !has_program("memcached", "-V") {
        return skip("memcached is not installed (apt-get install memcached)");
    }
    let port = free_port();
    let args = [
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-t",
        "1",
        "-u",
        "root",
    ]
    .map(String::from)
    .to_vec();
    Some(Server::start("memcached", args, port))
}

/// Sends raw text-protocol commands on a new connection and reads until the
/// reply ends with `until` `count` times.
fn raw(port: u16, commands: &str, until: &str, count: usize) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to memcached");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(commands.as_bytes()).unwrap();
    let mut reply = String::new();
    let mut buf = [0u8; 8192];
    while reply.matches(until).count() < count {
        let n = s.read(&mut buf).expect("memcached reply");
        assert!(n > 0, "memcached closed the connection after {reply:?}");
        reply.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    reply
}

fn raw_set(port: u16, keys: &[String]) {
    let commands: String = keys
        .iter()
        .map(|k| format!("set {k} 0 0 1\r\nx\r\n"))
        .collect();
    let reply = raw(port, &commands, "\r\n", keys.len());
    assert_eq!(reply.matches("STORED\r\n").count(), keys.len(), "{reply}");
}

fn raw_has(port: u16, key: &str) -> bool {
    raw(port, &format!("get {key}\r\n"), "END\r\n", 1).starts_with("VALUE ")
}

fn keys(run: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("lethe:{run}:{i}"))
        .collect()
}

#[tokio::test]
async fn memcached_invalidates_and_reports_existing_keys() {
    let Some(server) = memcached() else { return };
    let run = run_id();
    let k = keys(&run, 0, 5);
    raw_set(server.port, &k[..4]);
    let mut sink = MemcachedSink::new(&format!("127.0.0.1:{}", server.port));

    assert_eq!(
        sink.existing(&k).await.unwrap(),
        [true, true, true, true, false]
    );
    // k[4] was never there: still a success.
    sink.invalidate(&[k[0].clone(), k[2].clone(), k[4].clone()])
        .await
        .unwrap();
    assert_eq!(
        sink.existing(&k).await.unwrap(),
        [false, true, false, true, false]
    );
    assert!(!raw_has(server.port, &k[0]));
    assert!(raw_has(server.port, &k[1]));

    // Empty calls need no round trip.
    sink.invalidate(&[]).await.unwrap();
    assert!(sink.existing(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn memcached_handles_large_batches() {
    let Some(server) = memcached() else { return };
    let run = run_id();
    let all = keys(&run, 0, 2000);
    raw_set(server.port, &all[..1000]);
    let mut sink = MemcachedSink::new(&format!("127.0.0.1:{}", server.port));

    let before = sink.existing(&all).await.unwrap();
    assert!(before[..1000].iter().all(|&b| b));
    assert!(before[1000..].iter().all(|&b| !b));

    // Every other cached key, plus all the missing ones.
    let gone: Vec<String> = all.iter().step_by(2).cloned().collect();
    sink.invalidate(&gone).await.unwrap();
    let after = sink.existing(&all).await.unwrap();
    for (i, exists) in after.iter().enumerate() {
        assert_eq!(*exists, i < 1000 && i % 2 == 1, "key {i}");
    }
}

#[tokio::test]
async fn memcached_rejects_keys_the_protocol_cannot_carry() {
    // Checked before connecting: nothing listens on port 1.
    let mut sink = MemcachedSink::new("127.0.0.1:1");
    let long = "k".repeat(251);
    for bad in ["has space", "line\r\nbreak", "", long.as_str()] {
        let keys = vec!["fine".to_string(), bad.to_string()];
        match sink.invalidate(&keys).await {
            Err(SinkError::Rejected(m)) => assert!(m.contains(&format!("{bad:?}")), "{m}"),
            other => panic!("invalidate {bad:?}: expected Rejected, got {other:?}"),
        }
        assert!(matches!(
            sink.existing(&keys).await,
            Err(SinkError::Rejected(_))
        ));
    }
    // A valid key does need the server.
    let started = Instant::now();
    assert!(matches!(
        sink.invalidate(&["fine".to_string()]).await,
        Err(SinkError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn memcached_reconnects_after_a_restart() {
    let Some(mut server) = memcached() else {
        return;
    };
    let run = run_id();
    let k = keys(&run, 0, 3);
    raw_set(server.port, &k);
    let mut sink = MemcachedSink::new(&format!("127.0.0.1:{}", server.port));
    sink.invalidate(&k[..1]).await.unwrap();

    server.stop();
    let started = Instant::now();
    let result = sink.invalidate(&k[1..2]).await;
    assert!(
        matches!(result, Err(SinkError::Unavailable(_))),
        "{result:?}"
    );
    let result = sink.existing(&k).await;
    assert!(
        matches!(result, Err(SinkError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // A restarted memcached is empty; set again and check the same sink
    // works on a new connection.
    server.restart();
    raw_set(server.port, &k);
    sink.invalidate(&k[1..2]).await.expect("after restart");
    assert_eq!(sink.existing(&k).await.unwrap(), [true, false, true]);
}

// ----------------------------------------------------------------- shared

/// The relay runs deliveries on spawned tasks: every sink call must be
/// `Send`.
#[test]
fn sink_calls_are_send() {
    fn send<T: Send>(_: T) {}
    let mut nats = NatsSink::new("nats://127.0.0.1:1", template("a"), None);
    send(nats.publish(&[]));
    let mut rabbit = RabbitMqSink::new("amqp://127.0.0.1:1", "", template("a"));
    send(rabbit.publish(&[]));
    let mut memcached = MemcachedSink::new("127.0.0.1:1");
    send(memcached.invalidate(&[]));
    send(memcached.existing(&[]));
    send(nats);
    send(rabbit);
    send(memcached);
}

/// A batch far larger than the client's 5,000 unacknowledged publishes (the
/// relay sends up to 20,000 rows at once) is published in windows: it must
/// neither hang nor lose an event.
#[tokio::test]
async fn nats_publishes_batches_beyond_the_in_flight_limit() {
    let Some(url) = nats_url() else { return };
    let run = run_id();
    let name = format!("LETHE_TEST_{run}");
    let _guard = StreamGuard {
        url: url.clone(),
        name: name.clone(),
    };
    let prefix = format!("lethe-test.{run}");
    let mut sink = NatsSink::new(
        &url,
        template(&format!("{prefix}.{{entity}}.{{event}}")),
        Some(name.clone()),
    );
    let batch = events(&run, 0, 12_000);
    tokio::time::timeout(Duration::from_secs(60), sink.publish(&batch))
        .await
        .expect("a 12,000-event batch must not hang")
        .expect("publish");
    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    assert_eq!(stream_count(&js, &name).await, 12_000);
}
