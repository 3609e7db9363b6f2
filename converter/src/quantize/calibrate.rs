//! Calibration: the activation ranges of a float32 graph on real images, for static int8.
//!
//! The images of a folder (the extensions of [`IMAGE_EXTENSIONS`], sorted by name) are used as
//! LR inputs, as the runtime and `--calib` use them: each is center-cropped to at most
//! [`CalibOptions::crop`]. A calibration copy of the float32 graph — the same nodes, with every
//! tensor to measure as a graph output — runs in tract on every crop (crops in parallel,
//! single-threaded plans, one per input size). Ranges are then, per tensor:
//! - [`CalibMethod::Minmax`]: the smallest and largest value over all crops;
//! - [`CalibMethod::Percentile`]: onnxruntime's `percentile` method — a 2048-bin histogram over
//!   `[-t, t]` (`t` the largest magnitude), cutting `(100 − p) / 2` % of the values on each side;
//!   the bounds are the left edges of the bins where the cumulative share reaches the cuts,
//!   clamped to the observed min and max. A second pass over the crops fills the histograms.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kdsr_core::Planar;
use rayon::prelude::*;
use tract_onnx::pb;

use crate::error::{ConvertError, Result};
pub use crate::idr_source::IMAGE_EXTENSIONS;
use crate::idr_source::{calibration_images, load_rgb};
use crate::onnx::proto::{encode, f32_value_info};
use crate::verify::{Plan, Value};
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};

/// Histogram bins of [`CalibMethod::Percentile`] (onnxruntime's default).
pub const HISTOGRAM_BINS: usize = 2048;
/// Default percentile of [`CalibMethod::Percentile`] (onnxruntime's default).
pub const DEFAULT_PERCENTILE: f64 = 99.999;
/// Default crop size (height, width) of the calibration images.
pub const DEFAULT_CROP: (usize, usize) = (64, 64);

/// How an activation's range is taken from its calibration values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibMethod {
    /// Smallest and largest value seen.
    Minmax,
    /// The central `percentile` % of the values (histogram), as onnxruntime's `percentile`.
    #[default]
    Percentile,
}

/// Where calibration images come from and how they are measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CalibOptions {
    /// Folder of images (not recursive).
    pub dir: PathBuf,
    /// Range method.
    pub method: CalibMethod,
    /// Percentile (0 < p ≤ 100) of [`CalibMethod::Percentile`].
    pub percentile: f64,
    /// Largest crop (height, width) taken from the center of each image.
    pub crop: (usize, usize),
    /// Use at most this many images (the first by name); `None`: all.
    pub max_images: Option<usize>,
    /// Treat the images as HR and synthesise the LR inputs with the classic degradation the
    /// models are trained on (isotropic Gaussian blur, official bicubic ↓scale, 8-bit), σ spread
    /// evenly over [`DEGRADE_SIGMAS`] across the images. Blurred LR inputs have narrower
    /// activation ranges than sharp photos used as LR, so ranges measured on the latter are too
    /// coarse for the inputs the model actually gets.
    pub degrade: bool,
}

/// The σ range of `--calib-degrade` (the classic training range of the presets).
pub const DEGRADE_SIGMAS: (f64, f64) = (0.2, 4.0);

