//! The SR network `G` (class `KDSR`): MeanShift → head → N IDR-DCRBs → body conv + long skip →
//! upsampler → tail conv → MeanShift back. Output unclamped.

use kdsr_core::spec::{KdsrConfig, RGB_MEAN};
use tch::{Kind, Tensor, nn};

use super::dcrb::Dcrb;
use super::layers::Conv;
use super::upsampler::Upsampler;

/// Intermediate tensors of one forward, named as in the reference vectors.
#[derive(Debug)]
pub struct SrTrace {
    /// After `sub_mean` and `head.0`.
    pub head_out: Tensor,
    /// Output of block 0.
    pub block0_out: Tensor,
    /// Depthwise kernels of block 0 `[B·C,1,3,3]` (`None` for a plain-conv ablation model).
    pub block0_kernel: Option<Tensor>,
    /// Output of all blocks.
    pub dag_out: Tensor,
    /// `body.1` conv output before the long skip.
    pub body_conv_out: Tensor,
    /// Output of `tail.0`.
    pub upsampler_out: Tensor,
    /// Final SR.
    pub sr: Tensor,
}

/// A frozen MeanShift 1×1 conv (`weight` identity, `bias` ∓mean): kept as non-trainable variables
/// so checkpoints hold them as the official ones do.
#[derive(Debug)]
struct MeanShift {
    ws: Tensor,
    bs: Tensor,
}

impl MeanShift {
    fn new(p: &nn::Path, sign: f32) -> Self {
        let mut ws = p.zeros_no_train("weight", &[3, 3, 1, 1]);
        let mut bs = p.zeros_no_train("bias", &[3]);
        tch::no_grad(|| {
            ws.copy_(&Tensor::eye(3, (Kind::Float, p.device())).reshape([3, 3, 1, 1]));
            let mean: Vec<f32> = RGB_MEAN.iter().map(|m| sign * m).collect();
            bs.copy_(&Tensor::from_slice(&mean).to_device(p.device()));
        });
        Self { ws, bs }
    }
    /// The 1×1 conv as what it is, a per-channel scale and shift: the official weight is
    /// `eye(3) / std`, diagonal, so `bias + x · diag(weight)` gives the conv's values in one
    /// elementwise `addcmul` instead of a 3→3 convolution over the full-size output.
    fn forward(&self, x: &Tensor) -> Tensor {
        let scale = self
            .ws
            .reshape([3, 3])
            .diagonal(0, 0, 1)
            .reshape([1, 3, 1, 1]);
        self.bs.reshape([1, 3, 1, 1]).addcmul(x, &scale)
    }
}

/// The SR network.
#[derive(Debug)]
pub struct SrNet {
    sub_mean: MeanShift,
    add_mean: MeanShift,
    head: Conv,
    /// The IDR-DCRB blocks.
    pub blocks: Vec<Dcrb>,
    body_conv: Conv,
    up: Upsampler,
    tail: Conv,
}

impl SrNet {
    /// Variables under `p` (= `G`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let body0 = p / "body" / "0" / "body";
        Self {
            sub_mean: MeanShift::new(&(p / "sub_mean"), -1.0),
            add_mean: MeanShift::new(&(p / "add_mean"), 1.0),
            head: Conv::new(&(p / "head" / "0"), 3, c, 3),
            blocks: (0..cfg.n_blocks)
                .map(|n| Dcrb::new(&(&body0 / n), cfg))
                .collect(),
            body_conv: Conv::new(&(p / "body" / "1"), c, c, 3),
            up: Upsampler::new(&(p / "tail" / "0"), cfg),
            tail: Conv::new(&(p / "tail" / "1"), c, 3, 3),
        }
    }

    /// `lr [B,3,h,w]`, `D [B,C]` → `sr [B,3,sh,sw]`.
    pub fn forward(&self, lr: &Tensor, d: &Tensor) -> Tensor {
        let x0 = self.head.forward(&self.sub_mean.forward(lr));
        let h = self
            .blocks
            .iter()
            .fold(x0.shallow_clone(), |h, b| b.forward(&h, d));
        let h = self.body_conv.forward(&h) + &x0;
        self.add_mean
            .forward(&self.tail.forward(&self.up.forward(&h)))
    }

    /// [`SrNet::forward`] keeping the intermediates the reference vectors store.
    pub fn forward_trace(&self, lr: &Tensor, d: &Tensor) -> SrTrace {
        let head_out = self.head.forward(&self.sub_mean.forward(lr));
        let block0_kernel = self.blocks[0].kernels(d);
        let block0_out = self.blocks[0].forward(&head_out, d);
        let dag_out = self.blocks[1..]
            .iter()
            .fold(block0_out.shallow_clone(), |h, b| b.forward(&h, d));
        let body_conv_out = self.body_conv.forward(&dag_out);
        let upsampler_out = self.up.forward(&(&body_conv_out + &head_out));
        let sr = self.add_mean.forward(&self.tail.forward(&upsampler_out));
        SrTrace {
            head_out,
            block0_out,
            block0_kernel,
            dag_out,
            body_conv_out,
            upsampler_out,
            sr,
        }
    }
}
