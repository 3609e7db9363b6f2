//! Rows of 4-value tiles split into one row per tile column, and joined back: the gathers of
//! Winograd F(4,3)'s transforms ([`super::winograd`]).
//!
//! The compiler leaves these loops scalar (a stride-4 load per value, or 4-lane inserts per
//! stored vector): on an Intel Xeon (2026-12-06, `perf` on the `winograd-op` example's 32→32
//! convolution at 320×180) the split took ~20 % and the join ~15 % of the op's own code, about
//! a fifth of the convolution's time. Here, on x86-64 CPUs with AVX2 (the op's AVX2 and
//! AVX-512 levels), each 8 tiles take 8 half-vector loads, 4 unpacks and 4 shuffles (a 4×4
//! transpose within each 128-bit half) and 4 stores, the join the same backwards plus 4
//! permutes across the halves; on aarch64 NEON's `ld4` / `st4` do it, one instruction per 4
//! tiles. Elsewhere (SSE2 only, armv7) the plain loops run. The values are copied (plus the bias, one addition each) as the plain loops
//! copy them, so every path gives the same bits.
//!
//! Measured with the `winograd-op` example (32→32 at 320×180, F(4,3), minimum of 8 calls, 5
//! interleaved rounds, the same Intel Xeon VM): 9.2–9.7 ms with these (AVX-512 permutes, tried
//! first: 8.8–9.3 ms; their intrinsics need Rust 1.89, above the workspace's rust-version),
//! against 12.1–13.3 ms for the plain loops; with `KDSR_EDGE_SIMD=avx2`
//! 6.5–9.8 against 7.8–12.2 ms (4 rounds). The NEON path is tested under qemu, not timed on
//! an ARM board.

#[cfg(target_arch = "x86_64")]
use super::winograd::{SimdLevel, detected_simd_level};

/// `e_c[t] = row[4t + c]` for every whole tile `t` of `row` that all four rows have room for.
#[inline(always)]
pub(crate) fn split4(row: &[f32], e0: &mut [f32], e1: &mut [f32], e2: &mut [f32], e3: &mut [f32]) {
    let n = (row.len() / 4)
        .min(e0.len())
        .min(e1.len())
        .min(e2.len())
        .min(e3.len());
    let (row, e0, e1, e2, e3) = (
        &row[..4 * n],
        &mut e0[..n],
        &mut e1[..n],
        &mut e2[..n],
        &mut e3[..n],
    );
    #[cfg(target_arch = "x86_64")]
    let done = if detected_simd_level() != SimdLevel::Baseline {
        // SAFETY: the CPU has AVX (detected_simd_level saw AVX2).
        #[allow(unsafe_code)]
        unsafe {
            split4_avx(row, e0, e1, e2, e3)
        }
    } else {
        0
    };
    #[cfg(target_arch = "aarch64")]
    let done = split4_neon(row, e0, e1, e2, e3);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let done = 0;
    let rest = row[4 * done..]
        .chunks_exact(4)
        .zip(&mut e0[done..])
        .zip(&mut e1[done..])
        .zip(&mut e2[done..])
        .zip(&mut e3[done..]);
    for ((((q, a), b), c), d) in rest {
        [*a, *b, *c, *d] = [q[0], q[1], q[2], q[3]];
    }
}

/// `line[4t + c] = f_c[t] + bias` for every whole tile `t` of `line` (each `f_c` at least that
/// many values long): the inverse of [`split4`], plus the bias.
#[inline(always)]
pub(crate) fn join4(line: &mut [f32], f0: &[f32], f1: &[f32], f2: &[f32], f3: &[f32], bias: f32) {
    let n = line.len() / 4;
    let (line, f0, f1, f2, f3) = (&mut line[..4 * n], &f0[..n], &f1[..n], &f2[..n], &f3[..n]);
    #[cfg(target_arch = "x86_64")]
    let done = if detected_simd_level() != SimdLevel::Baseline {
        // SAFETY: the CPU has AVX (detected_simd_level saw AVX2).
        #[allow(unsafe_code)]
        unsafe {
            join4_avx(line, f0, f1, f2, f3, bias)
        }
    } else {
        0
    };
    #[cfg(target_arch = "aarch64")]
    let done = join4_neon(line, f0, f1, f2, f3, bias);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let done = 0;
    let rest = line[4 * done..]
        .chunks_exact_mut(4)
        .zip(&f0[done..])
        .zip(&f1[done..])
        .zip(&f2[done..])
        .zip(&f3[done..]);
    for ((((q, a), b), c), d) in rest {
        q.copy_from_slice(&[*a + bias, *b + bias, *c + bias, *d + bias]);
    }
}

