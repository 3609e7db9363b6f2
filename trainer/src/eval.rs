//! Evaluation of the tch networks with the shared protocol of [`kdsr_core::eval`] (LR made on the
//! fly from HR images with the classic pipeline on the CPU, PSNR/SSIM on Y after 8-bit
//! quantisation). The runtime evaluates its ONNX graphs with the same code, so the numbers of
//! `trainer eval` and `kdsr-edge eval` are comparable.

use anyhow::Result;
use kdsr_core::Planar;
use kdsr_core::metrics::MetricVariant;
use tch::{Device, Tensor};

pub use kdsr_core::eval::{
    EvalCase, EvalImage, Report, Row, aniso_grid, evaluate_with, gaussian8, load_folder, to_rgb,
};

use crate::model::BlindSr;

/// A `[1,C,H,W]` tensor from a planar image.
pub fn planar_to_tensor(p: &Planar, device: Device) -> Tensor {
    let [c, h, w] = p.shape();
    Tensor::from_slice(p.data())
        .reshape([1, c as i64, h as i64, w as i64])
        .to_device(device)
}

/// A planar image from a `[1,C,H,W]` tensor.
pub fn tensor_to_planar(t: &Tensor) -> Result<Planar> {
    let s = t.size();
    let data = Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().flatten(0, -1))?;
    Ok(Planar::new(
        s[1] as usize,
        s[2] as usize,
        s[3] as usize,
        data,
    )?)
}

/// Evaluates `net` on every (case, image) on `device`. Teachers get the HR image as IDE input.
pub fn evaluate(
    net: &BlindSr,
    images: &[EvalImage],
    cases: &[EvalCase],
    device: Device,
    metric: MetricVariant,
    seed: u64,
) -> Result<Report> {
    evaluate_with(images, cases, net.cfg.scale, metric, seed, |lr, hr| {
        super_resolve(net, lr, hr, device)
    })
}

/// One SR forward of `net` on `device` without gradients (`hr` feeds a teacher's IDE).
pub fn super_resolve(net: &BlindSr, lr: &Planar, hr: &Planar, device: Device) -> Result<Planar> {
    let lr_t = planar_to_tensor(lr, device);
    let hr_t = planar_to_tensor(hr, device);
    let out = tch::no_grad(|| net.forward(&lr_t, Some(&hr_t)))?;
    tensor_to_planar(&out.sr)
}
