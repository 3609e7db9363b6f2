//! The `converter` binary end to end on the official small student: an export writes the ONNX
//! file and a JSON report; `inspect` prints the dump; a failing export exits non-zero with a
//! message naming the problem and leaves no file (not even a temporary one) behind.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::weights_path;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::macs::Counting;

fn converter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_converter"))
        .args(args)
        .output()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn export_writes_model_and_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.onnx");
    let report = dir.path().join("tiny.json");
    let w = weights_path();
    let o = converter(&[
        "export",
        "--config",
        "student-tiny",
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--bench-size",
        "16x16",
        "--bench-iters",
        "1",
        "--json",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        j,
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&report).unwrap())
            .unwrap()
    );
    assert_eq!(j["preset"], "student-tiny");
    assert_eq!(j["precision"], "f32");
    let g = &j["graphs"][0];
    assert_eq!(g["graph"], "dynamic");
    assert_eq!(g["params"], 83_019);
    let macs = KdsrConfig::student_tiny().macs(180, 320, Counting::All);
    assert_eq!(g["macs_320x180"].as_u64(), Some(macs));
    assert_eq!(
        g["file_bytes"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    assert!(g["max_abs_diff"]["sr"].as_f64().unwrap() < 1e-5);
    assert!(g["max_abs_diff"]["D"].as_f64().unwrap() < 1e-6);
    assert!(g["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(files_in(dir.path()), ["tiny.json", "tiny.onnx"]);

    let o = converter(&["inspect", out.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("kdsr.graph = dynamic") && text.contains("sr: float32 [1,3,4*h,4*w]"),
        "{text}"
    );
}

#[test]
fn quantized_export_reports_size_psnr_and_speed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny-int8.onnx");
    let w = weights_path();
    let calib = common::calib_dir();
    let baby = common::data("Set5/baby.png");
    let o = converter(&[
        "export",
        "--config",
        "student-tiny",
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quantize",
        "int8",
        "--calib-data",
        calib.to_str().unwrap(),
        "--calib-images",
        "3",
        "--calib-method",
        "minmax",
        "--exclude",
        "G.head.0",
        "--reduce-range",
        "--test-image",
        baby.to_str().unwrap(),
        "--bench-size",
        "16x16",
        "--bench-iters",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["precision"], "int8");
    let q = &j["graphs"][0]["quantization"];
    assert!(q["size_ratio"].as_f64().unwrap() < 0.5, "{q}");
    assert!(q["psnr_db"]["sr"].as_f64().unwrap() >= 30.0, "{q}");
    assert_eq!(q["real_images"]["images"], 3);
    assert_eq!(q["calibration"]["method"], "minmax");
    assert_eq!(q["exclude"][0], "G.head.0");
    assert!(q["float_latency_ms"].as_f64().unwrap() > 0.0);
    assert!(q["note"].as_str().unwrap().contains("no faster than f32"));
    assert_eq!(files_in(dir.path()), ["tiny-int8.onnx"]);
    let o = converter(&["inspect", out.to_str().unwrap()]);
    let dump = String::from_utf8_lossy(&o.stdout);
    assert!(
        dump.contains("kdsr.precision = int8")
            && dump.contains("kdsr.quant_exclude = G.head.0")
            && dump.contains("kdsr.quant_weights = int8-symmetric-reduced"),
        "{dump}"
    );
    // `--precision` is the old name of `--quantize`.
    let out = dir.path().join("tiny-f16.onnx");
    let o = converter(&[
        "export",
        "--config",
        "student-tiny",
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--precision",
        "f16",
        "--no-bench",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("x the float32 file"));
}

#[test]
fn split_export_writes_two_files_with_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("edge.onnx");
    let w = weights_path();
    let o = converter(&[
        "export",
        "--config",
        "student-tiny",
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--graph",
        "split",
        "--no-bench",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files_in(dir.path()), ["edge-ide.onnx", "edge-sr.onnx"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ide graph") && text.contains("sr graph"),
        "{text}"
    );
}

#[test]
fn failing_exports_exit_nonzero_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.onnx");
    let w = weights_path();
    let (w, out_s) = (w.to_str().unwrap(), out.to_str().unwrap());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let no_images = format!("calibration folder {}: no images", empty.display());
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["--config", "teacher-tiny"], "teacher-tiny", 3),
        (
            vec!["--config", "student-huge"],
            "unknown preset `student-huge`",
            3,
        ),
        // The student-edge spec does not fit the tiny weights.
        (vec!["--config", "student-edge"], "G.head.0.weight", 3),
        (
            vec![
                "--config",
                "student-tiny",
                "--graph",
                "folded",
                "--calib",
                empty.to_str().unwrap(),
            ],
            "no images",
            3,
        ),
        (
            vec!["--config", "student-tiny", "--graph", "batched"],
            "--batch",
            3,
        ),
        (
            vec!["--config", "student-tiny", "--tolerance", "0"],
            "verification failed",
            4,
        ),
        (
            vec![
                "--config",
                "student-tiny",
                "--quantize",
                "int8",
                "--calib-data",
                empty.to_str().unwrap(),
            ],
            &no_images,
            3,
        ),
        (
            vec!["--config", "student-tiny", "--quantize", "int8"],
            "--calib-data",
            3,
        ),
        (
            vec![
                "--config",
                "student-tiny",
                "--quantize",
                "int8-weights",
                "--exclude",
                "G.tail.7",
            ],
            "closest node names: G.tail.1",
            3,
        ),
        (
            vec![
                "--config",
                "student-tiny",
                "--quantize",
                "int8-weights",
                "--min-psnr",
                "300",
            ],
            "dB PSNR from the float32 reference",
            4,
        ),
    ];
    for (extra, want, code) in cases {
        let mut args = vec!["export", "--weights", w, "--out", out_s, "--no-bench"];
        args.extend(&extra);
        let o = converter(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {err}");
        assert!(
            err.contains(want),
            "{extra:?}: `{err}` does not mention `{want}`"
        );
        assert_eq!(files_in(dir.path()), ["empty"], "{extra:?} left files");
    }
    // A usage error (clap) exits with 2.
    let o = converter(&["export", "--weights", w]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn folded_export_from_a_calibration_folder() {
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("frames");
    std::fs::create_dir(&calib).unwrap();
    for seed in 0..2 {
        let img = kdsr_converter::export::test_image(20, 24, seed).unwrap();
        kdsr_core::io::save_image(
            calib.join(format!("f{seed}.png")),
            &img,
            None,
            kdsr_core::io::BitDepth::Eight,
        )
        .unwrap();
    }
    let out = dir.path().join("cam.onnx");
    let w = weights_path();
    let o = converter(&[
        "export",
        "--config",
        "student-tiny",
        "--weights",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--graph",
        "folded",
        "--calib",
        calib.to_str().unwrap(),
        "--test-image",
        calib.join("f1.png").to_str().unwrap(),
        "--test-size",
        "16x20",
        "--no-bench",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("2 image(s)") && text.contains("16x20 crop of"),
        "{text}"
    );
    let o = converter(&["inspect", out.to_str().unwrap()]);
    let dump = String::from_utf8_lossy(&o.stdout);
    assert!(
        dump.contains("kdsr.graph = folded") && dump.contains("kdsr.idr_images = 2"),
        "{dump}"
    );
    assert!(
        dump.contains(&format!("kdsr.idr_source = calib:{}", calib.display())),
        "{dump}"
    );
    assert!(!dump.contains("E_st."), "a folded graph has no IDE");
}
