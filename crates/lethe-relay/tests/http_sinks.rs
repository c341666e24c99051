//! The HTTP sinks (webhook, Elasticsearch/OpenSearch, Meilisearch) against
//! local stand-in servers.
//!
//! None of the real servers runs on this machine, so each test starts a small
//! HTTP/1.1 server that checks every request against the documented API shape
//! (method, path, query, headers, body structure) and answers like the real
//! server does. A request that breaks the documented shape is recorded as a
//! violation (and answered 400); every test ends by asserting there were
//! none. The webhook receiver checks the signature exactly like a consumer
//! following the sink's documentation would.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use lethe_relay::sinks::elasticsearch::ElasticsearchSink;
use lethe_relay::sinks::meilisearch::MeilisearchSink;
use lethe_relay::sinks::webhook::WebhookSink;
use lethe_relay::{Event, SearchOp, SinkError};
use serde_json::{Map, Value, json};
use sha2::Sha256;

// ---------------------------------------------------------------------------
// A small HTTP/1.1 server (keep-alive, Content-Length bodies).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    /// Header names in lowercase.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|_| "body is not UTF-8".to_owned())
    }

    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("body is not JSON: {e}"))
    }

    fn expect(&self, method: &str, content_type: Option<&str>) -> Result<(), String> {
        if self.method != method {
            return Err(format!(
                "{} {}: expected method {method}",
                self.method, self.path
            ));
        }
        if let Some(expected) = content_type {
            let got = self.header("content-type").unwrap_or("");
            if got != expected {
                return Err(format!(
                    "{} {}: Content-Type `{got}`, expected `{expected}`",
                    self.method, self.path
                ));
            }
        }
        Ok(())
    }
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: body.to_owned(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Result<Reply, String> + Send + Sync;

struct Server {
    url: String,
    log: Arc<Mutex<Vec<Request>>>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(
        handler: impl Fn(&Request) -> Result<Reply, String> + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, violations2) = (log.clone(), violations.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, log, violations) =
                    (handler.clone(), log2.clone(), violations2.clone());
                std::thread::spawn(move || serve_connection(stream, &*handler, &log, &violations));
            }
        });
        Server {
            url,
            log,
            violations,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn assert_no_violations(&self) {
        let violations = self.violations.lock().unwrap();
        assert!(
            violations.is_empty(),
            "requests broke the documented API: {violations:#?}"
        );
    }
}

fn serve_connection(
    stream: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
    violations: &Mutex<Vec<String>>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        if headers.iter().any(|(n, _)| n == "transfer-encoding") {
            violations.lock().unwrap().push(format!(
                "{method} {target}: chunked body (expected Content-Length)"
            ));
            return;
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.clone(), None),
        };
        let request = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        log.lock().unwrap().push(request.clone());
        let reply = handler(&request).unwrap_or_else(|violation| {
            violations.lock().unwrap().push(violation.clone());
            Reply::json(
                400,
                json!({ "message": violation, "code": "test_violation" }),
            )
        });
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            reply.status,
            reply.content_type,
            reply.body.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(reply.body.as_bytes()).is_err()
        {
            return;
        }
        let _ = writer.flush();
    }
}

/// An address where nothing listens.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn set_env(name: &str, value: &str) {
    // Each test uses its own variable names, so parallel tests do not race.
    unsafe { std::env::set_var(name, value) };
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------
// Webhook: a receiver that verifies signatures like a real consumer.
// ---------------------------------------------------------------------------

const WEBHOOK_PATH: &str = "/hooks/lethe";

#[derive(Default)]
struct Receiver {
    /// Event ids in the order received.
    ids: Vec<String>,
    /// Events per request.
    batch_sizes: Vec<usize>,
    /// The received events (parsed).
    events: Vec<Value>,
}

/// The consumer side, as the webhook module documents it: HMAC over the raw
/// body, constant-time comparison, timestamp within five minutes.
fn verify_signature(secret: &[u8], timestamp: &str, signature: &str, body: &[u8]) -> bool {
    let Ok(sent_at) = timestamp.parse::<u64>() else {
        return false;
    };
    if unix_now().abs_diff(sent_at) > 300 {
        return false;
    }
    let Some(Ok(expected)) = signature.strip_prefix("sha256=").map(hex::decode) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A receiver that knows `secret`; answers `status` once a delivery checks
/// out (401 when the signature does not).
fn webhook_receiver(
    secret: &str,
    status: u16,
    reply_body: String,
) -> (Server, Arc<Mutex<Receiver>>) {
    let received = Arc::new(Mutex::new(Receiver::default()));
    let state = received.clone();
    let secret = secret.as_bytes().to_vec();
    let server = Server::start(move |req| {
        req.expect("POST", Some("application/cloudevents-batch+json"))?;
        if req.path != WEBHOOK_PATH {
            return Err(format!("webhook posted to {}", req.path));
        }
        let timestamp = req
            .header("x-lethe-timestamp")
            .ok_or("no X-Lethe-Timestamp")?;
        let signature = req
            .header("x-lethe-signature")
            .ok_or("no X-Lethe-Signature")?;
        if !verify_signature(&secret, timestamp, signature, &req.body) {
            return Ok(Reply::json(401, json!({ "error": "bad signature" })));
        }
        let batch: Vec<Value> = match req.json()? {
            Value::Array(events) => events,
            other => return Err(format!("body is not a JSON array: {other}")),
        };
        let size: usize = req
            .header("x-lethe-batch-size")
            .ok_or("no X-Lethe-Batch-Size")?
            .parse()
            .map_err(|_| "bad batch size")?;
        if size != batch.len() || batch.is_empty() || batch.len() > 500 {
            return Err(format!(
                "X-Lethe-Batch-Size {size} for {} events",
                batch.len()
            ));
        }
        let mut state = state.lock().unwrap();
        for event in &batch {
            let id = event
                .get("id")
                .and_then(Value::as_str)
                .ok_or("event without id")?;
            state.ids.push(id.to_owned());
        }
        state.batch_sizes.push(batch.len());
        state.events.extend(batch);
        Ok(Reply::text(status, &reply_body))
    });
    (server, received)
}

fn events(count: usize) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let id = format!("evt-{i:04}");
            let value = json!({
                "specversion": "1.0",
                "id": id,
                "source": "lethe/test",
                "type": "lethe.deleted",
                "subject": format!("users/{i}"),
                "data": { "entity": "users", "key": { "id": i }, "note": "line\nbreak" },
            });
            Event {
                id,
                entity: "users".into(),
                event: "deleted".into(),
                json: value.to_string(),
            }
        })
        .collect()
}

