//! Per-subject encryption of personal data in exported files.
//!
//! Every data subject gets a random 256-bit data key. Only its wrapped form
//! is stored (in Lethe's `subject_keys` table): AES-256-GCM under the
//! key-encryption key (KEK), which comes from an environment variable or
//! from Lethe's settings. A PII value in a file is the JSON of the value,
//! sealed with AES-256-GCM under the subject's data key, with the subject
//! and the column as associated data (a value cannot be moved to another
//! subject or column unnoticed). Destroying a subject's data key makes every
//! file written before unreadable for that subject only: crypto-shredding.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroize;

use crate::error::ColdError;

const NONCE: usize = 12;

fn random<const N: usize>() -> Result<[u8; N], ColdError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| ColdError::Crypto(format!("no randomness: {e}")))?;
    Ok(b)
}

fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, ColdError> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce = random::<NONCE>()?;
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| ColdError::Crypto("encryption failed".into()))?,
    );
    Ok(out)
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().ok()?;
    Aes256Gcm::new(key.into())
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .ok()
}

/// The key-encryption key.
pub struct Kek([u8; 32]);

impl Drop for Kek {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Kek {
    /// From 64 hex digits.
    pub fn from_hex(hex_text: &str, source: &str) -> Result<Kek, ColdError> {
        let mut bytes = hex::decode(hex_text.trim()).map_err(|_| {
            ColdError::Invalid(format!(
                "the key-encryption key in {source} is not hex: it must be 64 hex digits (256 bits), e.g. from `openssl rand -hex 32`"
            ))
        })?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(ColdError::Invalid(format!(
                "the key-encryption key in {source} has {} bits; it must have 256 (64 hex digits)",
                hex_text.trim().len() * 4
            )));
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(Kek(k))
    }

    /// From a secret of any length kept in Lethe's settings: its SHA-256.
    pub fn from_secret(secret: &str) -> Kek {
        use sha2::{Digest, Sha256};
        Kek(Sha256::digest(secret.trim().as_bytes()).into())
    }

    /// A new data key, and its wrapped form to store for `subject`.
    pub fn new_data_key(&self, subject: &str) -> Result<(DataKey, String), ColdError> {
        let key = DataKey(random::<32>()?);
        let wrapped = seal(&self.0, subject.as_bytes(), &key.0)?;
        Ok((key, B64.encode(wrapped)))
    }

    /// The data key stored wrapped for `subject`; an error when it was
    /// wrapped under another key-encryption key.
    pub fn unwrap(&self, subject: &str, wrapped: &str) -> Result<DataKey, ColdError> {
        let bad = || {
            ColdError::Crypto(format!(
                "the data key of subject {subject} does not open with this key-encryption key (was it wrapped under another one?)"
            ))
        };
        let sealed = B64.decode(wrapped).map_err(|_| bad())?;
        let mut plain = open(&self.0, subject.as_bytes(), &sealed).ok_or_else(bad)?;
        if plain.len() != 32 {
            plain.zeroize();
            return Err(bad());
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&plain);
        plain.zeroize();
        Ok(DataKey(k))
    }
}

/// One subject's data key.
pub struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The text form of a sealed value: `v1:<subject>:<base64 nonce+ciphertext>`.
const VERSION: &str = "v1";

fn aad(subject: &str, column: &str) -> Vec<u8> {
    format!("{subject}\n{column}").into_bytes()
}

impl DataKey {
    /// Seals `value` (any JSON) of `column` for `subject`.
    pub fn seal(
        &self,
        subject: &str,
        column: &str,
        value: &serde_json::Value,
    ) -> Result<String, ColdError> {
        let plain = value.to_string();
        let sealed = seal(&self.0, &aad(subject, column), plain.as_bytes())?;
        Ok(format!("{VERSION}:{subject}:{}", B64.encode(sealed)))
    }

    /// Opens a value sealed by [`DataKey::seal`]; `None` when it does not
    /// open (another key, another column, tampered).
    pub fn open(&self, column: &str, sealed: &str) -> Option<serde_json::Value> {
        let (subject, data) = parse_sealed(sealed)?;
        let bytes = B64.decode(data).ok()?;
        let plain = open(&self.0, &aad(subject, column), &bytes)?;
        serde_json::from_slice(&plain).ok()
    }
}

/// The subject a sealed value belongs to, and its data.
pub fn parse_sealed(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(VERSION)?.strip_prefix(':')?;
    rest.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_open_only_with_their_key_subject_and_column() {
        let kek = Kek::from_hex(&"ab".repeat(32), "test").unwrap();
        let (key, wrapped) = kek.new_data_key("s1").unwrap();
        let sealed = key.seal("s1", "email", &json!("ann@example.com")).unwrap();
        assert!(!sealed.contains("ann"));
        assert_eq!(parse_sealed(&sealed).map(|s| s.0), Some("s1"));
        let again = kek.unwrap("s1", &wrapped).unwrap();
        assert_eq!(again.open("email", &sealed), Some(json!("ann@example.com")));
        assert_eq!(again.open("name", &sealed), None, "another column");
        assert!(kek.unwrap("s2", &wrapped).is_err(), "another subject's key");
        let (other, _) = kek.new_data_key("s1").unwrap();
        assert_eq!(other.open("email", &sealed), None, "another key");
        let other_kek = Kek::from_hex(&"cd".repeat(32), "test").unwrap();
        assert!(other_kek.unwrap("s1", &wrapped).is_err());
        // Numbers and nulls keep their type.
        let n = key.seal("s1", "age", &json!(42)).unwrap();
        assert_eq!(again.open("age", &n), Some(json!(42)));
        assert!(Kek::from_hex("abc", "test").is_err());
        assert!(Kek::from_hex(&"zz".repeat(32), "test").is_err());
    }
}
