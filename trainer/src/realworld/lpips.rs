//! LPIPS (Zhang et al. 2018, `lpips` package v0.1, `net='alex'`), the perceptual metric of the
//! paper's real-world table, from a user-supplied weights file.
//!
//! `d(x, y) = Σ_l mean_hw( w_l · (φ̂_l(x) − φ̂_l(y))² )`, where φ_l are the ReLU outputs of
//! AlexNet's five conv layers on `(2·img − 1 − shift)/scale` (shift −0.030, −0.088, −0.188; scale
//! 0.458, 0.448, 0.450), φ̂ is φ divided by its channel-wise L2 norm (+1e-10), and `w_l` are the
//! learned 1×1 linear layers. Images are RGB in [0, 1].
//!
//! # Weights
//! One safetensors file with the `lpips.LPIPS(net='alex')` state-dict names: the AlexNet trunk
//! `net.slice1.0`, `net.slice2.3`, `net.slice3.6`, `net.slice4.8`, `net.slice5.10` (`.weight`,
//! `.bias`, torchvision's `alexnet().features` at indices 0, 3, 6, 8, 10) and the linear layers
//! `lin{0..4}.model.1.weight` `[1,C,1,1]`; other keys (`scaling_layer.*`, the `lins.*` aliases)
//! are ignored. Make it where the `lpips` package is installed (`clone()` because `lins.{l}` and
//! `lin{l}` share storage, which `save_file` refuses):
//!
//! ```text
//! python -c "import lpips; from safetensors.torch import save_file; m=lpips.LPIPS(net='alex'); save_file({k: v.clone().contiguous() for k, v in m.state_dict().items()}, 'lpips_alex.safetensors')"
//! ```

use std::path::Path;

use anyhow::Result;
use tch::{Device, Kind, Tensor};

use super::vgg::take_checked;
use crate::checkpoint::read_safetensors;

/// AlexNet's conv layers as LPIPS names them: (key prefix, in, out, kernel, stride, padding).
const ALEX: [(&str, i64, i64, i64, i64, i64); 5] = [
    ("net.slice1.0", 3, 64, 11, 4, 2),
    ("net.slice2.3", 64, 192, 5, 1, 2),
    ("net.slice3.6", 192, 384, 3, 1, 1),
    ("net.slice4.8", 384, 256, 3, 1, 1),
    ("net.slice5.10", 256, 256, 3, 1, 1),
];

/// LPIPS-Alex (see the [module docs](self)).
#[derive(Debug)]
pub struct Lpips {
    convs: Vec<(Tensor, Tensor, i64, i64)>,
    lins: Vec<Tensor>,
    shift: Tensor,
    scale: Tensor,
}

impl Lpips {
    /// Loads the weights file onto `device`; a missing or mis-shaped tensor is an error naming it.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let t = read_safetensors(path)?;
        let file = path.display().to_string();
        let mut convs = Vec::new();
        let mut lins = Vec::new();
        for (l, (name, cin, cout, k, stride, pad)) in ALEX.iter().enumerate() {
            let w = take_checked(
                &t,
                &format!("{name}.weight"),
                &[*cout, *cin, *k, *k],
                &file,
                device,
            )?;
            let b = take_checked(&t, &format!("{name}.bias"), &[*cout], &file, device)?;
            convs.push((w, b, *stride, *pad));
            lins.push(take_checked(
                &t,
                &format!("lin{l}.model.1.weight"),
                &[1, *cout, 1, 1],
                &file,
                device,
            )?);
        }
        let shift = Tensor::from_slice(&[-0.030f32, -0.088, -0.188])
            .reshape([1, 3, 1, 1])
            .to_device(device);
        let scale = Tensor::from_slice(&[0.458f32, 0.448, 0.450])
            .reshape([1, 3, 1, 1])
            .to_device(device);
        Ok(Self {
            convs,
            lins,
            shift,
            scale,
        })
    }

    fn features(&self, x: &Tensor) -> Vec<Tensor> {
        let mut h = ((x * 2.0 - 1.0) - &self.shift) / &self.scale;
        let mut out = Vec::with_capacity(5);
        for (l, (w, b, stride, pad)) in self.convs.iter().enumerate() {
            if l == 1 || l == 2 {
                h = h.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
            }
            h = h.conv2d(w, Some(b), *stride, *pad, 1, 1).relu();
            out.push(h.shallow_clone());
        }
        out
    }

    /// Distances `[B]` between `x` and `y` `[B,3,H,W]` (RGB in [0, 1]), without gradient.
    pub fn distance(&self, x: &Tensor, y: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let fx = self.features(&x.to_kind(Kind::Float));
            let fy = self.features(&y.to_kind(Kind::Float));
            let norm = |f: &Tensor| {
                let n = (f * f).sum_dim_intlist(1, true, Kind::Float).sqrt();
                f / (n + 1e-10)
            };
            let zero = Tensor::zeros([x.size()[0]], (Kind::Float, x.device()));
            fx.iter()
                .zip(&fy)
                .zip(&self.lins)
                .fold(zero, |d, ((a, b), lin)| {
                    let diff = (norm(a) - norm(b)).square();
                    d + diff.conv2d(lin, None::<Tensor>, 1, 0, 1, 1).mean_dim(
                        [1i64, 2, 3].as_slice(),
                        false,
                        Kind::Float,
                    )
                })
        })
    }
}
