//! Adam (as `torch.optim.Adam`, no AMSGrad, no weight decay) with its state exposed as named
//! tensors so a checkpoint can resume exactly, the step learning-rate schedule, and a weight EMA.

use std::collections::HashMap;

use anyhow::Result;
use tch::Tensor;

use crate::checkpoint::copy_checked;

/// Adam over named parameters.
#[derive(Debug)]
pub struct Adam {
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub step: i64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// Optimises `params` (trainable variables; their `.grad()` is read at each step).
    pub fn new(params: Vec<(String, Tensor)>, beta1: f64, beta2: f64, eps: f64) -> Self {
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            params,
            m,
            v,
            step: 0,
            beta1,
            beta2,
            eps,
        }
    }

    /// Optimises shallow copies of `params`.
    pub fn over(params: &[(String, Tensor)], beta1: f64, beta2: f64, eps: f64) -> Self {
        let params = params
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        Self::new(params, beta1, beta2, eps)
    }

    /// Zeroes every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr`:
    /// `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
    /// `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        tch::no_grad(|| {
            for ((_, p), (m, v)) in self
                .params
                .iter_mut()
                .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - self.beta1);
                let _ = v.g_mul_scalar_(self.beta2);
                let _ = v.addcmul_(&(&g * (1.0 - self.beta2)), &g);
                let denom = (v.sqrt() / bc2_sqrt) + self.eps;
                let _ = p.addcdiv_(&(&*m * (-lr / bc1)), &denom);
            }
        });
    }

    /// The state as named tensors (`adam.m.NAME`, `adam.v.NAME`) plus the step count.
    pub fn state(&self) -> (Vec<(String, Tensor)>, i64) {
        let mut out = Vec::new();
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("adam.m.{name}"), m.to_device(tch::Device::Cpu)));
            out.push((format!("adam.v.{name}"), v.to_device(tch::Device::Cpu)));
        }
        (out, self.step)
    }

    /// Restores [`Adam::state`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: i64) -> Result<()> {
        for ((name, _), (m, v)) in self
            .params
            .iter()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            copy_checked(m, tensors, &format!("adam.m.{name}"), "optimizer state")?;
            copy_checked(v, tensors, &format!("adam.v.{name}"), "optimizer state")?;
        }
        self.step = step;
        Ok(())
    }
}

/// Step decay: `lr · gamma^(⌊iter / every⌋)` with `iter` 0-based.
pub fn step_lr(base: f64, gamma: f64, every: u64, iter: u64) -> f64 {
    base * gamma.powi((iter / every.max(1)) as i32)
}

/// Exponential moving average of parameters: `ema ← d·ema + (1−d)·p`.
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    /// `(name, shadow)`, on the parameters' device.
    pub shadow: Vec<(String, Tensor)>,
}

impl Ema {
    /// Starts from a copy of `params`.
    pub fn new(params: &[(String, Tensor)], decay: f64) -> Self {
        let shadow = tch::no_grad(|| {
            params
                .iter()
                .map(|(n, p)| (n.clone(), p.detach().copy()))
                .collect()
        });
        Self { decay, shadow }
    }

    /// Folds the current parameters in.
    pub fn update(&mut self, params: &[(String, Tensor)]) {
        tch::no_grad(|| {
            for ((_, s), (_, p)) in self.shadow.iter_mut().zip(params) {
                let _ = s.lerp_(p, 1.0 - self.decay);
            }
        });
    }
}