impl CalibOptions {
    /// Percentile calibration at 99.999 on 64×64 center crops of every image of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            method: CalibMethod::Percentile,
            percentile: DEFAULT_PERCENTILE,
            crop: DEFAULT_CROP,
            max_images: None,
            degrade: false,
        }
    }

    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(ConvertError::Options(format!(
                "--calib-percentile must be in (0, 100], got {}",
                self.percentile
            )));
        }
        if self.crop.0 == 0 || self.crop.1 == 0 || self.max_images == Some(0) {
            return Err(ConvertError::Options(
                "--calib-size and --calib-images must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// `percentile 99.999` or `minmax`, followed by `, degraded (σ 0.2–4)` with
    /// [`degrade`](Self::degrade).
    pub fn describe_method(&self) -> String {
        let m = match self.method {
            CalibMethod::Minmax => "minmax".to_owned(),
            CalibMethod::Percentile => format!("percentile {}", self.percentile),
        };
        if self.degrade {
            let (lo, hi) = DEGRADE_SIGMAS;
            format!("{m}, degraded to LR (blur σ {lo}–{hi}, bicubic)")
        } else {
            m
        }
    }

    /// The center crops of the folder's images (RGB in [0, 1]), in name order; with
    /// [`degrade`](Self::degrade), LR crops synthesised from `scale`× larger HR center crops.
    pub fn crops(&self, scale: u32) -> Result<Vec<Planar>> {
        let mut files = calibration_images(&self.dir)?;
        if let Some(n) = self.max_images {
            files.truncate(n);
        }
        let n = files.len();
        files
            .par_iter()
            .enumerate()
            .map(|(i, f)| {
                let named = |e: kdsr_core::Error| ConvertError::Image {
                    path: f.clone(),
                    message: e.to_string(),
                };
                let img = load_rgb(f)?;
                if !self.degrade {
                    return center_crop(&img, self.crop).map_err(|e| ConvertError::Image {
                        path: f.clone(),
                        message: e.to_string(),
                    });
                }
                let s = scale as usize;
                let hr = center_crop(&img, (self.crop.0 * s, self.crop.1 * s))?
                    .crop_to_multiple(s)
                    .map_err(named)?;
                let (lo, hi) = DEGRADE_SIGMAS;
                let sigma = lo + (hi - lo) * (i as f64 + 0.5) / n as f64;
                let deg = ClassicDegradation::new(
                    isotropic_gaussian(KERNEL_SIZE, sigma).map_err(named)?,
                    scale,
                    0.0,
                    Downsample::Bicubic,
                )
                .map_err(named)?;
                deg.apply_with_noise(&hr, None).map_err(named)
            })
            .collect()
    }
}

/// The center `crop` of `img` (smaller images are kept whole).
pub fn center_crop(img: &Planar, crop: (usize, usize)) -> Result<Planar> {
    let (h, w) = (crop.0.min(img.height()), crop.1.min(img.width()));
    let (top, left) = ((img.height() - h) / 2, (img.width() - w) / 2);
    Ok(img.crop(top, left, h, w)?)
}

/// The calibrated range of one tensor.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Range {
    /// Lower bound.
    pub min: f32,
    /// Upper bound.
    pub max: f32,
}

/// A copy of `model` whose outputs are `tensors` (float32, shapes left to the runtime).
pub fn calibration_model(model: &pb::ModelProto, tensors: &[String]) -> Result<pb::ModelProto> {
    let mut m = model.clone();
    let g = m
        .graph
        .as_mut()
        .ok_or_else(|| ConvertError::Graph("the model has no graph".into()))?;
    g.output = tensors.iter().map(|t| f32_value_info(t, None)).collect();
    Ok(m)
}

/// Per-tensor statistics of pass 1 (min, max) or pass 2 (histogram counts).
#[derive(Clone, Debug)]
enum Stats {
    MinMax(Vec<(f32, f32)>),
    Hist(Vec<Vec<u64>>),
}

fn minmax(v: &[f32]) -> (f32, f32) {
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        })
}

fn histogram(v: &[f32], t: f32) -> Vec<u64> {
    let mut h = vec![0u64; HISTOGRAM_BINS];
    if t <= 0.0 {
        h[HISTOGRAM_BINS / 2] = v.len() as u64;
        return h;
    }
    let k = HISTOGRAM_BINS as f64 / (2.0 * f64::from(t));
    for x in v {
        let b = ((f64::from(*x) + f64::from(t)) * k).floor();
        h[(b.max(0.0) as usize).min(HISTOGRAM_BINS - 1)] += 1;
    }
    h
}

/// The bounds cutting `(100 − p) / 2` % on each side of a histogram over `[-t, t]`, as
/// onnxruntime (`np.searchsorted` on the cumulative shares, left bin edges), clamped to
/// `[min, max]`.
fn percentile_range(h: &[u64], t: f32, p: f64, min: f32, max: f32) -> Range {
    let total: u64 = h.iter().sum();
    let cut = (100.0 - p) / 200.0;
    let edge = |i: usize| -> f32 {
        let w = 2.0 * f64::from(t) / HISTOGRAM_BINS as f64;
        (-f64::from(t) + i as f64 * w) as f32
    };
    let search = |q: f64| -> usize {
        let mut acc = 0u64;
        for (i, c) in h.iter().enumerate() {
            acc += c;
            if acc as f64 / total.max(1) as f64 >= q {
                return i;
            }
        }
        h.len() - 1
    };
    let lo = edge(search(cut)).max(min);
    let hi = edge(search(1.0 - cut)).min(max);
    Range { min: lo, max: hi }
}

