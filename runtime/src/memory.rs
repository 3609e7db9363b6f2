//! The memory model behind tile sizing: bytes per LR pixel of a window, measured.
//!
//! While tract runs the SR graph on an `h × w` window, the process holds about
//! `h · w ·` [`sr_bytes_per_px`] bytes of activations (the tail runs at 2× and 4× resolution with
//! 4C- and C-channel maps, plus pixel-shuffle copies); the IDE holds about [`ide_bytes_per_px`]
//! per pixel it sees. On top come [`baseline_bytes`] (program, tract, weights, plans) and the
//! caller's image buffers ([`crate::image::image_buffer_bytes`]).
//!
//! Measured peak RSS (x86-64, tract 0.23.9, glibc malloc, `scripts/bench-memory.sh`; the same
//! with `TRACT_DISABLE_DIRECT_SPATIAL` on or off), SR graph alone on square windows:
//!
//! | model | C | 128² | 256² | 384² | slope |
//! | --- | --- | --- | --- | --- | --- |
//! | student-tiny | 16 | 74 MiB | 244 MiB | 513 MiB | 3.4–3.6 KiB/px |
//! | student-edge (random weights) | 32 | 134 MiB | 428 MiB | 1020 MiB | 6.1–7.4 KiB/px |
//!
//! IDE alone at 512²: 176 MiB (tiny), 256 MiB (edge): 0.7–1.0 KiB/px.
//!
//! Tiled runs need more: glibc's malloc raises its mmap threshold after the first tile frees its
//! large tensors, later tiles then allocate from the fragmenting heap, and peak RSS grows by about
//! a third (1920×1080 ×4 under a 512 MiB budget: edge 600 MiB with windows sized from the
//! single-window slope, 447 MiB with `MALLOC_MMAP_THRESHOLD_=1048576` in the environment). The
//! constants below are the effective per-pixel cost of those tiled runs, rounded up: with them
//! 1080p ×4 stays under 512 MiB without any environment setting (numbers in
//! `runtime/README.md`). These were measured with glibc's malloc; `kdsr-edge` now allocates
//! with mimalloc (`src/main.rs`), with which one 1080p ×4 run of student-tiny peaked at 488 MiB
//! (glibc with the fixed threshold: 385–387 MiB), still under the budget.

/// Process baseline: binary, tract and allocator state (~24 MiB measured) plus twice the graph
/// files' size (the parsed protobuf and tract's tensors).
pub fn baseline_bytes(model_file_bytes: u64) -> f64 {
    24.0 * 1024.0 * 1024.0 + 2.0 * model_file_bytes as f64
}

/// Peak working-set bytes per LR window pixel of the SR graph with C = `n_feats` at `scale`:
/// `4 · (s² · (4.75·C + 4) + 4·C)` (5.3 KiB for C = 16 at ×4, 10.3 KiB for C = 32).
pub fn sr_bytes_per_px(n_feats: usize, scale: u32) -> f64 {
    let c = n_feats as f64;
    let s2 = f64::from(scale * scale);
    4.0 * (s2 * (4.75 * c + 4.0) + 4.0 * c)
}

/// Peak working-set bytes per LR pixel the IDE sees (C = `n_feats`; the trunk widens to 4C):
/// `4 · (12·C + 16)`.
pub fn ide_bytes_per_px(n_feats: usize) -> f64 {
    4.0 * (12.0 * n_feats as f64 + 16.0)
}
