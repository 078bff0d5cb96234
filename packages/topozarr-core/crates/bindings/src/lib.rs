//! Python registration and conversion only; the algorithms live in pyo3-free modules
//! (`dtype`, `reduce`, `fast`, `kernel`, `accumulate`) that `cargo test` covers without Python.
pub mod accumulate;
pub mod columns;
pub mod dtype;
pub mod error;
pub mod fast;
pub mod kernel;
pub mod mode;
mod mode_acc;
#[cfg(target_arch = "x86_64")]
mod mode_avx2;
#[cfg(target_arch = "x86_64")]
mod mode_large;
pub mod mode_small;
pub mod ops;
pub mod pool;
mod py_native;
pub mod reduce;
pub mod shard;
pub mod target;
pub mod tile;
pub mod upload;

use error::{KernelError, StorageKind};
use kernel::{AnyArray, AnyView};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray};
use pyo3::exceptions::{
    PyFileNotFoundError, PyMemoryError, PyOSError, PyPermissionError, PyTimeoutError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};

#[global_allocator]
static ALLOC: pool::RecyclingAlloc = pool::RecyclingAlloc;

/// Largest number of dimensions the kernel reduces.
pub const MAX_NDIM: usize = 4;

/// The one place kernel errors become Python exceptions.
pub(crate) fn to_py(e: KernelError) -> PyErr {
    match e {
        KernelError::UnsupportedDtype(_) | KernelError::DtypeMismatch(_) => {
            PyTypeError::new_err(e.to_string())
        }
        KernelError::OutOfMemory(_) => PyMemoryError::new_err(e.to_string()),
        KernelError::Storage { kind, message } => match kind {
            StorageKind::NotFound => PyFileNotFoundError::new_err(message),
            StorageKind::Denied => PyPermissionError::new_err(message),
            StorageKind::Timeout => PyTimeoutError::new_err(message),
            StorageKind::Other => PyOSError::new_err(message),
        },
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// A read-only borrow of a numpy array of any supported dtype.
enum Input<'py> {
    U8(PyReadonlyArrayDyn<'py, u8>),
    I8(PyReadonlyArrayDyn<'py, i8>),
    U16(PyReadonlyArrayDyn<'py, u16>),
    I16(PyReadonlyArrayDyn<'py, i16>),
    U32(PyReadonlyArrayDyn<'py, u32>),
    I32(PyReadonlyArrayDyn<'py, i32>),
    U64(PyReadonlyArrayDyn<'py, u64>),
    I64(PyReadonlyArrayDyn<'py, i64>),
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

macro_rules! input_variants {
    ($m:ident) => {
        $m!(U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32, U64 u64, I64 i64, F32 f32, F64 f64)
    };
}

impl<'py> Input<'py> {
    fn new(a: &Bound<'py, PyAny>) -> PyResult<Self> {
        let Ok(arr) = a.cast::<PyUntypedArray>() else {
            let t = a.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "expected a numpy.ndarray, got {t}"
            )));
        };
        macro_rules! try_cast {
            ($($v:ident $t:ty),*) => {$(
                if let Ok(x) = arr.cast::<PyArrayDyn<$t>>() {
                    return Ok(Input::$v(x.try_readonly()?));
                }
            )*};
        }
        input_variants!(try_cast);
        let name = arr.getattr("dtype")?.str()?.to_string();
        Err(to_py(KernelError::UnsupportedDtype(name)))
    }

    fn view(&self) -> AnyView<'_> {
        macro_rules! v {
            ($($v:ident $t:ty),*) => {
                match self { $(Input::$v(x) => AnyView::$v(x.as_array()),)* }
            };
        }
        input_variants!(v)
    }
}

fn to_numpy(py: Python<'_>, a: AnyArray) -> Bound<'_, PyAny> {
    macro_rules! v {
        ($($v:ident $t:ty),*) => {
            match a { $(AnyArray::$v(x) => x.into_pyarray(py).into_any(),)* }
        };
    }
    input_variants!(v)
}

/// `fill_value`: Python ints (and anything with `__index__`) stay exact integers; everything
/// else goes through `float()`.
fn parse_fill(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<dtype::FillValue>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "fill_value must be a number, got {v}"
        )));
    }
    if let Ok(i) = v.extract::<i128>() {
        return Ok(Some(dtype::FillValue::Int(i)));
    }
    match v.extract::<f64>() {
        Ok(f) => Ok(Some(dtype::FillValue::Float(f))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "fill_value must be a number, got {}",
            v.get_type().name()?
        ))),
    }
}

/// A stride given as an int sequence.
fn parse_stride(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    v.extract::<Vec<i64>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a sequence of integers, got {v}"))
    })
}

/// Reduce every `stride`-shaped window of `a` (1-4 dims) with `method`; shape as
/// xarray.coarsen(boundary="trim"). NaN and `fill_value` cells are missing: skipped when
/// `skipna`, else they make their window missing. Full contract: topozarr_core/_core.pyi.
#[pyfunction]
#[pyo3(signature = (a, stride, method, fill_value=None, skipna=true))]
fn block_reduce<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    method: &str,
    fill_value: Option<&Bound<'py, PyAny>>,
    skipna: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let input = Input::new(a)?;
    let stride = parse_stride(stride, "stride")?;
    let fill = parse_fill(fill_value)?;
    let view = input.view();
    let out = py
        .detach(|| kernel::block_reduce(view, &stride, method, fill, skipna))
        .map_err(to_py)?;
    Ok(to_numpy(py, out))
}