#[tokio::test]
async fn webhook_delivers_a_signed_cloudevents_batch() {
    set_env("LETHE_TEST_WEBHOOK_SECRET_OK", "s3cret-ok");
    let (server, received) = webhook_receiver("s3cret-ok", 204, String::new());
    let mut sink = WebhookSink::new(
        &format!("{}{WEBHOOK_PATH}", server.url),
        "LETHE_TEST_WEBHOOK_SECRET_OK",
        Duration::from_secs(5),
    );
    let batch = events(3);
    sink.publish(&batch).await.unwrap();

    server.assert_no_violations();
    {
        let received = received.lock().unwrap();
        assert_eq!(received.batch_sizes, vec![3]);
        let sent: Vec<Value> = batch
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect();
        assert_eq!(
            received.events, sent,
            "the body is the events' JSON, in order"
        );
    }
    let request = &server.requests()[0];
    assert_eq!(request.header("x-lethe-batch-size"), Some("3"));
    let signature = request.header("x-lethe-signature").unwrap();
    assert!(
        signature.starts_with("sha256=") && signature.len() == 7 + 64,
        "{signature}"
    );

    // Nothing to send: no request.
    sink.publish(&[]).await.unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn webhook_splits_big_batches_and_keeps_their_order() {
    set_env("LETHE_TEST_WEBHOOK_SECRET_ORDER", "order-secret");
    let (server, received) = webhook_receiver("order-secret", 200, "ok".into());
    let mut sink = WebhookSink::new(
        &format!("{}{WEBHOOK_PATH}", server.url),
        "LETHE_TEST_WEBHOOK_SECRET_ORDER",
        Duration::from_secs(5),
    );
    let batch = events(1201);
    sink.publish(&batch).await.unwrap();

    server.assert_no_violations();
    let received = received.lock().unwrap();
    assert_eq!(received.batch_sizes, vec![500, 500, 201]);
    let expected: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    assert_eq!(received.ids, expected);
}

#[tokio::test]
async fn webhook_non_2xx_is_rejected_with_status_and_body_start() {
    set_env("LETHE_TEST_WEBHOOK_SECRET_REJECT", "reject-secret");
    let long_body = format!("{}{}", "e".repeat(300), "TAIL");
    let (server, _) = webhook_receiver("reject-secret", 503, long_body);
    let mut sink = WebhookSink::new(
        &format!("{}{WEBHOOK_PATH}?token=hush", server.url),
        "LETHE_TEST_WEBHOOK_SECRET_REJECT",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(2)).await.unwrap_err();
    let SinkError::Rejected(message) = &error else {
        panic!("expected Rejected, got {error:?}")
    };
    assert!(message.contains("503"), "{message}");
    assert!(
        message.contains(&"e".repeat(300)) && !message.contains("TAIL"),
        "first 300 chars only: {message}"
    );
    assert!(
        !message.contains("hush"),
        "the query (maybe a token) is not shown: {message}"
    );

    // A 3xx is not followed: also a rejection.
    let redirect = Server::start(|_| Ok(Reply::text(307, "elsewhere")));
    let mut sink = WebhookSink::new(
        &redirect.url,
        "LETHE_TEST_WEBHOOK_SECRET_REJECT",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("307")),
        "{error:?}"
    );
}

#[tokio::test]
async fn webhook_signed_with_another_secret_is_refused_by_the_receiver() {
    set_env(
        "LETHE_TEST_WEBHOOK_SECRET_WRONG",
        "not-the-receivers-secret",
    );
    let (server, received) = webhook_receiver("receivers-secret", 200, String::new());
    let mut sink = WebhookSink::new(
        &format!("{}{WEBHOOK_PATH}", server.url),
        "LETHE_TEST_WEBHOOK_SECRET_WRONG",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("401")),
        "{error:?}"
    );
    assert!(received.lock().unwrap().ids.is_empty());
    server.assert_no_violations();
}

#[tokio::test]
async fn webhook_without_its_secret_is_a_config_error() {
    let (server, _) = webhook_receiver("whatever", 200, String::new());
    let url = format!("{}{WEBHOOK_PATH}", server.url);

    let mut sink = WebhookSink::new(
        &url,
        "LETHE_TEST_WEBHOOK_SECRET_NEVER_SET",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Config(m) if m.contains("LETHE_TEST_WEBHOOK_SECRET_NEVER_SET")),
        "{error:?}"
    );

    set_env("LETHE_TEST_WEBHOOK_SECRET_EMPTY", "");
    let mut sink = WebhookSink::new(
        &url,
        "LETHE_TEST_WEBHOOK_SECRET_EMPTY",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Config(m) if m.contains("LETHE_TEST_WEBHOOK_SECRET_EMPTY")),
        "{error:?}"
    );

    let mut sink = WebhookSink::new(
        "ftp://example.com/hook",
        "LETHE_TEST_WEBHOOK_SECRET_EMPTY",
        Duration::from_secs(5),
    );
    assert!(matches!(
        sink.publish(&events(1)).await,
        Err(SinkError::Config(_))
    ));

    assert!(server.requests().is_empty(), "nothing is sent unsigned");
}

