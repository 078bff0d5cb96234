//! The method table and the dtypes, as the kernel defines them: `METHODS`, `DTYPES`, `MAX_NDIM`
//! and `method_table()`.
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use topozarr_kernel::any::{DTYPE_NAMES, MAX_NDIM};
use topozarr_kernel::api;
use topozarr_kernel::methods::{EmptyValue, MethodInfo, METHODS, TABLE};

use crate::errors::to_py;

/// One row of the table as a dict (the keys are listed in `_core.pyi`).
fn row<'py>(py: Python<'py>, info: &MethodInfo) -> PyResult<Bound<'py, PyDict>> {
    let output = PyDict::new(py);
    let state = PyDict::new(py);
    for dtype in DTYPE_NAMES {
        output.set_item(dtype, api::output_dtype(info.method, dtype).map_err(to_py)?)?;
        state.set_item(dtype, api::state_bytes(info.method, dtype).map_err(to_py)?)?;
    }
    let d = PyDict::new(py);
    d.set_item("name", info.name)?;
    d.set_item("output_dtype", output)?;
    let empty = match info.empty {
        EmptyValue::Fill => "fill",
        EmptyValue::Zero => "zero",
    };
    d.set_item("empty", empty)?;
    d.set_item("decomposable", info.decomposable)?;
    d.set_item("state_bytes", state)?;
    Ok(d)
}

/// Every method the kernel offers, in `METHODS` order: name, output dtype and accumulator state
/// bytes per level cell for each source dtype, what an empty window reports, and whether coarse
/// levels follow from fixed-size partial states. Full contract: topozarr_core/_core.pyi.
#[pyfunction]
pub fn method_table(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    TABLE.iter().map(|info| row(py, info)).collect()
}

/// Adds the constants and `method_table` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("METHODS", PyTuple::new(py, METHODS)?)?;
    m.add("DTYPES", PyTuple::new(py, DTYPE_NAMES)?)?;
    m.add("MAX_NDIM", MAX_NDIM)?;
    m.add_function(wrap_pyfunction!(method_table, m)?)
}
