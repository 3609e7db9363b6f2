//! The plain-Rust reference forward against the official vectors
//! (`tests/fixtures/reference/vectors/small_io.safetensors`, C 16, N 2, R 2, ×4, batch 2), each
//! batch sample on its own: `sr` within 2e-6, `D`, `D'`, the pooled IDE features and block 0's
//! dynamic kernels within 1e-6 (the vectors' README tolerances).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{check, io, net, planar, sample};
use kdsr_converter::{fold, reference};
use kdsr_core::Planar;

#[test]
fn reference_forward_matches_official_vectors() {
    let (net, io) = (net(), io());
    for b in 0..2 {
        let lr = planar(&io["lr"], b);
        let f = reference::forward(&net, &lr).unwrap();
        check(
            &format!("sample {b} pooled"),
            &f.ide.pooled,
            &sample(&io["student.E_st.E_out_pooled"], b).data,
            1e-6,
        );
        check(
            &format!("sample {b} D"),
            &f.ide.d,
            &sample(&io["student.D"], b).data,
            1e-6,
        );
        check(
            &format!("sample {b} D_prime"),
            &f.ide.d_prime,
            &sample(&io["student.D_prime"], b).data,
            1e-6,
        );
        let k = fold::block_kernels(&net.config, &net.weights, 0, &f.ide.d).unwrap();
        let all = &io["student.block0_dynamic_kernel"].data;
        check(
            &format!("sample {b} block 0 kernels"),
            &k,
            &all[b * 144..(b + 1) * 144],
            1e-6,
        );
        assert_eq!(f.sr.shape(), [3, 96, 96]);
        check(
            &format!("sample {b} sr"),
            f.sr.data(),
            &sample(&io["student.sr"], b).data,
            2e-6,
        );
    }
}

#[test]
fn samples_have_distinct_idrs() {
    // Guards the batching checks: if the two samples' IDRs were equal, a kernel mix-up between
    // samples would go unnoticed.
    let io = io();
    let d = &io["student.D"].data;
    let diff = common::max_abs(&d[..16], &d[16..]);
    assert!(diff > 1e-3, "sample IDRs too close: {diff}");
}

/// Direct definition of a grouped, zero-padded cross-correlation, one output value at a time.
fn conv_direct(
    x: &Planar,
    w: &[f32],
    ws: [usize; 4],
    bias: &[f32],
    pad: usize,
    g: usize,
) -> Vec<f32> {
    let [cout, cin_g, kh, kw] = ws;
    let (h, wd) = (x.height() as isize, x.width() as isize);
    let (oh, ow) = (x.height() + 2 * pad - kh + 1, x.width() + 2 * pad - kw + 1);
    let mut out = Vec::new();
    for co in 0..cout {
        let grp = co / (cout / g);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = f64::from(bias[co]);
                for cl in 0..cin_g {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy + ky) as isize - pad as isize;
                            let ix = (ox + kx) as isize - pad as isize;
                            if iy >= 0 && ix >= 0 && iy < h && ix < wd {
                                let v = x.at(grp * cin_g + cl, iy as usize, ix as usize);
                                let k = w[((co * cin_g + cl) * kh + ky) * kw + kx];
                                s += f64::from(v) * f64::from(k);
                            }
                        }
                    }
                }
                out.push(s as f32);
            }
        }
    }
    out
}

#[test]
fn conv2d_matches_direct_definition() {
    let mut seed = 12345u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
    };
    for (cin, cout, g, k, pad, h, w) in [
        (3, 5, 1, 3, 1, 7, 9),
        (4, 4, 4, 3, 1, 5, 3),
        (6, 4, 2, 3, 1, 1, 1),
        (3, 3, 1, 1, 0, 4, 6),
        (2, 6, 2, 3, 0, 5, 5),
        (8, 8, 8, 3, 1, 2, 11),
    ] {
        let x = Planar::new(cin, h, w, (0..cin * h * w).map(|_| rnd()).collect()).unwrap();
        let ws = [cout, cin / g, k, k];
        let wv: Vec<f32> = (0..ws.iter().product()).map(|_| rnd()).collect();
        let bias: Vec<f32> = (0..cout).map(|_| rnd()).collect();
        let got = reference::conv2d(&x, &wv, ws, Some(&bias), pad, g).unwrap();
        let want = conv_direct(&x, &wv, ws, &bias, pad, g);
        check(
            &format!("conv {ws:?} g{g} p{pad} {h}x{w}"),
            got.data(),
            &want,
            1e-6,
        );
    }
}

#[test]
fn pixel_shuffle_follows_torch_order() {
    // in(c·r² + i·r + j, y, x) → out(c, r·y + i, r·x + j); value = its input flat index.
    let (r, c, h, w) = (2, 2, 2, 3);
    let x = Planar::new(
        c * r * r,
        h,
        w,
        (0..c * r * r * h * w).map(|v| v as f32).collect(),
    )
    .unwrap();
    let y = reference::pixel_shuffle(&x, r).unwrap();
    assert_eq!(y.shape(), [c, r * h, r * w]);
    for ch in 0..c {
        for i in 0..r {
            for j in 0..r {
                for yy in 0..h {
                    for xx in 0..w {
                        let want = (((ch * r * r + i * r + j) * h + yy) * w + xx) as f32;
                        assert_eq!(y.at(ch, r * yy + i, r * xx + j), want);
                    }
                }
            }
        }
    }
    let x3 = Planar::filled(9, 1, 1, 0.0).unwrap();
    assert_eq!(reference::pixel_shuffle(&x3, 3).unwrap().shape(), [1, 3, 3]);
    assert!(reference::pixel_shuffle(&x3, 2).is_err());
}