#[tokio::test]
async fn webhook_receiver_down_or_silent_is_unavailable() {
    set_env("LETHE_TEST_WEBHOOK_SECRET_DOWN", "down-secret");
    let mut sink = WebhookSink::new(
        &format!("{}{WEBHOOK_PATH}", closed_port_url()),
        "LETHE_TEST_WEBHOOK_SECRET_DOWN",
        Duration::from_secs(5),
    );
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(matches!(&error, SinkError::Unavailable(_)), "{error:?}");

    // Accepts the connection, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let _held: Vec<TcpStream> = listener.incoming().take(4).filter_map(Result::ok).collect();
        std::thread::sleep(Duration::from_secs(30));
    });
    let mut sink = WebhookSink::new(
        &url,
        "LETHE_TEST_WEBHOOK_SECRET_DOWN",
        Duration::from_millis(300),
    );
    let started = std::time::Instant::now();
    let error = sink.publish(&events(1)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Unavailable(m) if m.contains("timed out")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// Elasticsearch / OpenSearch: an in-memory index store behind _bulk and _mget.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Elastic {
    /// index → id → document.
    indexes: HashMap<String, BTreeMap<String, Value>>,
    /// Parsed bulk actions, in order: (action, index, id, document).
    actions: Vec<(String, String, String, Option<Value>)>,
}

fn index_not_found(index: &str) -> Value {
    json!({
        "root_cause": [{ "type": "index_not_found_exception", "reason": format!("no such index [{index}]"), "index": index }],
        "type": "index_not_found_exception",
        "reason": format!("no such index [{index}]"),
        "index": index,
    })
}

