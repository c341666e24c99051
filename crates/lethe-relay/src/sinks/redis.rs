//! Redis: cache invalidation with `UNLINK` (non-blocking delete), pipelined so
//! a batch of thousands of keys is one round trip per chunk, never one per key.
//! Lethe only removes keys; it never writes row values into a cache, so a
//! restore also just invalidates (the application re-reads the row).

use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::sink::{SinkError, SinkResult};

/// Keys per `UNLINK` command, and commands per pipeline round trip.
const KEYS_PER_COMMAND: usize = 1_000;

pub struct RedisSink {
    url: String,
    conn: Option<MultiplexedConnection>,
}

fn unavailable(e: redis::RedisError) -> SinkError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        SinkError::Unavailable(e.to_string())
    } else {
        SinkError::Rejected(e.to_string())
    }
}

impl RedisSink {
    pub fn new(url: &str) -> Self {
        RedisSink {
            url: url.to_string(),
            conn: None,
        }
    }

    async fn conn(&mut self) -> SinkResult<MultiplexedConnection> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| SinkError::Config(format!("bad Redis URL: {e}")))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        self.conn = Some(c.clone());
        Ok(c)
    }

    /// Runs `pipe`; after an error the connection is dropped, so the next
    /// call reconnects.
    async fn run<T: redis::FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> SinkResult<T> {
        let mut c = self.conn().await?;
        match pipe.query_async::<T>(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.conn = None;
                Err(unavailable(e))
            }
        }
    }

    /// Removes `keys` (a missing key is fine).
    pub async fn invalidate(&mut self, keys: &[String]) -> SinkResult<()> {
        for chunk in keys.chunks(KEYS_PER_COMMAND * 16) {
            let mut pipe = redis::pipe();
            for part in chunk.chunks(KEYS_PER_COMMAND) {
                pipe.cmd("UNLINK").arg(part).ignore();
            }
            self.run::<()>(&pipe).await?;
        }
        Ok(())
    }

    /// Which of `keys` exist.
    pub async fn existing(&mut self, keys: &[String]) -> SinkResult<Vec<bool>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_COMMAND) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.exists(k);
            }
            let found: Vec<bool> = self.run(&pipe).await?;
            out.extend(found);
        }
        Ok(out)
    }
}
