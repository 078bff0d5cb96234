//! The kernel's single error type. It is pyo3-free; `lib.rs` maps it to Python exceptions in one
//! place so every entry point reports bad input the same way.
use std::fmt;

/// Every way a kernel call can reject its input.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// `method` is not one of [`crate::methods::METHODS`].
    UnknownMethod(String),
    /// The array's dtype is not one the kernel reduces (maps to `TypeError`).
    UnsupportedDtype(String),
    /// 0-d arrays and arrays with more than [`crate::any::MAX_NDIM`] dimensions.
    BadNdim(usize),
    /// A stride (or offset/phase/shape) tuple whose length does not match the array's ndim.
    LengthMismatch {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    /// A stride entry that is zero or negative.
    BadStride { stride: Vec<i64>, axis: usize },
    /// `fill_value` cannot be stored in the array's dtype.
    BadFill {
        value: String,
        dtype: &'static str,
        why: &'static str,
    },
    /// Cumulative strides for `pyramid_tile` that do not nest.
    BadStrides(String),
    /// A tile whose dtype differs from its accumulator's (maps to `TypeError`).
    DtypeMismatch(String),
    /// An allocation that cannot be made (maps to `MemoryError`); the size in bytes.
    OutOfMemory(usize),
    /// Anything else wrong with an argument (explained in the message).
    Invalid(String),
    /// A storage operation of the native writer failed; the message names the key and never
    /// holds a secret. `kind` picks the Python exception.
    Storage { kind: StorageKind, message: String },
}

/// What kind of storage failure (maps to FileNotFoundError, PermissionError, TimeoutError or
/// OSError).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    NotFound,
    Denied,
    Timeout,
    Other,
}

impl StorageKind {
    pub fn from_io(e: &std::io::Error) -> StorageKind {
        match e.kind() {
            std::io::ErrorKind::NotFound => StorageKind::NotFound,
            std::io::ErrorKind::PermissionDenied => StorageKind::Denied,
            std::io::ErrorKind::TimedOut => StorageKind::Timeout,
            _ => StorageKind::Other,
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::UnknownMethod(m) => write!(
                f,
                "unknown method {m:?}; valid methods are {}",
                crate::methods::METHODS
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            KernelError::UnsupportedDtype(d) => write!(
                f,
                "unsupported dtype {d:?}; supported dtypes are {}",
                crate::any::DTYPE_NAMES.join(", ")
            ),
            KernelError::BadNdim(n) => write!(
                f,
                "arrays must have 1 to {} dimensions, got {n}",
                crate::any::MAX_NDIM
            ),
            KernelError::LengthMismatch {
                what,
                got,
                expected,
            } => write!(
                f,
                "{what} has {got} entries but the array has {expected} dimensions"
            ),
            KernelError::BadStride { stride, axis } => write!(
                f,
                "stride {stride:?} has {} on axis {axis}; every stride must be a positive integer",
                stride[*axis]
            ),
            KernelError::BadFill { value, dtype, why } => {
                write!(
                    f,
                    "fill_value {value} is not representable in dtype {dtype}: {why}"
                )
            }
            KernelError::OutOfMemory(n) => {
                write!(f, "cannot allocate {n} bytes of accumulator state")
            }
            KernelError::BadStrides(msg)
            | KernelError::Storage { message: msg, .. }
            | KernelError::Invalid(msg)
            | KernelError::DtypeMismatch(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for KernelError {}

/// Result alias used by every pyo3-free module.
pub type Result<T> = std::result::Result<T, KernelError>;
