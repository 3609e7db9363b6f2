//! The rates of this CPU's AVX-512 float32 multiply-add (`vfmadd231ps`, 16 multiply-adds an
//! instruction) and AVX-512 BF16 dot product (`vdpbf16ps`, 32 bf16 multiply-adds into 16 float32
//! sums an instruction): a loop of twelve independent accumulators on registers, nothing read
//! from memory, on one thread. On a CPU with AVX-512 BF16 but no AMX (AMD Zen 4, Intel Cooper
//! Lake) it bounds what a bf16 path without AMX could gain over kdsr-edge's float32 products
//! (`README.md`, "Reduced precision"); `amx-rate` measures AMX's tile product. x86-64 only.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example simd-rate
//! ```

use anyhow::Result;
use clap::Parser;

/// How long to run each loop.
#[derive(Debug, Parser)]
struct Args {
    /// Loop iterations (12 instructions each).
    #[arg(long, default_value_t = 50_000_000)]
    iters: u64,
    /// Rounds, alternating the two loops; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Twelve independent accumulators (zmm0–zmm11), one instruction each per iteration.
#[cfg(target_arch = "x86_64")]
macro_rules! loop12 {
    ($ins:literal, $iters:expr) => {
        std::arch::asm!(
            "vxorps xmm0, xmm0, xmm0",
            "vxorps xmm1, xmm1, xmm1",
            "vxorps xmm2, xmm2, xmm2",
            "vxorps xmm3, xmm3, xmm3",
            "vxorps xmm4, xmm4, xmm4",
            "vxorps xmm5, xmm5, xmm5",
            "vxorps xmm6, xmm6, xmm6",
            "vxorps xmm7, xmm7, xmm7",
            "vxorps xmm8, xmm8, xmm8",
            "vxorps xmm9, xmm9, xmm9",
            "vxorps xmm10, xmm10, xmm10",
            "vxorps xmm11, xmm11, xmm11",
            "vxorps xmm12, xmm12, xmm12",
            "vxorps xmm13, xmm13, xmm13",
            "2:",
            concat!($ins, " zmm0, zmm12, zmm13"),
            concat!($ins, " zmm1, zmm12, zmm13"),
            concat!($ins, " zmm2, zmm12, zmm13"),
            concat!($ins, " zmm3, zmm12, zmm13"),
            concat!($ins, " zmm4, zmm12, zmm13"),
            concat!($ins, " zmm5, zmm12, zmm13"),
            concat!($ins, " zmm6, zmm12, zmm13"),
            concat!($ins, " zmm7, zmm12, zmm13"),
            concat!($ins, " zmm8, zmm12, zmm13"),
            concat!($ins, " zmm9, zmm12, zmm13"),
            concat!($ins, " zmm10, zmm12, zmm13"),
            concat!($ins, " zmm11, zmm12, zmm13"),
            "dec {n}",
            "jnz 2b",
            n = inout(reg) $iters => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _,
            options(nostack, nomem),
        )
    };
}

/// `fn $name(iters) -> seconds`: `iters` iterations of 12 `$ins`, compiled with `$features`.
#[cfg(target_arch = "x86_64")]
macro_rules! timed_loop {
    ($name:ident, $features:literal, $ins:literal) => {
        #[doc = concat!("Seconds for `iters` iterations of 12 `", $ins, "`.")]
        #[target_feature(enable = $features)]
        fn $name(iters: u64) -> f64 {
            let start = std::time::Instant::now();
            // SAFETY: the caller checked the CPU has `$features`; registers only.
            #[allow(unsafe_code)]
            unsafe {
                loop12!($ins, iters);
            }
            start.elapsed().as_secs_f64()
        }
    };
}

#[cfg(target_arch = "x86_64")]
timed_loop!(fma, "avx512f", "vfmadd231ps");
#[cfg(target_arch = "x86_64")]
timed_loop!(dpbf16, "avx512f,avx512bf16", "vdpbf16ps");

fn main() -> Result<()> {
    run(Args::parse())
}

#[cfg(target_arch = "x86_64")]
fn run(a: Args) -> Result<()> {
    anyhow::ensure!(
        std::arch::is_x86_feature_detected!("avx512f"),
        "this CPU has no AVX-512F"
    );
    let bf16 = std::arch::is_x86_feature_detected!("avx512bf16");
    let macs = |per: f64, s: f64| a.iters as f64 * 12.0 * per / s / 1e9;
    let (mut best_fma, mut best_bf16) = (0f64, 0f64);
    for _ in 0..a.rounds {
        // SAFETY: AVX-512F checked above.
        #[allow(unsafe_code)]
        let s = unsafe { fma(a.iters) };
        best_fma = best_fma.max(macs(16.0, s));
        if bf16 {
            // SAFETY: AVX-512 BF16 checked above.
            #[allow(unsafe_code)]
            let s = unsafe { dpbf16(a.iters) };
            best_bf16 = best_bf16.max(macs(32.0, s));
        }
    }
    println!("vfmadd231ps zmm: {best_fma:.1} G multiply-adds/s (float32), one thread");
    if bf16 {
        println!(
            "vdpbf16ps zmm:   {best_bf16:.1} G multiply-adds/s (bf16 into float32), {:.2}× the float32 rate",
            best_bf16 / best_fma
        );
    } else {
        println!("vdpbf16ps: this CPU has no AVX-512 BF16");
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn run(_: Args) -> Result<()> {
    anyhow::bail!("simd-rate measures x86-64 instructions")
}