/// Answers like Elasticsearch 8 / OpenSearch 2. Needs `ApiKey <key>` when
/// `api_key` is set. Index names starting with `phantom` answer `_mget` with
/// per-document errors instead of a 404 (both shapes exist in the wild).
fn elastic_server(api_key: Option<&str>) -> (Server, Arc<Mutex<Elastic>>) {
    let store = Arc::new(Mutex::new(Elastic::default()));
    let state = store.clone();
    let api_key = api_key.map(str::to_owned);
    let server = Server::start(move |req| {
        let authorized = api_key.as_ref().is_none_or(|key| {
            req.header("authorization") == Some(format!("ApiKey {key}").as_str())
        });
        if !authorized {
            return Ok(Reply::json(
                401,
                json!({
                    "error": { "type": "security_exception", "reason": "unable to authenticate with provided credentials" },
                    "status": 401,
                }),
            ));
        }
        let mut state = state.lock().unwrap();
        if req.path == "/_bulk" {
            req.expect("POST", Some("application/x-ndjson"))?;
            if req.query.is_some() {
                return Err(format!("unexpected bulk query {:?}", req.query));
            }
            bulk(&mut state, req.body_text()?).map(|answer| Reply::json(200, answer))
        } else if let Some(index) = req
            .path
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix("/_mget"))
        {
            req.expect("POST", Some("application/json"))?;
            if req.query.as_deref() != Some("_source=false") {
                return Err(format!(
                    "mget query {:?}, expected _source=false",
                    req.query
                ));
            }
            let body = req.json()?;
            let ids: Vec<String> = match body.as_object().map(|o| (o.len(), o.get("ids"))) {
                Some((1, Some(Value::Array(ids)))) => ids
                    .iter()
                    .map(|id| {
                        id.as_str()
                            .map(str::to_owned)
                            .ok_or(format!("id is not a string: {id}"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(format!("mget body must be {{\"ids\":[...]}}, got {body}")),
            };
            let Some(docs) = state.indexes.get(index) else {
                if index.starts_with("phantom") {
                    let docs: Vec<Value> =
                        ids.iter().map(|id| json!({ "_index": index, "_id": id, "error": index_not_found(index) })).collect();
                    return Ok(Reply::json(200, json!({ "docs": docs })));
                }
                return Ok(Reply::json(
                    404,
                    json!({ "error": index_not_found(index), "status": 404 }),
                ));
            };
            let docs: Vec<Value> = ids
                .iter()
                .map(|id| match docs.contains_key(id) {
                    true => json!({ "_index": index, "_id": id, "_version": 1, "_seq_no": 0, "_primary_term": 1, "found": true }),
                    false => json!({ "_index": index, "_id": id, "found": false }),
                })
                .collect();
            Ok(Reply::json(200, json!({ "docs": docs })))
        } else {
            Err(format!("unexpected {} {}", req.method, req.path))
        }
    });
    (server, store)
}

/// Parses an NDJSON bulk body line by line and applies it like
/// Elasticsearch: `index` creates the index if needed and stores the
/// document (one with `"reject": true` fails mapping); `delete` answers 404
/// `not_found` for a missing document and 404 `index_not_found_exception` for
/// a missing index.
fn bulk(state: &mut Elastic, body: &str) -> Result<Value, String> {
    let Some(body) = body.strip_suffix('\n') else {
        return Err("bulk body must end with a newline".into());
    };
    let mut lines = body.split('\n');
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(line) = lines.next() {
        let action: Value = serde_json::from_str(line)
            .map_err(|e| format!("action line `{line}` is not JSON: {e}"))?;
        let Some((name, meta)) = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(format!("action line must have one key: {line}"));
        };
        let meta = meta
            .as_object()
            .filter(|m| m.len() == 2)
            .ok_or(format!("metadata must be _index and _id: {line}"))?;
        let (Some(Value::String(index)), Some(Value::String(id))) =
            (meta.get("_index"), meta.get("_id"))
        else {
            return Err(format!("metadata must be _index and _id strings: {line}"));
        };
        let item = match name.as_str() {
            "delete" => {
                state
                    .actions
                    .push(("delete".into(), index.clone(), id.clone(), None));
                match state.indexes.get_mut(index) {
                    None => {
                        errors = true;
                        json!({ "delete": { "_index": index, "_id": id, "status": 404, "error": index_not_found(index) } })
                    }
                    Some(docs) => match docs.remove(id) {
                        Some(_) => {
                            json!({ "delete": { "_index": index, "_id": id, "_version": 2, "result": "deleted", "status": 200 } })
                        }
                        None => {
                            json!({ "delete": { "_index": index, "_id": id, "_version": 1, "result": "not_found", "status": 404 } })
                        }
                    },
                }
            }
            "index" => {
                let source = lines
                    .next()
                    .ok_or(format!("index action without a document: {line}"))?;
                let doc: Value = serde_json::from_str(source)
                    .map_err(|e| format!("document line `{source}` is not JSON: {e}"))?;
                if !doc.is_object()
                    || doc
                        .as_object()
                        .unwrap()
                        .keys()
                        .any(|k| ["delete", "index", "create", "update"].contains(&k.as_str()))
                {
                    return Err(format!("document line looks wrong: {source}"));
                }
                state
                    .actions
                    .push(("index".into(), index.clone(), id.clone(), Some(doc.clone())));
                if doc.get("reject") == Some(&Value::Bool(true)) {
                    errors = true;
                    json!({ "index": { "_index": index, "_id": id, "status": 400, "error": {
                        "type": "mapper_parsing_exception",
                        "reason": "failed to parse field [reject] of type [long] in document with id '".to_owned() + id + "'",
                    } } })
                } else {
                    state
                        .indexes
                        .entry(index.clone())
                        .or_default()
                        .insert(id.clone(), doc);
                    json!({ "index": { "_index": index, "_id": id, "_version": 1, "result": "created", "status": 201 } })
                }
            }
            other => return Err(format!("unexpected bulk action {other}")),
        };
        items.push(item);
    }
    Ok(json!({ "took": 3, "errors": errors, "items": items }))
}

fn doc(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn elasticsearch_bulk_sends_ndjson_in_order_and_treats_404_deletes_as_done() {
    set_env("LETHE_TEST_ES_KEY_BULK", "a2V5LWlkOmtleQ==");
    let (server, store) = elastic_server(Some("a2V5LWlkOmtleQ=="));
    store.lock().unwrap().indexes.insert(
        "users".into(),
        BTreeMap::from([
            ("u1".into(), json!({ "name": "Ann" })),
            ("u2".into(), json!({ "name": "Bob" })),
        ]),
    );
    let mut sink = ElasticsearchSink::new(
        &format!("{}/", server.url),
        Some("LETHE_TEST_ES_KEY_BULK"),
        false,
    );
    let ops = vec![
        SearchOp::Delete { id: "u1".into() },
        SearchOp::Upsert {
            id: "u3".into(),
            doc: doc(json!({ "name": "Cy", "bio": "two\nlines" })),
        },
        SearchOp::Delete { id: "gone".into() },
        SearchOp::Upsert {
            id: "u1".into(),
            doc: doc(json!({ "name": "Ann again" })),
        },
    ];
    sink.apply("users", &ops).await.unwrap();

    // A delete in an index that does not exist: `errors: true`, but the only
    // failed item is a 404 delete, so the batch succeeded.
    sink.apply("ghost", &[SearchOp::Delete { id: "x".into() }])
        .await
        .unwrap();
    sink.apply("users", &[]).await.unwrap();

    server.assert_no_violations();
    let state = store.lock().unwrap();
    let actions: Vec<(&str, &str, &str)> = state
        .actions
        .iter()
        .map(|(a, i, id, _)| (a.as_str(), i.as_str(), id.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("delete", "users", "u1"),
            ("index", "users", "u3"),
            ("delete", "users", "gone"),
            ("index", "users", "u1"),
            ("delete", "ghost", "x"),
        ]
    );
    assert_eq!(state.indexes["users"]["u1"], json!({ "name": "Ann again" }));
    assert_eq!(
        state.indexes["users"]["u3"],
        json!({ "name": "Cy", "bio": "two\nlines" })
    );
    assert!(state.indexes["users"].contains_key("u2"));
    assert_eq!(
        server.requests().len(),
        2,
        "one request per non-empty batch"
    );
}

#[tokio::test]
async fn elasticsearch_bulk_item_error_fails_the_batch() {
    let (server, _store) = elastic_server(None);
    let mut sink = ElasticsearchSink::new(&server.url, None, true);
    let ops = vec![
        SearchOp::Upsert {
            id: "ok".into(),
            doc: doc(json!({ "n": 1 })),
        },
        SearchOp::Upsert {
            id: "bad".into(),
            doc: doc(json!({ "reject": true })),
        },
        SearchOp::Delete {
            id: "missing".into(),
        },
    ];
    let error = sink.apply("things", &ops).await.unwrap_err();
    let SinkError::Rejected(message) = &error else {
        panic!("expected Rejected, got {error:?}")
    };
    assert!(message.contains("OpenSearch"), "{message}");
    assert!(
        message.contains("`bad`") && message.contains("mapper_parsing_exception"),
        "{message}"
    );
    assert!(
        message.contains("1 of 3"),
        "only the mapping error counts: {message}"
    );
    server.assert_no_violations();
}

#[tokio::test]
async fn elasticsearch_contains_reads_found_from_mget() {
    set_env("LETHE_TEST_ES_KEY_MGET", "bWdldDprZXk=");
    let (server, store) = elastic_server(Some("bWdldDprZXk="));
    store.lock().unwrap().indexes.insert(
        "users".into(),
        BTreeMap::from([("u1".into(), json!({})), ("user 2/é".into(), json!({}))]),
    );
    let mut sink = ElasticsearchSink::new(&server.url, Some("LETHE_TEST_ES_KEY_MGET"), false);
    let ids: Vec<String> = ["u1", "nope", "user 2/é", "u1"].map(String::from).to_vec();
    assert_eq!(
        sink.contains("users", &ids).await.unwrap(),
        vec![true, false, true, true]
    );
    assert_eq!(
        sink.contains("users", &[]).await.unwrap(),
        Vec::<bool>::new()
    );

    // A missing index: none found, whichever way the server says it.
    assert_eq!(sink.contains("ghost", &ids).await.unwrap(), vec![false; 4]);
    assert_eq!(
        sink.contains("phantom", &ids).await.unwrap(),
        vec![false; 4]
    );
    server.assert_no_violations();
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn elasticsearch_auth_and_transport_errors() {
    let (server, _store) = elastic_server(Some("right-key"));
    let ops = [SearchOp::Delete { id: "1".into() }];

    let mut sink = ElasticsearchSink::new(&server.url, Some("LETHE_TEST_ES_KEY_UNSET"), false);
    let error = sink.apply("users", &ops).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Config(m) if m.contains("LETHE_TEST_ES_KEY_UNSET")),
        "{error:?}"
    );
    assert!(server.requests().is_empty());

    set_env("LETHE_TEST_ES_KEY_WRONG", "wrong-key");
    let mut sink = ElasticsearchSink::new(&server.url, Some("LETHE_TEST_ES_KEY_WRONG"), false);
    let error = sink.apply("users", &ops).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("401") && !m.contains("wrong-key")),
        "{error:?}"
    );
    let error = sink.contains("users", &["1".into()]).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("401")),
        "{error:?}"
    );

    let mut sink = ElasticsearchSink::new(&closed_port_url(), None, false);
    assert!(matches!(
        sink.apply("users", &ops).await,
        Err(SinkError::Unavailable(_))
    ));
    assert!(matches!(
        sink.contains("users", &["1".into()]).await,
        Err(SinkError::Unavailable(_))
    ));

    let mut sink = ElasticsearchSink::new("not a url", None, false);
    assert!(matches!(
        sink.apply("users", &ops).await,
        Err(SinkError::Config(_))
    ));
    server.assert_no_violations();
}

