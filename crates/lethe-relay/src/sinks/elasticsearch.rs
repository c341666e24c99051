//! Elasticsearch / OpenSearch sink: applies search operations with one `_bulk`
//! request per batch and checks which documents an index still holds with
//! `_mget` (for reconciliation).
//!
//! Both products share these document APIs, so a thin client over reqwest
//! does for both (the official crates would pull in a second HTTP stack); the
//! `opensearch` flag only changes the product name in messages.
//!
//! * `apply`: `POST {url}/_bulk`, `Content-Type: application/x-ndjson`, one
//!   line per action in the order given, each followed by `\n` (the last one
//!   too): `{"delete":{"_index":…,"_id":…}}` for a delete,
//!   `{"index":{"_index":…,"_id":…}}` then the document for an upsert (the
//!   `index` action adds or replaces the whole document). The answer is
//!   `200` even when single items fail, so every item is checked: a failed
//!   item fails the batch, except a delete answered `404` — the document (or
//!   its whole index) is already gone, which is what a delete wants.
//! * `contains`: `POST {url}/{index}/_mget?_source=false` with
//!   `{"ids":[…]}`; the answer's `docs[]` carry `found`. A missing index
//!   (`404 index_not_found_exception`, for the whole request or per
//!   document) means none of the ids is there. `_mget` is real-time, so it
//!   sees a delete before the next refresh.
//!
//! With `api_key_env` set, every request carries `Authorization: ApiKey
//! <value of that variable>` (the base64 `id:api_key` credential Elasticsearch
//! issues), read at each request so a rotated key is picked up.

use std::collections::HashSet;

use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::webhook::{
    SEARCH_REQUEST_TIMEOUT, authorization, body_snippet, endpoint, lazy_client, parse_base_url,
    read_env, read_prefix, redact, send_error, snippet,
};
use crate::sink::{SearchOp, SinkError, SinkResult};

/// How many failed bulk items an error message lists.
const LISTED_FAILURES: usize = 3;

pub struct ElasticsearchSink {
    /// The parsed base URL, or why it cannot be used (reported at use).
    url: Result<Url, String>,
    /// Name of the environment variable holding the API key, if any.
    api_key_env: Option<String>,
    /// OpenSearch rather than Elasticsearch (only for messages).
    opensearch: bool,
    client: Option<reqwest::Client>,
}

impl ElasticsearchSink {
    pub fn new(url: &str, api_key_env: Option<&str>, opensearch: bool) -> Self {
        let product = if opensearch {
            "OpenSearch"
        } else {
            "Elasticsearch"
        };
        ElasticsearchSink {
            url: parse_base_url(product, url),
            api_key_env: api_key_env.map(str::to_owned),
            opensearch,
            client: None,
        }
    }

