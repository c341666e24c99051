//! Webhook sink: POSTs CloudEvents to an HTTP endpoint, signed with
//! HMAC-SHA256 so the receiver can check that a delivery comes from Lethe and
//! was not altered or replayed.
//!
//! # Wire format
//!
//! Each request is a CloudEvents *batch* (`Content-Type:
//! application/cloudevents-batch+json`): a JSON array of the events in the
//! order the relay handed them over. A batch of more than 500 events is split
//! into several requests of at most 500, sent one after the other in order.
//! Headers:
//!
//! * `X-Lethe-Timestamp`: Unix time in seconds when the request was signed;
//! * `X-Lethe-Signature`: `sha256=` + lowercase hex of
//!   `HMAC-SHA256(secret, "<timestamp>.<body>")`, computed over the exact
//!   bytes of the body;
//! * `X-Lethe-Batch-Size`: the number of events in this request.
//!
//! Any 2xx answer means delivered. Any other status is a rejection (redirects
//! are not followed: a signed body is never re-sent to another address), and
//! no answer (refused connection, timeout) means unavailable. Either way the
//! relay retries the whole batch later, so if the second request of a split
//! batch fails, the events of the first one arrive twice: receivers deduplicate
//! on the CloudEvents `id`, which is stable across redeliveries.
//!
//! The secret is read from the environment variable named in the sink's
//! settings at every delivery (so it can be rotated without a restart) and is
//! never written to logs or errors; only the variable's name is.
//!
//! # Verifying a delivery (receiver side)
//!
//! Compute the HMAC over the raw body bytes *before* parsing the JSON, compare
//! in constant time, and refuse old timestamps so a captured request cannot be
//! replayed later:
//!
//! ```
//! use hmac::{Hmac, Mac};
//! use sha2::Sha256;
//!
//! /// `timestamp` and `signature` are the `X-Lethe-Timestamp` and
//! /// `X-Lethe-Signature` headers, `body` the raw request body, `now` the
//! /// receiver's clock in Unix seconds.
//! fn verify(secret: &[u8], timestamp: &str, signature: &str, body: &[u8], now: u64) -> bool {
//!     let Ok(sent_at) = timestamp.parse::<u64>() else { return false };
//!     if now.abs_diff(sent_at) > 300 {
//!         return false; // too old (or clocks too far apart): maybe a replay
//!     }
//!     let Some(Ok(expected)) = signature.strip_prefix("sha256=").map(hex::decode) else {
//!         return false;
//!     };
//!     let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
//!     mac.update(timestamp.as_bytes());
//!     mac.update(b".");
//!     mac.update(body);
//!     mac.verify_slice(&expected).is_ok() // constant-time comparison
//! }
//!
//! // What the sink sends for a one-event batch signed at t = 1700000000:
//! let body = br#"[{"specversion":"1.0","id":"e1"}]"#;
//! let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
//! mac.update(b"1700000000.");
//! mac.update(body);
//! let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
//!
//! assert!(verify(b"s3cret", "1700000000", &signature, body, 1700000010));
//! assert!(!verify(b"other", "1700000000", &signature, body, 1700000010));
//! assert!(!verify(b"s3cret", "1700000000", &signature, body, 1700009999));
//! ```
//!
//! The bottom of this file holds the small HTTP helpers shared by the HTTP
//! sinks (webhook, Elasticsearch/OpenSearch, Meilisearch).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use sha2::Sha256;

use crate::sink::{Event, SinkError, SinkResult};

/// The most events sent in one request; bigger batches are split.
const MAX_EVENTS_PER_REQUEST: usize = 500;
const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";
const TIMESTAMP_HEADER: &str = "X-Lethe-Timestamp";
const SIGNATURE_HEADER: &str = "X-Lethe-Signature";
const BATCH_SIZE_HEADER: &str = "X-Lethe-Batch-Size";

pub struct WebhookSink {
    /// The parsed endpoint, or why it cannot be used (reported at delivery).
    url: Result<Url, String>,
    /// Name of the environment variable holding the signing secret.
    secret_env: String,
    /// Limit on each whole request (connect, send, answer).
    timeout: Duration,
    /// Built on first use (connections are pooled and re-opened as needed).
    client: Option<reqwest::Client>,
}

impl WebhookSink {
    pub fn new(url: &str, secret_env: &str, timeout: std::time::Duration) -> Self {
        WebhookSink {
            url: parse_base_url("webhook", url),
            secret_env: secret_env.to_owned(),
            timeout,
            client: None,
        }
    }

