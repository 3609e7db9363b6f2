//! What an export is asked to do ([`ExportOptions`], plain fields with defaults, as the CLI and
//! library callers fill them in) and the same options once checked ([`ValidOptions`]). Every
//! check of how the options fit together runs once, in [`ExportOptions::validate`]; the build,
//! the verification and the report take [`ValidOptions`] and trust them.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{ConvertError, Result};
use crate::graph::{ExportKind, GraphKind, Precision};
use crate::idr_source::IdrSource;
use crate::quantize::QuantizeOptions;

/// The LR image the exported graphs are verified on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestInput {
    /// [`super::check::test_image`]s of this size (`height`, `width`); sample `b` of a batch uses seed `b`.
    Synthetic(usize, usize),
    /// The top-left `height × width` crop of an image file (sample 0; further batch samples are
    /// synthetic).
    Crop(PathBuf, usize, usize),
}

impl TestInput {
    /// Height and width.
    pub fn size(&self) -> (usize, usize) {
        match self {
            TestInput::Synthetic(h, w) | TestInput::Crop(_, h, w) => (*h, *w),
        }
    }

    /// How the report names the input (`synthetic WxH`, `WxH crop of PATH`).
    pub fn describe(&self) -> String {
        match self {
            TestInput::Synthetic(h, w) => format!("synthetic {w}x{h}"),
            TestInput::Crop(p, h, w) => format!("{w}x{h} crop of {}", p.display()),
        }
    }
}

/// Everything `export` needs besides the network and the output path.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Which graph(s) to write.
    pub kind: ExportKind,
    /// Batch size, for [`ExportKind::Batched`] only.
    pub batch: Option<usize>,
    /// Weight (and activation) precision.
    pub precision: Precision,
    /// Calibration, exclusions and kernel-path handling of a reduced precision.
    pub quantize: QuantizeOptions,
    /// IDR source, for [`ExportKind::Folded`] only.
    pub idr: Option<IdrSource>,
    /// Fold an IDR file made by other weights.
    pub force: bool,
    /// The verification input.
    pub test_input: TestInput,
    /// Relative tolerance of the verification (`None`: [`Precision::default_tolerance`]).
    pub tolerance: Option<f64>,
    /// PSNR floor (dB vs float32) of the verification (`None`: [`Precision::default_min_psnr`]).
    pub min_psnr: Option<f64>,
    /// LR size (`height`, `width`) to time tract at; `None` skips timing.
    pub bench_size: Option<(usize, usize)>,
    /// Timed runs (median reported).
    pub bench_iters: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            kind: ExportKind::Dynamic,
            batch: None,
            precision: Precision::F32,
            quantize: QuantizeOptions::default(),
            idr: None,
            force: false,
            test_input: TestInput::Synthetic(32, 32),
            tolerance: None,
            min_psnr: None,
            bench_size: Some((64, 64)),
            bench_iters: 5,
        }
    }
}

