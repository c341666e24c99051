//! Meilisearch sink: applies search operations through the documents API and
//! waits for Meilisearch to finish them, and checks which documents an index
//! still holds (for reconciliation).
//!
//! Meilisearch is asynchronous: a write answers `202` with a `taskUid`, and
//! the change is done only when `GET /tasks/{taskUid}` says `succeeded`.
//! `apply` therefore waits for each task (polling with a growing pause, at
//! most 30 s per task by default, then `Unavailable`); a task that ends
//! `failed` or `canceled` is `Rejected` with the task's error.
//!
//! * `apply`: consecutive deletes go in one
//!   `POST /indexes/{index}/documents/delete-batch` (a JSON array of ids),
//!   consecutive upserts in one `POST /indexes/{index}/documents?primaryKey=id`
//!   (add or replace; each document gets `"id": <id>`, replacing any `id`
//!   field it had). Only *consecutive* runs are grouped and each run's task is
//!   awaited before the next run is sent, so the operations take effect in
//!   the order given, and nothing after a failed run is sent. A delete task
//!   that fails with `index_not_found` is a success: nothing to delete.
//! * `contains`: `POST /indexes/{index}/documents/fetch` with
//!   `{"ids":[…],"fields":["id"],"limit":n}` — the `ids` field of the fetch
//!   route (Meilisearch 1.14 and later) needs no filterable attribute, unlike
//!   `filter`. Servers before 1.14 refuse the unknown field (`400
//!   bad_request`); the sink then falls back, for good, to
//!   `GET /indexes/{index}/documents/{id}?fields=id` per id (slower, but only
//!   reconciliation uses it). A missing index (`index_not_found`) means none
//!   found.
//!
//! # Document ids
//!
//! Meilisearch document ids may only contain `a-z A-Z 0-9 - _` and be at most
//! 511 bytes, but Lethe's ids come from database keys. The sink maps every id
//! the same way in `apply` and `contains` ([`document_id`]):
//!
//! 1. an id of 1 to 511 bytes, all from `a-z A-Z 0-9 - _`, that does **not**
//!    start with a lowercase `x`, is used as it is;
//! 2. any other id of at most 255 bytes becomes `x` followed by the lowercase
//!    hex of its UTF-8 bytes (`user 7` → `x757365722037`, `x1` → `x7831`,
//!    the empty id → `x`);
//! 3. a longer one becomes `xh` followed by the lowercase hex SHA-256 of its
//!    UTF-8 bytes (65 characters).
//!
//! Unchanged ids never start with `x`, hex never contains `h`: the three forms
//! cannot collide, so distinct ids stay distinct (for form 3, barring a
//! SHA-256 collision). Whoever reads the index directly decodes form 2 with
//! the hex; form 3 is one-way.
//!
//! With `api_key_env` set, requests carry `Authorization: Bearer <value of
//! that variable>`, read at each request so a rotated key is picked up.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::webhook::{
    SEARCH_REQUEST_TIMEOUT, authorization, body_snippet, endpoint, lazy_client, parse_base_url,
    read_env, read_prefix, redact, send_error, snippet,
};
use crate::sink::{SearchOp, SinkError, SinkResult};

/// Default limit on waiting for one task.
const TASK_WAIT: Duration = Duration::from_secs(30);
const FIRST_POLL_PAUSE: Duration = Duration::from_millis(20);
const MAX_POLL_PAUSE: Duration = Duration::from_millis(500);
/// The longest id Meilisearch accepts, in bytes.
const MAX_ID_BYTES: usize = 511;
/// The longest id whose `x` + hex form fits in `MAX_ID_BYTES` (255).
const MAX_HEX_ENCODED_BYTES: usize = (MAX_ID_BYTES - 1) / 2;

pub struct MeilisearchSink {
    /// The parsed base URL, or why it cannot be used (reported at use).
    url: Result<Url, String>,
    /// Name of the environment variable holding the API key, if any.
    api_key_env: Option<String>,
    client: Option<reqwest::Client>,
    /// How long `apply` waits for one task to finish.
    task_wait: Duration,
    /// False once the server refused the fetch route's `ids` field (before
    /// Meilisearch 1.14): `contains` then gets documents one by one.
    fetch_by_ids: bool,
}

/// How a task ended, when it did not succeed.
struct TaskFailure {
    status: String,
    code: Option<String>,
    message: String,
}

impl MeilisearchSink {
    pub fn new(url: &str, api_key_env: Option<&str>) -> Self {
        MeilisearchSink {
            url: parse_base_url("Meilisearch", url),
            api_key_env: api_key_env.map(str::to_owned),
            client: None,
            task_wait: TASK_WAIT,
            fetch_by_ids: true,
        }
    }

    /// Sets how long `apply` waits for each Meilisearch task (30 s by
    /// default) before giving up with `Unavailable`.
    pub fn with_task_timeout(mut self, limit: Duration) -> Self {
        self.task_wait = limit;
        self
    }