    /// Delivers `events` in order, in requests of at most 500 events.
    pub async fn publish(&mut self, events: &[crate::sink::Event]) -> SinkResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let url = self.url.clone().map_err(SinkError::Config)?;
        let secret = read_env(&self.secret_env, "the webhook signing secret")?;
        let client = lazy_client(&mut self.client, self.timeout)?;
        for chunk in events.chunks(MAX_EVENTS_PER_REQUEST) {
            let body = batch_body(chunk);
            let timestamp = unix_now();
            let signature = sign(secret.as_bytes(), timestamp, body.as_bytes());
            let response = client
                .post(url.clone())
                .header(CONTENT_TYPE, BATCH_CONTENT_TYPE)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, format!("sha256={signature}"))
                .header(BATCH_SIZE_HEADER, chunk.len().to_string())
                .body(body)
                .send()
                .await
                .map_err(|e| send_error("webhook", &url, e))?;
            let status = response.status();
            if !status.is_success() {
                let snippet = body_snippet(response).await;
                return Err(SinkError::Rejected(format!(
                    "webhook {} answered {status}: {snippet}",
                    redact(&url)
                )));
            }
        }
        Ok(())
    }
}

/// The CloudEvents batch: a JSON array of the events' JSON, in order.
fn batch_body(events: &[Event]) -> String {
    let mut body =
        String::with_capacity(2 + events.iter().map(|e| e.json.len() + 1).sum::<usize>());
    body.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(event.json.trim());
    }
    body.push(']');
    body
}

/// Lowercase hex of `HMAC-SHA256(secret, "<timestamp>.<body>")`.
fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// HTTP helpers shared by the HTTP sinks (webhook, Elasticsearch, Meilisearch).
// ---------------------------------------------------------------------------

/// Request limit for the search sinks, whose constructors take no timeout.
pub(crate) const SEARCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The client of an HTTP sink, built on first use. Installs the ring crypto
/// provider first (reqwest is built with `rustls-no-provider`, and building a
/// client without a provider panics); installing twice is harmless.
pub(crate) fn lazy_client(
    slot: &mut Option<reqwest::Client>,
    timeout: Duration,
) -> SinkResult<reqwest::Client> {
    if let Some(client) = slot {
        return Ok(client.clone());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            SinkError::Config(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })?;
    *slot = Some(client.clone());
    Ok(client)
}

/// Parses a sink's base URL; only `http` and `https` are accepted.
pub(crate) fn parse_base_url(what: &str, url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("{what} URL is not valid: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(format!(
            "{what} URL must start with http:// or https://, not {other}:"
        )),
    }
}

/// `base` with `segments` appended to its path (each one percent-encoded).
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A URL fit for messages: without user, password or query (which may hold
/// tokens).
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The value of environment variable `name`; missing or empty is a settings
/// error that names the variable (never a value).
pub(crate) fn read_env(name: &str, what: &str) -> SinkResult<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(SinkError::Config(format!(
            "environment variable {name} ({what}) is empty"
        ))),
        Err(std::env::VarError::NotPresent) => Err(SinkError::Config(format!(
            "environment variable {name} ({what}) is not set"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(SinkError::Config(format!(
            "environment variable {name} ({what}) is not valid UTF-8"
        ))),
    }
}

/// An `Authorization` header value from a secret, marked sensitive so it is
/// never printed.
pub(crate) fn authorization(
    scheme: &str,
    secret: &str,
    env_name: &str,
) -> SinkResult<(reqwest::header::HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(&format!("{scheme} {secret}")).map_err(|_| {
        SinkError::Config(format!(
            "environment variable {env_name} holds characters not allowed in an HTTP header"
        ))
    })?;
    value.set_sensitive(true);
    Ok((AUTHORIZATION, value))
}

/// Maps a failed send: bad request settings are `Config`, anything on the way
/// (connect, TLS, timeout, broken connection) is `Unavailable`.
pub(crate) fn send_error(what: &str, url: &Url, error: reqwest::Error) -> SinkError {
    let error = error.without_url();
    let detail = error_chain(&error);
    if error.is_builder() {
        return SinkError::Config(format!(
            "{what} request to {} cannot be built: {detail}",
            redact(url)
        ));
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    SinkError::Unavailable(format!("{what} {}: {kind}: {detail}", redact(url)))
}

/// The first 300 characters of an error answer's body (reading at most a few
/// KiB of it).
pub(crate) async fn body_snippet(response: reqwest::Response) -> String {
    snippet(&read_prefix(response, 1200).await)
}

/// The start of an answer's body as text: at least `max_bytes` of it when it
/// is that long, not much more (a proxy's error page can be large).
pub(crate) async fn read_prefix(mut response: reqwest::Response, max_bytes: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < max_bytes {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The first 300 characters of `text`, trimmed, for an error message.
pub(crate) fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    text.chars().take(300).collect()
}

/// An error and its causes, joined with `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