// ---------------------------------------------------------------------------
// Meilisearch: documents, asynchronous tasks, fetch by ids.
// ---------------------------------------------------------------------------

struct Task {
    index: String,
    kind: &'static str,
    /// Deletion: ids; addition: documents.
    payload: Vec<Value>,
    polls: u32,
    /// Set once processed: Ok(()) or Err(error object).
    outcome: Option<Result<(), Value>>,
}

struct Meili {
    /// index → id → document.
    indexes: HashMap<String, BTreeMap<String, Value>>,
    tasks: Vec<Task>,
    /// Before 1.14 the fetch route refuses `ids`.
    before_1_14: bool,
}

fn meili_error(message: &str, code: &str) -> Value {
    json!({
        "message": message,
        "code": code,
        "type": "invalid_request",
        "link": format!("https://docs.meilisearch.com/errors#{code}"),
    })
}

fn valid_meili_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 511
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Meili {
    /// Processes tasks in order up to `uid`, like Meilisearch's queue.
    fn process_up_to(&mut self, uid: usize) {
        for task_uid in 0..=uid {
            if self.tasks[task_uid].outcome.is_some() {
                continue;
            }
            let task = &self.tasks[task_uid];
            let index = task.index.clone();
            let outcome = match task.kind {
                "documentDeletion" => match self.indexes.get_mut(&index) {
                    None => Err(meili_error(
                        &format!("Index `{index}` not found."),
                        "index_not_found",
                    )),
                    Some(docs) => {
                        for id in &task.payload {
                            docs.remove(id.as_str().unwrap());
                        }
                        Ok(())
                    }
                },
                _ => {
                    let bad_geo = task
                        .payload
                        .iter()
                        .find(|d| d.get("_geo").is_some_and(|g| !g.is_object()));
                    let bad_id = task
                        .payload
                        .iter()
                        .find(|d| !d["id"].as_str().is_some_and(valid_meili_id));
                    if let Some(doc) = bad_geo {
                        Err(meili_error(
                            &format!(
                                "The `_geo` field in the document with the id: `{}` is not an object.",
                                doc["id"]
                            ),
                            "invalid_document_geo_field",
                        ))
                    } else if let Some(doc) = bad_id {
                        Err(meili_error(
                            &format!("Document identifier `{}` is invalid.", doc["id"]),
                            "invalid_document_id",
                        ))
                    } else {
                        let docs = self.indexes.entry(index).or_default();
                        for doc in &task.payload {
                            docs.insert(doc["id"].as_str().unwrap().to_owned(), doc.clone());
                        }
                        Ok(())
                    }
                }
            };
            self.tasks[task_uid].outcome = Some(outcome);
        }
    }

    fn task_view(&self, uid: usize) -> Value {
        let task = &self.tasks[uid];
        let (status, error) = match (&task.outcome, task.polls) {
            (None, 1) => ("enqueued", Value::Null),
            (None, _) => ("processing", Value::Null),
            (Some(Ok(())), _) => ("succeeded", Value::Null),
            (Some(Err(error)), _) => ("failed", error.clone()),
        };
        json!({
            "uid": uid,
            "batchUid": null,
            "indexUid": task.index,
            "status": status,
            "type": task.kind,
            "canceledBy": null,
            "details": { "providedIds": task.payload.len() },
            "error": error,
            "duration": null,
            "enqueuedAt": "2026-01-01T00:00:00Z",
            "startedAt": null,
            "finishedAt": null,
        })
    }
}

