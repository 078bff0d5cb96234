//! Arguments from Python: numpy arrays of any supported dtype borrowed as kernel views, results
//! handed back as numpy arrays, fill values, strides and dtype names.
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBool;
use topozarr_kernel::any::{AnyArray, AnyView};
use topozarr_kernel::dtype::FillValue;
use topozarr_kernel::error::KernelError;

use crate::errors::to_py;

/// A read-only borrow of a numpy array of any supported dtype.
pub enum Input<'py> {
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
    pub fn new(a: &Bound<'py, PyAny>) -> PyResult<Self> {
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

    pub fn view(&self) -> AnyView<'_> {
        macro_rules! v {
            ($($v:ident $t:ty),*) => {
                match self { $(Input::$v(x) => AnyView::$v(x.as_array()),)* }
            };
        }
        input_variants!(v)
    }
}

pub fn to_numpy(py: Python<'_>, a: AnyArray) -> Bound<'_, PyAny> {
    macro_rules! v {
        ($($v:ident $t:ty),*) => {
            match a { $(AnyArray::$v(x) => x.into_pyarray(py).into_any(),)* }
        };
    }
    input_variants!(v)
}

/// `fill_value`: Python ints (and anything with `__index__`) stay exact integers; everything
/// else goes through `float()`.
pub fn parse_fill(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<FillValue>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "fill_value must be a number, got {v}"
        )));
    }
    if let Ok(i) = v.extract::<i128>() {
        return Ok(Some(FillValue::Int(i)));
    }
    match v.extract::<f64>() {
        Ok(f) => Ok(Some(FillValue::Float(f))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "fill_value must be a number, got {}",
            v.get_type().name()?
        ))),
    }
}

/// A stride given as an int sequence.
pub fn parse_stride(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    v.extract::<Vec<i64>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a sequence of integers, got {v}"))
    })
}

/// numpy's canonical name for a dtype-like (`"f4"`, `np.float32`, `np.dtype("float32")`, ...).
pub fn dtype_name(d: &Bound<'_, PyAny>) -> PyResult<String> {
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

pub fn opt_index(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Vec<i64>>> {
    match v.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => parse_stride(v, what).map(Some),
    }
}
