//! Data keys by subject, for one export or import run: loaded from (and
//! created in) Lethe's `subject_keys` table a page at a time, unwrapped
//! with the key-encryption key, cached for the run.

use std::collections::HashMap;

use lethe_core::Policy;
use lethe_sql::cold;
use lethe_store::Engine;

use crate::crypto::{DataKey, Kek};
use crate::error::{ColdError, Result};

/// The KEK the policy names: from `[export] key_env`, or kept in Lethe's
/// settings (created on first use). Returns the key and where it came from.
pub async fn kek(engine: &Engine, policy: &Policy) -> Result<(Kek, String)> {
    if let Some(var) = policy.export.as_ref().and_then(|e| e.key_env.clone()) {
        let v = std::env::var(&var).map_err(|_| {
            ColdError::Invalid(format!(
                "[export] key_env names {var}, which is not set: set it to the key-encryption key (64 hex digits)"
            ))
        })?;
        return Ok((Kek::from_hex(&v, &var)?, format!("env:{var}")));
    }
    let [ensure, read] = cold::ensure_setting(engine.dialect());
    let mut tx = engine.db().begin_write().await.map_err(ColdError::from)?;
    tx.exec(&ensure, &[Some("kek".into())]).await?;
    let rows = tx.rows(&read, &[Some("kek".into())]).await?;
    tx.commit().await?;
    let v = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| ColdError::Invalid("no key-encryption key in Lethe's settings".into()))?;
    Ok((Kek::from_secret(&v), "database".into()))
}

/// A run's data keys. `None` for a shredded subject.
pub struct Keys {
    kek: Kek,
    cache: HashMap<String, Option<DataKey>>,
}

/// Entries kept before the cache is emptied (memory stays bounded).
const CACHE: usize = 20_000;

impl Keys {
    pub fn new(kek: Kek) -> Keys {
        Keys {
            kek,
            cache: HashMap::new(),
        }
    }

    /// Makes sure every subject in `subjects` is in the cache, creating
    /// data keys for new subjects when `create`.
    pub async fn load(&mut self, engine: &Engine, subjects: &[String], create: bool) -> Result<()> {
        let mut missing: Vec<String> = subjects
            .iter()
            .filter(|s| !self.cache.contains_key(*s))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if self.cache.len() + missing.len() > CACHE {
            self.cache.clear();
        }
        let d = engine.dialect();
        let list = serde_json::to_string(&missing).unwrap_or_default();
        let found = engine
            .db()
            .rows(&cold::subject_keys(d), &[Some(list.clone())])
            .await?;
        self.take(&found)?;
        let new: Vec<&String> = missing
            .iter()
            .filter(|s| !self.cache.contains_key(*s))
            .collect();
        if new.is_empty() || !create {
            for s in new {
                // No key was ever made: nothing sealed for it can be read.
                self.cache.insert(s.clone(), None);
            }
            return Ok(());
        }
        let now = lethe_store::time_text(time::OffsetDateTime::now_utc());
        let mut tx = engine.db().begin_write().await?;
        for s in &new {
            let (_, wrapped) = self.kek.new_data_key(s)?;
            tx.exec(
                &cold::insert_subject_key(d),
                &[Some((*s).clone()), Some(wrapped), Some(now.clone())],
            )
            .await?;
        }
        tx.commit().await?;
        // Read them back: another process may have stored a key first.
        let list = serde_json::to_string(&new).unwrap_or_default();
        let stored = engine
            .db()
            .rows(&cold::subject_keys(d), &[Some(list)])
            .await?;
        self.take(&stored)
    }

    /// Caches `(subject, wrapped key)` rows, unwrapped (`None` when the key
    /// was shredded).
    fn take(&mut self, rows: &[Vec<Option<String>>]) -> Result<()> {
        for r in rows {
            let subject = r.first().cloned().flatten().unwrap_or_default();
            let wrapped = r.get(1).cloned().flatten().unwrap_or_default();
            let key = if wrapped.is_empty() {
                None
            } else {
                Some(self.kek.unwrap(&subject, &wrapped)?)
            };
            self.cache.insert(subject, key);
        }
        Ok(())
    }

    /// The data key of a loaded subject (`None`: shredded or never made).
    pub fn get(&self, subject: &str) -> Option<&DataKey> {
        self.cache.get(subject).and_then(Option::as_ref)
    }
}
