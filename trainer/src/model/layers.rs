//! Layer helpers with PyTorch's default initialisation (kaiming-uniform weights, uniform biases in
//! ±1/√fan_in) and the LeakyReLU(0.1) used everywhere in KDSR.

use kdsr_core::spec::LRELU_SLOPE;
use tch::{Tensor, nn};

/// PyTorch's default weight init for conv and linear layers: kaiming-uniform with a = √5, i.e.
/// U(−1/√fan_in, 1/√fan_in). (tch's own default uses the ReLU gain, √6 times wider, which makes
/// a deep KDSR diverge at the first steps.)
fn pytorch_default(fan_in: f64) -> nn::Init {
    let b = 1.0 / fan_in.sqrt();
    nn::Init::Uniform { lo: -b, up: b }
}

/// A 3×3 (or k×k) conv with bias, stride 1, "same" padding.
#[derive(Debug)]
pub struct Conv {
    /// Weight `[out,in,k,k]`.
    pub ws: Tensor,
    /// Bias `[out]`.
    pub bs: Tensor,
    padding: i64,
}

impl Conv {
    /// Variables `weight` and `bias` under `p`.
    pub fn new(p: &nn::Path, cin: usize, cout: usize, k: usize) -> Self {
        let fan_in = (cin * k * k) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let cfg = nn::ConvConfig {
            padding: (k / 2) as i64,
            ws_init: pytorch_default(fan_in),
            bs_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            ..Default::default()
        };
        let c = nn::conv2d(p, cin as i64, cout as i64, k as i64, cfg);
        Self {
            ws: c.ws,
            bs: c
                .bs
                .unwrap_or_else(|| Tensor::zeros([cout as i64], (tch::Kind::Float, p.device()))),
            padding: (k / 2) as i64,
        }
    }

    /// `[B,in,H,W]` → `[B,out,H,W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.ws, Some(&self.bs), 1, self.padding, 1, 1)
    }
}

/// A linear layer `y = x·Wᵀ (+ b)`, weight `[out,in]`.
pub fn linear(p: &nn::Path, inp: usize, out: usize, bias: bool) -> nn::Linear {
    let bound = 1.0 / (inp as f64).sqrt();
    nn::linear(
        p,
        inp as i64,
        out as i64,
        nn::LinearConfig {
            bias,
            ws_init: pytorch_default(inp as f64),
            bs_init: Some(nn::Init::Uniform {
                lo: -bound,
                up: bound,
            }),
        },
    )
}

/// The TorchScript module `F.leaky_relu(x, 0.1)` (made by `assets/make_leaky_relu.py`).
const LEAKY_RELU_TS: &[u8] = include_bytes!("../../assets/leaky_relu_0.1.pt");

/// LeakyReLU with slope 0.1. tch exposes libtorch's `leaky_relu` only with its default slope
/// (0.01), so this runs a tiny TorchScript module calling `F.leaky_relu(x, 0.1)`: the same fused
/// kernel and backward as PyTorch's `nn.LeakyReLU(0.1)`. Should the module fail to load, it falls
/// back to `prelu` with a constant 0.1 weight: the same values and input gradients, about 3×
/// slower in training because its backward also reduces a weight gradient.
#[derive(Debug)]
pub struct LeakyRelu {
    script: Option<tch::CModule>,
    slope: Tensor,
}

impl LeakyRelu {
    /// The activation for tensors on `p`'s device.
    pub fn new(p: &nn::Path) -> Self {
        let script = tch::CModule::load_data_on_device(&mut &LEAKY_RELU_TS[..], p.device()).ok();
        Self {
            script,
            slope: Tensor::from_slice(&[LRELU_SLOPE]).to_device(p.device()),
        }
    }

    /// True when the TorchScript kernel is in use (not the `prelu` fallback).
    pub fn is_scripted(&self) -> bool {
        self.script.is_some()
    }

    /// Applies it.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match self.script.as_ref().map(|m| m.forward_ts(&[x])) {
            Some(Ok(y)) => y,
            _ => x.prelu(&self.slope),
        }
    }
}
