//! Loading an exported graph back with tract 0.23.9 and running it: the ONNX bytes are parsed
//! (`onnx().model_for_read`), every input gets a concrete shape (tract's fast conv kernels need
//! concrete shapes), then `into_optimized` → `into_runnable`. Single-threaded.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::*;

use crate::error::{ConvertError, Result};

/// A float32 tensor crossing the tract boundary: `kdsr-core`'s tensor (shape and row-major
/// values), built inside the converter with [`value`].
pub use kdsr_core::spec::checkpoint::Tensor as Value;

/// Wraps values as a [`Value`]; fails with [`ConvertError::Graph`] (an internal inconsistency)
/// if they do not fill the shape.
pub fn value(shape: Vec<usize>, data: Vec<f32>) -> Result<Value> {
    Value::new(shape, data).map_err(|e| match e {
        kdsr_core::Error::BadLength { len, shape, .. } => {
            ConvertError::Graph(format!("{len} values do not fill shape {shape:?}"))
        }
        e => e.into(),
    })
}

/// An optimized, runnable tract plan for fixed input shapes.
#[derive(Clone, Debug)]
pub struct Plan {
    plan: Arc<TypedRunnableModel>,
    /// Seconds spent loading and optimizing.
    pub load_s: f64,
}

impl Plan {
    /// Parses ONNX `bytes` and optimizes them for inputs of `shapes` (in graph-input order).
    pub fn new(bytes: &[u8], shapes: &[Vec<usize>]) -> Result<Self> {
        let t0 = Instant::now();
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| ConvertError::tract("loading the ONNX graph", e))?;
        for (i, s) in shapes.iter().enumerate() {
            model = model
                .with_input_fact(i, f32::fact(s.as_slice()).into())
                .map_err(|e| ConvertError::tract(format!("setting input {i} to {s:?}"), e))?;
        }
        let plan = model
            .into_optimized()
            .map_err(|e| ConvertError::tract(format!("optimizing for inputs {shapes:?}"), e))?
            .into_runnable()
            .map_err(|e| ConvertError::tract("making the plan runnable", e))?;
        Ok(Self {
            plan,
            load_s: t0.elapsed().as_secs_f64(),
        })
    }

    /// Runs the plan; returns the outputs in graph-output order.
    pub fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let tv = inputs
            .iter()
            .map(|v| {
                Tensor::from_shape(&v.shape, &v.data)
                    .map(|t| t.into_tvalue())
                    .map_err(|e| ConvertError::tract("building an input tensor", e))
            })
            .collect::<Result<TVec<_>>>()?;
        let out = self
            .plan
            .run(tv)
            .map_err(|e| ConvertError::tract("running the graph", e))?;
        out.iter()
            .map(|t| {
                let data = t
                    .to_plain_array_view::<f32>()
                    .map_err(|e| ConvertError::tract("reading an output", e))?
                    .iter()
                    .copied()
                    .collect();
                value(t.shape().to_vec(), data)
            })
            .collect()
    }

    /// Median wall time of `iters` runs (after one warm-up run), in milliseconds.
    pub fn time_ms(&self, inputs: &[Value], iters: usize) -> Result<f64> {
        self.run(inputs)?;
        let mut t = Vec::with_capacity(iters.max(1));
        for _ in 0..iters.max(1) {
            let t0 = Instant::now();
            self.run(inputs)?;
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    }
}

pub use kdsr_core::metrics::max_abs_diff;

/// PSNR in dB of `got` against `want` with the given `peak`: `10·log10(peak² / MSE)`; `+∞` when
/// they are equal, `0` when the lengths differ or a value is NaN.
pub fn psnr(got: &[f32], want: &[f32], peak: f64) -> f64 {
    if got.len() != want.len() || got.is_empty() {
        return 0.0;
    }
    let se: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum();
    let mse = se / got.len() as f64;
    if mse.is_nan() {
        0.0
    } else if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}

/// The PSNR peak of a graph output: 1 for the image `sr` (RGB in [0, 1]), the largest magnitude
/// of the reference for a vector such as `D` (at least `1e-12`).
pub fn psnr_peak(output: &str, reference: &[f32]) -> f64 {
    if output == kdsr_core::spec::onnx::names::SR {
        1.0
    } else {
        reference
            .iter()
            .fold(1e-12f64, |m, v| m.max(f64::from(v.abs())))
    }
}
