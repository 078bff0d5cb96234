//! `ShardBuilder`: shards built inner chunk by inner chunk (see `topozarr_io::assemble`), for
//! the single-pass writer's coarse levels, whose shards fill over several tiles. Only the
//! encoded bytes of finished inner chunks are held (in Rust, per open shard); `finish` returns
//! the shard for zarr-python's store, `finish_to` hands it to a `NativeArray`'s uploads.
use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use topozarr_io::assemble::ChunkAssembler;
use topozarr_kernel::error::{KernelError, Result};

use crate::chunk_batch;
use crate::chunk_file::ChunkFile;
use crate::errors::to_py;
use crate::native::{NativeArray, UploadGroup};

type Chunks = Vec<Option<Vec<u8>>>;

/// One array's open shards, each a list of encoded inner chunks in C order.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct ShardBuilder {
    asm: ChunkAssembler,
    open: Mutex<HashMap<Vec<u64>, Chunks>>,
}

fn chunk_bytes<'a>(data: &'a PyReadonlyArrayDyn<'_, u8>) -> PyResult<&'a [u8]> {
    data.as_slice().map_err(|_| {
        to_py(KernelError::Invalid(
            "chunk data must be C-contiguous; pass np.ascontiguousarray(block)".into(),
        ))
    })
}

impl ShardBuilder {
    fn put(&self, shard: Vec<u64>, chunk: &[u64], data: &[u8]) -> Result<()> {
        self.asm.codec().extent(&shard)?; // a shard index outside the grid: an error now
        let at = self.asm.position(chunk)?;
        let encoded = self.asm.encode_chunk(data)?;
        let n = self.asm.grid().iter().product::<u64>() as usize;
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        open.entry(shard).or_insert_with(|| vec![None; n])[at] = encoded;
        Ok(())
    }

    fn take(&self, shard: &[u64]) -> Result<Option<Vec<u8>>> {
        match self.take_chunks(shard)? {
            Some(chunks) => self.asm.assemble(chunks),
            None => Ok(None),
        }
    }

    fn take_chunks(&self, shard: &[u64]) -> Result<Option<Chunks>> {
        Ok(self.open.lock().map_err(|_| poisoned())?.remove(shard))
    }
}

fn poisoned() -> KernelError {
    KernelError::Invalid("a ShardBuilder lock was poisoned by an earlier panic".into())
}

#[pymethods]
impl ShardBuilder {
    /// From the array's path and its `zarr.json` document; `ValueError` when the array is not
    /// sharded (one `sharding_indexed` codec) or its codecs are unknown to the kernel.
    #[new]
    fn new(path: &str, metadata: &[u8]) -> PyResult<ShardBuilder> {
        let asm = ChunkAssembler::from_json(path, metadata).map_err(to_py)?;
        Ok(ShardBuilder {
            asm,
            open: Mutex::new(HashMap::new()),
        })
    }

