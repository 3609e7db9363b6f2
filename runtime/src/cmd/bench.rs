//! `kdsr-edge bench`: latency of each graph of one or more models at one LR size, with tract's
//! direct spatial convolution on and off.

use std::path::PathBuf;
use std::time::Instant;

use kdsr_runtime::tiling::TileGrid;
use kdsr_runtime::{DirectSpatial, ModelKind, Options, Planar, Upscaler};
use serde::Serialize;

use crate::cli::{BenchArgs, BenchKnob, Failure, code};

#[derive(Debug, Serialize)]
struct Row {
    model: String,
    kind: ModelKind,
    graph: &'static str,
    direct_spatial: &'static str,
    threads: usize,
    height: usize,
    width: usize,
    first_ms: f64,
    median_ms: f64,
    min_ms: f64,
    /// Every timed call, in order, ms.
    times_ms: Vec<f64>,
}

/// A deterministic smooth + textured test image.
fn test_image(h: usize, w: usize) -> anyhow::Result<Planar> {
    let mut d = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = 0.5
                    + 0.3 * ((x as f32) * 0.11 + c as f32).sin() * ((y as f32) * 0.07).cos()
                    + 0.1 * (((x * 7 + y * 13 + c * 5) % 17) as f32 / 17.0 - 0.5);
                d.push((v.clamp(0.0, 1.0) * 255.0).round() / 255.0);
            }
        }
    }
    Ok(Planar::new(3, h, w, d)?)
}

/// First call, median, minimum and every timed call (ms).
type Timing = (f64, f64, f64, Vec<f64>);

fn time(iters: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Timing> {
    let t = Instant::now();
    f()?;
    let first = t.elapsed().as_secs_f64() * 1e3;
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((first, sorted[sorted.len() / 2], sorted[0], v))
}

fn write_f32(path: PathBuf, data: &[f32]) -> anyhow::Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    kdsr_core::fsutil::write_atomic(&path, &bytes)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

pub fn run(a: BenchArgs) -> anyhow::Result<u8> {
    let (h, w) = a.size.hw();
    let models = if a.models.is_empty() {
        vec![kdsr_runtime::models::find_files(None, None)?]
    } else {
        a.models.clone()
    };
    let knobs: &[(DirectSpatial, &'static str)] = match a.direct_spatial {
        BenchKnob::Both => &[(DirectSpatial::On, "on"), (DirectSpatial::Off, "off")],
        BenchKnob::Auto => &[(DirectSpatial::Auto, "auto")],
        BenchKnob::On => &[(DirectSpatial::On, "on")],
        BenchKnob::Off => &[(DirectSpatial::Off, "off")],
    };
    if a.dump.is_some() && models.len() != 1 {
        return Err(Failure::usage("--dump takes one model (one -m)").into());
    }
    if let Some(dir) = &a.dump {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("--dump {}: {e}", dir.display())))?;
    }
    let threads = super::cap_threads(a.threads);
    let img = test_image(h, w)?;
    let grid = TileGrid::whole(h, w).ok_or_else(|| Failure::usage("empty size"))?;
    let mut rows = Vec::new();
    for m in &models {
        for &(knob, knob_name) in knobs {
            let up = Upscaler::load(
                m,
                Options {
                    threads,
                    tile: None,
                    mem_budget_mib: usize::MAX / (1 << 21),
                    direct_spatial: knob,
                    precision: a.precision.into(),
                    ide_max_pixels: Some(h * w),
                },
            )?;
            let kind = up.info().kind;
            if let Some(dir) = a.dump.as_ref().filter(|_| rows.is_empty()) {
                write_f32(dir.join("lr.f32"), img.data())?;
                let sr = if kind == ModelKind::Split {
                    let idr = up.estimate_idr(&img)?;
                    write_f32(dir.join("d.f32"), &idr.d)?;
                    up.upscale_with_idr(&img, &idr)?
                } else {
                    up.upscale(&img)?
                };
                write_f32(dir.join("sr.f32"), sr.data())?;
            }
            let mut row = |graph: &'static str, (first, median, min, times): Timing| {
                let r = Row {
                    model: m.display().to_string(),
                    kind,
                    graph,
                    direct_spatial: knob_name,
                    threads,
                    height: h,
                    width: w,
                    first_ms: first,
                    median_ms: median,
                    min_ms: min,
                    times_ms: times,
                };
                if !a.json {
                    eprintln!(
                        "{:<28} {:<7} {:<5} direct-spatial {:<3} {} thr  {}x{}: first {:8.1} ms, \
                         median {:8.1} ms, min {:8.1} ms",
                        r.model,
                        "",
                        r.graph,
                        r.direct_spatial,
                        r.threads,
                        h,
                        w,
                        r.first_ms,
                        r.median_ms,
                        r.min_ms
                    );
                }
                rows.push(r);
            };
            match kind {
                ModelKind::Split => {
                    let idr = up.estimate_idr(&img)?;
                    if !a.no_ide {
                        row(
                            "ide",
                            time(a.iters, || {
                                up.estimate_idr(&img)?;
                                Ok(())
                            })?,
                        );
                    }
                    row(
                        "sr",
                        time(a.iters, || {
                            up.run_tiles(&img, Some(&idr.d), &grid, &mut |_| Ok(()))?;
                            Ok(())
                        })?,
                    );
                }
                ModelKind::Dynamic | ModelKind::Folded => row(
                    if kind == ModelKind::Dynamic {
                        "dynamic"
                    } else {
                        "folded"
                    },
                    time(a.iters, || {
                        up.run_tiles(&img, None, &grid, &mut |_| Ok(()))?;
                        Ok(())
                    })?,
                ),
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(code::OK)
}
