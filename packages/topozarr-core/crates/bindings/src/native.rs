//! Python bindings of the native writer (`io="rust"`): `NativeStore` (a storage target with its
//! upload pool) and `NativeArray` (one array's shard encoder). Every blocking call releases the
//! GIL; errors go through `crate::errors::to_py`.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use numpy::PyReadonlyArrayDyn;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyTuple};

use topozarr_io::shard::ShardCodec;
use topozarr_io::target::{Retry, Target};
use topozarr_io::upload::{Group, Uploader};
use topozarr_kernel::error::KernelError;

use crate::errors::to_py;

const IO_THREADS: usize = 2;

/// `{key: value}` as strings; booleans as `true` / `false` (object_store's spelling).
fn pairs(d: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let Some(d) = d else { return Ok(Vec::new()) };
    d.iter()
        .map(|(k, v)| {
            let value = if v.is_instance_of::<PyBool>() {
                if v.is_truthy()? { "true" } else { "false" }.to_string()
            } else {
                v.str()?.to_string()
            };
            Ok((k.str()?.to_string(), value))
        })
        .collect()
}

fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a positive number of seconds, got {v}"
        ))
    })
}

/// The keyword options of `NativeStore.s3` (taken as `**options` so that the binding stays
/// within clippy's argument limit; `_core.pyi` lists them with their defaults).
struct S3Options {
    config: Vec<(String, String)>,
    client: Vec<(String, String)>,
    max_inflight_bytes: usize,
    retry: Retry,
}

const S3_OPTIONS: [&str; 8] = [
    "config",
    "client_options",
    "max_inflight_bytes",
    "max_retries",
    "retry_timeout",
    "connect_timeout",
    "init_backoff",
    "max_backoff",
];

/// The option `name` of `options` (absent or None: `None`), extracted as `T`.
fn option<'py, T: FromPyObjectOwned<'py>>(
    options: Option<&Bound<'py, PyDict>>,
    name: &str,
) -> PyResult<Option<T>> {
    let Some(v) = options.map(|o| o.get_item(name)).transpose()?.flatten() else {
        return Ok(None);
    };
    if v.is_none() {
        return Ok(None);
    }
    v.extract::<T>().map(Some).map_err(|e| {
        let e: PyErr = e.into();
        PyTypeError::new_err(format!("NativeStore.s3() argument '{name}': {e}"))
    })
}

impl S3Options {
    fn parse(options: Option<&Bound<'_, PyDict>>) -> PyResult<S3Options> {
        if let Some(o) = options {
            for key in o.keys() {
                let key = key.str()?.to_string();
                if !S3_OPTIONS.contains(&key.as_str()) {
                    return Err(PyTypeError::new_err(format!(
                        "NativeStore.s3() got an unexpected keyword argument '{key}'"
                    )));
                }
            }
        }
        let budget = option::<f64>(options, "retry_timeout")?.unwrap_or(300.0);
        let mut retry = Retry::with_budget(seconds(budget, "retry_timeout")?);
        retry.max_retries = option(options, "max_retries")?.unwrap_or(10_000);
        let connect = option::<f64>(options, "connect_timeout")?.unwrap_or(5.0);
        retry.connect_timeout = seconds(connect, "connect_timeout")?;
        if let Some(v) = option::<f64>(options, "init_backoff")? {
            retry.init_backoff = seconds(v, "init_backoff")?;
        }
        if let Some(v) = option::<f64>(options, "max_backoff")? {
            retry.max_backoff = seconds(v, "max_backoff")?;
        }
        let config = option::<Bound<'_, PyDict>>(options, "config")?;
        let client = option::<Bound<'_, PyDict>>(options, "client_options")?;
        Ok(S3Options {
            config: pairs(config.as_ref())?,
            client: pairs(client.as_ref())?,
            // Required: the one default lives in Python (topozarr_engine.storage.INFLIGHT).
            max_inflight_bytes: option(options, "max_inflight_bytes")?.ok_or_else(|| {
                PyTypeError::new_err(
                    "NativeStore.s3() missing required keyword argument 'max_inflight_bytes'",
                )
            })?,
            retry,
        })
    }
}

