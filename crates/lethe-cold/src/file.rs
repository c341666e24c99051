//! Export files: JSON Lines compressed with zstd, one line per row, written
//! to a local temporary file (memory stays flat whatever the size) and
//! uploaded from there; the SHA-256 of the compressed bytes goes into the
//! manifest and is checked before a file is read back.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{ColdError, Result};
use crate::location::Location;

/// One exported row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Line {
    pub deletion_id: String,
    pub entity: String,
    /// The row's key, `{column: value}` (personal values sealed).
    pub key: Value,
    /// When the row was deleted (UTC, RFC 3339).
    pub deleted_at: String,
    /// Where the row was when exported: `table` (marked deleted),
    /// `snapshot` or `archive` (Lethe's archive store).
    pub source: String,
    /// The fingerprint of the columns the row has (see the manifest).
    pub fingerprint: Option<String>,
    /// Every column (personal values sealed: `{"$sealed": "v1:..."}`).
    pub row: Value,
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A file being written.
pub struct FileWriter {
    enc: zstd::stream::write::Encoder<'static, Hashing<BufWriter<File>>>,
    path: PathBuf,
    pub rows: u64,
}

/// A finished file, on local disk.
pub struct Written {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl FileWriter {
    pub fn create(dir: &Path) -> Result<FileWriter> {
        let path = dir.join(format!(
            "lethe-export-{}.jsonl.zst",
            uuid::Uuid::now_v7().simple()
        ));
        let file = File::create(&path)?;
        let enc = zstd::stream::write::Encoder::new(
            Hashing {
                inner: BufWriter::new(file),
                hash: Sha256::new(),
                bytes: 0,
            },
            3,
        )?;
        Ok(FileWriter { enc, path, rows: 0 })
    }

    pub fn write(&mut self, line: &Line) -> Result<()> {
        serde_json::to_writer(&mut self.enc, line)
            .map_err(|e| ColdError::Storage(format!("cannot write a line: {e}")))?;
        self.enc.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<Written> {
        let mut h = self.enc.finish()?;
        h.flush()?;
        Ok(Written {
            path: self.path,
            rows: self.rows,
            bytes: h.bytes,
            sha256: hex::encode(h.hash.finalize()),
        })
    }

    /// Drops a file that will not be uploaded.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

/// Uploads a local file to `dest` in parts (memory stays flat), then
/// removes the local copy.
pub async fn upload(location: &Location, local: &Path, dest: &ObjectPath) -> Result<()> {
    let upload = location.store.put_multipart(dest).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut f = File::open(local)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.wait_for_capacity(4).await?;
        w.write(&buf[..n]);
    }
    w.finish().await?;
    let _ = std::fs::remove_file(local);
    Ok(())
}

/// Writes a small object (a manifest) whole.
pub async fn put_small(location: &Location, dest: &ObjectPath, bytes: Vec<u8>) -> Result<()> {
    location.store.put(dest, bytes.into()).await?;
    Ok(())
}

/// Reads a small object (a manifest) whole.
pub async fn get_small(location: &Location, path: &ObjectPath) -> Result<Vec<u8>> {
    Ok(location.store.get(path).await?.bytes().await?.to_vec())
}

/// Downloads `src` to a local temporary file in `dir`, checking its size
/// and SHA-256; returns the local path.
pub async fn download(
    location: &Location,
    src: &ObjectPath,
    dir: &Path,
    bytes: u64,
    sha256: &str,
) -> Result<PathBuf> {
    let local = dir.join(format!(
        "lethe-import-{}.jsonl.zst",
        uuid::Uuid::now_v7().simple()
    ));
    let mut out = BufWriter::new(File::create(&local)?);
    let mut hash = Sha256::new();
    let mut n = 0u64;
    let mut stream = location.store.get(src).await?.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hash.update(&chunk);
        n += chunk.len() as u64;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    let got = hex::encode(hash.finalize());
    if n != bytes || got != sha256 {
        let _ = std::fs::remove_file(&local);
        return Err(ColdError::Corrupt(format!(
            "{} is not the file its manifest lists: {n} bytes with SHA-256 {got}, expected {bytes} bytes with {sha256}",
            location.relative(src)
        )));
    }
    Ok(local)
}

/// The lines of a downloaded file, one at a time; `name` (its path in the
/// export location) is what errors name.
pub fn lines(local: &Path, name: &str) -> Result<impl Iterator<Item = Result<Line>>> {
    let dec = zstd::stream::read::Decoder::new(File::open(local)?)?;
    let name = name.to_string();
    Ok(BufReader::new(dec).lines().enumerate().map(move |(i, l)| {
        let l = l.map_err(|e| ColdError::Corrupt(format!("{name}: cannot decompress: {e}")))?;
        serde_json::from_str(&l).map_err(|e| {
            ColdError::Corrupt(format!("{name}: line {} is not an export line: {e}", i + 1))
        })
    }))
}