/// Measures `tensors` of `model` (float32) over `feeds` (one entry per run: the graph inputs in
/// order). A tensor that is a graph input is measured on the fed values.
pub fn calibrate(
    model: &pb::ModelProto,
    tensors: &[String],
    feeds: &[Vec<Value>],
    method: CalibMethod,
    percentile: f64,
) -> Result<BTreeMap<String, Range>> {
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| ConvertError::Graph("the model has no graph".into()))?;
    if feeds.is_empty() {
        return Err(ConvertError::Options(
            "calibration needs at least one input".into(),
        ));
    }
    let input_pos: HashMap<&str, usize> = g
        .input
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let outputs: Vec<String> = tensors
        .iter()
        .filter(|t| !input_pos.contains_key(t.as_str()))
        .cloned()
        .collect();
    let bytes = encode(&calibration_model(model, &outputs)?);
    let mut plans: HashMap<Vec<Vec<usize>>, Plan> = HashMap::new();
    for f in feeds {
        let shapes: Vec<Vec<usize>> = f.iter().map(|v| v.shape.clone()).collect();
        if let std::collections::hash_map::Entry::Vacant(e) = plans.entry(shapes) {
            let plan = Plan::new(&bytes, e.key())?;
            e.insert(plan);
        }
    }
    // Values of tensor `k` (in `tensors` order) for one feed.
    let run = |f: &Vec<Value>| -> Result<Vec<Vec<f32>>> {
        let shapes: Vec<Vec<usize>> = f.iter().map(|v| v.shape.clone()).collect();
        let plan = plans
            .get(&shapes)
            .ok_or_else(|| ConvertError::Graph("calibration plan missing".into()))?;
        let mut out = plan.run(f)?.into_iter();
        tensors
            .iter()
            .map(|t| match input_pos.get(t.as_str()) {
                Some(&i) => f
                    .get(i)
                    .map(|v| v.data.clone())
                    .ok_or_else(|| ConvertError::Graph(format!("no feed for input `{t}`"))),
                None => out
                    .next()
                    .map(|v| v.data)
                    .ok_or_else(|| ConvertError::Graph("calibration outputs missing".into())),
            })
            .collect()
    };
    let merge = |a: Result<Stats>, b: Result<Stats>| -> Result<Stats> {
        Ok(match (a?, b?) {
            (Stats::MinMax(x), Stats::MinMax(y)) => Stats::MinMax(
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| (p.0.min(q.0), p.1.max(q.1)))
                    .collect(),
            ),
            (Stats::Hist(x), Stats::Hist(y)) => Stats::Hist(
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| p.iter().zip(q).map(|(a, b)| a + b).collect())
                    .collect(),
            ),
            _ => return Err(ConvertError::Graph("calibration statistics mixed".into())),
        })
    };
    let first = feeds
        .par_iter()
        .map(|f| Ok(Stats::MinMax(run(f)?.iter().map(|v| minmax(v)).collect())))
        .reduce_with(merge)
        .ok_or_else(|| ConvertError::Graph("no calibration runs".into()))??;
    let Stats::MinMax(mm) = first else {
        return Err(ConvertError::Graph("calibration statistics mixed".into()));
    };
    if let Some((t, _)) = tensors
        .iter()
        .zip(&mm)
        .find(|(_, (a, b))| !(a.is_finite() && b.is_finite()))
    {
        return Err(ConvertError::Graph(format!(
            "calibration: tensor `{t}` is not finite on the calibration images"
        )));
    }
    let ranges: Vec<Range> = match method {
        CalibMethod::Minmax => mm.iter().map(|&(min, max)| Range { min, max }).collect(),
        CalibMethod::Percentile => {
            let thr: Vec<f32> = mm.iter().map(|(a, b)| a.abs().max(b.abs())).collect();
            let second = feeds
                .par_iter()
                .map(|f| {
                    Ok(Stats::Hist(
                        run(f)?
                            .iter()
                            .zip(&thr)
                            .map(|(v, t)| histogram(v, *t))
                            .collect(),
                    ))
                })
                .reduce_with(merge)
                .ok_or_else(|| ConvertError::Graph("no calibration runs".into()))??;
            let Stats::Hist(h) = second else {
                return Err(ConvertError::Graph("calibration statistics mixed".into()));
            };
            h.iter()
                .zip(&thr)
                .zip(&mm)
                .map(|((h, t), (min, max))| percentile_range(h, *t, percentile, *min, *max))
                .collect()
        }
    };
    Ok(tensors.iter().cloned().zip(ranges).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cuts_the_tails() {
        let mut v: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).collect();
        v.push(50.0);
        let (min, max) = minmax(&v);
        let t = min.abs().max(max.abs());
        let r = percentile_range(&histogram(&v, t), t, 99.99, min, max);
        assert_eq!(r.min, 0.0);
        assert!(r.max > 0.9 && r.max < 1.1, "{r:?}");
        let r = percentile_range(&histogram(&v, t), t, 100.0, min, max);
        assert!(r.max > 49.0, "{r:?}");
    }
}