/// A storage target of the native writer: a local directory or an S3 bucket (prefix), with a
/// pool of background uploads bounded by `max_inflight_bytes`.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct NativeStore {
    up: Arc<Uploader>,
}

#[pymethods]
impl NativeStore {
    /// A local directory; every object is written to a temporary file and renamed into place.
    #[staticmethod]
    #[pyo3(signature = (root, *, max_inflight_bytes))]
    fn local(py: Python<'_>, root: &str, max_inflight_bytes: usize) -> PyResult<NativeStore> {
        let up = py
            .detach(|| Uploader::new(Target::local(root)?, max_inflight_bytes, IO_THREADS))
            .map_err(to_py)?;
        Ok(NativeStore { up: Arc::new(up) })
    }

    /// An S3 bucket under `prefix`. Credentials, endpoint and region come from the `AWS_*`
    /// environment variables; `config` and `client_options` (object_store / obstore key names)
    /// override them.
    ///
    /// Transient failures (5xx, 429, timeouts, dropped connections) are retried with
    /// exponential backoff and jitter for up to `retry_timeout` seconds per request
    /// (`max_retries` is a backstop); `init_backoff` / `max_backoff` (seconds) default to
    /// 0.1 s and an eighth of the budget (0.2 s to 15 s). 4xx answers are never retried.
    #[staticmethod]
    #[pyo3(signature = (bucket, prefix = "", **options))]
    fn s3(
        py: Python<'_>,
        bucket: &str,
        prefix: &str,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<NativeStore> {
        let o = S3Options::parse(options)?;
        let up = py
            .detach(|| {
                let target = Target::s3(bucket, prefix, &o.config, &o.client, o.retry)?;
                Uploader::new(target, o.max_inflight_bytes, IO_THREADS)
            })
            .map_err(to_py)?;
        Ok(NativeStore { up: Arc::new(up) })
    }

    /// Open the array at `path` from its `zarr.json` (written beforehand, e.g. by zarr-python).
    ///
    /// `metadata`, when given, is that document's bytes as the writer already holds them:
    /// no request is made (on object storage each GET is a round trip the workers wait for).
    #[pyo3(signature = (path, metadata = None))]
    fn open_array(
        &self,
        py: Python<'_>,
        path: &str,
        metadata: Option<&[u8]>,
    ) -> PyResult<NativeArray> {
        let path = path.trim_matches('/').to_string();
        let key = if path.is_empty() {
            "zarr.json".to_string()
        } else {
            format!("{path}/zarr.json")
        };
        let codec = py
            .detach(|| {
                self.up.check()?;
                match metadata {
                    Some(json) => ShardCodec::from_json(&path, json),
                    None => ShardCodec::from_json(&path, &self.up.get(&key)?),
                }
            })
            .map_err(to_py)?;
        Ok(NativeArray {
            up: self.up.clone(),
            codec,
            path,
        })
    }

    /// Wait for every upload so far; raises the first failure, if any.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.up.flush()).map_err(to_py)
    }

    /// The target as a URL (`file://...` or `s3://bucket/prefix`); never holds a secret.
    #[getter]
    fn url(&self) -> String {
        self.up.target().display().to_string()
    }

    /// Bytes stored so far (completed uploads).
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.up.written().0
    }

    /// Objects stored so far (completed uploads).
    #[getter]
    fn objects_written(&self) -> u64 {
        self.up.written().1
    }

    fn __repr__(&self) -> String {
        format!("NativeStore({:?})", self.up.target().display())
    }
}

/// One array of a [`NativeStore`]: encodes whole shards with the array's codec chain.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct NativeArray {
    up: Arc<Uploader>,
    codec: ShardCodec,
    path: String,
}

