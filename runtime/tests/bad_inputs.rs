//! Issue 14 ("Reliability"): bad inputs that used to get through `kdsr-edge upscale` — truncated
//! JPEGs, broken or forged IDRs and graphs, temporary files left by a killed run, outputs and
//! inputs too large for their format or the memory budget (checked from the header, before
//! decoding), absurd `--threads` / `--tile` / `--jpeg-quality`, budget-sized windows too small
//! to keep a core, animated and multi-frame inputs, and `-o newdir/`. Each test fails on the
//! behaviour before the fix. Graphs exported from the official tiny student weights (random
//! init, not a trained model).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{edge, edge_command, in_img, in_planar, listing, models, scratch};
use image::{DynamicImage, ImageBuffer};
use kdsr_converter::export::{ExportOptions, build};
use kdsr_converter::{ExportKind, Network};
use kdsr_core::idr::Idr;
use kdsr_core::io::BitDepth;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Tensor, Weights};
use kdsr_runtime::image::image_buffer_bytes;
use kdsr_runtime::memory;
use kdsr_runtime::tiling::TileGrid;
use kdsr_runtime::{Error, ErrorClass, Options, Upscaler};
use prost::Message;
use tract_onnx::pb::ModelProto;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn split() -> &'static str {
    s(&models().split)
}

/// A committed fixture of `runtime/tests/fixtures/` (see `make_fixtures.py` there).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `kdsr-edge upscale -i input -o output -m split` plus `extra`.
fn upscale(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["upscale", "-i", s(input), "-o", s(output), "-m", split()];
    args.extend_from_slice(extra);
    edge(&args)
}

