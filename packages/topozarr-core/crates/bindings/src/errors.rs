//! The one place kernel and storage errors become Python exceptions.
use pyo3::exceptions::{
    PyFileNotFoundError, PyMemoryError, PyOSError, PyPermissionError, PyTimeoutError, PyTypeError,
    PyValueError,
};
use pyo3::PyErr;
use topozarr_kernel::error::{KernelError, StorageKind};

/// The one place kernel errors become Python exceptions.
pub fn to_py(e: KernelError) -> PyErr {
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
