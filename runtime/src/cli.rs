//! Command-line definition (clap derive) and the exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kdsr_core::io::ImageSize;
use kdsr_runtime::ErrorClass;

/// Exit codes, one per failure class (also printed by `--help`).
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// Inference or another internal failure.
    pub const RUNTIME: u8 = 1;
    /// Usage: bad arguments, or a request the model cannot serve.
    pub const USAGE: u8 = 2;
    /// An input image that cannot be read, decoded or accepted.
    pub const INPUT: u8 = 3;
    /// A model, IDR or bank file that cannot be read or does not match.
    pub const MODEL: u8 = 4;
    /// An output that cannot be written.
    pub const OUTPUT: u8 = 5;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  inference or internal failure
  2  usage: bad arguments, or a request the model cannot serve (e.g. --idr with a dynamic graph,
     an image over --mem-budget, a --tile too small to keep a useful core), checked from the
     image header before decoding
  3  input image: unreadable, corrupt, truncated (JPEG too, unless --allow-truncated), empty,
     animated/multi-frame, or over --max-pixels
  4  model: missing or unreadable model, metadata or graph inputs/outputs that do not match the
     declared kind, IDR or bank made by other weights, IDR without a weights hash or with
     non-finite values, a model whose output is not finite
  5  output: cannot be encoded or written (e.g. JPEG wider than 65535 px), or would overwrite an
     input
A folder run continues past failing files, lists them at the end and exits with the code of the
first failure.";

/// The exit code of a failure class.
pub fn class_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Usage => code::USAGE,
        ErrorClass::Input => code::INPUT,
        ErrorClass::Model => code::MODEL,
        ErrorClass::Output => code::OUTPUT,
        ErrorClass::Runtime => code::RUNTIME,
    }
}

/// A CLI-level failure with its class (for errors that do not come from the library).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Class (exit code).
    pub class: ErrorClass,
    /// Message.
    pub message: String,
}

impl Failure {
    /// A usage failure.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Usage,
            message: message.into(),
        }
    }
}

/// The class of an error: the first library [`kdsr_runtime::Error`] or [`Failure`] in its chain.
pub fn class_of(e: &anyhow::Error) -> ErrorClass {
    e.chain()
        .find_map(|c| {
            c.downcast_ref::<kdsr_runtime::Error>()
                .map(kdsr_runtime::Error::class)
                .or_else(|| c.downcast_ref::<Failure>().map(|f| f.class))
        })
        .unwrap_or(ErrorClass::Runtime)
}

/// The exit code of an error.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    class_code(class_of(e))
}

/// KDSR ×4 blind super-resolution with tract, on CPUs and ARM boards.
///
/// Models are ONNX graphs exported by `converter export`: a split pair (PREFIX-ide.onnx +
/// PREFIX-sr.onnx: the IDR is estimated once per image and shared by all tiles), a dynamic graph
/// (one file, never tiled) or a folded graph (a camera's IDR built in).
#[derive(Debug, Parser)]
#[command(name = "kdsr-edge", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upscale an image, a folder of images, or stdin.
    #[command(after_help = EXIT_CODES)]
    Upscale(UpscaleArgs),
    /// Upscale a video stream frame by frame: YUV4MPEG2 (ffmpeg -f yuv4mpegpipe) or raw
    /// I420/RGB24 frames (--size WxH) from stdin or a file, x4 frames in the same format out,
    /// with one IDR per stream (estimated from the first frames or given).
    #[command(after_help = STREAM_HELP)]
    Stream(StreamArgs),
    /// Estimate an image's degradation (IDR) and name the nearest known degradation.
    #[command(after_help = EXIT_CODES)]
    InspectDegradation(InspectArgs),
    /// Average the IDRs of a folder of images from one camera into an .idr file.
    #[command(after_help = EXIT_CODES)]
    Calibrate(CalibrateArgs),
    /// Time each graph of one or more models at a given LR size.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
    /// Build a degradation bank (PREFIX.bank) by degrading sample images with known blur and
    /// noise and running the IDE.
    #[command(after_help = EXIT_CODES)]
    MakeBank(MakeBankArgs),
    /// Evaluate a model on folders of HR images (Gaussian8, anisotropic + noise): PSNR/SSIM next
    /// to bicubic and the paper, as `trainer eval` measures a checkpoint.
    #[command(after_help = EXIT_CODES)]
    Eval(EvalArgs),
    /// Write the manual pages (roff): kdsr-edge.1 and one per subcommand (kdsr-edge-upscale.1,
    /// …), for packagers (scripts/package-deb.sh). Hidden from the help, as ripgrep's
    /// `--generate man` is.
    #[command(hide = true)]
    Man(ManArgs),
}