    /// Applies `ops` to `index` in order, in one bulk request.
    pub async fn apply(&mut self, index: &str, ops: &[crate::sink::SearchOp]) -> SinkResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let base = self.url.clone().map_err(SinkError::Config)?;
        let url = endpoint(&base, &["_bulk"]);
        let request = self
            .request(reqwest::Method::POST, url.clone())?
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(bulk_body(index, ops));
        let response = request
            .send()
            .await
            .map_err(|e| send_error(self.product(), &url, e))?;
        let status = response.status();
        if !status.is_success() {
            let snippet = body_snippet(response).await;
            return Err(SinkError::Rejected(format!(
                "{} bulk request to {} answered {status}: {snippet}",
                self.product(),
                redact(&url)
            )));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| self.unreadable("bulk", &url, &e))?;
        self.check_bulk_answer(index, &answer)
    }

    /// For each id, whether `index` holds a document with it.
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let base = self.url.clone().map_err(SinkError::Config)?;
        let mut url = endpoint(&base, &[index, "_mget"]);
        url.set_query(Some("_source=false"));
        let request = self
            .request(reqwest::Method::POST, url.clone())?
            .json(&json!({ "ids": ids }));
        let response = request
            .send()
            .await
            .map_err(|e| send_error(self.product(), &url, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            let text = read_prefix(response, 16 * 1024).await;
            if error_type(&serde_json::from_str(&text).unwrap_or(Value::Null))
                == Some("index_not_found_exception")
            {
                return Ok(vec![false; ids.len()]);
            }
            return Err(SinkError::Rejected(format!(
                "{} multi-get on {} answered {status}: {}",
                self.product(),
                redact(&url),
                snippet(&text)
            )));
        }
        if !status.is_success() {
            let snippet = body_snippet(response).await;
            return Err(SinkError::Rejected(format!(
                "{} multi-get on {} answered {status}: {snippet}",
                self.product(),
                redact(&url)
            )));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| self.unreadable("multi-get", &url, &e))?;
        let docs = answer
            .get("docs")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                SinkError::Rejected(format!(
                    "{} multi-get answer has no `docs` array",
                    self.product()
                ))
            })?;
        let mut found = HashSet::new();
        for doc in docs {
            let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
            if let Some(error) = doc.get("error") {
                if error_type_of(error) == Some("index_not_found_exception") {
                    continue;
                }
                return Err(SinkError::Rejected(format!(
                    "{} multi-get of `{id}` in index {index} failed: {}",
                    self.product(),
                    describe_error(error)
                )));
            }
            if doc.get("found").and_then(Value::as_bool) == Some(true) {
                found.insert(id);
            }
        }
        Ok(ids.iter().map(|id| found.contains(id.as_str())).collect())
    }

    fn product(&self) -> &'static str {
        if self.opensearch {
            "OpenSearch"
        } else {
            "Elasticsearch"
        }
    }

    /// A request with the API key (if configured) on a lazily built client.
    fn request(
        &mut self,
        method: reqwest::Method,
        url: Url,
    ) -> SinkResult<reqwest::RequestBuilder> {
        let client = lazy_client(&mut self.client, SEARCH_REQUEST_TIMEOUT)?;
        let mut request = client.request(method, url);
        if let Some(env) = &self.api_key_env {
            let key = read_env(env, &format!("the {} API key", self.product()))?;
            let (name, value) = authorization("ApiKey", &key, env)?;
            request = request.header(name, value);
        }
        Ok(request)
    }

    fn unreadable(&self, what: &str, url: &Url, error: &reqwest::Error) -> SinkError {
        SinkError::Rejected(format!(
            "{} {what} answer from {} is not the expected JSON: {error}",
            self.product(),
            redact(url)
        ))
    }

    /// Fails on any failed item, except deletes answered 404 (already gone).
    fn check_bulk_answer(&self, index: &str, answer: &Value) -> SinkResult<()> {
        let items = answer.get("items").and_then(Value::as_array);
        let Some(items) = items else {
            if answer.get("errors").and_then(Value::as_bool) == Some(false) {
                return Ok(());
            }
            return Err(SinkError::Rejected(format!(
                "{} bulk answer has no `items` array",
                self.product()
            )));
        };
        let mut failures = Vec::new();
        for item in items {
            let Some((action, result)) = item.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            let failed = result.get("error").is_some() || !(200..300).contains(&status);
            if !failed || (action == "delete" && status == 404) {
                continue;
            }
            let id = result.get("_id").and_then(Value::as_str).unwrap_or("?");
            let reason = result
                .get("error")
                .map(describe_error)
                .unwrap_or_else(|| "no error given".to_owned());
            failures.push(format!("{action} `{id}`: {status} {reason}"));
        }
        if failures.is_empty() {
            return Ok(());
        }
        let more = failures.len().saturating_sub(LISTED_FAILURES);
        let mut message = format!(
            "{} bulk on index {index}: {} of {} actions failed: {}",
            self.product(),
            failures.len(),
            items.len(),
            failures[..failures.len().min(LISTED_FAILURES)].join("; ")
        );
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        Err(SinkError::Rejected(message))
    }
}

/// The NDJSON bulk body: one action line per op (plus the document line of an
/// upsert), each ending in a newline.
fn bulk_body(index: &str, ops: &[SearchOp]) -> String {
    let mut body = String::new();
    for op in ops {
        match op {
            SearchOp::Delete { id } => {
                body.push_str(&json!({ "delete": { "_index": index, "_id": id } }).to_string());
                body.push('\n');
            }
            SearchOp::Upsert { id, doc } => {
                body.push_str(&json!({ "index": { "_index": index, "_id": id } }).to_string());
                body.push('\n');
                // Compact JSON escapes newlines inside strings, so the document
                // stays on one line.
                body.push_str(&Value::Object(doc.clone()).to_string());
                body.push('\n');
            }
        }
    }
    body
}

/// `error.type` of an error answer (`{"error":{"type":…}}`).
fn error_type(answer: &Value) -> Option<&str> {
    answer.get("error").and_then(error_type_of)
}

fn error_type_of(error: &Value) -> Option<&str> {
    error.get("type").and_then(Value::as_str)
}

/// `type: reason` of an error object (or the error itself if it is a string).
fn describe_error(error: &Value) -> String {
    if let Some(text) = error.as_str() {
        return text.to_owned();
    }
    let kind = error_type_of(error).unwrap_or("error");
    match error.get("reason").and_then(Value::as_str) {
        Some(reason) => format!("{kind}: {reason}"),
        None => kind.to_owned(),
    }
}
