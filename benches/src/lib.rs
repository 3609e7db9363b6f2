//! Setup shared by the kdsr benchmarks (`benches/upscale.rs`) and the onnxruntime script
//! (`ort_bench.py`): the shipped student-edge graphs, the folded graph built from them at bench
//! time, realistic LR inputs, and a manifest that hands the same files and inputs to onnxruntime.
//!
//! [`prepare`] writes into one folder (the bench uses `target/tmp/kdsr-bench`):
//! - `student-edge-folded.onnx` and `folded.idr`: the folded graph, exported with
//!   `kdsr-converter` (verified in tract against its reference forward) from the model's weights
//!   with the IDR the split model estimates for the 180×320 input built in;
//! - per LR size `WxH`: `lr-WxH.f32` (the input `[1, 3, H, W]`), `d-WxH.f32` (its `D` `[1, C]`
//!   from the IDE) and `sr-GRAPH-WxH.f32` (tract's output of the dynamic, split and folded
//!   graphs, `[1, 3, 4H, 4W]`; `split_ide` shares the split file), all raw little-endian
//!   float32;
//! - `manifest.json` ([`Manifest`]): the graph files, sizes, thread counts and those files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use kdsr_converter::export::{ExportOptions, export};
use kdsr_converter::idr_source::IdrSource;
use kdsr_converter::{ExportKind, Network};
use kdsr_core::pipeline::resize::{BicubicVariant, imresize};
use kdsr_runtime::{Idr, Options, Planar, Upscaler};
use serde::Serialize;

/// The LR sizes (`height`, `width`) benchmarked: the paper's 180×320 (→ 720×1280) and 256×256.
pub const SIZES: [(usize, usize); 2] = [(180, 320), (256, 256)];

/// Thread counts benchmarked unless `KDSR_BENCH_THREADS` (comma-separated) says otherwise.
pub const DEFAULT_THREADS: [usize; 2] = [2, 1];

/// The photo the LR inputs are made from (Set14 `monarch`, 768×512).
pub const INPUT_IMAGE: &str = "data/Set14/monarch.png";

/// Memory budget given to every [`Upscaler`]: large enough that no image here is tiled, so the
/// split and folded graphs run the whole image in one call like the dynamic graph must.
pub const MEM_BUDGET_MIB: usize = 4096;

/// The benchmarked graph forms, in table order: the dynamic graph; the split SR graph with an IDR
/// estimated once (`upscale_with_idr`); the split pair with the IDE run on every call
/// (`upscale`); the folded graph.
pub const GRAPHS: [&str; 4] = ["dynamic", "split", "split_ide", "folded"];

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The model prefix: `KDSR_BENCH_MODEL`, else the default model
/// ([`kdsr_runtime::models::DEFAULT_MODEL`]) in the workspace's `models/`.
/// `PREFIX-ide.onnx` + `PREFIX-sr.onnx` (split), `PREFIX.onnx` (dynamic) and `PREFIX.safetensors`
/// with its `PREFIX.json` (to export the folded graph) must exist.
pub fn model_prefix() -> PathBuf {
    std::env::var_os("KDSR_BENCH_MODEL").map_or_else(
        || {
            workspace_root()
                .join("models")
                .join(kdsr_runtime::models::DEFAULT_MODEL)
        },
        PathBuf::from,
    )
}

/// The thread counts to run: `KDSR_BENCH_THREADS` (e.g. `2,1`), else [`DEFAULT_THREADS`].
pub fn thread_counts() -> Result<Vec<usize>> {
    let Ok(s) = std::env::var("KDSR_BENCH_THREADS") else {
        return Ok(DEFAULT_THREADS.to_vec());
    };
    let v = s
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .ok()
        .filter(|v| !v.is_empty() && v.iter().all(|&t| t > 0));
    v.with_context(|| format!("KDSR_BENCH_THREADS={s}: expected thread counts ≥ 1, e.g. 2,1"))
}

/// The runtime options of every benchmark: `threads` for tract (1 = the calling thread only),
/// no tiling ([`MEM_BUDGET_MIB`]), the default direct-spatial setting and IDE crop.
pub fn options(threads: usize) -> Options {
    Options {
        threads,
        tile: None,
        mem_budget_mib: MEM_BUDGET_MIB,
        ..Options::default()
    }
}

/// `WxH` ([`kdsr_core::io::ImageSize`]'s form), the name of a size `(h, w)` in benchmark ids and
/// file names.
pub fn size_name((h, w): (usize, usize)) -> String {
    kdsr_core::io::ImageSize {
        width: w,
        height: h,
    }
    .to_string()
}

