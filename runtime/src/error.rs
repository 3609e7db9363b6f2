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

/// The message of a caught panic (`catch_unwind`'s payload): its `&str` or `String`, else
/// "no message".
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}
