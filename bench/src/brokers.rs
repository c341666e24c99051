//! Redis and NATS for the `relay` and `latency` workloads: connections that
//! fail with a clear message, loading and counting cache keys, the
//! hand-written transport baselines, keyspace notifications and scratch
//! JetStream streams.
//!
//! Like `sql.rs` for the databases, this is plain `redis` and `async-nats`,
//! sharing no code with the sinks it is measured against.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Result;

/// Keys per `MSET`/`UNLINK`/`EXISTS` command, and commands per pipelined
/// round trip: the batching of Lethe's Redis sink.
pub const KEYS_PER_COMMAND: usize = 1_000;
pub const COMMANDS_PER_PIPELINE: usize = 16;

/// What every loaded cache key holds: a small cached row.
const CACHED: &str = r#"{"id":0,"name":"cached row","price":"9.99"}"#;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The JetStream request timeout, as Lethe's NATS sink sets it.
const NATS_TIMEOUT: Duration = Duration::from_secs(10);
const CLOUDEVENTS: &str = "application/cloudevents+json";

/// A name unique to one workload run (`lb<pid>x<random>`): the prefix of
/// every key, subject and stream it creates, so runs, and tests sharing the
/// servers, never touch each other's.
pub fn run_tag() -> String {
    let r = uuid::Uuid::now_v7().simple().to_string();
    format!("lb{}x{}", std::process::id(), &r[r.len() - 8..])
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

/// A TOML string literal of `s` (JSON's escapes are valid TOML).
pub fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

pub struct Redis {
    url: String,
    client: redis::Client,
    conn: MultiplexedConnection,
}

impl Redis {
    /// Connects and checks the server answers.
    pub async fn connect(url: &str) -> Result<Redis> {
        let unreachable = |e: &dyn std::fmt::Display| {
            format!(
                "Redis at {} is unreachable: {e} (the relay and latency workloads need it; pass --redis URL)",
                redact(url)
            )
        };
        let client =
            redis::Client::open(url).map_err(|e| format!("bad Redis URL {}: {e}", redact(url)))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(Duration::from_secs(60)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| unreachable(&e))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(Redis {
            url: url.to_string(),
            client,
            conn,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database number the URL selects (keyspace events are per database).
    pub fn db(&self) -> i64 {
        self.client.get_connection_info().redis_settings().db()
    }

    /// Runs `cmd` with `keys` as arguments (`value` after each one, if any),
    /// [`KEYS_PER_COMMAND`] keys per command, [`COMMANDS_PER_PIPELINE`]
    /// commands per round trip; returns each command's integer reply.
    async fn chunked(&self, cmd: &str, keys: &[String], value: Option<&str>) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(KEYS_PER_COMMAND * COMMANDS_PER_PIPELINE) {
            let mut pipe = redis::pipe();
            for part in chunk.chunks(KEYS_PER_COMMAND) {
                let mut c = redis::cmd(cmd);
                for k in part {
                    c.arg(k);
                    if let Some(v) = value {
                        c.arg(v);
                    }
                }
                pipe.add_command(c);
            }
            let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
            out.extend(replies.iter().map(|r| match r {
                redis::Value::Int(n) => *n as u64,
                _ => 0,
            }));
        }
        Ok(out)
    }

    /// Sets every key (pipelined `MSET`s), so that invalidating it really
    /// deletes something.
    pub async fn set_keys(&self, keys: &[String]) -> Result<()> {
        self.chunked("MSET", keys, Some(CACHED)).await?;
        Ok(())
    }

    /// How many of `keys` exist (pipelined multi-key `EXISTS`).
    pub async fn count_existing(&self, keys: &[String]) -> Result<u64> {
        Ok(self.chunked("EXISTS", keys, None).await?.iter().sum())
    }

    /// The hand-written invalidation: pipelined multi-key `UNLINK`s; returns
    /// how many keys were removed.
    pub async fn unlink(&self, keys: &[String]) -> Result<u64> {
        Ok(self.chunked("UNLINK", keys, None).await?.iter().sum())
    }

    /// `UNLINK key`, one round trip.
    pub async fn unlink_one(&self, key: &str) -> Result<()> {
        let _: u64 = redis::cmd("UNLINK")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// The `notify-keyspace-events` setting.
    pub async fn notify_flags(&self) -> Result<String> {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| {
                format!(
                    "CONFIG GET notify-keyspace-events on {}: {e}",
                    redact(&self.url)
                )
            })?;
        Ok(v.get(1).cloned().unwrap_or_default())
    }

    pub async fn set_notify_flags(&self, flags: &str) -> Result<()> {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(flags)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| {
                format!(
                    "CONFIG SET notify-keyspace-events {flags:?} on {}: {e} (the latency workload needs keyspace notifications)",
                    redact(&self.url)
                )
            })?;
        Ok(())
    }

    /// Adds keyevent notifications of generic commands (`E`, `g`: `DEL`
    /// and `UNLINK` publish `del`) to the current flags; returns the flags
    /// before, to restore with [`Redis::set_notify_flags`].
    pub async fn enable_del_events(&self) -> Result<String> {
        let before = self.notify_flags().await?;
        let mut flags = before.clone();
        for f in ['E', 'g'] {
            if !flags.contains(f) {
                flags.push(f);
            }
        }
        if flags != before {
            self.set_notify_flags(&flags).await?;
        }
        Ok(before)
    }

    /// Starts recording when each key starting with `prefix` is deleted,
    /// from `__keyevent@<db>__:del`, until `expect` keys were seen. Returns
    /// once subscribed, so no deletion after it is missed.
    pub async fn watch_dels(&self, prefix: String, expect: usize) -> Result<DelWatcher> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub
            .subscribe(format!("__keyevent@{}__:del", self.db()))
            .await?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::with_capacity(expect);
            let mut messages = pubsub.into_on_message();
            while seen.len() < expect {
                tokio::select! {
                    m = messages.next() => {
                        let Some(m) = m else { break };
                        let at = Instant::now();
                        if let Ok(key) = m.get_payload::<String>()
                            && key.starts_with(&prefix)
                        {
                            seen.entry(key).or_insert(at);
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
            seen
        });
        Ok(DelWatcher { task, stop })
    }
}

/// Deletion instants of watched keys (see [`Redis::watch_dels`]).
pub struct DelWatcher {
    task: JoinHandle<HashMap<String, Instant>>,
    stop: watch::Sender<bool>,
}

impl DelWatcher {
    /// Waits until every expected key was seen, or `limit`; returns when
    /// each key seen was deleted (first notification).
    pub async fn finish(self, limit: Duration) -> HashMap<String, Instant> {
        let mut task = self.task;
        match tokio::time::timeout(limit, &mut task).await {
            Ok(seen) => seen.unwrap_or_default(),
            Err(_) => {
                let _ = self.stop.send(true);
                task.await.unwrap_or_default()
            }
        }
    }
}

/// One event for the NATS baseline.
pub struct Outgoing {
    pub subject: String,
    pub id: String,
    pub json: String,
}

pub struct Nats {
    url: String,
    js: jetstream::Context,
}

impl Nats {
    /// Connects and checks JetStream is enabled.
    pub async fn connect(url: &str) -> Result<Nats> {
        let unreachable = |e: &dyn std::fmt::Display| {
            format!(
                "NATS at {} is unreachable: {e} (the relay workload needs NATS with JetStream; pass --nats URL)",
                redact(url)
            )
        };
        let connecting = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(NATS_TIMEOUT))
            .connect(url);
        let client = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| unreachable(&"timed out"))?
            .map_err(|e| unreachable(&e))?;
        // JetStream answers `$JS.API.INFO` with the account's limits; a
        // server without it does not answer, or answers with an error.
        // (Read as plain JSON: the client's typed `query_account` does not
        // parse every server version's reply.)
        let no_js = |e: &dyn std::fmt::Display| {
            format!(
                "NATS at {} has no usable JetStream: {e} (start nats-server with -js)",
                redact(url)
            )
        };
        let info = client
            .request("$JS.API.INFO", "".into())
            .await
            .map_err(|e| no_js(&e))?;
        let info: serde_json::Value =
            serde_json::from_slice(&info.payload).map_err(|e| no_js(&e))?;
        if let Some(e) = info.get("error") {
            return Err(no_js(&e).into());
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(NATS_TIMEOUT)
            .build(client);
        Ok(Nats {
            url: url.to_string(),
            js,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates stream `name` capturing `subject` (file storage, the
    /// defaults otherwise).
    pub async fn create_stream(&self, name: &str, subject: &str) -> Result<()> {
        self.js
            .create_stream(jetstream::stream::Config {
                name: name.to_string(),
                subjects: vec![subject.to_string()],
                ..Default::default()
            })
            .await
            .map_err(|e| format!("creating NATS stream {name}: {e}"))?;
        Ok(())
    }

    pub async fn delete_stream(&self, name: &str) -> Result<()> {
        self.js
            .delete_stream(name)
            .await
            .map_err(|e| format!("deleting NATS stream {name}: {e}"))?;
        Ok(())
    }

    pub async fn purge(&self, name: &str) -> Result<()> {
        self.js.get_stream(name).await?.purge().await?;
        Ok(())
    }

    /// `(messages, bytes)` the stream holds.
    pub async fn stream_state(&self, name: &str) -> Result<(u64, u64)> {
        let mut s = self.js.get_stream(name).await?;
        let info = s.info().await?;
        Ok((info.state.messages, info.state.bytes))
    }

    /// The hand-written publisher: `batch` events at a time, each sent with
    /// its `Nats-Msg-Id` and content type without waiting, then the batch's
    /// acks awaited (the approach of Lethe's NATS sink).
    pub async fn publish_batches(&self, events: &[Outgoing], batch: usize) -> Result<()> {
        for chunk in events.chunks(batch.max(1)) {
            let mut acks = Vec::with_capacity(chunk.len());
            for ev in chunk {
                let message = PublishMessage::build()
                    .payload(ev.json.clone().into())
                    .message_id(&ev.id)
                    .header("Content-Type", CLOUDEVENTS);
                acks.push(self.js.send_publish(ev.subject.clone(), message).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("nats://tok@h:4222"), "nats://tok:***@h:4222");
    }

    #[test]
    fn toml_strings_parse_back() {
        let v: toml::Value = toml::from_str(&format!("a = {}", toml_str("x\"y\\z"))).unwrap();
        assert_eq!(v["a"].as_str(), Some("x\"y\\z"));
    }
}
