//! Where the native writer stores objects: a local directory or an S3 bucket, built on the
//! `object_store` crate, plus the one place storage errors become [`KernelError`]s with every
//! secret scrubbed out of the message.
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};

use topozarr_kernel::error::{KernelError, Result, StorageKind};

/// How an S3 target rides out transient failures (5xx, 429 throttling, timeouts, dropped
/// connections): object_store retries each request with exponential backoff and jitter until
/// `retry_timeout` has passed since its first attempt (`max_retries` is a backstop, the time
/// budget decides). Client errors (4xx: wrong secret, missing bucket) are never retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    pub init_backoff: Duration,
    pub max_backoff: Duration,
}

/// The default retry budget of one request: a few minutes, long enough for an S3 throttling
/// episode or a gateway restart, short enough for request signatures to stay valid.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(300);

impl Retry {
    /// Retries within `budget`: backoff from 100 ms, growing twofold with jitter, each wait
    /// capped at an eighth of the budget (between 0.2 s and 15 s) so a small budget still
    /// gets several attempts and a large one does not sleep through a recovery.
    pub fn with_budget(budget: Duration) -> Retry {
        let cap = (budget / 8).clamp(Duration::from_millis(200), Duration::from_secs(15));
        Retry {
            max_retries: 10_000,
            retry_timeout: budget,
            connect_timeout: Duration::from_secs(5),
            init_backoff: Duration::from_millis(100),
            max_backoff: cap,
        }
    }

    fn config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: self.max_backoff.max(self.init_backoff),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::with_budget(DEFAULT_RETRY_BUDGET)
    }
}

/// An opened storage target: the store, the key prefix inside it, a display name for
/// messages, and the secret strings that must never appear in one.
pub struct Target {
    pub store: Arc<dyn ObjectStore>,
    prefix: String,
    display: String,
    secrets: Vec<String>,
}

/// Config keys whose values are secrets (matched on the key's canonical form).
fn is_secret_key(key: &AmazonS3ConfigKey) -> bool {
    matches!(
        key,
        AmazonS3ConfigKey::SecretAccessKey | AmazonS3ConfigKey::Token
    )
}

/// An object_store configuration key by name, or an error naming it and some valid ones.
fn parse_key<K: FromStr>(name: &str, what: &str, examples: &str) -> Result<K> {
    K::from_str(name).map_err(|_| {
        KernelError::Invalid(format!(
            "unknown {what} {name:?}; use object_store / obstore names such as {examples}"
        ))
    })
}

fn trim_prefix(prefix: &str) -> String {
    prefix.trim_matches('/').to_string()
}

impl Target {
    /// A local directory (created if missing). Writes are atomic: object_store stages each
    /// object in a temporary file beside its destination and renames it into place.
    pub fn local(root: &str) -> Result<Target> {
        std::fs::create_dir_all(root).map_err(|e| KernelError::Storage {
            kind: StorageKind::from_io(&e),
            message: format!("cannot create the directory {root:?}: {e}"),
        })?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(|e| KernelError::Storage {
            kind: StorageKind::Other,
            message: format!("cannot open the directory {root:?}: {e}"),
        })?;
        Ok(Target {
            store: Arc::new(store),
            prefix: String::new(),
            display: format!("file://{}", root.trim_end_matches('/')),
            secrets: Vec::new(),
        })
    }

    /// An S3 bucket. Credentials, endpoint and region come from the standard `AWS_*`
    /// environment variables, then `config` (object_store / obstore key names such as
    /// `aws_endpoint`, `region`, `secret_access_key`) and `client` (`allow_http`, `timeout`,
    /// ...) override them.
    pub fn s3(
        bucket: &str,
        prefix: &str,
        config: &[(String, String)],
        client: &[(String, String)],
        retry: Retry,
    ) -> Result<Target> {
        if bucket.is_empty() {
            return Err(KernelError::Invalid(
                "the S3 bucket name is empty; use s3://bucket/prefix".into(),
            ));
        }
        let mut secrets: Vec<String> = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .collect();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in config {
            let key: AmazonS3ConfigKey = parse_key(
                k,
                "S3 config key",
                "'aws_endpoint', 'aws_region', 'aws_access_key_id'",
            )?;
            if is_secret_key(&key) {
                secrets.push(v.clone());
            }
            builder = builder.with_config(key, v);
        }
        let mut options = ClientOptions::new()
            .with_connect_timeout(retry.connect_timeout)
            .with_timeout(Duration::from_secs(120));
        for (k, v) in client {
            let key: ClientConfigKey = parse_key(
                k,
                "S3 client option",
                "'allow_http', 'timeout', 'connect_timeout'",
            )?;
            options = options.with_config(key, v);
        }
        let retry_config = retry.config();
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        let store = builder
            .with_client_options(options)
            .with_retry(retry_config)
            .build()
            .map_err(|e| KernelError::Storage {
                kind: StorageKind::Other,
                message: scrub(
                    &format!("cannot configure S3 bucket {bucket:?}: {e}"),
                    &secrets,
                ),
            })?;
        let prefix = trim_prefix(prefix);
        let display = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Ok(Target {
            store: Arc::new(store),
            prefix,
            display,
            secrets,
        })
    }

