//! Python binding of the native source reader: `SourceArray`, a local Zarr array (v3 or v2)
//! whose regions zarrs decodes straight into a new numpy array (a region that is one whole stored
//! chunk: the array takes zarrs' decoded buffer), with the GIL released.
use numpy::{Element, PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use topozarr_io::source;
use topozarr_kernel::error::KernelError;

use crate::errors::to_py;

/// A local Zarr array opened for region reads (`topozarr_core._core.pyi` has the contract).
#[pyclass(module = "topozarr_core._core", frozen)]
pub struct SourceArray {
    inner: source::SourceArray,
}

/// A new C-ordered numpy array of `T` holding `src[start..stop]`.
fn read_as<'py, T: Element>(
    py: Python<'py>,
    src: &source::SourceArray,
    start: &[u64],
    stop: &[u64],
) -> PyResult<Bound<'py, PyAny>> {
    let region = src.region(start, stop).map_err(to_py)?;
    let shape: Vec<usize> = region.shape().iter().map(|&n| n as usize).collect();
    // A whole stored chunk (a tile on the source's chunks): numpy takes zarrs' decoded buffer.
    if let Some(bytes) = py.detach(|| src.read_chunk(&region)).map_err(to_py)? {
        let flat = PyArray1::<u8>::from_vec(py, bytes);
        let typed = flat.call_method1("view", (T::get_dtype(py),))?;
        return typed.call_method1("reshape", (shape,));
    }
    // SAFETY: uninitialised, then every element is written by `read_into` (missing chunks as
    // the fill value) before the array is returned; on an error it is dropped unread.
    let out = unsafe { PyArrayDyn::<T>::new(py, shape, false) };
    let nbytes = out.len() * std::mem::size_of::<T>();
    // SAFETY: `out` is new and C-contiguous; nothing else can reach its buffer while the GIL
    // is released, so this is the only reference to it.
    let buf = unsafe { std::slice::from_raw_parts_mut(out.data().cast::<u8>(), nbytes) };
    py.detach(|| src.read_into(&region, buf)).map_err(to_py)?;
    Ok(out.into_any())
}

#[pymethods]
impl SourceArray {
    #[new]
    #[pyo3(signature = (root, path = "", *, concurrency = 1))]
    fn new(py: Python<'_>, root: &str, path: &str, concurrency: usize) -> PyResult<Self> {
        let inner = py
            .detach(|| source::SourceArray::open(root, path, concurrency))
            .map_err(to_py)?;
        Ok(SourceArray { inner })
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.dtype()
    }

    fn read<'py>(
        &self,
        py: Python<'py>,
        start: Vec<u64>,
        stop: Vec<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let src = &self.inner;
        match src.dtype() {
            "int8" => read_as::<i8>(py, src, &start, &stop),
            "int16" => read_as::<i16>(py, src, &start, &stop),
            "int32" => read_as::<i32>(py, src, &start, &stop),
            "int64" => read_as::<i64>(py, src, &start, &stop),
            "uint8" => read_as::<u8>(py, src, &start, &stop),
            "uint16" => read_as::<u16>(py, src, &start, &stop),
            "uint32" => read_as::<u32>(py, src, &start, &stop),
            "uint64" => read_as::<u64>(py, src, &start, &stop),
            "float32" => read_as::<f32>(py, src, &start, &stop),
            "float64" => read_as::<f64>(py, src, &start, &stop),
            other => Err(to_py(KernelError::UnsupportedDtype(other.to_string()))),
        }
    }
}
