//! The numbers of quantization, as onnxruntime's `quantize_static` computes them
//! (`quant_utils.compute_scale_zp`): per-channel symmetric int8 weights, asymmetric uint8
//! activations, int32 biases, and float16 rounding. Every rounding is half to even, as ONNX
//! `QuantizeLinear` specifies.

/// Largest magnitude of a symmetric int8 weight: the range is [-127, 127], as onnxruntime's
/// symmetric int8 (so that `-q` is always representable).
pub const INT8_WEIGHT_MAX: f32 = 127.0;

/// Largest magnitude of a 7-bit weight, onnxruntime's `reduce_range` for int8 (its
/// `ONNX_INT_TYPE_REDUCED_RANGE`: [-64, 64]). A uint8 activation times such a weight, summed in
/// pairs, stays within i16 (255 · 64 · 2 = 32,640), so the `vpmaddubsw` u8×s8 kernels of x86-64
/// CPUs without VNNI cannot saturate.
pub const INT8_WEIGHT_MAX_REDUCED: f32 = 64.0;

/// One tensor quantized per channel along axis 0: `w[c, …] ≈ q[c, …] · scale[c]` (zero point 0).
#[derive(Clone, Debug, PartialEq)]
pub struct PerChannel {
    /// The int8 values, row-major, same layout as the float tensor.
    pub q: Vec<i8>,
    /// One scale per channel (axis 0).
    pub scale: Vec<f32>,
}

impl PerChannel {
    /// The dequantized values `q · scale[channel]`, as ONNX `DequantizeLinear` computes them.
    pub fn dequantize(&self) -> Vec<f32> {
        let per = self.q.len() / self.scale.len().max(1);
        self.q
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * self.scale[i / per.max(1)])
            .collect()
    }
}

/// Scale of a symmetric range `[-absmax, absmax]` over `steps` steps each side; 1 for an
/// all-zero (or denormal) range, as onnxruntime.
fn symmetric_scale(absmax: f32, steps: f32) -> f32 {
    let s = absmax / steps;
    if s.is_finite() && s >= f32::MIN_POSITIVE {
        s
    } else {
        1.0
    }
}

/// Quantizes `data` (row-major, axis 0 of length `channels`) per channel, symmetric int8 with
/// `qmax` steps each side ([`INT8_WEIGHT_MAX`] or [`INT8_WEIGHT_MAX_REDUCED`]):
/// `scale[c] = max|w[c, …]| / qmax`, `q = clamp(round_half_even(w / scale), -qmax, qmax)`.
/// Every dequantized value is within `scale[c] / 2` of the original.
///
/// # Shapes
/// `data.len()` must be a multiple of `channels` (checked by the caller); channel `c` is
/// `data[c·n .. (c+1)·n]`, `n = data.len() / channels`.
pub fn per_channel_int8(data: &[f32], channels: usize, qmax: f32) -> PerChannel {
    let n = data.len() / channels.max(1);
    let mut q = Vec::with_capacity(data.len());
    let mut scale = Vec::with_capacity(channels);
    for ch in data.chunks(n.max(1)).take(channels) {
        let absmax = ch.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = symmetric_scale(absmax, qmax);
        scale.push(s);
        q.extend(
            ch.iter()
                .map(|v| (v / s).round_ties_even().clamp(-qmax, qmax) as i8),
        );
    }
    PerChannel { q, scale }
}

/// Scale and zero point of an asymmetric uint8 activation whose calibrated range is
/// `[min, max]`: the range is first widened to contain 0 (so that 0, the conv padding, is exact),
/// then `scale = (max − min) / 255` and `zero_point = round_half_even(−min / scale)`.
/// A zero-width range gives scale 1, zero point 0 (onnxruntime's rule).
pub fn uint8_activation(min: f32, max: f32) -> (f32, u8) {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = (f64::from(hi) - f64::from(lo)) / 255.0;
    let stored = scale as f32;
    if !(stored.is_finite() && stored >= f32::MIN_POSITIVE) {
        return (1.0, 0);
    }
    let zp = (-f64::from(lo) / scale).round_ties_even();
    (stored, zp.clamp(0.0, 255.0) as u8)
}

