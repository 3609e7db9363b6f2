//! The `trainer` binary end to end: `forward` reproduces the official vectors through files,
//! `eval` writes its tables, and bad input fails with a message naming the file and no output.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::repo;

use std::process::Command;

use tch::Tensor;

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
}

#[test]
fn forward_writes_the_official_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let io = repo("tests/fixtures/reference/vectors/small_io.safetensors");
    let st = trainer()
        .args(["forward", "--config", "student-tiny", "--weights"])
        .arg(repo(
            "tests/fixtures/reference/vectors/small_student_weights.safetensors",
        ))
        .arg("--input")
        .arg(&io)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let got: std::collections::HashMap<_, _> = Tensor::read_safetensors(&out)
        .unwrap()
        .into_iter()
        .collect();
    let want: std::collections::HashMap<_, _> =
        Tensor::read_safetensors(&io).unwrap().into_iter().collect();
    for (k, w, tol) in [
        ("sr", "student.sr", 2e-6),
        ("D", "student.D", 1e-6),
        ("D_prime", "student.D_prime", 1e-6),
    ] {
        let d = (&got[k] - &want[w]).abs().max().double_value(&[]);
        assert!(d <= tol, "{k}: {d:e}");
    }
}

#[test]
fn forward_with_wrong_weights_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let o = trainer()
        .args(["forward", "--config", "teacher-tiny", "--weights"])
        .arg(repo(
            "tests/fixtures/reference/vectors/small_student_weights.safetensors",
        ))
        .arg("--input")
        .arg(repo(
            "tests/fixtures/reference/vectors/small_io.safetensors",
        ))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("small_student_weights.safetensors") && err.contains("E.E.0.weight"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no partial output"
    );
}

#[test]
fn eval_writes_markdown_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("Set5");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::copy(repo("data/Set5/bird.png"), set.join("bird.png")).unwrap();
    let prefix = tmp.path().join("res");
    let o = trainer()
        .args([
            "eval",
            "--config",
            "student-tiny",
            "--device",
            "cpu",
            "--weights",
        ])
        .arg(repo(
            "tests/fixtures/reference/vectors/small_student_weights.safetensors",
        ))
        .arg("--data")
        .arg(&set)
        .args([
            "--suite",
            "gaussian8",
            "aniso-noise",
            "--sigmas",
            "2.0,3.0",
            "--noise",
            "0",
            "--out",
        ])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(prefix.with_extension("md")).unwrap();
    assert!(
        md.contains("iso σ=2.0")
            && md.contains("k9 (4,4,180°) n=0")
            && md.contains("kdsr-official"),
        "{md}"
    );
    let js: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prefix.with_extension("json")).unwrap())
            .unwrap();
    let results = js["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["report"]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(results[1]["report"]["rows"].as_array().unwrap().len(), 9);
    // Random weights: the numbers are finite, not good.
    assert!(
        results[0]["report"]["mean"][0]
            .as_f64()
            .unwrap()
            .is_finite()
    );
}

/// The real-world commands answer to their names and to the old ones (hidden aliases), which
/// `--help` does not list.
#[test]
fn realworld_commands_and_their_old_names() {
    let help = trainer().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("train-realworld") && help.contains("eval-realworld"),
        "{help}"
    );
    assert!(
        !help.contains("train-gan") && !help.contains("eval-real "),
        "{help}"
    );
    for (name, flag) in [
        ("train-realworld", "--vgg"),
        ("train-gan", "--vgg"),
        ("eval-realworld", "--lpips-weights"),
        ("eval-real", "--lpips-weights"),
    ] {
        let o = trainer().args([name, "--help"]).output().unwrap();
        assert!(o.status.success(), "{name}");
        let h = String::from_utf8_lossy(&o.stdout);
        assert!(h.contains(flag), "{name}: {h}");
    }
    // The stage values are the stage folders' names.
    let o = trainer().args(["train-gan", "--help"]).output().unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    for v in ["net-teacher", "net-student", "gan-student", "all"] {
        assert!(h.contains(v), "{v}: {h}");
    }
}