/// Arguments of `kdsr-edge man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// tract's direct spatial convolution (`TRACT_DISABLE_DIRECT_SPATIAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KnobArg {
    /// The measured default (disabled, except for folded graphs).
    Auto,
    /// Direct spatial convolution on (tract's default).
    On,
    /// Direct spatial convolution off (im2col + matrix product).
    Off,
}

impl From<KnobArg> for kdsr_runtime::DirectSpatial {
    fn from(k: KnobArg) -> Self {
        match k {
            KnobArg::Auto => Self::Auto,
            KnobArg::On => Self::On,
            KnobArg::Off => Self::Off,
        }
    }
}

/// Options shared by every command that runs a model.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model: split prefix (PREFIX-ide.onnx + PREFIX-sr.onnx), one .onnx file (dynamic or
    /// folded), or a folder holding one model. Default: the camera model (edge/camera/student-edge-camera),
    /// searched for in order: $KDSR_MODEL, beside the executable, EXE_DIR/../share/kdsr/models,
    /// the repository's models/ above the executable, then the copy built into the binary.
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
    /// A model by name, searched for like the default (not in $KDSR_MODEL), e.g.
    /// `student-edge-int8` (realesrgan-ncnn-vulkan's -n).
    #[arg(short = 'n', long = "model-name", conflicts_with = "model")]
    pub name: Option<String>,
    /// Threads for tract (0 = all cores; more than the cores is capped at the cores). Also
    /// accepts realesrgan-ncnn-vulkan's `-j load:proc:save`, whose `proc` count is used.
    #[arg(short = 'j', long, default_value = "0", value_parser = parse_threads)]
    pub threads: usize,
    /// tract's direct spatial convolution.
    #[arg(long, value_enum, default_value_t = KnobArg::Auto)]
    pub direct_spatial: KnobArg,
    /// Number type of the 3×3 convolutions: f32, or bf16 on Intel AMX (Xeon Sapphire Rapids and
    /// later; ~2–3× faster, PSNR within 0.01 dB on Set5/Set14, README "Reduced precision").
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
}

/// `--precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// float32 throughout.
    F32,
    /// The 3×3 convolutions' inputs and weights in bf16, sums in float32, on AMX; an error
    /// where the CPU or OS has no AMX bf16.
    Bf16,
}

impl From<PrecisionArg> for kdsr_runtime::ConvPrecision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Self::F32,
            PrecisionArg::Bf16 => Self::Bf16,
        }
    }
}

/// `--threads N`, or realesrgan-ncnn-vulkan's `-j load:proc:save` (the `proc` count).
fn parse_threads(s: &str) -> Result<usize, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let n = match parts.as_slice() {
        [n] => n,
        [_, proc_, _] => proc_,
        _ => {
            return Err(format!(
                "`{s}`: expected a thread count N or load:proc:save"
            ));
        }
    };
    n.trim()
        .parse()
        .map_err(|_| format!("`{s}`: expected a thread count N or load:proc:save"))
}

/// `-s`/`--scale`: the upscaling factor; the model decides it, so only its own is accepted.
#[derive(Debug, Args, Clone, Copy)]
pub struct ScaleArg {
    /// Upscaling factor (realesrgan-ncnn-vulkan's -s). The model fixes it: KDSR graphs here are
    /// x4, so 4 is accepted and other factors are refused.
    #[arg(short = 's', long = "scale")]
    pub scale: Option<u32>,
}

/// `--progress`: progress lines on stderr.
#[derive(Debug, Args, Clone, Copy)]
pub struct ProgressArg {
    /// Progress as lines on stderr (JSON lines with --json), from the model loading on: works
    /// without a terminal (pipes, logs, systemd). On a terminal a bar is shown anyway.
    #[arg(long)]
    pub progress: bool,
}

/// Output formats selectable with `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// PNG (keeps 16-bit, alpha, ICC, EXIF).
    Png,
    /// JPEG (8-bit, no alpha; keeps ICC, EXIF).
    #[value(alias = "jpeg")]
    Jpg,
    /// Lossless WebP (8-bit; keeps alpha, ICC, EXIF).
    Webp,
    /// TIFF (keeps 16-bit and RGB alpha; no ICC/EXIF).
    #[value(alias = "tif")]
    Tiff,
    /// PAM (keeps 16-bit and alpha; no metadata).
    Pam,
}

impl From<FormatArg> for kdsr_runtime::io::OutFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Png => Self::Png,
            FormatArg::Jpg => Self::Jpeg,
            FormatArg::Webp => Self::WebP,
            FormatArg::Tiff => Self::Tiff,
            FormatArg::Pam => Self::Pam,
        }
    }
}