#[pymethods]
impl NativeArray {
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.codec.shape())
    }

    /// The shape of one shard (the outer chunk of the array's grid).
    #[getter]
    fn shard_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.codec.shard_shape())
    }

    #[getter]
    fn itemsize(&self) -> usize {
        self.codec.itemsize()
    }

    /// Encode shard `indices` from `data` and store it in the background.
    ///
    /// `data` is the shard's in-bounds extent as C-ordered raw bytes (`block.view(np.uint8)`
    /// of a C-contiguous block); edge shards are padded with the fill value. An all-fill shard
    /// deletes the key instead. Storage errors surface here, from `NativeStore.flush`, and
    /// from `group.wait()` when the upload is counted in `group`.
    #[pyo3(signature = (indices, data, group = None))]
    fn write_shard(
        &self,
        py: Python<'_>,
        indices: Vec<u64>,
        data: PyReadonlyArrayDyn<'_, u8>,
        group: Option<&UploadGroup>,
    ) -> PyResult<()> {
        let bytes = shard_bytes(&data)?;
        let group = group.map(|g| g.inner.clone());
        py.detach(|| {
            self.up.check()?;
            let key = self.codec.key(&indices);
            let encoded = self.codec.encode(&indices, bytes)?;
            self.up.put(key, encoded.map(Bytes::from), group)
        })
        .map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!(
            "NativeArray({:?}, shape={:?}, shard_shape={:?})",
            self.path,
            self.codec.shape(),
            self.codec.shard_shape()
        )
    }
}

/// A set of background uploads that can be waited for on its own (one tile's shards), so a
/// write journal records a tile only once its shards are stored.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct UploadGroup {
    inner: Arc<Group>,
}

#[pymethods]
impl UploadGroup {
    #[new]
    fn new() -> UploadGroup {
        UploadGroup {
            inner: Arc::new(Group::default()),
        }
    }

    /// Uploads of the group not finished yet.
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Block (GIL released) until every upload of the group has finished; raises the group's
    /// first storage error, naming the key.
    fn wait(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.wait()).map_err(to_py)
    }
}

/// An array's shard encoder without storage: for writers that store through another library
/// (zarr-python's store API with `io="python"`) but want the kernel's codecs.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct ShardEncoder {
    codec: ShardCodec,
}

fn shard_bytes<'a>(data: &'a PyReadonlyArrayDyn<'_, u8>) -> PyResult<&'a [u8]> {
    data.as_slice().map_err(|_| {
        to_py(KernelError::Invalid(
            "shard data must be C-contiguous; pass np.ascontiguousarray(block)".into(),
        ))
    })
}

#[pymethods]
impl ShardEncoder {
    /// From the array's path and its `zarr.json` document (bytes or str).
    #[new]
    fn new(path: &str, metadata: &[u8]) -> PyResult<ShardEncoder> {
        let codec = ShardCodec::from_json(path, metadata).map_err(to_py)?;
        Ok(ShardEncoder { codec })
    }

    #[getter]
    fn shard_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.codec.shard_shape())
    }

    /// The store key of shard `indices`.
    fn key(&self, indices: Vec<u64>) -> String {
        self.codec.key(&indices)
    }

    /// The encoded shard, or `None` when every value is the fill value. `data` as for
    /// `NativeArray.write_shard`.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<u64>,
        data: PyReadonlyArrayDyn<'_, u8>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let bytes = shard_bytes(&data)?;
        let encoded = py
            .detach(|| self.codec.encode(&indices, bytes))
            .map_err(to_py)?;
        Ok(encoded.map(|b| PyBytes::new(py, &b)))
    }
}

impl NativeArray {
    /// Store shard `indices` already encoded (`None`: delete its key), in the background.
    pub(crate) fn put_encoded(
        &self,
        indices: &[u64],
        encoded: Option<Bytes>,
        group: Option<Arc<Group>>,
    ) -> topozarr_kernel::error::Result<()> {
        self.up.check()?;
        self.codec.extent(indices)?;
        self.up.put(self.codec.key(indices), encoded, group)
    }
}

impl UploadGroup {
    pub(crate) fn shared(&self) -> Arc<Group> {
        self.inner.clone()
    }
}
