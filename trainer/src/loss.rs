//! Losses: L1 reconstruction and the KD loss on `D'`.

use kdsr_core::spec::KD_TEMPERATURE;
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// Which distance the KD loss uses (paper Table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KdLoss {
    /// `KL(softmax(D'_T/τ) ‖ softmax(D'_S/τ))`, batchmean — the official loss.
    #[default]
    Kl,
    /// Mean |D'_T − D'_S|.
    L1,
    /// Mean (D'_T − D'_S)².
    L2,
}

/// KD loss between student and teacher `D'` `[B,4C]`; the teacher side is detached. For
/// [`KdLoss::Kl`]: `(1/B) Σ_b Σ_j p_T (log p_T − log q_S)` with `p = softmax(D'/τ)`, no τ² factor.
pub fn kd_loss(kind: KdLoss, student: &Tensor, teacher: &Tensor, tau: f64) -> Tensor {
    let t = teacher.detach();
    match kind {
        KdLoss::Kl => {
            let log_q = (student / tau).log_softmax(1, Kind::Float);
            let p = (&t / tau).softmax(1, Kind::Float);
            // F.kl_div(log_q, p, 'batchmean') = sum(p * (log p - log_q)) / B
            let b = student.size()[0] as f64;
            log_q.kl_div(&p, Reduction::Sum, false) / b
        }
        KdLoss::L1 => student.l1_loss(&t, Reduction::Mean),
        KdLoss::L2 => student.mse_loss(&t, Reduction::Mean),
    }
}

/// The official temperature as f64.
pub fn default_tau() -> f64 {
    KD_TEMPERATURE
}

/// Mean absolute error between SR and HR.
pub fn l1(sr: &Tensor, hr: &Tensor) -> Tensor {
    sr.l1_loss(hr, Reduction::Mean)
}

/// The degradation-regression loss (`idr.regress_weight`): mean |D[:, j] − target[:, j]| over the
/// first `k` channels of `D` `[B,C]`, `targets` `[B,k]`.
pub fn regress_loss(d: &Tensor, targets: &Tensor) -> Tensor {
    let k = targets.size()[1];
    d.narrow(1, 0, k).l1_loss(targets, Reduction::Mean)
}

/// The degradation-consistency loss (`idr.consistency_weight`): mean |D_i − D_{i+B/2}| for a
/// batch whose samples `i` and `i + B/2` share one degradation.
pub fn consistency_loss(d: &Tensor) -> Tensor {
    let h = d.size()[0] / 2;
    d.narrow(0, 0, h)
        .l1_loss(&d.narrow(0, h, h), Reduction::Mean)
}