    /// The store path of `key` (a Zarr key relative to the target's root).
    pub fn path(&self, key: &str) -> Path {
        let key = key.trim_start_matches('/');
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// A human-readable URL of `key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{}", self.display, key.trim_start_matches('/'))
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// The storage error for `op` on `key`, secret-free.
    pub fn error(&self, op: &str, key: &str, e: &object_store::Error) -> KernelError {
        let kind = match e {
            object_store::Error::NotFound { .. } => StorageKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StorageKind::Denied,
            _ if format!("{e:?}").contains("imed out") => StorageKind::Timeout,
            _ => StorageKind::Other,
        };
        KernelError::Storage {
            kind,
            message: scrub(
                &format!("{op} {} failed: {e}", self.url(key)),
                &self.secrets,
            ),
        }
    }
}

/// Secrets shorter than this are not masked: replacing every "ab" in a message would mangle it
/// and hide nothing worth hiding.
pub const MIN_SECRET_LEN: usize = 4;

/// `message` with every secret replaced by `***` (server responses can echo request data).
///
/// The one secret scrubber of topozarr: Python's `topozarr_engine.storage.secrets` calls it
/// through `topozarr_core.scrub_secrets`, so both io paths mask exactly the same text.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .fold(message.to_string(), |m, s| m.replace(s.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_secret() {
        let s = vec!["SeCrEt123".to_string(), "ab".to_string()];
        assert_eq!(scrub("a SeCrEt123 b SeCrEt123", &s), "a *** b ***");
    }

    #[test]
    fn s3_paths_and_urls_carry_the_prefix() {
        let t = Target::s3(
            "bucket",
            "/some/prefix/",
            &[
                ("aws_endpoint".into(), "http://127.0.0.1:1".into()),
                ("aws_region".into(), "us-east-1".into()),
                ("aws_access_key_id".into(), "AKID".into()),
                ("aws_secret_access_key".into(), "topsecretvalue".into()),
            ],
            &[("allow_http".into(), "true".into())],
            Retry::default(),
        )
        .unwrap();
        assert_eq!(
            t.path("0/x/zarr.json").as_ref(),
            "some/prefix/0/x/zarr.json"
        );
        assert_eq!(t.url("0/x/c/0/0"), "s3://bucket/some/prefix/0/x/c/0/0");
        assert!(t.secrets.contains(&"topsecretvalue".to_string()));
    }

    #[test]
    fn backoff_is_capped_by_the_budget() {
        let small = Retry::with_budget(Duration::from_secs(2));
        assert_eq!(small.retry_timeout, Duration::from_secs(2));
        assert_eq!(small.max_backoff, Duration::from_millis(250));
        let tiny = Retry::with_budget(Duration::from_millis(100));
        assert_eq!(tiny.max_backoff, Duration::from_millis(200));
        let default = Retry::default();
        assert_eq!(default.retry_timeout, DEFAULT_RETRY_BUDGET);
        assert_eq!(default.max_backoff, Duration::from_secs(15));
        let config = default.config();
        assert_eq!(config.retry_timeout, DEFAULT_RETRY_BUDGET);
        assert_eq!(config.backoff.init_backoff, Duration::from_millis(100));
        assert!(config.max_retries >= 1000);
    }

    #[test]
    fn unknown_config_keys_are_named() {
        let err = Target::s3(
            "b",
            "",
            &[("nope".into(), "1".into())],
            &[],
            Retry::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn local_paths_are_relative_to_the_root() {
        let dir = std::env::temp_dir().join("topozarr-core-target-test");
        let t = Target::local(dir.to_str().unwrap()).unwrap();
        assert_eq!(t.path("a/zarr.json").as_ref(), "a/zarr.json");
        assert!(t.url("a").starts_with("file://"));
    }
}