    /// Applies `ops` to `index` in order; returns once Meilisearch has
    /// processed them.
    pub async fn apply(&mut self, index: &str, ops: &[crate::sink::SearchOp]) -> SinkResult<()> {
        let base = self.url.clone().map_err(SinkError::Config)?;
        for run in ops.chunk_by(|a, b| is_delete(a) == is_delete(b)) {
            let deleting = is_delete(&run[0]);
            let (url, body, what) = if deleting {
                let ids: Vec<String> = run.iter().map(|op| document_id(op.id())).collect();
                let url = endpoint(&base, &["indexes", index, "documents", "delete-batch"]);
                (url, Value::from(ids), "document deletion")
            } else {
                let docs: Vec<Value> = run.iter().filter_map(upsert_document).collect();
                let mut url = endpoint(&base, &["indexes", index, "documents"]);
                url.set_query(Some("primaryKey=id"));
                (url, Value::Array(docs), "document addition")
            };
            let task = self.enqueue(&url, &body, what).await?;
            if let Some(failure) = self.wait_for_task(&base, task).await? {
                if deleting && failure.code.as_deref() == Some("index_not_found") {
                    continue; // no index, so nothing left to delete
                }
                return Err(SinkError::Rejected(format!(
                    "Meilisearch {what} task {task} on index {index} {}: {}{}",
                    failure.status,
                    failure.message,
                    failure.code.map(|c| format!(" ({c})")).unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// For each id, whether `index` holds a document with it.
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let base = self.url.clone().map_err(SinkError::Config)?;
        let mapped: Vec<String> = ids.iter().map(|id| document_id(id)).collect();
        if self.fetch_by_ids {
            if let Some(found) = self.fetch_by_ids(&base, index, &mapped).await? {
                return Ok(found);
            }
            self.fetch_by_ids = false;
        }
        let mut found = Vec::with_capacity(mapped.len());
        for id in &mapped {
            let mut url = endpoint(&base, &["indexes", index, "documents", id]);
            url.set_query(Some("fields=id"));
            let response = send(self.request(Method::GET, url.clone())?, &url).await?;
            let status = response.status();
            if status.is_success() {
                found.push(true);
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                let (code, _, snippet) = error_answer(response).await;
                match code.as_deref() {
                    Some("document_not_found") => {
                        found.push(false);
                        continue;
                    }
                    Some("index_not_found") => return Ok(vec![false; ids.len()]),
                    _ => return Err(rejected("document lookup", &url, status, &snippet)),
                }
            }
            let snippet = body_snippet(response).await;
            return Err(rejected("document lookup", &url, status, &snippet));
        }
        Ok(found)
    }

    /// One fetch with `ids`; `None` when the server does not know that field.
    async fn fetch_by_ids(
        &mut self,
        base: &Url,
        index: &str,
        mapped: &[String],
    ) -> SinkResult<Option<Vec<bool>>> {
        let url = endpoint(base, &["indexes", index, "documents", "fetch"]);
        let body = json!({ "ids": mapped, "fields": ["id"], "limit": mapped.len() });
        let response = send(self.request(Method::POST, url.clone())?.json(&body), &url).await?;
        let status = response.status();
        if !status.is_success() {
            let (code, message, snippet) = error_answer(response).await;
            return match code.as_deref() {
                Some("index_not_found") => Ok(Some(vec![false; mapped.len()])),
                Some("bad_request")
                    if status == StatusCode::BAD_REQUEST && message.contains("`ids`") =>
                {
                    Ok(None)
                }
                _ => Err(rejected("document fetch", &url, status, &snippet)),
            };
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| unreadable("document fetch", &url, &e))?;
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                SinkError::Rejected(
                    "Meilisearch document fetch answer has no `results` array".into(),
                )
            })?;
        let present: std::collections::HashSet<String> = results
            .iter()
            .filter_map(|doc| match doc.get("id") {
                Some(Value::String(id)) => Some(id.clone()),
                Some(Value::Number(id)) => Some(id.to_string()),
                _ => None,
            })
            .collect();
        Ok(Some(mapped.iter().map(|id| present.contains(id)).collect()))
    }

    /// Sends one write and returns its task uid.
    async fn enqueue(&mut self, url: &Url, body: &Value, what: &str) -> SinkResult<u64> {
        let request = self
            .request(Method::POST, url.clone())?
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let response = send(request, url).await?;
        let status = response.status();
        if !status.is_success() {
            let snippet = body_snippet(response).await;
            return Err(rejected(what, url, status, &snippet));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| unreadable(what, url, &e))?;
        answer
            .get("taskUid")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                SinkError::Rejected(format!(
                    "Meilisearch {what} answer from {} has no taskUid",
                    redact(url)
                ))
            })
    }

    /// Polls `GET /tasks/{uid}` until the task ends; `None` if it succeeded.
    async fn wait_for_task(&mut self, base: &Url, task: u64) -> SinkResult<Option<TaskFailure>> {
        let url = endpoint(base, &["tasks", &task.to_string()]);
        let deadline = Instant::now() + self.task_wait;
        let mut pause = FIRST_POLL_PAUSE;
        loop {
            let response = send(self.request(Method::GET, url.clone())?, &url).await?;
            let status = response.status();
            if !status.is_success() {
                let snippet = body_snippet(response).await;
                return Err(rejected("task lookup", &url, status, &snippet));
            }
            let answer: Value = response
                .json()
                .await
                .map_err(|e| unreadable("task lookup", &url, &e))?;
            let state = answer
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            match state.as_str() {
                "succeeded" => return Ok(None),
                "failed" | "canceled" => {
                    let error = answer.get("error").filter(|e| !e.is_null());
                    let text = |key: &str| {
                        error
                            .and_then(|e| e.get(key))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    let message =
                        text("message").unwrap_or_else(|| match answer.get("canceledBy") {
                            Some(Value::Number(by)) => format!("canceled by task {by}"),
                            _ => "no error given".to_owned(),
                        });
                    return Ok(Some(TaskFailure {
                        status: state,
                        code: text("code"),
                        message,
                    }));
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SinkError::Unavailable(format!(
                    "Meilisearch task {task} still {state} after {:?}",
                    self.task_wait
                )));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL_PAUSE);
        }
    }

    /// A request with the API key (if configured) on a lazily built client.
    fn request(&mut self, method: Method, url: Url) -> SinkResult<reqwest::RequestBuilder> {
        let client = lazy_client(&mut self.client, SEARCH_REQUEST_TIMEOUT)?;
        let mut request = client.request(method, url);
        if let Some(env) = &self.api_key_env {
            let key = read_env(env, "the Meilisearch API key")?;
            let (name, value) = authorization("Bearer", &key, env)?;
            request = request.header(name, value);
        }
        Ok(request)
    }
}

async fn send(request: reqwest::RequestBuilder, url: &Url) -> SinkResult<reqwest::Response> {
    request
        .send()
        .await
        .map_err(|e| send_error("Meilisearch", url, e))
}

/// The Meilisearch document id for a Lethe id (see the module docs).
pub(crate) fn document_id(id: &str) -> String {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let bytes = id.as_bytes();
    if !bytes.is_empty()
        && bytes.len() <= MAX_ID_BYTES
        && bytes[0] != b'x'
        && bytes.iter().all(|&b| allowed(b))
    {
        return id.to_owned();
    }
    if bytes.len() <= MAX_HEX_ENCODED_BYTES {
        return format!("x{}", hex::encode(bytes));
    }
    format!("xh{}", hex::encode(Sha256::digest(bytes)))
}

fn is_delete(op: &SearchOp) -> bool {
    matches!(op, SearchOp::Delete { .. })
}

/// The document of an upsert, with its (mapped) id as `id`.
fn upsert_document(op: &SearchOp) -> Option<Value> {
    let SearchOp::Upsert { id, doc } = op else {
        return None;
    };
    let mut document = Map::with_capacity(doc.len() + 1);
    document.insert("id".to_owned(), Value::String(document_id(id)));
    for (key, value) in doc {
        if key != "id" {
            document.insert(key.clone(), value.clone());
        }
    }
    Some(Value::Object(document))
}

/// A Meilisearch error answer: its `code`, its `message`, and the start of
/// its body for messages.
async fn error_answer(response: reqwest::Response) -> (Option<String>, String, String) {
    let text = read_prefix(response, 16 * 1024).await;
    let answer = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    let field = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_owned);
    (
        field("code"),
        field("message").unwrap_or_default(),
        snippet(&text),
    )
}

fn rejected(what: &str, url: &Url, status: StatusCode, snippet: &str) -> SinkError {
    SinkError::Rejected(format!(
        "Meilisearch {what} at {} answered {status}: {snippet}",
        redact(url)
    ))
}

fn unreadable(what: &str, url: &Url, error: &reqwest::Error) -> SinkError {
    SinkError::Rejected(format!(
        "Meilisearch {what} answer from {} is not the expected JSON: {error}",
        redact(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::document_id;

    #[test]
    fn valid_ids_are_kept() {
        assert_eq!(document_id("user-7_A"), "user-7_A");
        assert_eq!(document_id("X1"), "X1");
        assert_eq!(document_id(&"a".repeat(511)), "a".repeat(511));
    }

    #[test]
    fn other_ids_are_hex_encoded_behind_x() {
        assert_eq!(document_id("user 7"), "x757365722037");
        assert_eq!(document_id("x1"), "x7831");
        assert_eq!(document_id(""), "x");
        assert_eq!(document_id("é"), "xc3a9");
        assert_eq!(document_id(&"a".repeat(512)).len(), 2 + 64);
    }

    #[test]
    fn long_ids_are_hashed_and_forms_do_not_collide() {
        let long = "é".repeat(200); // 400 bytes: hex would not fit
        let mapped = document_id(&long);
        assert!(mapped.starts_with("xh") && mapped.len() == 66);
        assert_eq!(mapped, document_id(&long));
        let short = "a b".repeat(85); // 255 bytes: hex fits exactly
        assert_eq!(document_id(&short).len(), 511);
        // An id that looks like an encoded one is itself encoded.
        assert_ne!(document_id(&document_id("a b")), document_id("a b"));
        for id in ["a", "x", "xa", "a b", "x61", "-", "_x"] {
            let mapped = document_id(id);
            assert!(
                mapped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{mapped}"
            );
        }
    }
}
