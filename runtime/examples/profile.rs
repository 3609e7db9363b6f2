//! Where kdsr-edge's time goes: every node of one graph's optimized tract plan timed on its own
//! (the plan `kdsr-edge` runs, with the same knobs), summed per tract op kind.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example profile -- --model models/edge/student-edge-sr.onnx --size 320x180 --threads 1
//! ```
//!
//! The input is the centre crop of `--image`; an SR graph gets the `D` its sibling IDE
//! (`PREFIX-ide.onnx`) estimates for that crop. `--dump DIR` writes the input (`lr.f32`, `[1, 3,
//! H, W]`) and `D` (`d.f32`, `[1, C]`) as raw little-endian float32 and `--json FILE` the per-node
//! times, for `benches/profile.py`, which puts them next to onnxruntime's profiler
//! (`bash benches/profile.sh`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use kdsr_runtime::profile::{ProfileOptions, profile_graph};
use kdsr_runtime::{ConvPrecision, DirectSpatial, GraphKind, Options, Upscaler};

/// The allocator kdsr-edge runs with (`src/main.rs`; `bench` leaves mimalloc's options at their
/// defaults). With glibc's, each large activation was a fresh `mmap` and its page faults counted
/// in the op that wrote it: the split SR graph at 320×180 summed to 407–448 ms against 287–321 ms
/// with mimalloc, where `kdsr-edge bench` took 303–308 ms (AMD EPYC Zen 3, one thread;
/// `benches/README.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Knob {
    Auto,
    On,
    Off,
}

/// Per-node time of a graph's optimized tract plan.
#[derive(Debug, Parser)]
struct Args {
    /// One ONNX graph file (dynamic, IDE, SR or folded).
    #[arg(long)]
    model: PathBuf,
    /// LR size, WxH (width first).
    #[arg(long, value_name = "WxH", default_value = "320x180")]
    size: kdsr_core::io::ImageSize,
    /// tract threads (1 = the calling thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Profiled runs (the median per node is reported), after one warm-up run.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// tract's direct spatial convolution (`auto` = what kdsr-edge does).
    #[arg(long, value_enum, default_value_t = Knob::Auto)]
    direct_spatial: Knob,
    /// Compute the 3×3 convolutions in bf16 on AMX (`kdsr-edge --precision bf16`).
    #[arg(long)]
    bf16: bool,
    /// Image whose centre crop is the input.
    #[arg(long, default_value = "data/Set14/monarch.png")]
    image: PathBuf,
    /// Write the input and D here (`lr.f32`, `d.f32`).
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Write the profile as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn write_f32(path: PathBuf, data: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let (h, w) = a.size.hw();
    let img = kdsr_core::io::load_image(&a.image)
        .with_context(|| format!("loading {}", a.image.display()))?
        .rgb;
    if img.height() < h || img.width() < w {
        bail!(
            "{} is {}x{}, smaller than {h}x{w}",
            a.image.display(),
            img.height(),
            img.width()
        );
    }
    let lr = img.crop((img.height() - h) / 2, (img.width() - w) / 2, h, w)?;
    let meta = kdsr_runtime::graph::check_graph_bytes(
        &std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?,
        &a.model,
    )?;
    let d = if meta.kind == GraphKind::Sr {
        let ide = Upscaler::load(
            &a.model,
            Options {
                threads: a.threads,
                ..Options::default()
            },
        )?;
        Some(ide.estimate_idr(&lr)?.d)
    } else {
        None
    };
    let direct_spatial = match a.direct_spatial {
        Knob::Auto => DirectSpatial::Auto,
        Knob::On => DirectSpatial::On,
        Knob::Off => DirectSpatial::Off,
    };
    let p = profile_graph(
        &a.model,
        &lr,
        d.as_deref(),
        &ProfileOptions {
            threads: a.threads,
            direct_spatial,
            precision: if a.bf16 {
                ConvPrecision::Bf16
            } else {
                ConvPrecision::F32
            },
            iters: a.iters,
        },
    )?;
    if let Some(dir) = &a.dump {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_f32(dir.join("lr.f32"), lr.data())?;
        if let Some(d) = &d {
            write_f32(dir.join("d.f32"), d)?;
        }
    }
    if let Some(j) = &a.json {
        std::fs::write(j, serde_json::to_string_pretty(&p)?)
            .with_context(|| format!("writing {}", j.display()))?;
    }
    let mut by_op: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for n in &p.nodes {
        let e = by_op.entry(n.op.as_str()).or_default();
        e.0 += 1;
        e.1 += n.ms;
    }
    let mut rows: Vec<_> = by_op.into_iter().collect();
    rows.sort_by(|x, y| y.1.1.total_cmp(&x.1.1));
    let total: f64 = p.nodes.iter().map(|n| n.ms).sum();
    println!(
        "{} ({} graph), {h}x{w}, {} thread(s), direct spatial {}: median of {} profiled runs",
        a.model.display(),
        p.meta.kind,
        p.threads,
        if p.direct_spatial_disabled {
            "off"
        } else {
            "on"
        },
        p.runs_ms.len()
    );
    println!("| tract op | nodes | ms | % |\n|---|---|---|---|");
    for (op, (count, ms)) in rows {
        println!("| {op} | {count} | {ms:.1} | {:.1} |", 100.0 * ms / total);
    }
    println!("| total | {} | {total:.1} | 100 |", p.nodes.len());
    Ok(())
}