impl ExportOptions {
    /// Checks that the options fit together, before any work is done, and returns them as
    /// [`ValidOptions`], which everything after this trusts. The one place an export's options
    /// are checked; errors are [`ConvertError::Options`] (exit code 3) or the calibration
    /// options' own.
    pub fn validate(&self) -> Result<ValidOptions> {
        let opt = |m: &str| Err(ConvertError::Options(m.to_owned()));
        let target = match (self.kind, self.batch, &self.idr) {
            (ExportKind::Batched, None, _) => return opt("--graph batched needs --batch B"),
            (ExportKind::Batched, Some(0), _) => return opt("--batch must be at least 1"),
            (ExportKind::Dynamic | ExportKind::Split | ExportKind::Folded, Some(_), _) => {
                return opt("--batch applies only to --graph batched");
            }
            (ExportKind::Folded, None, None) => {
                return opt("--graph folded needs an IDR: --idr FILE, --image FILE or --calib DIR");
            }
            (ExportKind::Folded, None, Some(src)) => Target::Folded(src.clone()),
            (_, _, Some(_)) => {
                return opt("--idr, --image and --calib apply only to --graph folded");
            }
            (ExportKind::Batched, Some(b), None) => Target::Batched(b),
            (ExportKind::Dynamic, None, None) => Target::Dynamic,
            (ExportKind::Split, None, None) => Target::Split,
        };
        let (h, w) = self.test_input.size();
        if h == 0 || w == 0 || self.bench_size.is_some_and(|(h, w)| h == 0 || w == 0) {
            return opt("test and bench sizes must be at least 1x1");
        }
        if self.tolerance.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            return opt("--tolerance must be a finite number >= 0");
        }
        if self.min_psnr.is_some_and(|t| !t.is_finite()) {
            return opt("--min-psnr must be a finite number of dB");
        }
        let q = &self.quantize;
        if self.precision == Precision::F32 && (q.calib.is_some() || !q.exclude.is_empty()) {
            return opt(
                "--calib-data and --exclude apply only with --quantize int8, int8-weights or f16",
            );
        }
        if self.precision == Precision::Int8 {
            if self.kind == ExportKind::Batched {
                return opt(
                    "--quantize int8 supports --graph dynamic, split and folded, not batched (a \
                     throughput graph for tract, where int8 QDQ runs slower than f32); export the \
                     batched graph with --quantize int8-weights or f16",
                );
            }
            if q.calib.is_none() {
                return opt("--quantize int8 needs calibration images: --calib-data DIR");
            }
        }
        if let Some(c) = &q.calib {
            c.validate()?;
        }
        // The verification limits: the options' own, else the precision's defaults.
        let limits = Limits {
            rel_tol: self
                .tolerance
                .or_else(|| self.precision.default_tolerance()),
            min_psnr: self.min_psnr.or_else(|| self.precision.default_min_psnr()),
        };
        Ok(ValidOptions {
            opts: self.clone(),
            target,
            limits,
        })
    }
}

/// The graphs validated options ask for, with what each needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One dynamic graph.
    Dynamic,
    /// The IDE and SR graphs.
    Split,
    /// One batched graph of this batch size (at least 1).
    Batched(usize),
    /// One folded graph, its IDR from this source.
    Folded(IdrSource),
}

/// [`ExportOptions`] that [`ExportOptions::validate`] accepted: the only way to make one, so
/// code taking `&ValidOptions` does not check the options again. Reads as the options
/// (`Deref`), plus what validation worked out.
#[derive(Clone, Debug)]
pub struct ValidOptions {
    opts: ExportOptions,
    target: Target,
    limits: Limits,
}

impl ValidOptions {
    /// The options as given.
    pub fn options(&self) -> &ExportOptions {
        &self.opts
    }

    /// The graphs to build.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The verification limits: the options' own, else the precision's defaults.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The batch size of a batched export, 1 otherwise.
    pub fn batch(&self) -> usize {
        match self.target {
            Target::Batched(b) => b,
            _ => 1,
        }
    }

    /// How many LR images one input of a graph of `kind` holds: [`ValidOptions::batch`] for the
    /// batched graph, 1 for the others.
    pub fn samples(&self, kind: GraphKind) -> usize {
        if kind == GraphKind::Batched {
            self.batch()
        } else {
            1
        }
    }
}

impl std::ops::Deref for ValidOptions {
    type Target = ExportOptions;

    fn deref(&self) -> &ExportOptions {
        &self.opts
    }
}

/// What a graph must satisfy against the float32 reference forward.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Limits {
    /// Max abs difference, relative to max(1, largest reference magnitude).
    pub rel_tol: Option<f64>,
    /// PSNR floor in dB of the image output ([`crate::verify::psnr_peak`]); vector outputs get
    /// [`crate::graph::VECTOR_PSNR_MARGIN`] dB less.
    pub min_psnr: Option<f64>,
}

impl Limits {
    /// A relative tolerance only (the float32 check).
    pub fn rel(t: f64) -> Self {
        Self {
            rel_tol: Some(t),
            min_psnr: None,
        }
    }
}