/// `kdsr-edge upscale`.
#[derive(Debug, Args)]
pub struct UpscaleArgs {
    /// Input: an image file, a folder (its PNG/JPEG/WebP/TIFF/PNM files, not recursive) or `-`
    /// (stdin).
    #[arg(short = 'i', long = "input")]
    pub input: PathBuf,
    /// Output: a file (format from its extension), a folder (an existing one, or a path ending
    /// in `/`, created if missing; files named after the inputs) or `-` (stdout, PNG unless
    /// --format).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Model and runtime options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Upscaling factor (-s 4).
    #[command(flatten)]
    pub scale: ScaleArg,
    /// Progress lines.
    #[command(flatten)]
    pub progress: ProgressArg,
    /// Output format (default: the output file's extension; for folders the input's format
    /// where it can be written, else PNG).
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<FormatArg>,
    /// LR tile (window) side in pixels, context included (default, or 0: sized from
    /// --mem-budget). At least 3 × the model's receptive radius (63 for student-edge), so that
    /// each window keeps a core as wide as its context.
    #[arg(short = 't', long)]
    pub tile: Option<usize>,
    /// Memory budget per image in MiB (input, output and network working set).
    #[arg(long = "mem-budget", default_value_t = 512)]
    pub mem_budget: usize,
    /// Use this IDR (.idr from `calibrate` or `inspect-degradation --save-idr`) instead of
    /// estimating one per image (split models only).
    #[arg(long)]
    pub idr: Option<PathBuf>,
    /// Largest input in pixels (width × height), checked from the file header before decoding.
    #[arg(long = "max-pixels", default_value_t = kdsr_runtime::io::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// JPEG quality (1-100).
    #[arg(
        long = "jpeg-quality",
        default_value_t = 95,
        value_parser = clap::value_parser!(u8).range(1..=100)
    )]
    pub jpeg_quality: u8,
    /// Upscale a JPEG that ends before its end-of-image marker (a cut-off download or copy)
    /// instead of refusing it; the missing part comes out grey.
    #[arg(long = "allow-truncated")]
    pub allow_truncated: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress or per-file lines (errors are still printed).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Drop the ICC profile and EXIF instead of copying them to the output.
    #[arg(long)]
    pub strip: bool,
}

/// `kdsr-edge inspect-degradation`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image.
    pub image: PathBuf,
    /// Model and runtime options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Degradation bank (default: PREFIX.bank next to the model, if present).
    #[arg(long)]
    pub bank: Option<PathBuf>,
    /// How many nearest bank entries to show.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Also save the IDR to this .idr file.
    #[arg(long = "save-idr")]
    pub save_idr: Option<PathBuf>,
    /// Largest input in pixels.
    #[arg(long = "max-pixels", default_value_t = kdsr_runtime::io::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `kdsr-edge calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Folder of images from one camera.
    #[arg(short = 'i', long = "input")]
    pub input: PathBuf,
    /// The .idr file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Model and runtime options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Largest input in pixels.
    #[arg(long = "max-pixels", default_value_t = kdsr_runtime::io::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress or per-file lines.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Which knob settings `bench` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchKnob {
    /// Both, for comparison.
    Both,
    /// The measured default per graph kind, as `upscale` runs it (`--direct-spatial auto`).
    Auto,
    /// Direct spatial convolution on.
    On,
    /// Direct spatial convolution off.
    Off,
}

/// `kdsr-edge bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models to time (repeat -m); default: the default model's files, searched for as
    /// `upscale` searches (the built-in copy does not count).
    #[arg(short = 'm', long = "model")]
    pub models: Vec<PathBuf>,
    /// LR size, WxH (width first).
    #[arg(long, value_name = "WxH", default_value = "320x180")]
    pub size: ImageSize,
    /// Timed runs per graph (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Threads for tract (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `TRACT_DISABLE_DIRECT_SPATIAL` settings to time.
    #[arg(long, value_enum, default_value_t = BenchKnob::Both)]
    pub direct_spatial: BenchKnob,
    /// Number type of the 3×3 convolutions (as `upscale --precision`).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Split models: time the SR graph only (given the IDR estimated once), not the IDE.
    #[arg(long)]
    pub no_ide: bool,
    /// Write the input (`lr.f32`, `[1, 3, H, W]`), for split models its `D` (`d.f32`, `[1, C]`),
    /// and the output of the first setting timed (`sr.f32`, `[1, 3, sH, sW]`) to this folder, as
    /// raw little-endian float32 (one model only), for comparing other runtimes on the same input.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `kdsr-edge make-bank`.
