//! `scrub_secrets`: the native writer's secret scrubber, exposed so that Python's storage layer
//! masks secrets with the same code (one implementation for both io paths).
use pyo3::prelude::*;
use topozarr_io::target::scrub;

/// `message` with every secret of at least four characters replaced by `***`.
/// Full contract: topozarr_core/_core.pyi.
#[pyfunction]
pub fn scrub_secrets(py: Python<'_>, message: &str, secrets: Vec<String>) -> String {
    let message = message.to_string();
    py.detach(move || scrub(&message, &secrets))
}
