//! The `topozarr_core._core` extension: registration only. Each exposed group has its own file
//! (`reduce`, `accumulator`, `methods`, `native`, `source`, `secrets`, `builder`, `chunk_batch`, `chunk_file`); `convert` turns Python arguments into kernel
//! values and `errors` kernel errors into Python exceptions. The algorithms live in the pyo3-free
//! crates `topozarr-kernel` and `topozarr-io`.
mod accumulator;
mod builder;
mod chunk_batch;
mod chunk_file;
mod convert;
mod errors;
mod methods;
mod native;
mod reduce;
mod secrets;
mod source;

use pyo3::prelude::*;
use topozarr_kernel::{fast, pool};

#[global_allocator]
static ALLOC: pool::RecyclingAlloc = pool::RecyclingAlloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SIMD", fast::simd_level())?;
    methods::register(m)?;
    m.add_function(wrap_pyfunction!(reduce::block_reduce, m)?)?;
    m.add_function(wrap_pyfunction!(reduce::pyramid_tile, m)?)?;
    m.add_function(wrap_pyfunction!(secrets::scrub_secrets, m)?)?;
    m.add_class::<accumulator::Accumulator>()?;
    m.add_class::<native::NativeStore>()?;
    m.add_class::<native::NativeArray>()?;
    m.add_class::<native::ShardEncoder>()?;
    m.add_class::<native::UploadGroup>()?;
    m.add_class::<builder::ShardBuilder>()?;
    m.add_class::<chunk_file::ChunkFile>()?;
    m.add_class::<source::SourceArray>()?;
    Ok(())
}