/// Answers like Meilisearch 1.x: writes are tasks that show `enqueued`, then
/// `processing`, and are processed on the third look; tasks on index `stuck`
/// never finish. Needs `Bearer <key>` when `api_key` is set.
fn meili_server(api_key: Option<&str>, before_1_14: bool) -> (Server, Arc<Mutex<Meili>>) {
    let store = Arc::new(Mutex::new(Meili {
        indexes: HashMap::new(),
        tasks: Vec::new(),
        before_1_14,
    }));
    let state = store.clone();
    let api_key = api_key.map(str::to_owned);
    let server = Server::start(move |req| {
        if let Some(key) = &api_key {
            match req.header("authorization") {
                None => {
                    return Ok(Reply::json(
                        401,
                        meili_error(
                            "The Authorization header is missing.",
                            "missing_authorization_header",
                        ),
                    ));
                }
                Some(value) if value != format!("Bearer {key}") => {
                    return Ok(Reply::json(
                        403,
                        meili_error("The provided API key is invalid.", "invalid_api_key"),
                    ));
                }
                _ => {}
            }
        }
        let mut state = state.lock().unwrap();
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["indexes", index, "documents", "delete-batch"] => {
                req.expect("POST", Some("application/json"))?;
                let ids = match req.json()? {
                    Value::Array(ids) if ids.iter().all(Value::is_string) && !ids.is_empty() => ids,
                    other => {
                        return Err(format!(
                            "delete-batch body must be an array of ids, got {other}"
                        ));
                    }
                };
                if let Some(bad) = ids.iter().find(|id| !valid_meili_id(id.as_str().unwrap())) {
                    return Err(format!("id {bad} is not a valid Meilisearch id"));
                }
                Ok(enqueue(&mut state, index, "documentDeletion", ids))
            }
            ["indexes", index, "documents"] if req.method == "POST" => {
                req.expect("POST", Some("application/json"))?;
                if req.query.as_deref() != Some("primaryKey=id") {
                    return Err(format!(
                        "document addition query {:?}, expected primaryKey=id",
                        req.query
                    ));
                }
                let docs = match req.json()? {
                    Value::Array(docs)
                        if docs
                            .iter()
                            .all(|d| d.get("id").is_some_and(Value::is_string))
                            && !docs.is_empty() =>
                    {
                        docs
                    }
                    other => {
                        return Err(format!(
                            "documents must be objects with a string id, got {other}"
                        ));
                    }
                };
                if let Some(bad) = docs
                    .iter()
                    .find(|d| !valid_meili_id(d["id"].as_str().unwrap()))
                {
                    return Err(format!(
                        "document id {} is not a valid Meilisearch id",
                        bad["id"]
                    ));
                }
                Ok(enqueue(&mut state, index, "documentAdditionOrUpdate", docs))
            }
            ["tasks", uid] => {
                req.expect("GET", None)?;
                let uid: usize = uid.parse().map_err(|_| format!("bad task uid {uid}"))?;
                if uid >= state.tasks.len() {
                    return Ok(Reply::json(
                        404,
                        meili_error(&format!("Task `{uid}` not found."), "task_not_found"),
                    ));
                }
                state.tasks[uid].polls += 1;
                if state.tasks[uid].polls >= 3 && state.tasks[uid].index != "stuck" {
                    state.process_up_to(uid);
                }
                Ok(Reply::json(200, state.task_view(uid)))
            }
            ["indexes", index, "documents", "fetch"] => {
                req.expect("POST", Some("application/json"))?;
                let body = req.json()?;
                let object = body.as_object().ok_or("fetch body must be an object")?;
                if state.before_1_14 && object.contains_key("ids") {
                    return Ok(Reply::json(
                        400,
                        meili_error(
                            "Unknown field `ids`: expected one of `offset`, `limit`, `fields`, `retrieveVectors`, `filter`",
                            "bad_request",
                        ),
                    ));
                }
                let ids: Vec<&str> = object
                    .get("ids")
                    .and_then(Value::as_array)
                    .ok_or("fetch without ids")?
                    .iter()
                    .map(|id| id.as_str().ok_or("id is not a string"))
                    .collect::<Result<_, _>>()?;
                if let Some(bad) = ids.iter().find(|id| !valid_meili_id(id)) {
                    return Ok(Reply::json(
                        400,
                        meili_error(
                            &format!("In `.ids[..]`: `{bad}` is not a valid document identifier"),
                            "invalid_document_ids",
                        ),
                    ));
                }
                if object.get("fields") != Some(&json!(["id"]))
                    || object.get("limit") != Some(&json!(ids.len()))
                    || object.len() != 3
                {
                    return Err(format!(
                        "fetch body should be ids + fields [\"id\"] + limit n, got {body}"
                    ));
                }
                let Some(docs) = state.indexes.get(*index) else {
                    return Ok(Reply::json(
                        404,
                        meili_error(&format!("Index `{index}` not found."), "index_not_found"),
                    ));
                };
                // The engine's own order, not the order asked for.
                let mut results: Vec<Value> = ids
                    .iter()
                    .filter(|id| docs.contains_key(**id))
                    .map(|id| json!({ "id": id }))
                    .collect();
                results.sort_by_key(|d| d["id"].as_str().unwrap().to_owned());
                results.dedup();
                let total = results.len();
                Ok(Reply::json(
                    200,
                    json!({ "results": results, "offset": 0, "limit": ids.len(), "total": total }),
                ))
            }
            ["indexes", index, "documents", id] => {
                req.expect("GET", None)?;
                if req.query.as_deref() != Some("fields=id") {
                    return Err(format!(
                        "document lookup query {:?}, expected fields=id",
                        req.query
                    ));
                }
                let Some(docs) = state.indexes.get(*index) else {
                    return Ok(Reply::json(
                        404,
                        meili_error(&format!("Index `{index}` not found."), "index_not_found"),
                    ));
                };
                match docs.contains_key(*id) {
                    true => Ok(Reply::json(200, json!({ "id": id }))),
                    false => Ok(Reply::json(
                        404,
                        meili_error(&format!("Document `{id}` not found."), "document_not_found"),
                    )),
                }
            }
            _ => Err(format!("unexpected {} {}", req.method, req.path)),
        }
    });
    (server, store)
}