/// `QuantizeLinear` then `DequantizeLinear` of one value with an asymmetric uint8 scale and zero
/// point: the value the next layer reads.
pub fn fake_quant_u8(x: f32, scale: f32, zero_point: u8) -> f32 {
    let q = ((x / scale).round_ties_even() + f32::from(zero_point)).clamp(0.0, 255.0);
    (q - f32::from(zero_point)) * scale
}

/// An int32 bias for a layer whose input has scale `in_scale` and whose weight channel `c` has
/// scale `w_scale[c]`: `scale[c] = in_scale · w_scale[c]`, zero point 0 — onnxruntime's QDQ bias,
/// which lets an int8 runtime add it to the int32 accumulator directly. `None` when a value does
/// not fit in int32 (the bias then stays float32).
pub fn int32_bias(bias: &[f32], in_scale: f32, w_scale: &[f32]) -> Option<(Vec<i32>, Vec<f32>)> {
    let mut q = Vec::with_capacity(bias.len());
    let mut scales = Vec::with_capacity(bias.len());
    for (b, ws) in bias.iter().zip(w_scale) {
        let s = in_scale * ws;
        if !(s.is_finite() && s >= f32::MIN_POSITIVE) {
            return None;
        }
        let v = (f64::from(*b) / f64::from(s)).round_ties_even();
        if !(v.is_finite() && v.abs() <= f64::from(i32::MAX)) {
            return None;
        }
        q.push(v as i32);
        scales.push(s);
    }
    Some((q, scales))
}

/// float32 → float16 (round to nearest even; values beyond ±65504 become ±inf, which the caller
/// rejects).
pub fn to_f16(data: &[f32]) -> Vec<half::f16> {
    data.iter().map(|v| half::f16::from_f32(*v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dequantized value of `p` (3 channels) is within half a step of `w`.
    fn assert_within_half_a_step(p: &PerChannel, w: &[f32]) {
        for (i, (a, b)) in p.dequantize().iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= p.scale[i / 3] / 2.0 * 1.000_01,
                "{i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn per_channel_is_within_half_a_step() {
        let w = [0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 1e-3, 2e-3, -3e-3];
        let p = per_channel_int8(&w, 3, INT8_WEIGHT_MAX);
        assert_eq!(p.scale[1], 1.0);
        assert_eq!(p.q[1], -127);
        assert_eq!(&p.q[3..6], &[0, 0, 0]);
        assert_within_half_a_step(&p, &w);
    }

    #[test]
    fn reduced_range_weights_use_7_bits() {
        let w = [0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 1e-3, 2e-3, -3e-3];
        let p = per_channel_int8(&w, 3, INT8_WEIGHT_MAX_REDUCED);
        assert_eq!(p.q[1], -64);
        assert!((p.scale[0] - 1.0 / 64.0).abs() < 1e-9);
        assert!(p.q.iter().all(|q| (-64..=64).contains(q)), "{:?}", p.q);
        // The largest pair sum a u8×s8 `vpmaddubsw` can form stays within i16.
        let worst = 255 * i32::from(p.q.iter().map(|q| q.unsigned_abs()).max().unwrap_or(0)) * 2;
        assert!(worst <= i32::from(i16::MAX), "{worst}");
        assert_within_half_a_step(&p, &w);
    }

    #[test]
    fn activation_range_contains_zero() {
        let (s, z) = uint8_activation(0.2, 1.0);
        assert_eq!(z, 0);
        assert!((s - 1.0 / 255.0).abs() < 1e-9);
        let (s, z) = uint8_activation(-1.0, 1.0);
        assert!((s - 2.0 / 255.0).abs() < 1e-9);
        assert_eq!(z, 128);
        assert_eq!(uint8_activation(0.0, 0.0), (1.0, 0));
        assert_eq!(fake_quant_u8(0.0, s, z), 0.0);
    }

    #[test]
    fn bias_scale_is_input_times_weight_scale() {
        let (q, s) = int32_bias(&[0.5, -0.25], 0.01, &[0.1, 0.2]).unwrap_or_default();
        assert_eq!(q, vec![500, -125]);
        assert!((s[0] - 1e-3).abs() < 1e-9);
        assert!(int32_bias(&[1e9], 1e-6, &[1e-6]).is_none());
    }
}
