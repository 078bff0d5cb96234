//! Concurrent uploads with a bound on the bytes in flight.
//!
//! Encoding happens on the caller's thread (a Python worker, GIL released); the encoded object
//! is handed to a small tokio runtime and the caller goes back to encoding the next shard. A
//! semaphore counted in KiB caps the bytes that are encoded but not yet stored, so a slow
//! network throttles the encoders instead of growing memory. The first failure is kept and
//! returned by every later call and by [`Uploader::flush`], so no error is lost.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::target::Target;
use topozarr_kernel::error::{KernelError, Result, StorageKind};

const UNIT: usize = 1024;

/// The uploads of one unit of work (a tile of the pyramid writer): [`Group::wait`] returns once
/// every one of them has finished, so a write journal can record the tile as stored without
/// waiting for everybody else's uploads (as [`Uploader::flush`] does).
#[derive(Default)]
pub struct Group {
    /// (uploads not finished yet, the group's first failure)
    state: Mutex<(usize, Option<KernelError>)>,
    done: Condvar,
}

impl Group {
    fn start(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.0 += 1;
        }
    }

    fn finish(&self, failure: Option<KernelError>) {
        if let Ok(mut st) = self.state.lock() {
            st.0 -= 1;
            if let Some(e) = failure {
                st.1.get_or_insert(e);
            }
        }
        self.done.notify_all();
    }

    /// Uploads of the group not finished yet.
    pub fn pending(&self) -> usize {
        self.state.lock().map_or(0, |st| st.0)
    }

    /// Block until every upload of the group has finished; the group's first failure, if any.
    pub fn wait(&self) -> Result<()> {
        let mut st = self.state.lock().map_err(runtime_error)?;
        while st.0 > 0 {
            st = self.done.wait(st).map_err(runtime_error)?;
        }
        match &st.1 {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

pub struct Uploader {
    rt: Runtime,
    target: Arc<Target>,
    budget: Arc<Semaphore>,
    permits: u32,
    failed: Arc<Mutex<Option<KernelError>>>,
    bytes: Arc<AtomicU64>,
    objects: Arc<AtomicU64>,
}

fn runtime_error(e: impl std::fmt::Display) -> KernelError {
    KernelError::Storage {
        kind: StorageKind::Other,
        message: format!("the upload runtime failed: {e}"),
    }
}

impl Uploader {
    /// An uploader to `target` that keeps at most `max_inflight_bytes` (at least one object)
    /// in flight, with `threads` runtime threads.
    pub fn new(target: Target, max_inflight_bytes: usize, threads: usize) -> Result<Uploader> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("topozarr-io")
            .enable_all()
            .build()
            .map_err(runtime_error)?;
        let permits = (max_inflight_bytes / UNIT).clamp(1, u32::MAX as usize >> 1) as u32;
        Ok(Uploader {
            rt,
            target: Arc::new(target),
            budget: Arc::new(Semaphore::new(permits as usize)),
            permits,
            failed: Arc::new(Mutex::new(None)),
            bytes: Arc::new(AtomicU64::new(0)),
            objects: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The first failure so far, if any.
    pub fn check(&self) -> Result<()> {
        match self.failed.lock().map(|f| f.clone()) {
            Ok(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Read one object (blocking).
    pub fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.target.path(key);
        let store = self.target.store.clone();
        self.rt
            .block_on(async move { store.get(&path).await?.bytes().await })
            .map_err(|e| self.target.error("GET", key, &e))
    }

    /// Store `value` at `key` (`None` deletes it) in the background; blocks only while the
    /// in-flight budget is used up. `group`, when given, counts the upload until it finishes.
    pub fn put(&self, key: String, value: Option<Bytes>, group: Option<Arc<Group>>) -> Result<()> {
        self.check()?;
        let units = value
            .as_ref()
            .map_or(1, |b| b.len().div_ceil(UNIT))
            .clamp(1, self.permits as usize) as u32;
        let permit = self
            .rt
            .block_on(self.budget.clone().acquire_many_owned(units))
            .map_err(runtime_error)?;
        let target = self.target.clone();
        let failed = self.failed.clone();
        let bytes = self.bytes.clone();
        let objects = self.objects.clone();
        if let Some(g) = &group {
            g.start();
        }
        self.rt.spawn(async move {
            let path = target.path(&key);
            let (op, outcome) = match value {
                Some(b) => {
                    let n = b.len() as u64;
                    let r = target.store.put(&path, PutPayload::from(b)).await;
                    if r.is_ok() {
                        bytes.fetch_add(n, Ordering::Relaxed);
                        objects.fetch_add(1, Ordering::Relaxed);
                    }
                    ("PUT", r.map(|_| ()))
                }
                None => match target.store.delete(&path).await {
                    Err(object_store::Error::NotFound { .. }) => ("DELETE", Ok(())),
                    r => ("DELETE", r),
                },
            };
            let failure = outcome.err().map(|e| target.error(op, &key, &e));
            if let Some(e) = &failure {
                if let Ok(mut slot) = failed.lock() {
                    slot.get_or_insert_with(|| e.clone());
                }
            }
            drop(permit);
            if let Some(g) = group {
                g.finish(failure);
            }
        });
        Ok(())
    }

    /// Wait until every upload so far has finished; the first failure, if any.
    pub fn flush(&self) -> Result<()> {
        let all = self
            .rt
            .block_on(self.budget.acquire_many(self.permits))
            .map_err(runtime_error)?;
        drop(all);
        self.check()
    }

    /// (bytes, objects) stored so far.
    pub fn written(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.objects.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Retry;
    use std::time::Duration;

    fn tmp(name: &str) -> String {
        let d = std::env::temp_dir().join(format!("topozarr-core-upload-{name}"));
        let _ = std::fs::remove_dir_all(&d);
        d.to_str().unwrap().to_string()
    }

    #[test]
    fn puts_land_after_flush_and_deletes_tolerate_missing_keys() {
        let root = tmp("put");
        let up = Uploader::new(Target::local(&root).unwrap(), 4 * UNIT, 1).unwrap();
        for i in 0..20 {
            up.put(
                format!("a/c/{i}"),
                Some(Bytes::from(vec![i as u8; 3000])),
                None,
            )
            .unwrap();
        }
        up.put("a/missing".into(), None, None).unwrap();
        up.flush().unwrap();
        assert_eq!(up.written(), (60_000, 20));
        let back = std::fs::read(format!("{root}/a/c/7")).unwrap();
        assert_eq!(back, vec![7u8; 3000]);
        assert_eq!(up.get("a/c/3").unwrap().len(), 3000);
    }

    #[test]
    fn a_failed_put_is_reported_by_flush_and_later_puts() {
        let root = tmp("fail");
        std::fs::create_dir_all(&root).unwrap();
        // A file where a directory must go: the put of "blocker/x" fails.
        std::fs::write(format!("{root}/blocker"), b"file").unwrap();
        let up = Uploader::new(Target::local(&root).unwrap(), 1 << 20, 1).unwrap();
        up.put("blocker/x".into(), Some(Bytes::from_static(b"abc")), None)
            .unwrap();
        let err = up.flush().unwrap_err();
        assert!(err.to_string().contains("blocker/x"), "{err}");
        assert!(up
            .put("ok".into(), Some(Bytes::from_static(b"1")), None)
            .is_err());
    }

    #[test]
    fn a_group_waits_for_its_own_uploads_and_keeps_its_failure() {
        let root = tmp("group");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(format!("{root}/blocker"), b"file").unwrap();
        let up = Uploader::new(Target::local(&root).unwrap(), 1 << 20, 1).unwrap();
        let ok = Arc::new(Group::default());
        for i in 0..5 {
            let key = format!("g/{i}");
            up.put(key, Some(Bytes::from(vec![1u8; 100])), Some(ok.clone()))
                .unwrap();
        }
        ok.wait().unwrap();
        assert_eq!(ok.pending(), 0);
        for i in 0..5 {
            assert_eq!(std::fs::read(format!("{root}/g/{i}")).unwrap().len(), 100);
        }
        let bad = Arc::new(Group::default());
        up.put(
            "blocker/y".into(),
            Some(Bytes::from_static(b"x")),
            Some(bad.clone()),
        )
        .unwrap();
        let err = bad.wait().unwrap_err();
        assert!(err.to_string().contains("blocker/y"), "{err}");
    }

    /// A one-connection-per-request HTTP server on loopback that answers the n-th request
    /// (from 0) with `reply(n)`; returns its endpoint and the request count.
    fn fake_s3(reply: fn(usize) -> &'static str) -> (String, Arc<AtomicU64>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
                let _ = stream.write_all(reply(n).as_bytes());
            }
        });
        (endpoint, count)
    }

    const OK: &str =
        "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const SLOW_DOWN: &str =
        "HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const DENIED: &str = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    fn s3_uploader(endpoint: &str, budget: Duration) -> Uploader {
        let target = Target::s3(
            "bucket",
            "p",
            &[
                ("aws_endpoint".into(), endpoint.into()),
                ("aws_region".into(), "us-east-1".into()),
                ("aws_access_key_id".into(), "AKID".into()),
                ("aws_secret_access_key".into(), "topsecretvalue".into()),
            ],
            &[("allow_http".into(), "true".into())],
            Retry::with_budget(budget),
        )
        .unwrap();
        Uploader::new(target, 1 << 20, 1).unwrap()
    }

    #[test]
    fn throttled_puts_are_retried_until_they_succeed() {
        let (endpoint, count) = fake_s3(|n| if n < 3 { SLOW_DOWN } else { OK });
        let up = s3_uploader(&endpoint, Duration::from_secs(30));
        up.put("a/c/0".into(), Some(Bytes::from_static(b"abc")), None)
            .unwrap();
        up.flush().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert_eq!(up.written(), (3, 1));
    }

    #[test]
    fn client_errors_are_not_retried() {
        let (endpoint, count) = fake_s3(|_| DENIED);
        let up = s3_uploader(&endpoint, Duration::from_secs(30));
        up.put("a/c/0".into(), Some(Bytes::from_static(b"abc")), None)
            .unwrap();
        match up.flush() {
            Err(KernelError::Storage { kind, message }) => {
                assert_eq!(kind, StorageKind::Denied);
                assert!(message.contains("s3://bucket/p/a/c/0"), "{message}");
            }
            other => panic!("expected a denied PUT, got {other:?}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_persistent_failure_gives_up_after_the_budget() {
        let (endpoint, count) = fake_s3(|_| SLOW_DOWN);
        let budget = Duration::from_millis(1500);
        let up = s3_uploader(&endpoint, budget);
        let start = std::time::Instant::now();
        up.put("a/c/1".into(), Some(Bytes::from_static(b"abc")), None)
            .unwrap();
        let err = up.flush().unwrap_err().to_string();
        let took = start.elapsed();
        assert!(err.contains("PUT s3://bucket/p/a/c/1"), "{err}");
        assert!(!err.contains("topsecretvalue"), "{err}");
        // Retried for the whole budget (several attempts), then gave up within one backoff.
        assert!(count.load(Ordering::SeqCst) >= 4, "{count:?}");
        assert!(took >= budget && took < budget * 3, "{took:?}");
    }

    #[test]
    fn get_of_a_missing_key_is_not_found() {
        let up = Uploader::new(Target::local(&tmp("get")).unwrap(), 1 << 20, 1).unwrap();
        match up.get("nope/zarr.json") {
            Err(KernelError::Storage { kind, message }) => {
                assert_eq!(kind, StorageKind::NotFound);
                assert!(message.contains("nope/zarr.json"), "{message}");
            }
            other => panic!("expected NotFound, got {:?}", other.map(|b| b.len())),
        }
    }
}
