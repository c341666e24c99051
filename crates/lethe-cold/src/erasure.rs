//! Verification of an erasure in exported files: every file listed by a
//! manifest at the export location is read a page at a time, and
//! - a personal value sealed for the erased subject must no longer open
//!   (its data key was destroyed: crypto-shredding);
//! - no value in the clear may hash to one of the subject's original
//!   values.
//!
//! Files are not rewritten: shredding makes the sealed values unreadable
//! wherever copies of the files went.

use std::collections::BTreeSet;

use lethe_store::Engine;
use lethe_store::erasure::Residue;
use serde_json::Value;

use crate::crypto::parse_sealed;
use crate::error::Result;
use crate::file::{download, lines};
use crate::import::manifests;
use crate::keys::{Keys, kek};
use crate::location::Location;

/// What a file scan found and read.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileScan {
    pub residue: Vec<Residue>,
    /// Files read.
    pub files: u64,
    /// Sealed values of the subject found, none of which opens.
    pub shredded_values: u64,
}

/// Every string and number inside `v`, as text.
fn atoms<'a>(v: &'a Value, out: &mut Vec<std::borrow::Cow<'a, str>>) {
    match v {
        Value::String(s) => out.push(s.as_str().into()),
        Value::Number(n) => out.push(n.to_string().into()),
        Value::Array(a) => a.iter().for_each(|x| atoms(x, out)),
        Value::Object(m) => m.values().for_each(|x| atoms(x, out)),
        _ => {}
    }
}

/// Scans the files at `location` for subject `data_key` (its cold-storage
/// id) and for values whose keyed hash is in `hashes`.
pub async fn file_residue(
    engine: &Engine,
    location: &Location,
    data_key: &str,
    hashes: &[String],
    temp_dir: Option<&std::path::Path>,
) -> Result<FileScan> {
    let hashes: BTreeSet<&str> = hashes.iter().map(String::as_str).collect();
    let (kek, _) = kek(engine, engine.policy()).await?;
    let mut keys = Keys::new(kek);
    keys.load(engine, &[data_key.to_string()], false).await?;
    let opens = keys.get(data_key).is_some();
    let tmp = temp_dir
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let mut out = FileScan::default();
    for (_, m) in manifests(location, None).await? {
        for f in &m.files {
            let local =
                download(location, &location.path(&f.path), &tmp, f.bytes, &f.sha256).await?;
            out.files += 1;
            let (mut sealed, mut clear) = (0u64, 0u64);
            let scanned = (|| -> Result<()> {
                for l in lines(&local, &f.path)? {
                    let l = l?;
                    let mut found = false;
                    for obj in [&l.row, &l.key] {
                        if let Value::Object(mm) = obj {
                            for v in mm.values() {
                                let s = v
                                    .get("$sealed")
                                    .and_then(Value::as_str)
                                    .and_then(parse_sealed);
                                if let Some((subject, _)) = s {
                                    if subject == data_key {
                                        sealed += 1;
                                    }
                                    continue;
                                }
                                let mut texts = Vec::new();
                                atoms(v, &mut texts);
                                found |= texts
                                    .iter()
                                    .any(|t| hashes.contains(engine.keyed_hash(t).as_str()));
                            }
                        }
                    }
                    clear += u64::from(found);
                }
                Ok(())
            })();
            let _ = std::fs::remove_file(&local);
            scanned?;
            if clear > 0 {
                out.residue.push(Residue {
                    place: format!("file {}/{}", location.name, f.path),
                    entity: Some(f.entity.clone()),
                    what: "original values".into(),
                    rows: clear,
                });
            }
            if sealed > 0 && opens {
                out.residue.push(Residue {
                    place: format!("file {}/{}", location.name, f.path),
                    entity: Some(f.entity.clone()),
                    what: "sealed values still open (data key not destroyed)".into(),
                    rows: sealed,
                });
            }
            out.shredded_values += if opens { 0 } else { sealed };
        }
    }
    Ok(out)
}