/// [`split4`]'s whole blocks of 8 tiles (`row` is `4n` values, each `e_c` `n`); returns how
/// many tiles it did. Tiles `t` and `t + 4` are loaded into the two 128-bit halves of one
/// vector, so that a 4×4 transpose within the halves leaves each column's 8 tiles in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn split4_avx(
    row: &[f32],
    e0: &mut [f32],
    e1: &mut [f32],
    e2: &mut [f32],
    e3: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let blocks = e0.len() / 8;
    for k in 0..blocks {
        let q = &row[32 * k..][..32];
        let out = [
            &mut e0[8 * k..][..8],
            &mut e1[8 * k..][..8],
            &mut e2[8 * k..][..8],
            &mut e3[8 * k..][..8],
        ];
        // SAFETY: `q` holds the 32 values read, each output slice the 8 written.
        #[allow(unsafe_code)]
        unsafe {
            let p = q.as_ptr();
            // Tile j in the low half, tile j + 4 in the high half.
            let a = _mm256_castps128_ps256(_mm_loadu_ps(p));
            let b = _mm256_castps128_ps256(_mm_loadu_ps(p.add(4)));
            let c = _mm256_castps128_ps256(_mm_loadu_ps(p.add(8)));
            let d = _mm256_castps128_ps256(_mm_loadu_ps(p.add(12)));
            let a = _mm256_insertf128_ps::<1>(a, _mm_loadu_ps(p.add(16)));
            let b = _mm256_insertf128_ps::<1>(b, _mm_loadu_ps(p.add(20)));
            let c = _mm256_insertf128_ps::<1>(c, _mm_loadu_ps(p.add(24)));
            let d = _mm256_insertf128_ps::<1>(d, _mm_loadu_ps(p.add(28)));
            let ab01 = _mm256_unpacklo_ps(a, b);
            let ab23 = _mm256_unpackhi_ps(a, b);
            let cd01 = _mm256_unpacklo_ps(c, d);
            let cd23 = _mm256_unpackhi_ps(c, d);
            let [o0, o1, o2, o3] = out;
            _mm256_storeu_ps(o0.as_mut_ptr(), _mm256_shuffle_ps::<0x44>(ab01, cd01));
            _mm256_storeu_ps(o1.as_mut_ptr(), _mm256_shuffle_ps::<0xEE>(ab01, cd01));
            _mm256_storeu_ps(o2.as_mut_ptr(), _mm256_shuffle_ps::<0x44>(ab23, cd23));
            _mm256_storeu_ps(o3.as_mut_ptr(), _mm256_shuffle_ps::<0xEE>(ab23, cd23));
        }
    }
    8 * blocks
}

/// [`join4`]'s whole blocks of 8 tiles (`line` is `4n` values, each `f_c` `n`); returns how
/// many tiles it did: [`split4_avx`]'s steps backwards.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn join4_avx(line: &mut [f32], f0: &[f32], f1: &[f32], f2: &[f32], f3: &[f32], bias: f32) -> usize {
    use std::arch::x86_64::*;
    let blocks = f0.len() / 8;
    let vb = _mm256_set1_ps(bias);
    for k in 0..blocks {
        let q = &mut line[32 * k..][..32];
        let f = [
            &f0[8 * k..][..8],
            &f1[8 * k..][..8],
            &f2[8 * k..][..8],
            &f3[8 * k..][..8],
        ];
        // SAFETY: each `f` slice holds the 8 values read, `q` the 32 written.
        #[allow(unsafe_code)]
        unsafe {
            let a = _mm256_add_ps(_mm256_loadu_ps(f[0].as_ptr()), vb);
            let b = _mm256_add_ps(_mm256_loadu_ps(f[1].as_ptr()), vb);
            let c = _mm256_add_ps(_mm256_loadu_ps(f[2].as_ptr()), vb);
            let d = _mm256_add_ps(_mm256_loadu_ps(f[3].as_ptr()), vb);
            // Per half: columns 0, 1 of two tiles, then columns 2, 3.
            let ab_lo = _mm256_unpacklo_ps(a, b);
            let ab_hi = _mm256_unpackhi_ps(a, b);
            let cd_lo = _mm256_unpacklo_ps(c, d);
            let cd_hi = _mm256_unpackhi_ps(c, d);
            // Tiles j | j + 4 (j = 0, 1, 2, 3), whole.
            let t04 = _mm256_shuffle_ps::<0x44>(ab_lo, cd_lo);
            let t15 = _mm256_shuffle_ps::<0xEE>(ab_lo, cd_lo);
            let t26 = _mm256_shuffle_ps::<0x44>(ab_hi, cd_hi);
            let t37 = _mm256_shuffle_ps::<0xEE>(ab_hi, cd_hi);
            let p = q.as_mut_ptr();
            _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(t04, t15));
            _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x20>(t26, t37));
            _mm256_storeu_ps(p.add(16), _mm256_permute2f128_ps::<0x31>(t04, t15));
            _mm256_storeu_ps(p.add(24), _mm256_permute2f128_ps::<0x31>(t26, t37));
        }
    }
    8 * blocks
}