/// Reduce one tile to every cumulative stride in `strides` in one pass (whole windows only),
/// each level exact (built from the previous level's partial states). Full contract:
/// topozarr_core/_core.pyi.
#[pyfunction]
#[pyo3(signature = (a, strides, method, fill_value=None, skipna=true))]
fn pyramid_tile<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    strides: &Bound<'py, PyAny>,
    method: &str,
    fill_value: Option<&Bound<'py, PyAny>>,
    skipna: bool,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let input = Input::new(a)?;
    let strides: Vec<Vec<i64>> = strides.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "strides must be a list of integer tuples, got {strides}"
        ))
    })?;
    let fill = parse_fill(fill_value)?;
    let view = input.view();
    let out = py
        .detach(|| tile::pyramid_tile(view, &strides, method, fill, skipna))
        .map_err(to_py)?;
    Ok(out.into_iter().map(|a| to_numpy(py, a)).collect())
}

/// Partial states of one coarse level (shape in level cells, source dtype), folded tile by tile
/// with `fold(a, offset, stride, *, phase=None)` and finished with `result(start, stop)`.
/// Not for concurrent folds from several threads. Full contract: topozarr_core/_core.pyi.
#[pyclass(name = "Accumulator", module = "topozarr_core._core")]
struct Accumulator {
    inner: Box<dyn accumulate::LevelAccumulator>,
}

/// numpy's canonical name for a dtype-like (`"f4"`, `np.float32`, `np.dtype("float32")`, ...).
fn dtype_name(d: &Bound<'_, PyAny>) -> PyResult<String> {
    let np = d.py().import("numpy")?;
    let dt = np
        .getattr("dtype")?
        .call1((d,))
        .map_err(|_| PyTypeError::new_err(format!("not a numpy dtype: {d}")))?;
    if !dt.getattr("isnative")?.extract::<bool>()? {
        return Err(to_py(KernelError::UnsupportedDtype(
            dt.getattr("str")?.extract()?,
        )));
    }
    dt.getattr("name")?.extract()
}

fn opt_index(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Vec<i64>>> {
    match v.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => parse_stride(v, what).map(Some),
    }
}

#[pymethods]
impl Accumulator {
    #[new]
    #[pyo3(signature = (shape, dtype, method, fill_value=None, skipna=true))]
    fn new(
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        method: &str,
        fill_value: Option<&Bound<'_, PyAny>>,
        skipna: bool,
    ) -> PyResult<Self> {
        let shape = parse_stride(shape, "shape")?;
        let dtype = dtype_name(dtype)?;
        let fill = parse_fill(fill_value)?;
        let inner =
            accumulate::new_accumulator(&shape, &dtype, method, fill, skipna).map_err(to_py)?;
        Ok(Accumulator { inner })
    }

    #[pyo3(signature = (a, offset, stride, *, phase=None))]
    fn fold(
        &mut self,
        py: Python<'_>,
        a: &Bound<'_, PyAny>,
        offset: &Bound<'_, PyAny>,
        stride: &Bound<'_, PyAny>,
        phase: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let input = Input::new(a)?;
        let offset = parse_stride(offset, "offset")?;
        let stride = parse_stride(stride, "stride")?;
        let phase = opt_index(phase, "phase")?;
        let view = input.view();
        let inner = &mut self.inner;
        py.detach(|| inner.fold(view, &offset, &stride, phase.as_deref()))
            .map_err(to_py)
    }

    #[pyo3(signature = (start=None, stop=None))]
    fn result<'py>(
        &self,
        py: Python<'py>,
        start: Option<&Bound<'py, PyAny>>,
        stop: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let start = opt_index(start, "start")?;
        let stop = opt_index(stop, "stop")?;
        let inner = &self.inner;
        let out = py
            .detach(|| inner.result(start.as_deref(), stop.as_deref()))
            .map_err(to_py)?;
        Ok(to_numpy(py, out))
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.dtype()
    }

    #[getter]
    fn method(&self) -> &'static str {
        reduce::METHODS[self.inner.method() as usize]
    }

    fn __repr__(&self) -> String {
        format!(
            "Accumulator(shape={:?}, dtype={:?}, method={:?}, nbytes={})",
            self.inner.shape(),
            self.inner.dtype(),
            reduce::METHODS[self.inner.method() as usize],
            self.inner.nbytes()
        )
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METHODS", PyTuple::new(py, reduce::METHODS)?)?;
    m.add("DTYPES", PyTuple::new(py, dtype::DTYPE_NAMES)?)?;
    m.add("MAX_NDIM", MAX_NDIM)?;
    m.add("SIMD", fast::simd_level())?;
    m.add_function(wrap_pyfunction!(block_reduce, m)?)?;
    m.add_function(wrap_pyfunction!(pyramid_tile, m)?)?;
    m.add_class::<Accumulator>()?;
    m.add_class::<py_native::NativeStore>()?;
    m.add_class::<py_native::NativeArray>()?;
    m.add_class::<py_native::ShardEncoder>()?;
    m.add_class::<py_native::UploadGroup>()?;
    Ok(())
}
