//! Checking a built graph before anything is written: it is loaded back with tract, run on the
//! test input and compared with the reference forward ([`verify`]), and timed ([`bench()`]). The
//! test input is synthesised here ([`test_image`]) or cropped from an image file
//! ([`TestInput::images`]).

use std::collections::BTreeMap;

use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_core::spec::onnx::names::{D, D_PRIME, LR, SR};

use super::options::{Limits, TestInput};
use crate::error::{ConvertError, Result};
use crate::graph::{GraphKind, output_floor};
use crate::idr_source;
use crate::network::Network;
use crate::onnx::Built;
use crate::reference;
use crate::verify::{Plan, Value, max_abs_diff, psnr, psnr_peak, value};

impl TestInput {
    /// The `batch` LR images `[3, H, W]`.
    pub fn images(&self, batch: usize) -> Result<Vec<Planar>> {
        let (h, w) = self.size();
        (0..batch.max(1))
            .map(|b| match self {
                TestInput::Crop(p, ..) if b == 0 => {
                    let img = idr_source::load_rgb(p)?;
                    img.crop(0, 0, h, w).map_err(|_| ConvertError::Image {
                        path: p.clone(),
                        message: format!(
                            "{}x{} is smaller than the test size {w}x{h} (choose --test-size)",
                            img.width(),
                            img.height()
                        ),
                    })
                }
                _ => test_image(h, w, b as u32),
            })
            .collect()
    }
}

/// A deterministic 8-bit-valued RGB test image (`k/255`): smooth colour gradients and waves plus
/// a hash-based texture, different for every `seed`.
pub fn test_image(h: usize, w: usize, seed: u32) -> Result<Planar> {
    let mut data = Vec::with_capacity(3 * h * w);
    let s = seed as f32;
    for c in 0..3u32 {
        for y in 0..h {
            for x in 0..w {
                let (xf, yf, cf) = (x as f32, y as f32, c as f32);
                let wave = (0.37 * xf + 1.3 * cf + s).sin() * (0.23 * yf - 0.7 * s + cf).cos();
                let ramp = (xf + yf) / (h + w).max(1) as f32;
                let mut k = (x as u32)
                    .wrapping_mul(73_856_093)
                    .wrapping_add((y as u32).wrapping_mul(19_349_663))
                    .wrapping_add(c.wrapping_mul(83_492_791))
                    .wrapping_add(seed.wrapping_mul(2_654_435_761));
                k ^= k >> 13;
                k = k.wrapping_mul(0x5bd1_e995);
                k ^= k >> 15;
                let noise = (k & 0xffff) as f32 / 65535.0 - 0.5;
                let v = 0.45 + 0.25 * wave + 0.2 * (ramp - 0.5) + 0.15 * noise;
                data.push((v.clamp(0.0, 1.0) * 255.0).round() / 255.0);
            }
        }
    }
    Ok(Planar::new(3, h, w, data)?)
}

/// Values by graph input or output name, in graph order.
pub type Named = Vec<(String, Value)>;

/// Inputs and reference outputs of one graph kind on `images` (one per batch sample).
fn reference_case(
    net: &Network,
    kind: GraphKind,
    images: &[Planar],
    folded: Option<&Idr>,
) -> Result<(Named, Named)> {
    let c = net.config.n_feats;
    let first = images
        .first()
        .ok_or_else(|| ConvertError::Graph("no test image".into()))?;
    let [_, h, w] = first.shape();
    let b = images.len();
    let lr = value(
        vec![b, 3, h, w],
        images.iter().flat_map(|i| i.data().to_vec()).collect(),
    )?;
    let cat = |planes: Vec<Planar>| -> Result<Value> {
        let [ch, sh, sw] = planes
            .first()
            .map(Planar::shape)
            .ok_or_else(|| ConvertError::Graph("empty batch".into()))?;
        value(
            vec![planes.len(), ch, sh, sw],
            planes.into_iter().flat_map(Planar::into_data).collect(),
        )
    };
    let vecs = |v: Vec<Vec<f32>>, n: usize| value(vec![v.len(), n], v.concat());
    let fwd = || -> Result<Vec<reference::Forward>> {
        images.iter().map(|i| reference::forward(net, i)).collect()
    };
    let lr_in = (LR.to_owned(), lr);
    Ok(match kind {
        GraphKind::Dynamic | GraphKind::Batched => {
            let f = fwd()?;
            let d = vecs(f.iter().map(|f| f.ide.d.clone()).collect(), c)?;
            let sr = cat(f.into_iter().map(|f| f.sr).collect())?;
            (vec![lr_in], vec![(SR.to_owned(), sr), (D.to_owned(), d)])
        }
        GraphKind::Ide => {
            let ide = reference::ide(net, first)?;
            (
                vec![lr_in],
                vec![
                    (D.to_owned(), vecs(vec![ide.d], c)?),
                    (D_PRIME.to_owned(), vecs(vec![ide.d_prime], 4 * c)?),
                ],
            )
        }
        GraphKind::Sr => {
            let ide = reference::ide(net, first)?;
            let sr = reference::sr(net, first, &ide.d)?;
            (
                vec![lr_in, (D.to_owned(), vecs(vec![ide.d], c)?)],
                vec![(SR.to_owned(), cat(vec![sr])?)],
            )
        }
        GraphKind::Folded => {
            let idr = folded.ok_or_else(|| ConvertError::Graph("folded without IDR".into()))?;
            let sr = reference::sr(net, first, &idr.d)?;
            (vec![lr_in], vec![(SR.to_owned(), cat(vec![sr])?)])
        }
    })
}

