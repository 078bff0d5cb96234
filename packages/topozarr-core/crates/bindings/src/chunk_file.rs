//! `ChunkFile`: the temporary file of a shard streamed to a local directory, written from Rust.
//!
//! `ShardBuilder.append_chunk` encodes an inner chunk and appends it here in one call without
//! the GIL: the encoded bytes never become a Python object and the file stays open between
//! chunks. The shard's index and its publication (rename onto the key) stay with the caller
//! (`topozarr_engine.storage.shard_stream`), which records where each chunk landed.
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

/// An open file and the offset where the next append lands.
struct Tail {
    file: Option<File>,
    end: u64,
}

/// A new file (it must not exist) written at explicit offsets; appends start at `start`
/// (past an index that comes first). Appends from several threads are serialised.
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct ChunkFile {
    path: PathBuf,
    tail: Mutex<Tail>,
}

impl ChunkFile {
    /// Write `data` at the end; returns its offset.
    pub fn append_bytes(&self, data: &[u8]) -> PyResult<u64> {
        let mut tail = self.lock()?;
        let at = tail.end;
        self.write(&mut tail, data, at)?;
        tail.end = at + data.len() as u64;
        Ok(at)
    }

    /// Under the lock, so a seek and its write are one step (portable, unlike `pwrite`).
    fn write(&self, tail: &mut Tail, data: &[u8], at: u64) -> PyResult<()> {
        let file = tail.file.as_mut().ok_or_else(|| self.closed())?;
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(data))
            .map_err(|e| self.os_error(e))
    }

    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Tail>> {
        self.tail
            .lock()
            .map_err(|_| PyValueError::new_err("a ChunkFile lock was poisoned by a panic"))
    }

    fn closed(&self) -> PyErr {
        PyValueError::new_err(format!("{} is closed", self.path.display()))
    }

    fn os_error(&self, e: std::io::Error) -> PyErr {
        PyOSError::new_err(format!("writing {}: {e}", self.path.display()))
    }
}

#[pymethods]
impl ChunkFile {
    /// Creates `path` (`FileExistsError` if it exists: a temporary name is never reused).
    #[new]
    #[pyo3(signature = (path, start = 0))]
    fn new(path: PathBuf, start: u64) -> PyResult<ChunkFile> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(PyErr::from)?;
        Ok(ChunkFile {
            path,
            tail: Mutex::new(Tail {
                file: Some(file),
                end: start,
            }),
        })
    }

    /// Offset past the last append.
    #[getter]
    fn end(&self) -> PyResult<u64> {
        Ok(self.lock()?.end)
    }

    /// Write `data` at the end of what was appended; returns its offset.
    fn append(&self, py: Python<'_>, data: &[u8]) -> PyResult<u64> {
        py.detach(|| self.append_bytes(data))
    }

    /// Write `data` at offset `at` (an index), leaving the end where it is.
    fn write_at(&self, py: Python<'_>, data: &[u8], at: u64) -> PyResult<()> {
        py.detach(|| self.write(&mut *self.lock()?, data, at))
    }

    /// Close the file (later writes raise); closing twice does nothing.
    fn close(&self) -> PyResult<()> {
        self.lock()?.file = None;
        Ok(())
    }
}
