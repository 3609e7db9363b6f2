//! The converter's error type. Messages name the item at fault and, where there is one, the fix.

use std::path::PathBuf;

/// Errors of the converter library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// From `kdsr-core`: unknown preset, bad config, missing or mis-shaped weight tensor, I/O.
    #[error(transparent)]
    Core(#[from] kdsr_core::Error),
    /// A teacher config: its IDE needs the HR image, so it cannot run at inference time.
    #[error(
        "config `{preset}` is a teacher network: its IDE reads the HR image, which inference does \
         not have; only student networks can be exported (e.g. `{student}`)"
    )]
    TeacherConfig {
        /// The config's preset name.
        preset: String,
        /// The matching student preset name.
        student: String,
    },
    /// A plain-conv ablation network (`block_conv = "plain"`): trainer only.
    #[error(
        "config `{0}` is the plain-conv ablation (block_conv = plain, no IDR-DDC): it exists to be \
         trained and evaluated by `trainer`, not exported"
    )]
    PlainBlocks(String),
    /// A config whose known preset name belongs to other sizes (a sidecar that lies about the
    /// preset).
    #[error(
        "config names preset `{preset}` ({named}), but its sizes are {found}; the graphs would be \
         labelled `{preset}` with other sizes. Fix the preset name in the config (or use a name \
         that is not a preset for custom sizes), or pass --config with the right preset"
    )]
    PresetMismatch {
        /// The preset name the config gives.
        preset: String,
        /// That preset's sizes.
        named: String,
        /// The config's sizes.
        found: String,
    },
    /// A weight tensor holding NaN or infinity.
    #[error(
        "weight tensor `{key}` holds {count} non-finite value(s) (first: {value} at flat index \
         {index}); the checkpoint is damaged (a diverged training run?) and cannot be exported"
    )]
    NonFiniteWeight {
        /// The tensor's key.
        key: String,
        /// Flat index of the first non-finite value.
        index: usize,
        /// That value.
        value: f32,
        /// How many values of the tensor are not finite.
        count: usize,
    },
    /// No config given, no `NAME.json` beside the weights, none stored in them.
    #[error(
        "no config for {}: {} does not exist and the weights carry no `kdsr.config` metadata; \
         pass --config PRESET (e.g. student-edge) or --config FILE.json",
        weights.display(),
        sidecar.display()
    )]
    NoConfig {
        /// The weights file.
        weights: PathBuf,
        /// The sidecar looked for.
        sidecar: PathBuf,
    },
    /// A weight tensor the graph needs is absent (checked weights never hit this).
    #[error("missing weight tensor `{0}`")]
    MissingWeight(String),
    /// An IDR whose `D` length is not the network's C.
    #[error("IDR {source_name}: `D` has {found} values, the network has C = {expected}")]
    IdrLength {
        /// File or description.
        source_name: String,
        /// Length of `D` in the IDR.
        found: usize,
        /// C of the network.
        expected: usize,
    },
    /// An IDR holding NaN, infinity or absurdly large values.
    #[error("IDR {source_name}: {message}")]
    IdrValues {
        /// File or description.
        source_name: String,
        /// Which value is wrong.
        message: String,
    },
    /// An IDR produced by other weights.
    #[error(
        "IDR {source_name} was made by weights {idr_hash}, these weights are {weights_hash}; \
         pass --force to fold it anyway"
    )]
    IdrHash {
        /// File or description.
        source_name: String,
        /// The IDR's `weights_hash`.
        idr_hash: String,
        /// The hash of the weights being exported.
        weights_hash: String,
    },
    /// A calibration folder without images.
    #[error(
        "calibration folder {}: no images (looked for {exts})",
        dir.display()
    )]
    EmptyCalibration {
        /// The folder.
        dir: PathBuf,
        /// The extensions looked for.
        exts: String,
    },
    /// Options that do not go together or are missing.
    #[error("{0}")]
    Options(String),
    /// A graph that cannot be built (an internal inconsistency, reported rather than panicking).
    #[error("building the graph: {0}")]
    Graph(String),
    /// tract could not load, optimize or run a graph.
    #[error("tract, {what}: {message}")]
    Tract {
        /// What was being done.
        what: String,
        /// tract's error chain.
        message: String,
    },
    /// tract's output differs from the reference forward by more than the tolerance.
    #[error(
        "verification failed: {graph} output `{output}` differs from the reference forward by \
         {diff:e} (tolerance {tolerance:e})"
    )]
    Verification {
        /// Graph kind.
        graph: String,
        /// Output name.
        output: String,
        /// Max abs difference found.
        diff: f64,
        /// Tolerance (absolute, already scaled).
        tolerance: f64,
    },
    /// A reduced-precision graph whose output is too far from the float32 reference forward.
    #[error(
        "verification failed: {graph} output `{output}` on {input} is {psnr:.2} dB PSNR from the \
         float32 reference (floor {floor:.2} dB; lower it with --min-psnr, or --exclude the \
         sensitive nodes)"
    )]
    Psnr {
        /// Graph kind.
        graph: String,
        /// Output name.
        output: String,
        /// The input it was measured on.
        input: String,
        /// PSNR found, dB.
        psnr: f64,
        /// The floor, dB.
        floor: f64,
    },
    /// An ONNX file that cannot be decoded.
    #[error("ONNX {}: {message}", path.display())]
    Onnx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An image that is not usable as network input.
    #[error("image {}: {message}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// I/O on a named file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ConvertError {
    /// The process exit code for this failure class: 3 bad input (config, weights, IDR, image,
    /// options), 4 verification failed (tract error or difference above tolerance), 1 other.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConvertError::Core(kdsr_core::Error::Io { .. }) | ConvertError::Io { .. } => 1,
            ConvertError::Core(_)
            | ConvertError::TeacherConfig { .. }
            | ConvertError::PlainBlocks(_)
            | ConvertError::PresetMismatch { .. }
            | ConvertError::NonFiniteWeight { .. }
            | ConvertError::NoConfig { .. }
            | ConvertError::MissingWeight(_)
            | ConvertError::IdrLength { .. }
            | ConvertError::IdrValues { .. }
            | ConvertError::IdrHash { .. }
            | ConvertError::EmptyCalibration { .. }
            | ConvertError::Options(_)
            | ConvertError::Onnx { .. }
            | ConvertError::Image { .. } => 3,
            ConvertError::Tract { .. }
            | ConvertError::Verification { .. }
            | ConvertError::Psnr { .. } => 4,
            ConvertError::Graph(_) => 1,
        }
    }

    /// Wraps a tract error (an `anyhow` chain) with what was being done.
    pub fn tract(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        ConvertError::Tract {
            what: what.into(),
            message: format!("{e:#}"),
        }
    }
}

/// `Result` with [`ConvertError`].
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;
