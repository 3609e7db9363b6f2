//! The depthwise 3×3 convolution and LeakyReLU that open each IDR-DCRB block of the SR network
//! (IDR-DDC: the kernels generated from the IDR, per image in the dynamic and split graphs,
//! constants in a folded one), computed row by row inside the dense 3×3 convolution that reads
//! them ([`super::winograd::Winograd3x3::with_prologue`]): as the convolution converts its
//! input rows (Winograd's input transform, AMX's bf16 pairs), each row it needs is computed from
//! the block's input instead of read from a tensor of its own. tract ran them as two ops, each a
//! pass over a 7.4 MB tensor at LR 320×180 (the depthwise convolution writing it, the LeakyReLU
//! reading and writing it), and the convolution read it a third time.

/// A depthwise 3×3 convolution (stride 1, dilation 1, zero padding 1; ONNX `Conv` with `group`
/// = channels) and an optional LeakyReLU after it, one output row of one channel at a time.
#[derive(Clone, Copy, Debug)]
pub struct Depthwise<'a> {
    /// The kernels, `[channels, 9]` (ONNX `[channels, 1, 3, 3]`).
    pub kernel: &'a [f32],
    /// `[channels]`, or `None` for none.
    pub bias: Option<&'a [f32]>,
    /// LeakyReLU's slope for negative values.
    pub leaky_relu: Option<f32>,
}

impl Depthwise<'_> {
    /// Output row `y` of channel `c` into `out` (`w` values) from that channel's input `plane`
    /// `[h, w]`, rows outside it read as `zeros` (at least `w` zeros).
    ///
    /// `bias + (k0·a[x-1] + k1·a[x] + k2·a[x+1]) + (k3·b[x-1] + …) + (k6·c[x-1] + …)` for the
    /// rows `a`, `b`, `c` above, at and below `y`, the columns outside the row left out; the
    /// same float32 operations in the same order at every SIMD width (no FMA contraction), so
    /// every build of the op gives the same bits. Lane-wise over the interior columns, each
    /// shifted input a slice of its own, so that the compiler vectorizes it (inlined into the
    /// caller's AVX-512 or AVX2 variant).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &self,
        plane: &[f32],
        c: usize,
        h: usize,
        w: usize,
        y: usize,
        zeros: &[f32],
        out: &mut [f32],
    ) {
        let k: &[f32; 9] = self.kernel[c * 9..][..9]
            .try_into()
            .expect("nine taps per channel");
        let bias = self.bias.map_or(0.0, |b| b[c]);
        let row = |ky: usize| -> &[f32] {
            match (y + ky).checked_sub(1).filter(|&r| r < h) {
                Some(r) => &plane[r * w..][..w],
                None => &zeros[..w],
            }
        };
        let [a, b, d] = [row(0), row(1), row(2)];
        let out = &mut out[..w];
        // Column x from the taps whose input column is inside the row.
        let edge = |x: usize| -> f32 {
            // Row r's three taps from k0, a tap outside the row 0.
            let at = |r: &[f32], k0: usize| {
                let t = |kx: usize| -> f32 {
                    match (x + kx).checked_sub(1).filter(|&i| i < w) {
                        Some(i) => k[k0 + kx] * r[i],
                        None => 0.0,
                    }
                };
                (t(0) + t(1)) + t(2)
            };
            bias + at(a, 0) + at(b, 3) + at(d, 6)
        };
        out[0] = edge(0);
        if w > 1 {
            out[w - 1] = edge(w - 1);
        }
        if w > 2 {
            let n = w - 2;
            let [a0, a1, a2, b0, b1, b2, d0, d1, d2] = [
                &a[..n],
                &a[1..n + 1],
                &a[2..],
                &b[..n],
                &b[1..n + 1],
                &b[2..],
                &d[..n],
                &d[1..n + 1],
                &d[2..],
            ];
            for (x, v) in out[1..w - 1].iter_mut().enumerate() {
                *v = bias
                    + ((k[0] * a0[x] + k[1] * a1[x]) + k[2] * a2[x])
                    + ((k[3] * b0[x] + k[4] * b1[x]) + k[5] * b2[x])
                    + ((k[6] * d0[x] + k[7] * d1[x]) + k[8] * d2[x]);
            }
        }
        if let Some(alpha) = self.leaky_relu {
            for v in out.iter_mut() {
                if *v < 0.0 {
                    *v *= alpha;
                }
            }
        }
    }
}