/// [`split4`]'s whole blocks of 4 tiles by NEON's `ld4` (part of every aarch64 CPU).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn split4_neon(
    row: &[f32],
    e0: &mut [f32],
    e1: &mut [f32],
    e2: &mut [f32],
    e3: &mut [f32],
) -> usize {
    use std::arch::aarch64::*;
    let blocks = e0.len() / 4;
    for k in 0..blocks {
        let q = &row[16 * k..][..16];
        let out = [
            &mut e0[4 * k..][..4],
            &mut e1[4 * k..][..4],
            &mut e2[4 * k..][..4],
            &mut e3[4 * k..][..4],
        ];
        // SAFETY: `q` holds the 16 values read, each output slice the 4 written.
        #[allow(unsafe_code)]
        unsafe {
            let v = vld4q_f32(q.as_ptr());
            let [a, b, c, d] = out;
            vst1q_f32(a.as_mut_ptr(), v.0);
            vst1q_f32(b.as_mut_ptr(), v.1);
            vst1q_f32(c.as_mut_ptr(), v.2);
            vst1q_f32(d.as_mut_ptr(), v.3);
        }
    }
    4 * blocks
}

/// [`join4`]'s whole blocks of 4 tiles by NEON's `st4`.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn join4_neon(
    line: &mut [f32],
    f0: &[f32],
    f1: &[f32],
    f2: &[f32],
    f3: &[f32],
    bias: f32,
) -> usize {
    use std::arch::aarch64::*;
    let blocks = f0.len() / 4;
    for k in 0..blocks {
        let q = &mut line[16 * k..][..16];
        let f = [
            &f0[4 * k..][..4],
            &f1[4 * k..][..4],
            &f2[4 * k..][..4],
            &f3[4 * k..][..4],
        ];
        // SAFETY: each `f` slice holds the 4 values read, `q` the 16 written.
        #[allow(unsafe_code)]
        unsafe {
            let vb = vdupq_n_f32(bias);
            let a = vaddq_f32(vld1q_f32(f[0].as_ptr()), vb);
            let b = vaddq_f32(vld1q_f32(f[1].as_ptr()), vb);
            let c = vaddq_f32(vld1q_f32(f[2].as_ptr()), vb);
            let d = vaddq_f32(vld1q_f32(f[3].as_ptr()), vb);
            vst4q_f32(q.as_mut_ptr(), float32x4x4_t(a, b, c, d));
        }
    }
    4 * blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain loops, as the op had them.
    fn split_plain(row: &[f32], e: &mut [Vec<f32>; 4]) {
        for (t, q) in row.chunks_exact(4).enumerate() {
            for c in 0..4 {
                if t < e[c].len() {
                    e[c][t] = q[c];
                }
            }
        }
    }

    /// Every length up to a few blocks of every path, the outputs longer and shorter than the
    /// row's tiles: the same values as the plain loops, and nothing beyond the tiles written.
    #[test]
    fn split_and_join_equal_the_plain_loops() {
        for len in 0..150 {
            for extra in [0usize, 1, 3] {
                let row: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 7.0).collect();
                let n = len / 4 + extra;
                let mut got: [Vec<f32>; 4] = std::array::from_fn(|_| vec![f32::NAN; n]);
                let mut want: [Vec<f32>; 4] = std::array::from_fn(|_| vec![f32::NAN; n]);
                {
                    let [a, b, c, d] = &mut got;
                    split4(&row, a, b, c, d);
                }
                split_plain(&row, &mut want);
                for c in 0..4 {
                    let same = got[c]
                        .iter()
                        .zip(&want[c])
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "split4: row of {len}, column {c}: {:?} vs {:?}",
                        got[c], want[c]
                    );
                }
                // join4 back, plus a bias; the values past the whole tiles stay as they were.
                let bias = 0.25;
                let mut line = vec![f32::NAN; len];
                join4(&mut line, &got[0], &got[1], &got[2], &got[3], bias);
                for (i, v) in line.iter().enumerate() {
                    if i < 4 * (len / 4) {
                        assert_eq!(
                            v.to_bits(),
                            (row[i] + bias).to_bits(),
                            "join4: {len}, value {i}"
                        );
                    } else {
                        assert!(
                            v.is_nan(),
                            "join4 wrote past the whole tiles ({len}, value {i})"
                        );
                    }
                }
            }
        }
    }
}