/// Asserts exit `want`, that stderr names `file` and says every one of `says`, and no panic.
fn refused(o: &Output, want: i32, file: &Path, says: &[&str]) {
    let err = stderr(o);
    assert_eq!(code(o), want, "{err}");
    assert!(
        err.contains(s(file)),
        "does not name {}: {err}",
        file.display()
    );
    for w in says {
        assert!(err.contains(w), "lacks `{w}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// The test photo as a baseline JPEG (the `image` crate writes baseline only).
fn baseline_jpeg() -> Vec<u8> {
    let mut buf = Vec::new();
    image::open(in_img())
        .unwrap()
        .write_to(
            &mut std::io::Cursor::new(&mut buf),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    buf
}

#[test]
fn truncated_baseline_and_progressive_jpegs_are_refused_unless_allowed() {
    let d = scratch("bad-truncated-jpeg");
    let outs = d.join("out");
    std::fs::create_dir_all(&outs).unwrap();
    let progressive = std::fs::read(fixture("progressive.jpg")).unwrap();
    assert_eq!(&progressive[..2], b"\xff\xd8");
    assert!(
        progressive.windows(2).any(|w| w == b"\xff\xc2"),
        "the fixture is progressive (SOF2)"
    );
    for (kind, bytes) in [("baseline", baseline_jpeg()), ("progressive", progressive)] {
        // The whole files are fine.
        let whole = d.join(format!("{kind}.jpg"));
        std::fs::write(&whole, &bytes).unwrap();
        assert_eq!(code(&upscale(&whole, &outs.join("whole.png"), &[])), 0);
        std::fs::remove_file(outs.join("whole.png")).unwrap();
        for pct in [10, 50, 90] {
            let cut = d.join(format!("{kind}-{pct}.jpg"));
            std::fs::write(&cut, &bytes[..bytes.len() * pct / 100]).unwrap();
            let o = upscale(&cut, &outs.join("x.png"), &[]);
            refused(&o, 3, &cut, &["truncated"]);
            assert_eq!(listing(&outs), Vec::<String>::new(), "{kind} {pct} %");
        }
    }
    // Only on request: the 90 % baseline file decodes with its bottom grey.
    let cut = d.join("baseline-90.jpg");
    let o = upscale(&cut, &outs.join("allowed.png"), &["--allow-truncated"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(outs.join("allowed.png").is_file());

    // In a folder run the truncated file is a failure, not a success.
    let folder = d.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(in_img(), folder.join("a.png")).unwrap();
    std::fs::copy(&cut, folder.join("b.jpg")).unwrap();
    let out2 = d.join("out2");
    let o = upscale(&folder, &out2, &["--json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 of 2 images failed"),
        "{}",
        stderr(&o)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["files"].as_array().unwrap().len(), 1);
    assert!(
        j["failed"][0]["input"].as_str().unwrap().ends_with("b.jpg"),
        "{j}"
    );
    assert_eq!(listing(&out2), ["a.png"]);
}

#[test]
fn an_idr_with_non_finite_or_absurd_values_is_refused_with_exit_4() {
    let m = models();
    let d = scratch("bad-idr-values");
    for (name, v) in [
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("neg-inf", f32::NEG_INFINITY),
        ("huge", 1e30),
    ] {
        let mut idr = m.folded_idr.clone();
        idr.d[3] = v;
        let p = d.join(format!("{name}.idr"));
        idr.save(&p).unwrap();
        let out = d.join(format!("{name}.png"));
        let o = upscale(&in_img(), &out, &["--idr", s(&p)]);
        refused(&o, 4, &p, &["`D`[3]"]);
        assert!(!out.exists());
    }
    // D' too (inspect-degradation compares it with the bank).
    let mut idr = m.folded_idr.clone();
    idr.d_prime[0] = f32::NAN;
    let p = d.join("dprime.idr");
    idr.save(&p).unwrap();
    let o = upscale(&in_img(), &d.join("dp.png"), &["--idr", s(&p)]);
    refused(&o, 4, &p, &["`D_prime`[0]"]);
}

#[test]
fn the_runtime_refuses_a_non_finite_sr_output() {
    // An IDR given straight to run_tiles bypasses the IDR checks; the output check still holds.
    let m = models();
    let up = Upscaler::load(&m.split, Options::default()).unwrap();
    let lr = in_planar();
    let grid = TileGrid::whole(lr.height(), lr.width()).unwrap();
    let d = vec![f32::NAN; m.folded_idr.d.len()];
    let mut tiles = 0;
    let e = up
        .run_tiles(&lr, Some(&d), &grid, &mut |_| {
            tiles += 1;
            Ok(())
        })
        .unwrap_err();
    eprintln!("{e}");
    assert_eq!(tiles, 0, "no tile with NaN reaches the sink");
    assert_eq!(e.class(), ErrorClass::Model);
    assert!(e.to_string().contains("non-finite"), "{e}");
}

#[test]
fn an_idr_without_weights_hash_is_refused_with_exit_4() {
    let m = models();
    let d = scratch("bad-idr-hash");
    let p = d.join("nohash.idr");
    Idr {
        weights_hash: String::new(),
        ..m.folded_idr.clone()
    }
    .save(&p)
    .unwrap();
    let out = d.join("o.png");
    let o = upscale(&in_img(), &out, &["--idr", s(&p)]);
    refused(&o, 4, &p, &["weights_hash"]);
    assert!(!out.exists());
    let up = Upscaler::load(&m.split, Options::default()).unwrap();
    let e = up
        .upscale_with_idr(&in_planar(), &Idr::load(&p).unwrap())
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Model, "{e}");
}

/// Copies the ONNX file `src` to `dst` with metadata `key` set to `value`.
fn relabelled(src: &Path, dst: &Path, key: &str, value: &str) {
    let mut m = ModelProto::decode(std::fs::read(src).unwrap().as_slice()).unwrap();
    m.metadata_props.retain(|p| p.key != key);
    m.metadata_props
        .push(tract_onnx::pb::StringStringEntryProto {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    std::fs::write(dst, m.encode_to_vec()).unwrap();
}

/// A dynamic ×2 student-tiny graph with small deterministic weights.
fn x2_dynamic(path: &Path) {
    let cfg = KdsrConfig::student_tiny().with_scale(2).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut w = Weights::new();
    for t in cfg.tensors() {
        let data = (0..t.numel())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        w.insert(t.key.clone(), Tensor::new(t.shape.clone(), data).unwrap());
    }
    let net = Network::new(cfg, w).unwrap();
    let opts = ExportOptions {
        kind: ExportKind::Dynamic,
        bench_size: None,
        ..ExportOptions::default()
    };
    let (built, _) = build(&net, &opts).unwrap();
    std::fs::write(path, &built[0].bytes).unwrap();
}

#[test]
fn graphs_whose_inputs_outputs_or_scale_contradict_their_metadata_are_refused() {
    let m = models();
    let d = scratch("bad-graph-io");
    let out = d.join("o.png");
    // A graph labelled "dynamic" without the `D` output of a dynamic graph (a folded graph).
    let forged = d.join("forged-dynamic.onnx");
    relabelled(&m.folded, &forged, "kdsr.graph", "dynamic");
    let e = Upscaler::load(&forged, Options::default()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Model, "{e}");
    assert!(e.to_string().contains("\"D\""), "{e}");
    let o = edge(&[
        "upscale",
        "-i",
        s(&in_img()),
        "-o",
        s(&out),
        "-m",
        s(&forged),
    ]);
    refused(&o, 4, &forged, &["`dynamic` graph"]);
    // A ×2 graph labelled ×4.
    let x2 = d.join("x2.onnx");
    x2_dynamic(&x2);
    assert!(Upscaler::load(&x2, Options::default()).is_ok());
    let lying = d.join("x2-says-x4.onnx");
    relabelled(&x2, &lying, "kdsr.scale", "4");
    let e = Upscaler::load(&lying, Options::default()).unwrap_err();
    assert!(matches!(e, Error::Model { .. }), "{e}");
    let o = edge(&[
        "upscale",
        "-i",
        s(&in_img()),
        "-o",
        s(&out),
        "-m",
        s(&lying),
    ]);
    refused(&o, 4, &lying, &["`sr`", "kdsr.scale"]);
    // The IDE of a pair whose C is relabelled: `D` is [1, 16], not [1, 32].
    let pair = d.join("pair");
    std::fs::create_dir_all(&pair).unwrap();
    relabelled(
        &m.dir.join("tiny-ide.onnx"),
        &pair.join("p-ide.onnx"),
        "kdsr.n_feats",
        "32",
    );
    relabelled(
        &m.dir.join("tiny-sr.onnx"),
        &pair.join("p-sr.onnx"),
        "kdsr.n_feats",
        "32",
    );
    let e = Upscaler::load(pair.join("p"), Options::default()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Model, "{e}");
    assert!(!out.exists());
}

/// The PID of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = edge_command()
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn backdate(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn temporary_files_of_a_killed_run_are_removed_by_the_next_run_into_the_folder() {
    let d = scratch("bad-stale-temps");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let dead = dead_pid();
    // What a `kill -9` during the write leaves: 0 bytes or a partial image.
    let stale = [
        format!(".a.png.kdsr-tmp.{dead}.Xy12Ab"),
        format!(".b.jpg.kdsr-tmp.{dead}.0"),
    ];
    for (i, n) in stale.iter().enumerate() {
        std::fs::write(out.join(n), vec![0u8; i * 4096]).unwrap();
        backdate(&out.join(n), 120);
    }
    // Kept: a live writer's (this test process), a dead writer's that was written to a moment
    // ago (another PID namespace's writer may look dead), and files that are not ours.
    let live = format!(".c.png.kdsr-tmp.{}.Qw34Er", std::process::id());
    let fresh = format!(".d.png.kdsr-tmp.{dead}.Zx56Cv");
    let foreign = [".e.png.tmp".to_owned(), "f.kdsr-tmp.1.x".to_owned()];
    for n in [&live, &fresh].into_iter().chain(&foreign) {
        std::fs::write(out.join(n), b"x").unwrap();
    }
    backdate(&out.join(&live), 120);
    for n in &foreign {
        backdate(&out.join(n), 120);
    }
    let o = upscale(&in_img(), &out.join("photo.png"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for n in &stale {
        assert!(!out.join(n).exists(), "{n} was not removed");
        assert!(stderr(&o).contains(n.as_str()), "{}", stderr(&o));
    }
    let mut want = vec![live, fresh, "photo.png".to_owned()];
    want.extend(foreign);
    want.sort();
    assert_eq!(listing(&out), want);
    // The names the writers use are the recognisable ones.
    let prefix = kdsr_core::fsutil::temp_prefix("x.png");
    assert_eq!(
        kdsr_core::fsutil::temp_owner(&format!("{prefix}abc")),
        Some(std::process::id())
    );
}

#[test]
fn outputs_too_large_for_their_format_are_refused_from_the_header() {
    let d = scratch("bad-output-size");
    // 16,400 px wide ×4 = 65,600 px: more than JPEG can hold.
    let wide = d.join("wide.png");
    DynamicImage::ImageLuma8(ImageBuffer::from_pixel(16_400, 4, image::Luma([90u8])))
        .save(&wide)
        .unwrap();
    let out = d.join("wide.jpg");
    let o = upscale(&wide, &out, &["--json"]);
    refused(&o, 5, &out, &["65600x16", "at most 65535 px"]);
    assert!(!out.exists());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["failed"][0]["exit_code"], 5);
    // WebP holds 16,383 px per side.
    let out = d.join("wide.webp");
    let o = upscale(&wide, &out, &[]);
    refused(&o, 5, &out, &["at most 16383 px"]);
}

#[test]
fn an_image_over_the_memory_budget_is_refused_before_decoding() {
    let d = scratch("bad-budget");
    let big = d.join("big.png");
    DynamicImage::ImageLuma8(ImageBuffer::new(6000, 6000))
        .save(&big)
        .unwrap();
    let out = d.join("big-x4.png");
    let o = upscale(&big, &out, &["--json"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("budget"), "{}", stderr(&o));
    assert!(!out.exists());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let peak = j["peak_rss_mib"].as_f64().unwrap();
    // Decoding alone would hold 36 MB of pixels and 144 MB of float32 planes.
    assert!(peak < 120.0, "peak RSS {peak} MiB: the image was decoded");
}

#[test]
fn more_threads_than_cores_are_capped_with_a_warning() {
    let d = scratch("bad-threads");
    let out = d.join("o.png");
    let o = upscale(&in_img(), &out, &["--threads", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: --threads 1000 is more than the"),
        "{}",
        stderr(&o)
    );
    assert!(out.is_file());
}

#[test]
fn a_tile_that_keeps_a_tiny_core_is_refused() {
    let d = scratch("bad-tile");
    let out = d.join("o.png");
    // student-tiny: receptive radius 9, so windows of 19..26 px keep cores of 1..8 px.
    for t in ["19", "26"] {
        let o = upscale(&in_img(), &out, &["--tile", t]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("--tile {t} is too small"))
                && stderr(&o).contains("--tile 27"),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    assert_eq!(code(&upscale(&in_img(), &out, &["--tile", "27"])), 0);
}

#[test]
fn a_budget_that_leaves_only_tiny_windows_is_refused() {
    let m = models();
    let model_bytes: u64 = ["tiny-ide.onnx", "tiny-sr.onnx"]
        .iter()
        .map(|f| std::fs::metadata(m.dir.join(f)).unwrap().len())
        .sum();
    let fixed = image_buffer_bytes(120, 96, 3, false, BitDepth::Eight, 4);
    let bpp = memory::sr_bytes_per_px(16, 4);
    // The budget whose windows (sized as Upscaler::tile_grid sizes them) are 19..26 px: past
    // the 2 × 9 px of context, short of the 27 px useful minimum.
    let side = |mib: usize| {
        let avail = mib as f64 * 1024.0 * 1024.0 - memory::baseline_bytes(model_bytes) - fixed;
        ((avail.max(0.0) / bpp) as usize as f64).sqrt() as usize
    };
    let budget = (1..200).find(|&b| (19..27).contains(&side(b))).unwrap();
    let d = scratch("bad-budget-windows");
    let out = d.join("o.png");
    let o = upscale(&in_img(), &out, &["--mem-budget", &budget.to_string()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("leaves room for {} px windows", side(budget)))
            && stderr(&o).contains("raise --mem-budget"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn jpeg_quality_outside_1_to_100_is_a_usage_error() {
    let d = scratch("bad-quality");
    for q in ["0", "101", "255"] {
        let out = d.join("o.jpg");
        let o = upscale(&in_img(), &out, &["--jpeg-quality", q]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("1..=100"), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

#[test]
fn animated_and_multi_frame_inputs_are_refused_alike() {
    let d = scratch("bad-multi-frame");
    for f in ["animated.gif", "animated.webp", "multipage.tif"] {
        let input = fixture(f);
        let out = d.join("o.png");
        let o = upscale(&input, &out, &[]);
        refused(&o, 3, &input, &["animated/multi-frame input"]);
        assert!(!stderr(&o).contains("corrupt"), "{}", stderr(&o));
        assert!(!out.exists());
    }
    // Single-frame WebP and TIFF still work.
    let photo = image::open(in_img()).unwrap().crop_imm(0, 0, 32, 32);
    for ext in ["webp", "tif"] {
        let input = d.join(format!("still.{ext}"));
        photo.save(&input).unwrap();
        let o = upscale(&input, &d.join(format!("still-{ext}.png")), &[]);
        assert_eq!(code(&o), 0, "{ext}: {}", stderr(&o));
    }
}

#[test]
fn an_output_path_ending_in_a_slash_is_created_as_a_folder() {
    let d = scratch("bad-newdir");
    let newdir = format!("{}/newdir/", d.display());
    let o = edge(&["upscale", "-i", s(&in_img()), "-o", &newdir, "-m", split()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(listing(&d.join("newdir")), ["in_img.png"]);
}