#[derive(Debug, Args)]
pub struct MakeBankArgs {
    /// Model and runtime options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Folder of HR sample images.
    #[arg(long, default_value = "data/Set5")]
    pub images: PathBuf,
    /// Bank file to write (default: PREFIX.bank next to the model).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Blur σ grid (HR pixels), comma-separated (default 0.2,0.6,…,4.0).
    #[arg(long, value_delimiter = ',')]
    pub sigmas: Vec<f32>,
    /// Noise levels (0..255 units), comma-separated (default 0,5,10,20).
    #[arg(long, value_delimiter = ',')]
    pub noise: Vec<f32>,
    /// No progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `kdsr-edge eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Test sets, suites, metric and seed.
    #[command(flatten)]
    pub protocol: kdsr_core::eval::Protocol,
    /// Output prefix: writes PREFIX.md and PREFIX.json.
    #[arg(long)]
    pub out: PathBuf,
}

const STREAM_HELP: &str = "\
Examples:
  ffmpeg -i in.mp4 -f yuv4mpegpipe -pix_fmt yuv420p - | kdsr-edge stream | ffmpeg -i - out.mp4
  rpicam-vid -t 0 --codec yuv420 --width 320 --height 240 -o - \\
    | kdsr-edge stream --size 320x240 > out.yuv
Colour: BT.601, limited range unless the y4m header says XCOLORRANGE=FULL (--full-range for raw).
Exit codes: 0 success (also when the reader of the output goes away: the stream stops cleanly),
2 usage, 3 bad input (bad header, truncated last frame; the complete frames are written first),
4 model or IDR, 5 output.";

/// Raw pixel formats of `stream --size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PixFmt {
    /// Planar Y, U, V at 4:2:0 (rpicam-vid --codec yuv420, GStreamer I420, ffmpeg yuv420p).
    I420,
    /// Interleaved 8-bit RGB (ffmpeg rgb24, GStreamer RGB).
    Rgb24,
}

/// `kdsr-edge stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Input: a file or `-` (stdin).
    #[arg(short = 'i', long = "input", default_value = "-")]
    pub input: PathBuf,
    /// Output: a file (written to a temporary file and renamed when the stream ends) or `-`
    /// (stdout).
    #[arg(short = 'o', long = "output", default_value = "-")]
    pub output: PathBuf,
    /// Raw frames of this size, WxH, instead of YUV4MPEG2 (whose header gives the size).
    #[arg(long, value_name = "WxH")]
    pub size: Option<ImageSize>,
    /// Pixel format of raw frames (with --size).
    #[arg(long = "pix-fmt", value_enum, default_value_t = PixFmt::I420, requires = "size")]
    pub pix_fmt: PixFmt,
    /// Raw I420 frames are full range (0-255) rather than BT.601 limited range (16-235).
    #[arg(long = "full-range", requires = "size")]
    pub full_range: bool,
    /// Model and runtime options.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Upscaling factor (-s 4).
    #[command(flatten)]
    pub scale: ScaleArg,
    /// Progress lines.
    #[command(flatten)]
    pub progress: ProgressArg,
    /// Use this IDR (.idr from `calibrate`) for every frame instead of estimating one.
    #[arg(long, conflicts_with = "idr_frames")]
    pub idr: Option<PathBuf>,
    /// Estimate the IDR as the mean of the per-frame IDRs of this many frames (the first ones,
    /// and those from each re-estimation on). At most 64.
    #[arg(long = "idr-frames", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub idr_frames: u16,
    /// Re-estimate the IDR every K frames (0 = never).
    #[arg(long = "idr-every", default_value_t = 0)]
    pub idr_every: usize,
    /// Re-estimate the IDR when a frame differs from the previous one by more than this mean
    /// absolute difference (0-1 in RGB units, sampled; e.g. 0.15 for a cut).
    #[arg(long = "scene-change")]
    pub scene_change: Option<f32>,
    /// LR tile (window) side (default, or 0: sized from --mem-budget).
    #[arg(short = 't', long)]
    pub tile: Option<usize>,
    /// Memory budget per frame in MiB.
    #[arg(long = "mem-budget", default_value_t = 512)]
    pub mem_budget: usize,
    /// Largest frame in pixels (width x height).
    #[arg(long = "max-pixels", default_value_t = kdsr_runtime::io::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Events (IDR estimates, the end report; with --progress every frame) as JSON lines on
    /// stderr (stdout carries the video).
    #[arg(long)]
    pub json: bool,
    /// Only errors on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}
