//! Issue 14 ("Reliability"): checkpoints that used to get through `converter export` or failed
//! with the wrong message — a sidecar that lies about the preset name, NaN / infinite weights,
//! a missing sidecar (the config stored in the weights is used; without one, `--config` is asked
//! for, exit 3), an IDR with NaN values to fold, and a temporary file a killed export left. Each
//! test fails on the behaviour before the fix.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{random_weights, weights_path};
use kdsr_converter::{ConvertError, Network};
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Checkpoint, Weights, load_weights, weights_to_bytes};

fn converter(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_converter"))
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "converter {}\n  exit {:?}\n  stderr: {}",
        args.join(" "),
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `converter export --weights W --out OUT --no-bench` plus `extra`.
fn export_cli(weights: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "export",
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-bench",
    ];
    args.extend_from_slice(extra);
    converter(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn save_plain(w: &Weights, path: &Path) {
    std::fs::write(path, weights_to_bytes(w, None).unwrap()).unwrap();
}

fn official() -> Weights {
    load_weights(&KdsrConfig::student_tiny(), &weights_path()).unwrap()
}

#[test]
fn a_sidecar_lying_about_the_preset_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let edge = KdsrConfig::student_edge();
    let w = random_weights(&edge, 7);
    let p = dir.path().join("edge.safetensors");
    save_plain(&w, &p);
    // The sizes are student-edge's (and match the tensors); only the name says student-tiny.
    let mut lying = edge.clone();
    lying.preset = "student-tiny".into();
    std::fs::write(p.with_extension("json"), lying.to_json()).unwrap();
    let e = Network::load(None, &p).unwrap_err();
    assert!(matches!(e, ConvertError::PresetMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("`student-tiny` (C 16, N 2, R 2") && msg.contains("C 32, N 8, R 3"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 3);
    let out = dir.path().join("m.onnx");
    let o = export_cli(&p, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("student-tiny"), "{}", stderr(&o));
    assert!(!out.exists());
    // A name that is not a preset may carry any sizes.
    let mut custom = edge.clone();
    custom.preset = "my-edge".into();
    std::fs::write(p.with_extension("json"), custom.to_json()).unwrap();
    let net = Network::load(None, &p).unwrap();
    assert_eq!(net.config.n_feats, 32);
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    for (key, v) in [
        ("G.body.0.body.1.conv1.weight", f32::NAN),
        ("E_st.compress.0.weight", f32::INFINITY),
        ("G.tail.1.bias", f32::NEG_INFINITY),
    ] {
        let mut w = official();
        assert!(w.contains_key(key), "{key}");
        w.get_mut(key).unwrap().data[1] = v;
        let p = dir.path().join("bad.safetensors");
        save_plain(&w, &p);
        let e = Network::load(Some(KdsrConfig::student_tiny()), &p).unwrap_err();
        assert!(matches!(e, ConvertError::NonFiniteWeight { .. }), "{e:?}");
        assert!(e.to_string().contains(&format!("`{key}`")), "{e}");
        assert_eq!(e.exit_code(), 3);
        let out = dir.path().join("m.onnx");
        let o = export_cli(&p, &out, &["--config", "student-tiny"]);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(stderr(&o).contains(key), "{}", stderr(&o));
        assert!(!stderr(&o).contains("differs from the reference"));
        assert!(!out.exists());
    }
}

#[test]
fn a_missing_sidecar_uses_the_embedded_config_or_asks_for_config() {
    let dir = tempfile::tempdir().unwrap();
    // The trainer's checkpoints carry their config in the safetensors metadata.
    let p = dir.path().join("ck.safetensors");
    Checkpoint {
        config: KdsrConfig::student_tiny(),
        weights: official(),
    }
    .save(&p)
    .unwrap();
    std::fs::remove_file(p.with_extension("json")).unwrap();
    let net = Network::load(None, &p).unwrap();
    assert_eq!(net.config, KdsrConfig::student_tiny());
    // A temporary file an export killed mid-write left behind goes on the next export.
    let mut child = Command::new(env!("CARGO_BIN_EXE_converter"))
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.path().join(format!(".ck.onnx.kdsr-tmp.{dead}.0"));
    std::fs::write(&stale, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
        .unwrap();
    let out = dir.path().join("ck.onnx");
    let o = export_cli(&p, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.is_file());
    assert!(!stale.exists(), "the stale temporary file is still there");

    // Neither a sidecar nor an embedded config: exit 3, asking for --config, said once.
    let bare = dir.path().join("bare.safetensors");
    save_plain(&official(), &bare);
    let e = Network::load(None, &bare).unwrap_err();
    assert!(matches!(e, ConvertError::NoConfig { .. }), "{e:?}");
    let out = dir.path().join("bare.onnx");
    let o = export_cli(&bare, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("--config"), "{err}");
    assert!(err.contains("bare.json"), "{err}");
    assert_eq!(err.matches("bare.json").count(), 1, "said twice: {err}");
    assert!(!out.exists());
}

#[test]
fn an_idr_with_non_finite_values_is_not_folded_even_forced() {
    let dir = tempfile::tempdir().unwrap();
    let net = common::net();
    let p = dir.path().join("nan.idr");
    kdsr_core::idr::Idr {
        d: vec![f32::NAN; 16],
        d_prime: vec![0.0; 64],
        weights_hash: net.weights_hash.clone(),
        images: 1,
        source: "test".into(),
    }
    .save(&p)
    .unwrap();
    let e = kdsr_converter::idr_source::resolve(
        &net,
        &kdsr_converter::idr_source::IdrSource::File(p.clone()),
        true,
    )
    .unwrap_err();
    assert!(matches!(e, ConvertError::IdrValues { .. }), "{e:?}");
    assert!(e.to_string().contains("`D`[0]"), "{e}");
    assert_eq!(e.exit_code(), 3);
}

/// Issue 14: a truncated JPEG given as an image to fold (`--image`) or to calibrate with
/// (`--calib`) used to be read with its missing part filled grey; `kdsr_core::io::load_image`
/// now refuses it, naming the file, exit 3 (as `kdsr-edge` does).
#[test]
fn a_truncated_jpeg_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    // The runtime's progressive fixture, and a baseline JPEG written here; each cut at 90 %.
    let progressive = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/progressive.jpg"),
    )
    .unwrap();
    let base = dir.path().join("baseline-src.jpg");
    let data = (0..3 * 48 * 64).map(|i| (i % 251) as f32 / 255.0).collect();
    let rgb = kdsr_core::Planar::new(3, 48, 64, data).unwrap();
    kdsr_core::io::save_image(&base, &rgb, None, kdsr_core::io::BitDepth::Eight).unwrap();
    let baseline = std::fs::read(&base).unwrap();
    for (name, full) in [("progressive", progressive), ("baseline", baseline)] {
        let whole = dir.path().join(format!("{name}.jpg"));
        std::fs::write(&whole, &full).unwrap();
        kdsr_converter::idr_source::load_rgb(&whole).unwrap();
        let cut = dir.path().join(format!("{name}-cut.jpg"));
        std::fs::write(&cut, &full[..full.len() * 9 / 10]).unwrap();
        let e = kdsr_converter::idr_source::load_rgb(&cut).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("truncated JPEG"), "{msg}");
        assert!(msg.contains(&cut.display().to_string()), "{msg}");
    }
}
