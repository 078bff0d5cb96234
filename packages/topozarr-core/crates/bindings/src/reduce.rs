//! `block_reduce` and `pyramid_tile`: one call, one tile, every level.
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use topozarr_kernel::{api, reduce};

use crate::convert::{parse_fill, parse_stride, to_numpy, Input};
use crate::errors::to_py;

/// Reduce every `stride`-shaped window of `a` (1-4 dims) with `method`; shape as
/// xarray.coarsen(boundary="trim"). NaN and `fill_value` cells are missing: skipped when
/// `skipna`, else they make their window missing. Full contract: topozarr_core/_core.pyi.
#[pyfunction]
#[pyo3(signature = (a, stride, method, fill_value=None, skipna=true))]
pub fn block_reduce<'py>(
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
        .detach(|| api::block_reduce(view, &stride, method, fill, skipna))
        .map_err(to_py)?;
    Ok(to_numpy(py, out))
}

/// Reduce one tile to every cumulative stride in `strides` in one pass (whole windows only),
/// each level exact (built from the previous level's partial states). Full contract:
/// topozarr_core/_core.pyi.
#[pyfunction]
#[pyo3(signature = (a, strides, method, fill_value=None, skipna=true, *, parallel=true))]
pub fn pyramid_tile<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    strides: &Bound<'py, PyAny>,
    method: &str,
    fill_value: Option<&Bound<'py, PyAny>>,
    skipna: bool,
    parallel: bool,
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
        .detach(|| {
            let run = || api::pyramid_tile(view, &strides, method, fill, skipna);
            if parallel {
                run()
            } else {
                reduce::sequential(run)
            }
        })
        .map_err(to_py)?;
    Ok(out.into_iter().map(|a| to_numpy(py, a)).collect())
}
