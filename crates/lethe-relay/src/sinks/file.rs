//! The file sink: CloudEvents appended as JSON Lines, flushed and synced
//! before the delivery counts as done. The embedded default: no server needed,
//! and a plain file any tool can read or tail.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use crate::sink::{Event, SinkError, SinkResult};

pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    pub fn new(path: &str) -> Self {
        FileSink {
            path: PathBuf::from(path),
        }
    }

    pub async fn publish(&mut self, events: &[Event]) -> SinkResult<()> {
        let mut buf = Vec::with_capacity(events.iter().map(|e| e.json.len() + 1).sum());
        for e in events {
            buf.extend_from_slice(e.json.as_bytes());
            buf.push(b'\n');
        }
        let err =
            |e: std::io::Error| SinkError::Unavailable(format!("{}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(err)?;
        }
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(err)?;
        // One write of whole lines: a reader never sees half a batch line.
        f.write_all(&buf).await.map_err(err)?;
        f.sync_data().await.map_err(err)?;
        Ok(())
    }
}