/// A realistic LR input of `h × w`: [`INPUT_IMAGE`] downscaled with MATLAB bicubic (antialiased)
/// until it just covers `h × w`, centre-cropped, and quantised to 8-bit values.
///
/// # Shapes
/// `[3, h, w]`, values `k/255`.
pub fn lr_input(h: usize, w: usize) -> Result<Planar> {
    let path = workspace_root().join(INPUT_IMAGE);
    let img = kdsr_core::io::load_image(&path)
        .with_context(|| format!("loading {}", path.display()))?
        .rgb;
    ensure!(img.channels() == 3, "{} is not RGB", path.display());
    let scale = (h as f64 / img.height() as f64).max(w as f64 / img.width() as f64);
    ensure!(
        scale <= 1.0,
        "{} ({}x{}) is smaller than {h}x{w}",
        path.display(),
        img.width(),
        img.height()
    );
    let small = imresize(&img, scale, BicubicVariant::Matlab)?;
    ensure!(
        small.height() >= h && small.width() >= w,
        "resized to {}x{}, short of {h}x{w}",
        small.height(),
        small.width()
    );
    let top = (small.height() - h) / 2;
    let left = (small.width() - w) / 2;
    Ok(small
        .crop(top, left, h, w)?
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0))
}

/// The graph files benchmarked.
#[derive(Clone, Debug, Serialize)]
pub struct Graphs {
    /// The dynamic graph (`PREFIX.onnx`).
    pub dynamic: PathBuf,
    /// The IDE of the split pair (`PREFIX-ide.onnx`).
    pub ide: PathBuf,
    /// The SR graph of the split pair (`PREFIX-sr.onnx`).
    pub sr: PathBuf,
    /// The folded graph [`prepare`] exported.
    pub folded: PathBuf,
}

impl Graphs {
    /// The split prefix ([`Upscaler::load`] takes either file of the pair).
    pub fn split(&self) -> &Path {
        &self.ide
    }
}

/// One benchmarked LR size: the input and the reference outputs, as files.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// `WxH`.
    pub name: String,
    /// LR height.
    pub height: usize,
    /// LR width.
    pub width: usize,
    /// `lr-WxH.f32`: the input `[1, 3, H, W]`.
    pub input: PathBuf,
    /// `d-WxH.f32`: `D` `[1, C]` of the input from the IDE (what `split` is given).
    pub d: PathBuf,
    /// Per graph of [`GRAPHS`]: tract's output `[1, 3, 4H, 4W]` (`sr-GRAPH-WxH.f32`).
    pub outputs: std::collections::BTreeMap<String, PathBuf>,
}

/// What [`prepare`] writes to `manifest.json` for the onnxruntime script.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// The model prefix.
    pub model: PathBuf,
    /// The graph files.
    pub graphs: Graphs,
    /// C, the length of `D`.
    pub n_feats: usize,
    /// The upscaling factor.
    pub scale: usize,
    /// Thread counts, in the order they are benchmarked.
    pub threads: Vec<usize>,
    /// The graph forms ([`GRAPHS`]).
    pub graph_forms: Vec<String>,
    /// The photo the inputs come from.
    pub input_image: String,
    /// One entry per size of [`SIZES`].
    pub cases: Vec<Case>,
}

/// What the benchmarks run on: the manifest, the inputs and the IDR of each size.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The manifest written to `dir/manifest.json`.
    pub manifest: Manifest,
    /// Per size of [`SIZES`]: the LR input and the split model's IDR for it.
    pub inputs: Vec<(Planar, Idr)>,
}

