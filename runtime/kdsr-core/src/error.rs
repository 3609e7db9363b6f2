//! The one error type of `kdsr-core`. Every message names the value at fault and, where there is
//! one, the fix.

use std::path::PathBuf;

/// Errors from the spec, the pixel pipeline, the metrics and image I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image or tensor with a zero dimension.
    #[error("{what} is empty ({channels}x{height}x{width}); it needs at least one pixel")]
    Empty {
        /// What was empty.
        what: &'static str,
        /// Channels.
        channels: usize,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// A buffer whose length does not match the shape it was given with.
    #[error("{what}: {len} values do not fill shape {shape:?}")]
    BadLength {
        /// What was being built.
        what: &'static str,
        /// Values given.
        len: usize,
        /// Shape asked for.
        shape: Vec<usize>,
    },
    /// Two operands whose shapes must agree and do not.
    #[error("{what}: shapes {a:?} and {b:?} differ")]
    ShapeMismatch {
        /// The operation.
        what: &'static str,
        /// First shape.
        a: Vec<usize>,
        /// Second shape.
        b: Vec<usize>,
    },
    /// A parameter outside its valid range (σ ≤ 0, even kernel size, …).
    #[error("invalid {name} = {value}: {expected}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must satisfy.
        expected: &'static str,
    },
    /// NaN or ±∞ where finite values are required.
    #[error("{what} contains a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// Where.
        what: &'static str,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A scale factor the architecture does not define.
    #[error("unsupported scale {scale}: KDSR defines scales 2, 3 and 4")]
    UnsupportedScale {
        /// The scale given.
        scale: u32,
    },
    /// An image too small for the operation (e.g. smaller than the reflect padding).
    #[error("{what}: image {height}x{width} is too small, needs at least {min_height}x{min_width}")]
    TooSmall {
        /// The operation.
        what: &'static str,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
        /// Minimum rows.
        min_height: usize,
        /// Minimum columns.
        min_width: usize,
    },
    /// A weight tensor the spec expects is absent.
    #[error("weights {file}: missing tensor `{key}` (spec expects shape {expected:?})")]
    MissingTensor {
        /// File (or `<memory>`).
        file: String,
        /// Official key name.
        key: String,
        /// Expected shape.
        expected: Vec<usize>,
    },
    /// A weight tensor with the wrong shape.
    #[error("weights {file}: tensor `{key}` has shape {found:?}, spec expects {expected:?}")]
    TensorShape {
        /// File (or `<memory>`).
        file: String,
        /// Official key name.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape from the spec.
        expected: Vec<usize>,
    },
    /// A weight tensor with a dtype other than float32.
    #[error("weights {file}: tensor `{key}` is {dtype}, expected F32")]
    TensorDtype {
        /// File (or `<memory>`).
        file: String,
        /// Official key name.
        key: String,
        /// Dtype found.
        dtype: String,
    },
    /// A tensor in the file the spec does not know.
    #[error("weights {file}: unexpected tensor `{key}` (not part of the {preset} spec)")]
    UnexpectedTensor {
        /// File (or `<memory>`).
        file: String,
        /// Key found.
        key: String,
        /// Preset or config description.
        preset: String,
    },
    /// An unknown preset name.
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// Name given.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A config file that does not parse or is inconsistent.
    #[error("config {source_name}: {message}")]
    Config {
        /// File or description.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A safetensors file that cannot be parsed.
    #[error("safetensors {file}: {message}")]
    Safetensors {
        /// File.
        file: String,
        /// Parser message.
        message: String,
    },
    /// An image file that cannot be decoded or encoded.
    #[error("image {}: {message}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An image whose pixel format cannot be represented without loss.
    #[error("image {}: unsupported pixel format {format}", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format.
        format: String,
    },
    /// I/O on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fails with [`Error::NonFinite`] on the first NaN or infinity in `values`.
pub fn check_finite(what: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Fails with [`Error::InvalidParameter`] unless `value` is finite and > 0.
pub fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            expected: "must be finite and > 0",
        })
    }
}

/// Fails with [`Error::InvalidParameter`] unless `value` is finite and >= 0.
pub fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            expected: "must be finite and >= 0",
        })
    }
}

/// Fails with [`Error::UnsupportedScale`] unless `scale` is 2, 3 or 4 (the scales KDSR defines).
pub fn check_scale(scale: u32) -> Result<()> {
    if (2..=4).contains(&scale) {
        Ok(())
    } else {
        Err(Error::UnsupportedScale { scale })
    }
}
