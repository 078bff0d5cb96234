//! The native writer behind `io="rust"`, without pyo3: shard encoding with zarrs (`shard`),
//! region reads of local Zarr sources with zarrs (`source`),
//! storage targets on object_store (`target`) and bounded concurrent uploads on a small tokio
//! runtime (`upload`). Errors are the kernel's `KernelError::Storage`, so the bindings map every
//! failure to a Python exception in one place.
pub mod assemble;
pub mod shard;
pub mod source;
pub mod target;
pub mod upload;