/// The result of verifying one graph with tract.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Named inputs fed to tract.
    pub inputs: Named,
    /// Named outputs tract produced.
    pub tract: Named,
    /// Named reference outputs.
    pub reference: Named,
    /// Max abs difference per output.
    pub max_abs_diff: BTreeMap<String, f64>,
    /// PSNR (dB) per output against the reference ([`psnr_peak`]).
    pub psnr_db: BTreeMap<String, f64>,
    /// Absolute tolerance applied, if any.
    pub tolerance: Option<f64>,
    /// Load + optimize time, ms.
    pub load_ms: f64,
}

/// Loads `built` with tract at the test input's shapes, runs it and compares it with the
/// reference forward: fails with [`ConvertError::Verification`] when an output differs by more
/// than `limits.rel_tol` × max(1, largest reference magnitude), and with [`ConvertError::Psnr`]
/// when its PSNR is below `limits.min_psnr`.
pub fn verify(
    net: &Network,
    built: &Built,
    images: &[Planar],
    folded: Option<&Idr>,
    limits: Limits,
) -> Result<Verified> {
    let (inputs, reference) = reference_case(net, built.kind, images, folded)?;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|(_, v)| v.shape.clone()).collect();
    let plan = Plan::new(&built.bytes, &shapes)?;
    let values: Vec<Value> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let out = plan.run(&values)?;
    if out.len() != reference.len() {
        return Err(ConvertError::Graph(format!(
            "{} graph returned {} outputs, expected {}",
            built.kind,
            out.len(),
            reference.len()
        )));
    }
    let mut diffs = BTreeMap::new();
    let mut psnrs = BTreeMap::new();
    let scale = reference
        .iter()
        .flat_map(|(_, v)| v.data.iter())
        .fold(1f64, |m, x| m.max(f64::from(x.abs())));
    let tolerance = limits.rel_tol.map(|t| t * scale);
    let mut tract = Vec::new();
    for ((name, want), got) in reference.iter().zip(out) {
        let (d, p) = if got.shape == want.shape {
            (
                max_abs_diff(&got.data, &want.data),
                psnr(&got.data, &want.data, psnr_peak(name, &want.data)),
            )
        } else {
            (f64::INFINITY, 0.0)
        };
        if let Some(tol) = tolerance {
            if d.is_nan() || d > tol {
                return Err(ConvertError::Verification {
                    graph: built.kind.to_string(),
                    output: name.clone(),
                    diff: d,
                    tolerance: tol,
                });
            }
        }
        if let Some(floor) = limits.min_psnr.map(|f| output_floor(name, f)) {
            if p.is_nan() || p < floor {
                return Err(ConvertError::Psnr {
                    graph: built.kind.to_string(),
                    output: name.clone(),
                    input: "the test input".into(),
                    psnr: p,
                    floor,
                });
            }
        }
        diffs.insert(name.clone(), d);
        psnrs.insert(name.clone(), p);
        tract.push((name.clone(), got));
    }
    Ok(Verified {
        inputs,
        tract,
        reference,
        max_abs_diff: diffs,
        psnr_db: psnrs,
        tolerance,
        load_ms: plan.load_s * 1e3,
    })
}

/// Median tract latency (ms) of `built` at LR `h × w`.
pub fn bench(
    net: &Network,
    built: &Built,
    batch: usize,
    h: usize,
    w: usize,
    iters: usize,
) -> Result<f64> {
    bench_bytes(net, built.kind, &built.bytes, batch, h, w, iters)
}

/// Median tract latency (ms) of the graph `bytes` of `kind` at LR `h × w`.
pub fn bench_bytes(
    net: &Network,
    kind: GraphKind,
    bytes: &[u8],
    batch: usize,
    h: usize,
    w: usize,
    iters: usize,
) -> Result<f64> {
    let imgs = (0..batch.max(1))
        .map(|b| test_image(h, w, b as u32))
        .collect::<Result<Vec<_>>>()?;
    let lr = value(
        vec![imgs.len(), 3, h, w],
        imgs.iter().flat_map(|i| i.data().to_vec()).collect(),
    )?;
    let mut inputs = vec![lr];
    if kind == GraphKind::Sr {
        inputs.push(value(
            vec![1, net.config.n_feats],
            vec![0.05; net.config.n_feats],
        )?);
    }
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|v| v.shape.clone()).collect();
    Plan::new(bytes, &shapes)?.time_ms(&inputs, iters)
}