fn enqueue(state: &mut Meili, index: &str, kind: &'static str, payload: Vec<Value>) -> Reply {
    let uid = state.tasks.len();
    state.tasks.push(Task {
        index: index.to_owned(),
        kind,
        payload,
        polls: 0,
        outcome: None,
    });
    Reply::json(
        202,
        json!({
            "taskUid": uid,
            "indexUid": index,
            "status": "enqueued",
            "type": kind,
            "enqueuedAt": "2026-01-01T00:00:00Z",
        }),
    )
}

#[tokio::test]
async fn meilisearch_apply_groups_consecutive_runs_in_order_and_waits_for_tasks() {
    set_env("LETHE_TEST_MEILI_KEY_APPLY", "meili-apply-key");
    let (server, store) = meili_server(Some("meili-apply-key"), false);
    store.lock().unwrap().indexes.insert(
        "people".into(),
        BTreeMap::from([
            ("a".into(), json!({ "id": "a" })),
            ("b".into(), json!({ "id": "b" })),
        ]),
    );
    let mut sink = MeilisearchSink::new(&server.url, Some("LETHE_TEST_MEILI_KEY_APPLY"));
    let ops = vec![
        SearchOp::Delete { id: "a".into() },
        SearchOp::Delete { id: "b".into() },
        SearchOp::Upsert {
            id: "c".into(),
            doc: doc(json!({ "name": "Cy", "id": "ignored" })),
        },
        SearchOp::Upsert {
            id: "user 7".into(),
            doc: doc(json!({ "name": "Seven" })),
        },
        SearchOp::Delete { id: "c".into() },
    ];
    sink.apply("people", &ops).await.unwrap();
    sink.apply("people", &[]).await.unwrap();

    server.assert_no_violations();
    let writes: Vec<(String, Value)> = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| (r.path.clone(), r.json().unwrap()))
        .collect();
    assert_eq!(
        writes,
        vec![
            (
                "/indexes/people/documents/delete-batch".to_owned(),
                json!(["a", "b"])
            ),
            (
                "/indexes/people/documents".to_owned(),
                json!([{ "id": "c", "name": "Cy" }, { "id": "x757365722037", "name": "Seven" }])
            ),
            (
                "/indexes/people/documents/delete-batch".to_owned(),
                json!(["c"])
            ),
        ]
    );
    let state = store.lock().unwrap();
    assert_eq!(state.tasks.len(), 3);
    for task in &state.tasks {
        assert!(
            task.polls >= 3,
            "each task is polled until it succeeded (enqueued, processing, succeeded)"
        );
        assert_eq!(task.outcome, Some(Ok(())));
    }
    let left: Vec<&String> = state.indexes["people"].keys().collect();
    assert_eq!(left, vec!["x757365722037"]);
    // Each run was sent only after the previous task finished.
    let order: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let first_poll_of_task_0 = order.iter().position(|r| r == "GET /tasks/0").unwrap();
    let second_write = order
        .iter()
        .position(|r| r == "POST /indexes/people/documents")
        .unwrap();
    let last_poll_of_task_0 = order.iter().rposition(|r| r == "GET /tasks/0").unwrap();
    assert!(
        first_poll_of_task_0 < last_poll_of_task_0 && last_poll_of_task_0 < second_write,
        "{order:#?}"
    );
}

#[tokio::test]
async fn meilisearch_failed_task_is_rejected_and_stops_the_batch() {
    let (server, store) = meili_server(None, false);
    let mut sink = MeilisearchSink::new(&server.url, None);
    let ops = vec![
        SearchOp::Upsert {
            id: "p1".into(),
            doc: doc(json!({ "_geo": "nowhere" })),
        },
        SearchOp::Delete { id: "p1".into() },
    ];
    let error = sink.apply("places", &ops).await.unwrap_err();
    let SinkError::Rejected(message) = &error else {
        panic!("expected Rejected, got {error:?}")
    };
    assert!(
        message.contains("failed") && message.contains("invalid_document_geo_field"),
        "{message}"
    );
    assert!(
        message.contains("is not an object"),
        "the task's error message: {message}"
    );
    assert_eq!(
        store.lock().unwrap().tasks.len(),
        1,
        "nothing is sent after a failed run"
    );
    server.assert_no_violations();
}

