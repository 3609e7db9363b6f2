//! tract-linalg's int8 product against its float32 one, and the cost of one legacy-SSE load in
//! an AVX2 loop on this CPU: built and run by `benches/int8-kernel.sh` twice, against
//! tract-linalg 0.23.9 as published and against a copy whose `avx2_mmm_i32_8x8` kernel loads
//! with VEX instructions instead (README, "Reduced precision").

use std::arch::asm;
use std::time::Instant;

use tract_data::internal::*;
use tract_linalg::mmm::{AsInputValue, FusedSpec};

/// Nanoseconds an iteration of the kernel's inner step: a load of 8 bytes into xmm8 (by the
/// legacy-SSE `movq` the kernel has, or the VEX `vmovq`), widened and multiplied in ymm
/// registers, whose upper halves are thus in use.
fn load_step(legacy: bool, n: usize) -> f64 {
    // The loop, with the load instruction `$load` (asm! takes only literal strings).
    macro_rules! step_loop {
        ($load:literal, $p:expr, $n:expr) => {
            asm!(
                "vpxor ymm0, ymm0, ymm0",
                "2:",
                concat!($load, " xmm8, qword ptr [{p}]"),
                "vpmovsxbw ymm8, xmm8",
                "vpbroadcastb ymm9, byte ptr [{p} + 8]",
                "vpmovsxbw ymm9, xmm9",
                "vpmullw ymm9, ymm9, ymm8",
                "vpmovsxwd ymm9, xmm9",
                "vpaddd ymm0, ymm0, ymm9",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                p = in(reg) $p, n = inout(reg) $n => _,
                out("ymm0") _, out("ymm8") _, out("ymm9") _,
            )
        };
    }
    let buf = [1u8; 64];
    let p = buf.as_ptr();
    let t = Instant::now();
    // SAFETY: reads 9 bytes of `buf`; the registers written are declared clobbered, and the
    // upper halves of the ymm registers are cleared before returning.
    unsafe {
        if legacy {
            step_loop!("movq", p, n);
        } else {
            step_loop!("vmovq", p, n);
        }
    }
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn main() -> TractResult<()> {
    let n = 5_000_000;
    let (legacy, vex) = (load_step(true, n), load_step(false, n));
    println!("inner step with movq (legacy SSE) {legacy:.2} ns, with vmovq (VEX) {vex:.2} ns");
    for &(m, k, n) in &[
        (128usize, 32usize, 256usize),
        (32, 32, 256),
        (256, 256, 256),
    ] {
        for (acc, packing, dt) in [
            (DatumType::F32, 0, DatumType::F32),
            (DatumType::I32, 1, DatumType::I8),
        ] {
            let mmm = tract_linalg::MmmDispatch::native()
                .preferred_kernel(acc, Some(m), Some(k), Some(n))
                .expect("a kernel");
            // Small integers, exact in both types; the int8 product is checked below.
            let a = Tensor::from_shape(
                &[m, k],
                &(0..m * k).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>(),
            )?
            .cast_to_dt(dt)?
            .into_owned();
            let b = Tensor::from_shape(
                &[k, n],
                &(0..k * n).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(),
            )?
            .cast_to_dt(dt)?
            .into_owned();
            let (fa, fb) = (&mmm.packings()[packing].0, &mmm.packings()[packing].1);
            let (pa, pb) = (fa.prepare_one(&a, 1, 0)?, fb.prepare_one(&b, 0, 1)?);
            let mut c = Tensor::zero_dt(acc, &[m, n])?;
            let mut best = f64::INFINITY;
            for _ in 0..20 {
                let t = Instant::now();
                for _ in 0..64 {
                    // SAFETY: `pa` and `pb` were packed by this kernel's packing `packing` for
                    // `[m, k]` and `[k, n]`; `c` is `[m, n]` of its accumulator type.
                    unsafe {
                        mmm.run(
                            m,
                            n,
                            &[
                                FusedSpec::AddMatMul {
                                    a: AsInputValue::Borrowed(&*pa),
                                    b: AsInputValue::Borrowed(&*pb),
                                    packing,
                                },
                                FusedSpec::Store(mmm.c_view(Some(0), Some(1)).wrap(&c.view_mut())),
                            ],
                        )?;
                    }
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let c = c.cast_to::<f32>()?;
            let (a, b, c) = (
                a.cast_to::<f32>()?,
                b.cast_to::<f32>()?,
                c.to_plain_array_view::<f32>()?,
            );
            let (a, b) = (
                a.to_plain_array_view::<f32>()?,
                b.to_plain_array_view::<f32>()?,
            );
            let exact = (0..m).all(|i| {
                (0..n).all(|j| (0..k).map(|l| a[[i, l]] * b[[l, j]]).sum::<f32>() == c[[i, j]])
            });
            assert!(exact, "{}: wrong product", mmm.name());
            println!(
                "[{m}, {k}] x [{k}, {n}] {:<20} {:8.3} ms {:6.1} G MAC/s (64 products)",
                mmm.name(),
                best * 1e3,
                (m * k * n * 64) as f64 / best / 1e9
            );
        }
    }
    Ok(())
}
