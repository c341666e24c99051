//! Where cold storage lives: a local directory, or S3-compatible object
//! storage (`s3://bucket/prefix`), behind one `object_store` interface.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;

use crate::error::{ColdError, Result};

/// An opened export location.
#[derive(Clone)]
pub struct Location {
    /// As the exports table records it: `s3://bucket/prefix` or an absolute
    /// directory.
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

/// S3 settings that do not fit in the location itself.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// An S3-compatible server (default: AWS).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Access key id and secret; by default from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (and the other usual variables).
    pub credentials: Option<(String, String)>,
}

impl Location {
    /// Opens `to`: `s3://bucket/prefix`, `file:///dir` or a directory
    /// (relative ones are taken from `base`, the policy file's directory).
    /// A missing directory is created with `create` (to export into), an
    /// error otherwise (to import from). S3 credentials come from the
    /// usual variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, ...).
    pub fn open(to: &str, s3: &S3Settings, base: &Path, create: bool) -> Result<Location> {
        if let Some(rest) = to.strip_prefix("s3://") {
            // One crypto provider in the whole tree (ring); reqwest needs it
            // installed before it builds a TLS client.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ColdError::Invalid(format!(
                    "\"{to}\" names no bucket: write s3://bucket/prefix"
                )));
            }
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(r) = &s3.region {
                b = b.with_region(r);
            } else if std::env::var("AWS_REGION").is_err()
                && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                b = b.with_region("us-east-1");
            }
            if let Some((id, secret)) = &s3.credentials {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
            }
            if let Some(e) = &s3.endpoint {
                b = b
                    .with_endpoint(e)
                    .with_allow_http(e.starts_with("http://"))
                    // S3-compatible servers mostly want path-style requests.
                    .with_virtual_hosted_style_request(false);
            }
            let store = b
                .build()
                .map_err(|e| ColdError::Invalid(format!("cannot use {to}: {e}")))?;
            return Ok(Location {
                name: format!("s3://{bucket}/{}", prefix.trim_matches('/')),
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix.trim_matches('/')),
            });
        }
        let dir = to.strip_prefix("file://").unwrap_or(to);
        let dir = if Path::new(dir).is_relative() {
            base.join(dir)
        } else {
            Path::new(dir).to_path_buf()
        };
        if create {
            std::fs::create_dir_all(&dir)
                .map_err(|e| ColdError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        } else if !dir.is_dir() {
            return Err(ColdError::Invalid(format!(
                "{} is not a directory: nothing was exported there",
                dir.display()
            )));
        }
        let dir = std::fs::canonicalize(&dir)?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| ColdError::Storage(format!("cannot use {}: {e}", dir.display())))?;
        Ok(Location {
            name: dir.display().to_string(),
            store: Arc::new(store),
            prefix: ObjectPath::from(""),
        })
    }

    /// A path under the location's prefix.
    pub fn path(&self, relative: &str) -> ObjectPath {
        if self.prefix.as_ref().is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix.as_ref()))
        }
    }

    /// `path` without the location's prefix.
    pub fn relative(&self, path: &ObjectPath) -> String {
        let p = path.as_ref();
        let pre = self.prefix.as_ref();
        if pre.is_empty() {
            p.to_string()
        } else {
            p.strip_prefix(pre)
                .unwrap_or(p)
                .trim_start_matches('/')
                .to_string()
        }
    }
}