#[tokio::test]
async fn meilisearch_delete_in_missing_index_is_done() {
    let (server, store) = meili_server(None, false);
    let mut sink = MeilisearchSink::new(&server.url, None);
    sink.apply("ghost", &[SearchOp::Delete { id: "1".into() }])
        .await
        .unwrap();
    let state = store.lock().unwrap();
    assert!(matches!(&state.tasks[0].outcome, Some(Err(e)) if e["code"] == "index_not_found"));
    server.assert_no_violations();
}

#[tokio::test]
async fn meilisearch_task_that_never_finishes_is_unavailable() {
    let (server, _store) = meili_server(None, false);
    let mut sink =
        MeilisearchSink::new(&server.url, None).with_task_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let error = sink
        .apply("stuck", &[SearchOp::Delete { id: "1".into() }])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SinkError::Unavailable(m) if m.contains("processing")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    server.assert_no_violations();
}

#[tokio::test]
async fn meilisearch_contains_fetches_by_mapped_ids() {
    set_env("LETHE_TEST_MEILI_KEY_FETCH", "meili-fetch-key");
    let (server, store) = meili_server(Some("meili-fetch-key"), false);
    let mut sink = MeilisearchSink::new(&server.url, Some("LETHE_TEST_MEILI_KEY_FETCH"));
    let ops = vec![
        SearchOp::Upsert {
            id: "b".into(),
            doc: doc(json!({})),
        },
        SearchOp::Upsert {
            id: "user 7".into(),
            doc: doc(json!({})),
        },
        SearchOp::Upsert {
            id: "x1".into(),
            doc: doc(json!({})),
        },
    ];
    sink.apply("people", &ops).await.unwrap();
    let ids: Vec<String> = ["user 7", "zzz", "b", "x1", "x7831"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        sink.contains("people", &ids).await.unwrap(),
        vec![true, false, true, true, false]
    );
    let fetch = server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/documents/fetch"))
        .unwrap();
    assert_eq!(
        fetch.json().unwrap(),
        json!({ "ids": ["x757365722037", "zzz", "b", "x7831", "x7837383331"], "fields": ["id"], "limit": 5 })
    );

    assert_eq!(sink.contains("nobody", &ids).await.unwrap(), vec![false; 5]);
    assert_eq!(
        sink.contains("people", &[]).await.unwrap(),
        Vec::<bool>::new()
    );
    assert!(store.lock().unwrap().indexes.contains_key("people"));
    server.assert_no_violations();
}

#[tokio::test]
async fn meilisearch_contains_falls_back_to_single_gets_before_1_14() {
    let (server, store) = meili_server(None, true);
    store.lock().unwrap().indexes.insert(
        "people".into(),
        BTreeMap::from([("x757365722037".into(), json!({}))]),
    );
    let mut sink = MeilisearchSink::new(&server.url, None);
    let ids: Vec<String> = ["user 7", "zzz"].map(String::from).to_vec();
    assert_eq!(
        sink.contains("people", &ids).await.unwrap(),
        vec![true, false]
    );
    assert_eq!(
        sink.contains("people", &ids).await.unwrap(),
        vec![true, false]
    );
    assert_eq!(
        sink.contains("ghost", &ids).await.unwrap(),
        vec![false, false]
    );
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        vec![
            "POST /indexes/people/documents/fetch",
            "GET /indexes/people/documents/x757365722037",
            "GET /indexes/people/documents/zzz",
            "GET /indexes/people/documents/x757365722037",
            "GET /indexes/people/documents/zzz",
            "GET /indexes/ghost/documents/x757365722037",
        ],
        "the fetch route is tried once, then single gets"
    );
    server.assert_no_violations();
}

#[tokio::test]
async fn meilisearch_auth_and_transport_errors() {
    let (server, _store) = meili_server(Some("right-key"), false);
    let ops = [SearchOp::Delete { id: "1".into() }];

    let mut sink = MeilisearchSink::new(&server.url, Some("LETHE_TEST_MEILI_KEY_UNSET"));
    let error = sink.apply("people", &ops).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Config(m) if m.contains("LETHE_TEST_MEILI_KEY_UNSET")),
        "{error:?}"
    );

    set_env("LETHE_TEST_MEILI_KEY_WRONG", "wrong-key");
    let mut sink = MeilisearchSink::new(&server.url, Some("LETHE_TEST_MEILI_KEY_WRONG"));
    let error = sink.apply("people", &ops).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("403") && m.contains("invalid_api_key")),
        "{error:?}"
    );
    let error = sink.contains("people", &["1".into()]).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("403")),
        "{error:?}"
    );

    let mut sink = MeilisearchSink::new(&server.url, None);
    let error = sink.apply("people", &ops).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("401")),
        "{error:?}"
    );

    let mut sink = MeilisearchSink::new(&closed_port_url(), None);
    assert!(matches!(
        sink.apply("people", &ops).await,
        Err(SinkError::Unavailable(_))
    ));
    assert!(matches!(
        sink.contains("people", &["1".into()]).await,
        Err(SinkError::Unavailable(_))
    ));
    server.assert_no_violations();
}
