//! Python registration and conversion only; the algorithms live in pyo3-free modules
//! (`dtype`, `reduce`, `fast`, `kernel`, `accumulate`) that `cargo test` covers without Python.
pub mod dtype;
pub mod error;
pub mod fast;
pub mod kernel;
pub mod reduce;

use error::KernelError;
use kernel::{AnyArray, AnyView};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};

/// Largest number of dimensions the kernel reduces.
pub const MAX_NDIM: usize = 4;

/// The one place kernel errors become Python exceptions.
fn to_py(e: KernelError) -> PyErr {
    match e {
        KernelError::UnsupportedDtype(_) => PyTypeError::new_err(e.to_string()),
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METHODS", PyTuple::new(py, reduce::METHODS)?)?;
    m.add("DTYPES", PyTuple::new(py, dtype::DTYPE_NAMES)?)?;
    m.add("MAX_NDIM", MAX_NDIM)?;
    m.add("SIMD", fast::simd_level())?;
    m.add_function(wrap_pyfunction!(block_reduce, m)?)?;
    Ok(())
}
