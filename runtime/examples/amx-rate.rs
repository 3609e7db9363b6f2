//! The rate of Intel AMX's bf16 tile product (`tdpbf16ps`, 16×16×32 multiply-adds an
//! instruction) on this machine: a loop of four independent products on tiles already loaded,
//! nothing read from memory, on `--threads` threads at once. It bounds what the bf16 path of
//! kdsr-edge's 3×3 convolution op (`runtime/src/ops/amx.rs`, `--precision bf16`) can reach, and
//! says whether threads on different vCPUs share an AMX unit (then each thread's rate drops when
//! they run together). Linux on x86-64 with AMX bf16 only (`kdsr_runtime::ops::amx::available`).
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example amx-rate -- --threads 1
//! cargo run --release -p kdsr-runtime --example amx-rate -- --threads 2
//! ```

use anyhow::{Result, ensure};
use clap::Parser;

/// How many threads run the loop at once, and how long.
#[derive(Debug, Parser)]
struct Args {
    /// Threads running the loop at the same time.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Loop iterations per thread (4 products each).
    #[arg(long, default_value_t = 2_000_000)]
    iters: u64,
}

/// Seconds for `iters` iterations of 4 `tdpbf16ps` on this thread.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn products(iters: u64) -> f64 {
    #[repr(C, align(64))]
    struct Config([u8; 64]);
    let mut cfg = Config([0; 64]);
    cfg.0[0] = 1;
    for t in 0..8 {
        cfg.0[16 + 2 * t] = 64;
        cfg.0[48 + t] = 16;
    }
    let a = vec![0x3f80u16; 512]; // bf16 1.0
    let start = std::time::Instant::now();
    // SAFETY: AMX is available (checked in main, which also got the kernel's permission for
    // this process); the configuration is palette 1 with 16 rows of 64 bytes per tile; the
    // two loads read 1 KiB each of `a`; no memory is written.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!(
            "ldtilecfg [{cfg}]",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "tileloadd tmm4, [{a} + {s}*1]",
            "tileloadd tmm6, [{a} + {s}*1]",
            "2:",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm6",
            "tdpbf16ps tmm2, tmm4, tmm6",
            "tdpbf16ps tmm3, tmm4, tmm6",
            "dec {n}",
            "jnz 2b",
            "tilerelease",
            cfg = in(reg) cfg.0.as_ptr(),
            a = in(reg) a.as_ptr(),
            s = in(reg) 64usize,
            n = inout(reg) iters => _,
            options(nostack),
        );
    }
    start.elapsed().as_secs_f64()
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn products(_: u64) -> f64 {
    unreachable!("amx::available() is false here")
}

fn main() -> Result<()> {
    let a = Args::parse();
    ensure!(
        kdsr_runtime::ops::amx::available(),
        "this CPU or OS has no AMX bf16"
    );
    let secs: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads.max(1))
            .map(|_| s.spawn(|| products(a.iters)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(f64::NAN))
            .collect()
    });
    let macs = (a.iters * 4 * 16 * 16 * 32) as f64;
    for (i, t) in secs.iter().enumerate() {
        println!(
            "thread {i}: {:.0} G MAC/s ({} tdpbf16ps in {t:.3} s)",
            macs / t / 1e9,
            a.iters * 4
        );
    }
    Ok(())
}
