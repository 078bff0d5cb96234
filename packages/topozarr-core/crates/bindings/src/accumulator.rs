//! The `Accumulator` class: one coarse level's partial states, folded tile by tile.
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use topozarr_kernel::accumulate::LevelAccumulator;
use topozarr_kernel::api;

use crate::convert::{dtype_name, opt_index, parse_fill, parse_stride, to_numpy, Input};
use crate::errors::to_py;

/// Partial states of one coarse level (shape in level cells, source dtype), folded tile by tile
/// with `fold(a, offset, stride, *, phase=None)` and finished with `result(start, stop)`.
/// Not for concurrent folds from several threads. Full contract: topozarr_core/_core.pyi.
#[pyclass(name = "Accumulator", module = "topozarr_core._core")]
pub struct Accumulator {
    inner: Box<dyn LevelAccumulator>,
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
        let inner = api::new_accumulator(&shape, &dtype, method, fill, skipna).map_err(to_py)?;
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

    /// Every cell's partial state as bytes (`state_bytes` each, row-major).
    fn export_states<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &self.inner;
        let data = py.detach(|| inner.export_states()).map_err(to_py)?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (data, shape, offset, stride))]
    fn merge_states(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        shape: &Bound<'_, PyAny>,
        offset: &Bound<'_, PyAny>,
        stride: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let shape = parse_stride(shape, "shape")?;
        let offset = parse_stride(offset, "offset")?;
        let stride = parse_stride(stride, "stride")?;
        let inner = &mut self.inner;
        py.detach(|| inner.merge_states(data, &shape, &offset, &stride))
            .map_err(to_py)
    }

    #[pyo3(signature = (factor, *, phase=None))]
    fn coarsened(
        &self,
        py: Python<'_>,
        factor: &Bound<'_, PyAny>,
        phase: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let factor = parse_stride(factor, "factor")?;
        let phase = opt_index(phase, "phase")?;
        let inner = &self.inner;
        let out = py
            .detach(|| inner.coarsened(&factor, phase.as_deref()))
            .map_err(to_py)?;
        Ok(Accumulator { inner: out })
    }

    #[getter]
    fn state_bytes(&self) -> usize {
        self.inner.state_bytes()
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
        self.inner.method().name()
    }

    fn __repr__(&self) -> String {
        format!(
            "Accumulator(shape={:?}, dtype={:?}, method={:?}, nbytes={})",
            self.inner.shape(),
            self.inner.dtype(),
            self.inner.method().name(),
            self.inner.nbytes()
        )
    }
}
