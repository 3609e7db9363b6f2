//! `kdsr-edge`: KDSR ×4 blind super-resolution on CPUs and ARM boards (see `kdsr-edge --help`).
//!
//! The binary allocates with mimalloc, not the system allocator. tract allocates every tensor
//! aligned (`posix_memalign`), and glibc before 2.38 serves an aligned request of `n` bytes by
//! carving `n + alignment + 32` bytes and splitting: a freed activation is then too small for the
//! next run's request of the same size unless it merges with a free neighbour, and a small
//! allocation that outlives the image (a report line) between two such holes keeps them apart. A
//! folder of 1,000 16×16 images grew the heap by ~270 KiB per image in about half the runs (peak
//! RSS 29 → 290 MiB; heaptrack: at most 3.2 MiB live at any time), depending on where the heap
//! happened to start; glibc 2.38 reuses aligned chunks. Tiled runs fragmented the same way (peak
//! RSS of one 1920×1080 ×4 run varied between 436 and 552 MiB), which an earlier version worked
//! around by re-executing itself under `MALLOC_MMAP_THRESHOLD_=1048576`. Numbers and commands in
//! `runtime/README.md` ("Memory").

mod cli;
mod cmd;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Memory budgets (`--mem-budget`, MiB) under which mimalloc gives freed memory back at once.
///
/// By default mimalloc keeps freed pages for a while (`purge_delay`, 1 s in its v3) in arenas it
/// committed eagerly, which took a 64 MiB budget to 120 MiB peak RSS (480×270 image, tiny model,
/// 40 tiles; glibc: 64 MiB). Purging at once and taking later memory from the OS instead of the
/// first arena brings it to 74 MiB, at ~20 % more time, so only small budgets, where the
/// overshoot matters, pay it. (The rest of the gap is the first arena, committed eagerly before
/// `main` runs; `MIMALLOC_ARENA_EAGER_COMMIT=0` in the environment removes it: 68 MiB.) Measured
/// in `runtime/README.md` ("Memory").
const TIGHT_BUDGET_MIB: usize = 256;

/// mimalloc's purge delay (ms) for `upscale` and `stream` under larger budgets.
///
/// With mimalloc's default (1 s) a 1920×1080 ×4 run (91 tiles, default 512 MiB budget, 2 threads,
/// student-edge of random weights on `scripts/bench-memory.sh --edge`'s input) peaked at 558–568
/// MiB RSS in 5 of 6 runs, over the budget (479 MiB in the sixth; the camera model 380–450 MiB);
/// with 100 ms, 470–475 MiB in 5 runs (the camera model 367–369 MiB), 14–17 s against 13–16 s
/// (purging at once: 466 MiB, 17–18 s). Measured in `runtime/README.md` ("Memory").
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// mimalloc's option numbers (`mi_option_e` in its v3 `mimalloc.h`, the version
/// `libmimalloc-sys` builds without its `v2` feature).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_DISALLOW_ARENA_ALLOC: libmimalloc_sys::mi_option_t = 26;

/// Purge freed memory at once and allocate outside the first arena when the budget is tight;
/// otherwise purge it after [`PURGE_DELAY_MS`].
#[allow(unsafe_code)] // one FFI call into the allocator this binary links; nothing else is unsafe
fn fit_allocator_to(cli: &cli::Cli) {
    let budget = match &cli.command {
        cli::Command::Upscale(a) => a.mem_budget,
        cli::Command::Stream(a) => a.mem_budget,
        _ => return,
    };
    if budget < TIGHT_BUDGET_MIB {
        // SAFETY: mi_option_set only stores an integer in mimalloc's option table, read when
        // memory is next allocated from the OS or purged.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
            libmimalloc_sys::mi_option_set(MI_OPTION_DISALLOW_ARENA_ALLOC, 1);
        }
    } else if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: as above.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    fit_allocator_to(&cli);
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("kdsr-edge: error: {e:#}");
            cli::exit_code_of(&e).into()
        }
    }
}
