//! KD-IDE (`E` / `E_st`): a full-resolution conv trunk, global average pooling, then `mlp` → `D'`
//! and `compress` → `D`.

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::layout::ide_tail_indices;
use tch::{Tensor, nn};

use super::layers::{Conv, LeakyRelu, linear};

#[derive(Debug)]
struct ResBlock {
    c0: Conv,
    c2: Conv,
}

/// A training-only reparameterisation of the IDE's first conv (`idr.precondition`): the trained
/// variables `(W, b)` stand for the official weights `W_off = W·A` (per tap, over input channels)
/// and `b_off = b + Σ W·c`, i.e. the conv sees `A·x + c` instead of `x`. The forward runs the
/// official conv with `(W_off, b_off)` on the official input, so the function (borders
/// included) and the saved checkpoints stay the official ones; only the optimisation geometry
/// changes. Measured (see `models/edge/README.md`): without it the IDE cannot even regress σ
/// when trained on that alone, because the image content (48 HR channels of it for a teacher)
/// swamps the small differences the blur leaves.
#[derive(Debug)]
pub struct Precondition {
    a: Tensor,
    a_inv: Tensor,
    c: Tensor,
}

/// Mean and scale of the student's fixed input standardisation, `(LR − mean) / scale`.
pub const STUDENT_PRECONDITION: (f64, f64) = (0.45, 0.05);

impl Precondition {
    /// Teacher (`in = 3 + 3s²`): the HR sub-pixels relative to their LR pixel, `[LR, unshuffle(HR)
    /// − LR]`. Student (`in = 3`): `(LR − 0.45) / 0.05`.
    pub fn for_input(in_ch: usize, device: tch::Device) -> Self {
        let n = in_ch as i64;
        let opts = (tch::Kind::Float, device);
        if in_ch > 3 {
            let per = (n - 3) / 3;
            let a = Tensor::eye(n, opts);
            let a_inv = Tensor::eye(n, opts);
            for col in 0..3 {
                for k in 0..per {
                    let row = 3 + col * per + k;
                    let _ = a.get(row).get(col).fill_(-1.0);
                    let _ = a_inv.get(row).get(col).fill_(1.0);
                }
            }
            Self {
                a,
                a_inv,
                c: Tensor::zeros([n], opts),
            }
        } else {
            let (m, s) = STUDENT_PRECONDITION;
            Self {
                a: Tensor::eye(n, opts) / s,
                a_inv: Tensor::eye(n, opts) * s,
                c: Tensor::full([n], -m / s, opts),
            }
        }
    }

    /// Trained `(W [out,in,k,k], b)` → official `(W_off, b_off)`.
    pub fn fold(&self, w: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
        let w_off = w
            .permute([0, 2, 3, 1])
            .matmul(&self.a)
            .permute([0, 3, 1, 2]);
        let b_off = b + w
            .sum_dim_intlist([2i64, 3].as_slice(), false, None)
            .matmul(&self.c);
        (w_off, b_off)
    }

    /// Official `(W_off, b_off)` → trained `(W, b)` (the inverse of [`Self::fold`]).
    pub fn unfold(&self, w_off: &Tensor, b_off: &Tensor) -> (Tensor, Tensor) {
        let w = w_off
            .permute([0, 2, 3, 1])
            .matmul(&self.a_inv)
            .permute([0, 3, 1, 2]);
        let b = b_off
            - w.sum_dim_intlist([2i64, 3].as_slice(), false, None)
                .matmul(&self.c);
        (w, b)
    }
}

/// The implicit degradation estimator.
#[derive(Debug)]
pub struct Ide {
    first: Conv,
    res: Vec<ResBlock>,
    tail: [Conv; 3],
    mlp0: nn::Linear,
    mlp2: nn::Linear,
    compress: nn::Linear,
    act: LeakyRelu,
    precondition: Option<Precondition>,
}

