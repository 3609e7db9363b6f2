//! The error type of `kdsr-runtime`. Every variant names the file or value at fault, and
//! [`Error::class`] sorts it into the failure classes the CLI maps to exit codes.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; `kdsr-edge` exits with one code per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// A request the loaded model or the options cannot serve (e.g. an IDR for a dynamic graph).
    Usage,
    /// An input image that cannot be read, decoded or accepted (corrupt, empty, too large).
    Input,
    /// A model (or IDR / bank file) that cannot be read or does not match what is expected.
    Model,
    /// An output that cannot be written.
    Output,
    /// Inference failed inside tract, or another internal failure.
    Runtime,
}

/// Errors of the runtime library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file that cannot be found, read or parsed, or that holds no usable graph.
    #[error("model {}: {message}", path.display())]
    Model {
        /// The file (or prefix / folder) given.
        path: PathBuf,
        /// What went wrong, with the fix where there is one.
        message: String,
    },
    /// An IDR or degradation-bank file that cannot be read or does not fit the model.
    #[error("{}: {message}", path.display())]
    ModelData {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The request does not fit the loaded model or the options.
    #[error("{0}")]
    Usage(String),
    /// An input image that cannot be decoded or is refused.
    #[error("input {}: {message}", path.display())]
    Input {
        /// The file (`-` for stdin, `<memory>` for in-memory images).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An output that cannot be encoded or written.
    #[error("output {}: {message}", path.display())]
    Output {
        /// The file (`-` for stdout).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// tract failed to optimize or run a graph.
    #[error("inference with {}: {message}", path.display())]
    Inference {
        /// The graph file.
        path: PathBuf,
        /// tract's message.
        message: String,
    },
    /// The memory budget cannot hold even the smallest useful tile, or the image buffers alone.
    #[error("memory budget: {0}")]
    Budget(String),
    /// An error from `kdsr-core` (pixel pipeline, IDR format) outside file handling.
    #[error(transparent)]
    Core(#[from] kdsr_core::Error),
}

impl Error {
    /// The failure class (the CLI's exit code).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Model { .. } | Error::ModelData { .. } => ErrorClass::Model,
            Error::Usage(_) | Error::Budget(_) => ErrorClass::Usage,
            Error::Input { .. } => ErrorClass::Input,
            Error::Output { .. } => ErrorClass::Output,
            Error::Inference { .. } | Error::Core(_) => ErrorClass::Runtime,
        }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Output {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `f`, turning a panic inside it into [`Error::Model`] "malformed graph: tract failed
/// while {what} (...)" naming `path` (exit 4). tract 0.23.9 panics on some malformed graphs
/// (found by the `onnx` fuzz target: an output no node produces, a convolution stride of 0,
/// dimension arithmetic that overflows) while loading them, and may while optimizing or
/// running them for a concrete input size; `kdsr-edge` must refuse the file, not die.
pub(crate) fn guard_tract<T>(
    path: &std::path::Path,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(Error::Model {
            path: path.to_path_buf(),
            message: format!(
                "malformed graph: tract failed while {what} ({})",
                panic_message(payload.as_ref())
            ),
        })
    })
}

/// The message of a caught panic (`catch_unwind`'s payload): its `&str` or `String`, else
/// "no message".
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    /// The guard around tract's loading, optimizing and running ([`guard_tract`]): a panic
    /// inside becomes a model error (exit 4) naming the file and the stage, with the panic's
    /// message; an error or a value passes through unchanged. (No graph that loads but then
    /// panics tract while optimizing has been found yet; the fuzz regressions exercise the
    /// loading stage through the same function.)
    #[test]
    fn a_panic_inside_tract_becomes_a_model_error_naming_the_file() {
        let path = std::path::Path::new("some/graph-sr.onnx");
        let e = guard_tract::<()>(path, "optimizing it for input 16x16", || {
            panic!("index out of bounds: the len is 0 but the index is 3")
        })
        .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Model);
        let msg = e.to_string();
        assert!(msg.contains("some/graph-sr.onnx"), "{msg}");
        assert!(
            msg.contains("malformed graph: tract failed while optimizing it for input 16x16"),
            "{msg}"
        );
        assert!(msg.contains("the len is 0 but the index is 3"), "{msg}");
        assert_eq!(guard_tract(path, "loading it", || Ok(7)).ok(), Some(7));
        let passed = guard_tract::<()>(path, "loading it", || Err(Error::Usage("no".into())));
        assert!(matches!(passed, Err(Error::Usage(_))));
    }
}
