//! Issue 14 ("Reliability"): a short, deterministic run of each fuzz target of
//! `runtime/examples/fuzz` (the same engine and targets; the long runs and their counts are in
//! runtime/README.md), and the inputs the fuzzer found as regression tests.
#![allow(clippy::unwrap_used, missing_docs)] // tests: a panic is the failure report

#[allow(dead_code)]
#[path = "../examples/fuzz/engine.rs"]
mod engine;
#[allow(dead_code)]
#[path = "../examples/fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use kdsr_runtime::graph::check_graph_bytes;
use kdsr_runtime::io::{ReadOptions, open_image_bytes};
use kdsr_runtime::{Error, ErrorClass};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Each target for thousands of inputs (seed 1, fixed iterations, each target capped at 30 s;
/// about 10 s in all in a debug build): no panic, no input over the time limit. One test, so the engine's panic hook
/// is not shared between threads.
#[test]
fn fuzz_targets_short_run() {
    for (name, iters) in [("image", 40_000), ("ckpt", 15_000), ("onnx", 2_000)] {
        let target = targets::by_name(name).unwrap();
        let corpus = engine::load_corpus(&fuzz_dir().join("corpus").join(name)).unwrap();
        assert!(corpus.len() >= 4, "{name}: seed corpus too small");
        let findings = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
        let cfg = engine::Config {
            seed: 1,
            start: 0,
            iters,
            max_time: Some(Duration::from_secs(30)),
            timeout: Duration::from_secs(20),
            max_len: 4 << 20,
            findings: findings.clone(),
            save_each: false,
            progress_every: 0,
        };
        let r = engine::fuzz(target.as_ref(), &corpus, &cfg);
        eprintln!(
            "fuzz {name}: {} execs in {:.1} s, {} findings",
            r.execs,
            r.seconds,
            r.findings.len()
        );
        assert!(
            r.findings.is_empty(),
            "{name}: findings (inputs in {}): {:?}",
            findings.display(),
            r.findings
        );
        assert!(r.execs >= iters.min(100), "{name}: only {} execs", r.execs);
    }
}

/// Inputs the fuzz targets found panicking inside `kdsr-edge` (before the fix it died with a
/// panic, exit 101, and a folder run stopped there):
/// - `onnx-*`: graphs that panic tract 0.23.9 in `Upscaler::load`: an output name no node
///   produces ("no entry found for key"), and convolution attributes that make tract's padding
///   arithmetic overflow (a panic only where tract is built with overflow checks) or divide by
///   zero. Now an `Error::Model` naming the file (exit 4).
/// - `image-*`: a TIFF whose header makes tiff 0.10.3 index an empty table, a JPEG that makes
///   zune-jpeg 0.5.15 unwrap `None` in its IDCT. Now an `Error::Input` naming the file (exit 3).
#[test]
fn fuzz_regressions_are_errors_not_panics() {
    let dir = fuzz_dir().join("regressions");
    let (mut onnx, mut images) = (0, 0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(&p).unwrap();
        let err = if name.starts_with("onnx-") {
            onnx += 1;
            let err = check_graph_bytes(&bytes, &p).unwrap_err();
            assert!(matches!(err, Error::Model { .. }), "{name}: {err}");
            assert_eq!(err.class(), ErrorClass::Model, "{name}");
            // Each of these panics inside tract (caught: "malformed graph"), or, where tract's
            // arithmetic wraps instead (release builds and the dev profile's dependencies have no
            // overflow checks; 32-bit targets wrap differently), the overflowing dimension
            // reaches the output-shape check, which refuses the graph: a model error either way.
            let msg = err.to_string();
            assert!(
                msg.contains("malformed graph") || msg.contains("but the metadata"),
                "{err}"
            );
            err
        } else if name.starts_with("image-") {
            images += 1;
            let err = open_image_bytes(bytes, &p, ReadOptions::default())
                .and_then(|pending| pending.decode())
                .unwrap_err();
            assert!(matches!(err, Error::Input { .. }), "{name}: {err}");
            assert_eq!(err.class(), ErrorClass::Input, "{name}");
            err
        } else {
            continue;
        };
        let msg = err.to_string();
        assert!(msg.contains(&name), "{msg}");
        eprintln!("{name}: {msg}");
    }
    assert_eq!(
        (onnx, images),
        (3, 2),
        "regression inputs in {}",
        dir.display()
    );
}

/// The same through the file loader `kdsr-edge -m` uses.
#[test]
fn fuzz_regression_through_upscaler_load() {
    let p = fuzz_dir().join("regressions/onnx-divide-by-zero.onnx");
    let err = kdsr_runtime::Upscaler::load(&p, kdsr_runtime::Options::default()).unwrap_err();
    assert!(matches!(err, Error::Model { .. }), "{err}");
    assert!(err.to_string().contains("malformed graph"), "{err}");
}
