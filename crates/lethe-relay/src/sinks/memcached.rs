//! Memcached: drops the cache keys of deleted rows, and tells reconciliation
//! which keys are still cached.
//!
//! Invalidation is pipelined: every key goes out as `delete <key> noreply` in
//! one write, followed by a `version` round trip. Memcached handles a
//! connection's commands in order, so the `version` reply proves every delete
//! before it was processed, at the cost of one round trip per batch instead
//! of one per key. A key that is not cached is fine: it is gone either way.
//!
//! `existing` asks with the meta protocol (`mg <key> k q` per key, then `mn`;
//! memcached 1.6 and later): only hits answer, and without their values, so
//! checking many keys costs little. Keys go in chunks, so the replies of one
//! chunk can never fill the socket buffers while requests are still being
//! written.
//!
//! Keys with spaces or control characters, empty keys and keys over 250 bytes
//! cannot be sent in the text protocol (they would split the command or be
//! refused); such a key fails the whole call as `Rejected`, naming it, before
//! anything is sent.
//!
//! The connection is opened on first use and dropped after any error, so the
//! next call connects afresh: a restarted server only delays deliveries.

use std::collections::HashSet;
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, MetaProtocol};

use crate::sink::{SinkError, SinkResult};

/// Bound for connecting and for each call's round trips.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Memcached's key length limit.
const MAX_KEY_LEN: usize = 250;

/// Keys per `existing` round trip.
const CHUNK: usize = 100;

pub struct MemcachedSink {
    address: String,
    /// `None` until the first use and after an error.
    client: Option<Client>,
}

impl MemcachedSink {
    /// `address` is `host:port`.
    pub fn new(address: &str) -> Self {
        MemcachedSink {
            address: address.to_string(),
            client: None,
        }
    }

    /// Deletes every key; `Ok` once memcached has processed all the deletes.
    pub async fn invalidate(&mut self, keys: &[String]) -> SinkResult<()> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(());
        }
        let result = tokio::time::timeout(TIMEOUT, self.try_invalidate(keys)).await;
        self.finish(result)
    }

    /// Which of `keys` are cached, in the same order.
    pub async fn existing(&mut self, keys: &[String]) -> SinkResult<Vec<bool>> {
        check_keys(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let result = tokio::time::timeout(TIMEOUT, self.try_existing(keys)).await;
        self.finish(result)
    }

    async fn try_invalidate(&mut self, keys: &[String]) -> SinkResult<()> {
        let address = self.address.clone();
        let client = self.connect().await?;
        client
            .delete_multi_no_reply(keys)
            .await
            .map_err(|e| mc_error(&address, "deleting keys", e))?;
        let version = client
            .version()
            .await
            .map_err(|e| mc_error(&address, "confirming the deletes", e))?;
        // A stray reply (an error line to a delete) would be read in place of
        // the version.
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(SinkError::Rejected(format!(
                "memcached at {address} answered the deletes with \"{}\"",
                version.trim()
            )));
        }
        Ok(())
    }

    async fn try_existing(&mut self, keys: &[String]) -> SinkResult<Vec<bool>> {
        let address = self.address.clone();
        let client = self.connect().await?;
        let mut found = HashSet::new();
        for chunk in keys.chunks(CHUNK) {
            let hits = client
                .meta_get_multi(chunk, None)
                .await
                .map_err(|e| mc_error(&address, "looking up keys", e))?;
            found.extend(hits.into_iter().filter_map(|v| v.key));
        }
        Ok(keys.iter().map(|k| found.contains(k.as_bytes())).collect())
    }

    async fn connect(&mut self) -> SinkResult<&mut Client> {
        if self.client.is_none() {
            // The crate reads a bare `host:port` as a URL whose scheme is the
            // host, which fails for IP addresses: say `tcp://`.
            let dsn = if self.address.contains("://") {
                self.address.clone()
            } else {
                format!("tcp://{}", self.address)
            };
            let client = Client::new(&dsn)
                .await
                .map_err(|e| mc_error(&self.address, "connecting", e))?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Maps a timeout to `Unavailable`, and drops the connection after any
    /// error (it may hold half a reply).
    fn finish<T>(
        &mut self,
        result: Result<SinkResult<T>, tokio::time::error::Elapsed>,
    ) -> SinkResult<T> {
        let result = result.unwrap_or_else(|_| {
            Err(SinkError::Unavailable(format!(
                "memcached at {} did not answer within {} s",
                self.address,
                TIMEOUT.as_secs()
            )))
        });
        if result.is_err() {
            self.client = None;
        }
        result
    }
}

/// Refuses keys the text protocol cannot carry, naming the first.
fn check_keys(keys: &[String]) -> SinkResult<()> {
    for key in keys {
        let problem = if key.is_empty() {
            "is empty"
        } else if key.len() > MAX_KEY_LEN {
            "is longer than 250 bytes"
        } else if key.bytes().any(|b| b <= b' ' || b == 0x7f) {
            "contains a space or control character"
        } else {
            continue;
        };
        return Err(SinkError::Rejected(format!(
            "memcached key {key:?} {problem}"
        )));
    }
    Ok(())
}

fn mc_error(address: &str, what: &str, e: async_memcached::Error) -> SinkError {
    use async_memcached::Error as E;
    let msg = format!("memcached at {address}, {what}: {e}");
    match e {
        // A malformed address.
        E::Connect(e) if e.kind() == std::io::ErrorKind::InvalidInput => SinkError::Config(msg),
        E::Connect(_) | E::Io(_) | E::ConnectionClosed => SinkError::Unavailable(msg),
        E::Protocol(_) | E::ParseError(_) => SinkError::Rejected(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_the_protocol_cannot_carry() {
        let ok = vec!["user:1".to_string(), "é:2".to_string(), "k".repeat(250)];
        assert!(check_keys(&ok).is_ok());
        for bad in ["", "a b", "a\r\nflush_all", "tab\there", &"k".repeat(251)] {
            let err = check_keys(&[bad.to_string()]).unwrap_err();
            assert!(
                matches!(&err, SinkError::Rejected(m) if m.contains(&format!("{bad:?}"))),
                "{err}"
            );
        }
    }
}