fn write_f32(path: &Path, data: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

use kdsr_core::spec::onnx::{split_paths, suffixed};

pub use kdsr_core::metrics::max_abs_diff;

/// Loads `path` with [`options`]`(threads)` and checks that an `h × w` image runs untiled.
pub fn load(path: &Path, threads: usize, (h, w): (usize, usize)) -> Result<Upscaler> {
    let up = Upscaler::load(path, options(threads))
        .with_context(|| format!("loading {}", path.display()))?;
    let tiles = up.tile_grid(h, w, 0.0)?.len();
    ensure!(
        tiles == 1,
        "{}: a {h}x{w} image would run in {tiles} tiles under {MEM_BUDGET_MIB} MiB",
        path.display()
    );
    Ok(up)
}

/// Exports the folded graph into `dir`, runs every graph once per size, writes the inputs, `D`s,
/// outputs and `manifest.json` (see the module docs), and returns the [`Fixture`].
///
/// Checks on the way: the folded graph's output equals the split graph's given the same IDR
/// (180×320, max |Δ| ≤ 1e-4), and the dynamic graph's equals the split pair's (same IDE on the
/// whole image, max |Δ| ≤ 1e-4).
pub fn prepare(dir: &Path) -> Result<Fixture> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let prefix = model_prefix();
    let (ide, sr) = split_paths(&prefix);
    let graphs = Graphs {
        dynamic: suffixed(&prefix, ".onnx"),
        ide,
        sr,
        folded: dir.join(format!(
            "{}-folded.onnx",
            prefix
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy())
        )),
    };
    let weights = suffixed(&prefix, ".safetensors");
    for p in [&graphs.dynamic, &graphs.ide, &graphs.sr, &weights] {
        if !p.is_file() {
            bail!(
                "{} is missing: the benches need the split pair, the dynamic graph and the \
                 weights of {} (set KDSR_BENCH_MODEL to another prefix)",
                p.display(),
                prefix.display()
            );
        }
    }
    let threads = thread_counts()?;
    let split = load(graphs.split(), 1, SIZES[0])?;
    let inputs = SIZES
        .iter()
        .map(|&(h, w)| {
            let lr = lr_input(h, w)?;
            let idr = split.estimate_idr(&lr)?;
            Ok((lr, idr))
        })
        .collect::<Result<Vec<_>>>()?;

    let idr_path = dir.join("folded.idr");
    let mut folded_idr = inputs[0].1.clone();
    folded_idr.source = format!("{INPUT_IMAGE} at {}", size_name(SIZES[0]));
    folded_idr.save(&idr_path)?;
    let net = Network::load(None, &weights)
        .with_context(|| format!("loading the weights {}", weights.display()))?;
    eprintln!("kdsr-benches: exporting {}", graphs.folded.display());
    export(
        &net,
        &ExportOptions {
            kind: ExportKind::Folded,
            idr: Some(IdrSource::File(idr_path)),
            bench_size: None,
            ..ExportOptions::default()
        },
        &graphs.folded,
    )
    .with_context(|| format!("exporting {}", graphs.folded.display()))?;

    let mut cases = Vec::new();
    for (&(h, w), (lr, idr)) in SIZES.iter().zip(&inputs) {
        let name = size_name((h, w));
        eprintln!("kdsr-benches: reference outputs at {name}");
        let input = dir.join(format!("lr-{name}.f32"));
        write_f32(&input, lr.data())?;
        let d = dir.join(format!("d-{name}.f32"));
        write_f32(&d, &idr.d)?;
        let dynamic = load(&graphs.dynamic, 1, (h, w))?.upscale(lr)?;
        let with_idr = split.upscale_with_idr(lr, idr)?;
        let split_ide = split.upscale(lr)?;
        let folded = load(&graphs.folded, 1, (h, w))?.upscale(lr)?;
        let diff = max_abs_diff(dynamic.data(), with_idr.data());
        ensure!(
            diff <= 1e-4,
            "{name}: dynamic and split graphs differ by {diff:e}"
        );
        if (h, w) == SIZES[0] {
            let diff = max_abs_diff(folded.data(), with_idr.data());
            ensure!(
                diff <= 1e-4,
                "{name}: folded and split graphs differ by {diff:e} with the same IDR"
            );
        }
        let diff = max_abs_diff(split_ide.data(), with_idr.data());
        ensure!(
            diff == 0.0,
            "{name}: split upscale is not deterministic ({diff:e})"
        );
        let mut outputs = std::collections::BTreeMap::new();
        for (graph, sr) in [
            ("dynamic", &dynamic),
            ("split", &with_idr),
            ("folded", &folded),
        ] {
            let p = dir.join(format!("sr-{graph}-{name}.f32"));
            write_f32(&p, sr.data())?;
            outputs.insert(graph.to_owned(), p);
        }
        outputs.insert("split_ide".to_owned(), outputs["split"].clone());
        cases.push(Case {
            name,
            height: h,
            width: w,
            input,
            d,
            outputs,
        });
    }
    let manifest = Manifest {
        model: prefix,
        graphs,
        n_feats: split.info().n_feats,
        scale: split.scale(),
        threads,
        graph_forms: GRAPHS.iter().map(|g| (*g).to_owned()).collect(),
        input_image: INPUT_IMAGE.to_owned(),
        cases,
    };
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Fixture { manifest, inputs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_inputs_have_the_bench_sizes_and_8bit_values() -> Result<()> {
        for (h, w) in SIZES {
            let lr = lr_input(h, w)?;
            assert_eq!(lr.shape(), [3, h, w]);
            assert!(lr.data().iter().all(
                |&v| (0.0..=1.0).contains(&v) && (v * 255.0 - (v * 255.0).round()).abs() < 1e-3
            ));
            let mean = lr.data().iter().sum::<f32>() / lr.data().len() as f32;
            assert!(
                (0.1..0.9).contains(&mean),
                "a photo, not a flat image: mean {mean}"
            );
        }
        Ok(())
    }

    #[test]
    fn thread_counts_default_to_two_then_one() -> Result<()> {
        if std::env::var_os("KDSR_BENCH_THREADS").is_none() {
            assert_eq!(thread_counts()?, vec![2, 1]);
        }
        Ok(())
    }
}
