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

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("kdsr-edge: error: {e:#}");
            cli::exit_code_of(&e).into()
        }
    }
}
