//! Upscale latency of the tract runtime ([`kdsr_runtime::Upscaler`]) on the shipped student-edge
//! model: one criterion group per LR size (`320x180`, `256x256`), one function per graph form
//! (`dynamic`, `split` = SR graph with the IDR estimated once, `split_ide` = IDE + SR on every
//! call, `folded`), one parameter per tract thread count (`t2`, `t1`). Whole images, no tiling.
//!
//! `cargo bench -p kdsr-benches` (or `bash benches/run.sh`, which adds onnxruntime on the same
//! files). Setup (folded graph, inputs, reference outputs, manifest for `ort_bench.py`) goes to
//! `target/tmp/kdsr-bench`; criterion's estimates to `target/criterion/SIZE/GRAPH/tN/`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use kdsr_benches::{Fixture, SIZES, load, prepare, size_name};

fn upscale(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kdsr-bench");
    let Fixture { manifest, inputs } =
        prepare(&dir).unwrap_or_else(|e| panic!("kdsr-benches setup in {}: {e:#}", dir.display()));
    let g = &manifest.graphs;
    for (&size, (lr, idr)) in SIZES.iter().zip(&inputs) {
        let mut group = c.benchmark_group(size_name(size));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(6))
            .throughput(Throughput::Elements((size.0 * size.1) as u64));
        for &t in &manifest.threads {
            let setup = |p: &Path| load(p, t, size).unwrap_or_else(|e| panic!("{e:#}"));
            let (dynamic, split, folded) = (setup(&g.dynamic), setup(g.split()), setup(&g.folded));
            let id = |graph: &str| BenchmarkId::new(graph, format!("t{t}"));
            group.bench_function(id("dynamic"), |b| {
                b.iter(|| dynamic.upscale(black_box(lr)).expect("dynamic upscale"))
            });
            group.bench_function(id("split"), |b| {
                b.iter(|| {
                    split
                        .upscale_with_idr(black_box(lr), idr)
                        .expect("split upscale_with_idr")
                })
            });
            group.bench_function(id("split_ide"), |b| {
                b.iter(|| split.upscale(black_box(lr)).expect("split upscale"))
            });
            group.bench_function(id("folded"), |b| {
                b.iter(|| folded.upscale(black_box(lr)).expect("folded upscale"))
            });
        }
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    upscale(&mut c);
    c.final_summary();
}