impl Ide {
    /// Variables under `p` (= `E` or `E_st`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let e = p / "E";
        let [i1, i2, i3] = ide_tail_indices(cfg.n_resblocks);
        Self {
            first: Conv::new(&(&e / 0), cfg.ide_in_channels(), c, 3),
            res: (0..cfg.n_resblocks)
                .map(|r| {
                    let b = &e / (r + 2) / "body";
                    ResBlock {
                        c0: Conv::new(&(&b / 0), c, c, 3),
                        c2: Conv::new(&(&b / 2), c, c, 3),
                    }
                })
                .collect(),
            tail: [
                Conv::new(&(&e / i1), c, 2 * c, 3),
                Conv::new(&(&e / i2), 2 * c, 2 * c, 3),
                Conv::new(&(&e / i3), 2 * c, 4 * c, 3),
            ],
            mlp0: linear(&(p / "mlp" / 0), 4 * c, 4 * c, true),
            mlp2: linear(&(p / "mlp" / 2), 4 * c, 4 * c, true),
            compress: linear(&(p / "compress" / 0), 4 * c, c, true),
            act: LeakyRelu::new(p),
            precondition: None,
        }
    }

    /// Turns the training-only first-conv reparameterisation on or off (see [`Precondition`]).
    /// With `convert`, the current variables are converted in place so that the function is
    /// unchanged (weights that were loaded); without, they are taken as they are (a fresh
    /// initialisation, which is then PyTorch's default in the preconditioned space).
    pub fn set_precondition(&mut self, on: bool, convert: bool) {
        if on == self.precondition.is_some() {
            return;
        }
        if !convert {
            self.precondition = on.then(|| {
                Precondition::for_input(self.first.ws.size()[1] as usize, self.first.ws.device())
            });
            return;
        }
        let pre = Precondition::for_input(self.first.ws.size()[1] as usize, self.first.ws.device());
        tch::no_grad(|| {
            let (w, b) = if on {
                pre.unfold(&self.first.ws, &self.first.bs)
            } else {
                pre.fold(&self.first.ws, &self.first.bs)
            };
            self.first.ws.copy_(&w);
            self.first.bs.copy_(&b);
        });
        self.precondition = on.then_some(pre);
    }

    /// The first conv's official `(weight, bias)` (folded when preconditioned).
    pub fn first_official(&self) -> (Tensor, Tensor) {
        match &self.precondition {
            Some(p) => p.fold(&self.first.ws, &self.first.bs),
            None => (self.first.ws.shallow_clone(), self.first.bs.shallow_clone()),
        }
    }

    /// Whether the first conv is preconditioned.
    pub fn preconditioned(&self) -> bool {
        self.precondition.is_some()
    }

    /// Converts official first-conv weights to this IDE's trained variables (identity unless
    /// preconditioned).
    pub fn first_from_official(&self, w: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
        match &self.precondition {
            Some(p) => p.unfold(w, b),
            None => (w.shallow_clone(), b.shallow_clone()),
        }
    }

    /// Trunk output after global average pooling `[B,4C]`.
    pub fn pooled(&self, x: &Tensor) -> Tensor {
        let mut h = match &self.precondition {
            Some(p) => {
                let (w, b) = p.fold(&self.first.ws, &self.first.bs);
                self.act.forward(&x.conv2d(&w, Some(&b), 1, 1, 1, 1))
            }
            None => self.act.forward(&self.first.forward(x)),
        };
        for r in &self.res {
            h = r.c2.forward(&self.act.forward(&r.c0.forward(&h))) + &h;
        }
        for conv in &self.tail {
            h = self.act.forward(&conv.forward(&h));
        }
        h.mean_dim([2i64, 3].as_slice(), false, None)
    }

    /// `x [B,in,h,w]` → (`D [B,C]`, `D' [B,4C]`).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let pooled = self.pooled(x);
        let d_prime = self.act.forward(&pooled.apply(&self.mlp0));
        let d_prime = self.act.forward(&d_prime.apply(&self.mlp2));
        let d = self.act.forward(&d_prime.apply(&self.compress));
        (d, d_prime)
    }
}