    #[getter]
    fn chunk_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.asm.chunk_shape())
    }

    #[getter]
    fn shard_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.asm.codec().shard_shape())
    }

    /// Shards with at least one chunk put and not finished yet.
    #[getter]
    fn open_shards(&self) -> PyResult<usize> {
        Ok(self.open.lock().map_err(|_| to_py(poisoned()))?.len())
    }

    /// The store key of shard `indices`.
    fn key(&self, indices: Vec<u64>) -> String {
        self.asm.codec().key(&indices)
    }

    /// Encode inner chunk `chunk` (its position in the shard) of shard `shard` and keep the
    /// bytes. `data`: the whole chunk as C-ordered raw bytes (`block.view(np.uint8)`), cells
    /// past the array's edge set to anything. A chunk of fill values only is left out.
    fn put_chunk(
        &self,
        py: Python<'_>,
        shard: Vec<u64>,
        chunk: Vec<u64>,
        data: PyReadonlyArrayDyn<'_, u8>,
    ) -> PyResult<()> {
        let bytes = chunk_bytes(&data)?;
        py.detach(|| self.put(shard, &chunk, bytes)).map_err(to_py)
    }

    /// The encoded bytes of one whole inner chunk (as `put_chunk` takes it), without keeping
    /// them: for a writer that streams each chunk into its shard's file. `None` when the chunk
    /// holds only the fill value (it is left out of the shard).
    fn encode_chunk<'py>(
        &self,
        py: Python<'py>,
        data: PyReadonlyArrayDyn<'_, u8>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let bytes = chunk_bytes(&data)?;
        let encoded = py.detach(|| self.asm.encode_chunk(bytes)).map_err(to_py)?;
        Ok(encoded.map(|e| PyBytes::new(py, &e)))
    }

    /// Encode one whole inner chunk (as `encode_chunk` takes it) and append it to `file`, in
    /// one call without the GIL: the bytes go straight from the encoder to the file. Returns
    /// its `(offset, nbytes)` in the file, or `None` when the chunk holds only the fill value
    /// (nothing is written).
    fn append_chunk(
        &self,
        py: Python<'_>,
        data: PyReadonlyArrayDyn<'_, u8>,
        file: &ChunkFile,
    ) -> PyResult<Option<(u64, u64)>> {
        let bytes = chunk_bytes(&data)?;
        py.detach(|| {
            let Some(encoded) = self.asm.encode_chunk(bytes).map_err(to_py)? else {
                return Ok(None);
            };
            let at = file.append_bytes(&encoded)?;
            Ok(Some((at, encoded.len() as u64)))
        })
    }

    /// Encode the whole inner chunks of `block` whose first cells are at `origins` (cell
    /// indices into `block`) and append each to `file` as soon as it is encoded, in one call
    /// without the GIL (one encoded chunk held at a time). `block`: the values as raw bytes
    /// (`values.view(np.uint8)`; any strides, rows contiguous is fastest). Returns each
    /// chunk's `(offset, nbytes)` in the file, `None` for a chunk of fill values only
    /// (nothing written).
    fn append_chunks(
        &self,
        py: Python<'_>,
        block: PyReadonlyArrayDyn<'_, u8>,
        origins: Vec<Vec<usize>>,
        file: &ChunkFile,
    ) -> PyResult<Vec<Option<(u64, u64)>>> {
        let view = block.as_array();
        let mut placed = Vec::with_capacity(origins.len());
        py.detach(|| {
            chunk_batch::encode_each(&self.asm, &view, &origins, |encoded| {
                let entry = match encoded {
                    Some(e) => Some((file.append_bytes(&e)?, e.len() as u64)),
                    None => None,
                };
                placed.push(entry);
                Ok(())
            })
        })?;
        Ok(placed)
    }

    /// The encoded shard (its chunks' bytes and the index), or `None` when no chunk holds
    /// anything but the fill value; the shard is closed.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        shard: Vec<u64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let Some(chunks) = self.take_chunks(&shard).map_err(to_py)? else {
            return Ok(None);
        };
        let Some(index) = self.asm.index_for(&chunks).map_err(to_py)? else {
            return Ok(None);
        };
        // Written straight into the bytes object: no second copy of a (large) shard.
        let len = self.asm.shard_len(&chunks, &index);
        let out = PyBytes::new_with(py, len, |buf| {
            py.detach(|| self.asm.write_shard(chunks, &index, buf));
            Ok(())
        })?;
        Ok(Some(out))
    }

    /// Like `finish`, but the shard goes to `array`'s background uploads (`array` must be the
    /// same array, opened natively). An all-fill shard deletes the key when `delete_empty`,
    /// else (a fresh array) nothing is stored. Returns whether a shard was stored.
    #[pyo3(signature = (shard, array, group = None, delete_empty = true))]
    fn finish_to(
        &self,
        py: Python<'_>,
        shard: Vec<u64>,
        array: &NativeArray,
        group: Option<&UploadGroup>,
        delete_empty: bool,
    ) -> PyResult<bool> {
        let group = group.map(UploadGroup::shared);
        py.detach(|| {
            let encoded = self.take(&shard)?;
            let stored = encoded.is_some();
            if stored || delete_empty {
                array.put_encoded(&shard, encoded.map(Bytes::from), group)?;
            }
            Ok(stored)
        })
        .map_err(to_py)
    }
}
