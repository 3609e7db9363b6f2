//! Issue 16 item 0: `kdsr-edge` run from anywhere finds its default model (search order: -m,
//! KDSR_MODEL, beside the executable, the installed layout, the repository, the built-in copy),
//! progress without a terminal, realesrgan-ncnn-vulkan's flags, `inspect-degradation`'s plain
//! statement, and the friction points the issue lists.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{code, command_for, edge, in_img, models, run_with, s, scratch, stderr};

/// The test photo's path as text.
fn photo() -> &'static str {
    static P: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    P.get_or_init(in_img).to_str().unwrap()
}

/// The default model's file prefix (`student-edge-camera` for `edge/camera/student-edge-camera`).
fn default_file() -> &'static str {
    let name = kdsr_runtime::models::DEFAULT_MODEL;
    name.rsplit('/').next().unwrap_or(name)
}

/// The command running the binary at `exe` (through `KDSR_TEST_RUNNER` if set), in `cwd`,
/// without `KDSR_MODEL`.
fn command_at(exe: &Path, cwd: &Path) -> Command {
    let mut c = command_for(exe);
    c.current_dir(cwd).env_remove("KDSR_MODEL");
    c
}

fn run(c: Command, args: &[&str]) -> Output {
    run_with(c, args, None)
}

/// A copy of the `kdsr-edge` binary in a folder outside the repository (the system temp dir),
/// so no rule but "beside the executable" and the built-in copy can find a model.
fn binary_outside_the_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("kdsr-edge");
    std::fs::copy(env!("CARGO_BIN_EXE_kdsr-edge"), &exe).unwrap();
    (dir, exe)
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the edge-sized default model: minutes under qemu-user; the search is not arch-specific"
)]
fn the_default_model_is_found_from_any_working_directory_in_the_documented_order() {
    let (tmp, exe) = binary_outside_the_repo();
    let bin = exe.parent().unwrap().to_path_buf();
    let out_png = tmp.path().join("out.png");
    let args = [
        "upscale",
        "-i",
        photo(),
        "-o",
        s(&out_png),
        "-j",
        "1",
        "--progress",
    ];
    let cwd = Path::new("/");

    // Nothing beside it: the built-in copy (default feature), or an error listing the places.
    let out = run(command_at(&exe, cwd), &args);
    if cfg!(feature = "embed-default-model") {
        assert_eq!(code(&out), 0);
        assert!(
            stderr(&out).contains("found by: built into the binary"),
            "{}",
            stderr(&out)
        );
    } else {
        assert_eq!(code(&out), 4);
        assert!(
            stderr(&out).contains(s(&bin.join(default_file()))),
            "{}",
            stderr(&out)
        );
    }

    // The tiny model's files named as the default model, beside the executable: they win over
    // the built-in copy, and the output is the tiny model's.
    let m = models();
    for part in ["-ide.onnx", "-sr.onnx"] {
        let from = format!("{}{part}", m.split.display());
        std::fs::copy(from, bin.join(format!("{}{part}", default_file()))).unwrap();
    }
    let out = run(command_at(&exe, cwd), &args);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("found by: beside the executable"),
        "{}",
        stderr(&out)
    );
    let want_png = tmp.path().join("want.png");
    let o = edge(&[
        "upscale",
        "-i",
        photo(),
        "-o",
        s(&want_png),
        "-m",
        s(&m.split),
        "-j",
        "1",
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        image::open(&out_png).unwrap().to_rgb8(),
        image::open(&want_png).unwrap().to_rgb8()
    );

    // KDSR_MODEL beats the place beside the executable; -m beats KDSR_MODEL.
    let mut c = command_at(&exe, cwd);
    c.env("KDSR_MODEL", &m.folded);
    let out = run(c, &args);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("found by: KDSR_MODEL"),
        "{}",
        stderr(&out)
    );
    let mut c = command_at(&exe, cwd);
    c.env("KDSR_MODEL", "/nonexistent/model");
    let out = run(c, &[&args[..], &["-m", s(&m.split)]].concat());
    assert_eq!(code(&out), 0, "-m must win over a bad KDSR_MODEL");

    // A name found nowhere: exit 4, every place searched listed.
    let out = run(
        command_at(&exe, cwd),
        &[&args[..5], &["-n", "nope"]].concat(),
    );
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    for p in [
        bin.join("nope"),
        bin.join("models/nope"),
        bin.join("../share/kdsr/models/nope"),
    ] {
        assert!(err.contains(s(&p)), "{} not listed: {err}", p.display());
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the edge-sized default model: minutes under qemu-user; the search is not arch-specific"
)]
fn the_repository_models_are_found_from_the_executable_not_the_cwd() {
    // The test binary lives under target/, inside the checkout: run it from / with no -m.
    let dir = scratch("anywhere-repo");
    let out = run(
        command_at(Path::new(env!("CARGO_BIN_EXE_kdsr-edge")), Path::new("/")),
        &[
            "upscale",
            "-i",
            photo(),
            "-o",
            s(&dir.join("o.png")),
            "-j",
            "1",
            "--progress",
        ],
    );
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("found by: the repository's models/"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn progress_lines_and_json_lines_without_a_terminal() {
    let m = models();
    let dir = scratch("anywhere-progress");
    let o = dir.join("o.png");
    let base = [
        "upscale",
        "-i",
        photo(),
        "-o",
        s(&o),
        "-m",
        s(&m.split),
        "-j",
        "1",
    ];
    // Tiled (--tile 30 on 96x120): one line per tile.
    let out = edge(&[&base[..], &["--progress", "--tile", "30"]].concat());
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("kdsr-edge: [") && lines[0].contains("loading the model"),
        "{err}"
    );
    assert!(
        err.contains("tile 1/") && err.contains("IDR ready"),
        "{err}"
    );
    let out = edge(&[&base[..], &["--progress", "--json", "--tile", "30"]].concat());
    assert_eq!(code(&out), 0);
    let events: Vec<String> = stderr(&out)
        .lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(j["t"].as_f64().is_some());
            j["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        events[..4],
        ["loading-model", "model-loaded", "image", "decoded"]
    );
    assert!(
        events.iter().filter(|e| *e == "tile").count() >= 2,
        "{events:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"].as_array().unwrap().len(), 1);
    // Without --progress and without a terminal: the one summary line only.
    let out = edge(&base);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn realesrgan_ncnn_vulkan_flags_are_accepted_where_they_do_not_clash() {
    let m = models();
    let dir = scratch("anywhere-aliases");
    let o = dir.join("o.webp");
    let base = ["upscale", "-i", photo(), "-o", s(&o), "-m", s(&m.split)];
    let out = edge(
        &[
            &base[..],
            &["-s", "4", "-t", "0", "-f", "webp", "-j", "1:1:1"],
        ]
        .concat(),
    );
    assert_eq!(code(&out), 0);
    assert!(o.is_file());
    let out = edge(&[&base[..], &["-s", "2"]].concat());
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("-s 2: this model upscales x4"),
        "{}",
        stderr(&out)
    );
    let out = edge(&[&base[..], &["-j", "1:x"]].concat());
    assert_eq!(code(&out), 2);
    // -n and -m together are a usage error.
    let out = edge(&[&base[..], &["-n", "student-edge-int8"]].concat());
    assert_eq!(code(&out), 2);
}

#[test]
fn friction_points_of_issue_16() {
    let m = models();
    let dir = scratch("anywhere-friction");
    // `-o x.bmp`: the extension is named as unsupported, not asked for.
    let out = edge(&[
        "upscale",
        "-i",
        photo(),
        "-o",
        s(&dir.join("x.bmp")),
        "-m",
        s(&m.split),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("`.bmp` is not a format kdsr-edge writes"),
        "{}",
        stderr(&out)
    );
    // `eval --help` shows no 18446744073709551615.
    let out = edge(&["eval", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--max-images") && !help.contains("18446744073709551615"),
        "{help}"
    );
    // A path appears once in an error.
    let bad = dir.join("broken.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    let out = edge(&[
        "upscale",
        "-i",
        s(&bad),
        "-o",
        s(&dir.join("o.png")),
        "-m",
        s(&m.split),
    ]);
    assert_eq!(code(&out), 3);
    for line in stderr(&out).lines() {
        assert!(
            line.matches("broken.png").count() <= 1,
            "repeated path: {line}"
        );
    }
    let out = edge(&[
        "upscale",
        "-i",
        photo(),
        "-o",
        s(&dir.join("o.png")),
        "-m",
        "/no/model",
    ]);
    assert_eq!(code(&out), 4);
    for line in stderr(&out).lines() {
        // The path itself once (the candidate files it names, /no/model-ide.onnx …, may follow).
        let bare = line
            .match_indices("/no/model")
            .filter(|(i, m)| !matches!(line[i + m.len()..].chars().next(), Some('-' | '.')))
            .count();
        assert!(bare <= 1, "repeated path: {line}");
    }
    // README's first command writes baby-x4.png at the root; git ignores it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("-o baby-x4.png"));
    if let Ok(o) = Command::new("git")
        .args(["check-ignore", "-q", "baby-x4.png"])
        .current_dir(&root)
        .output()
        && o.status.code() != Some(128)
    {
        assert_eq!(o.status.code(), Some(0), "baby-x4.png is not git-ignored");
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the edge-sized default model: minutes under qemu-user; the search is not arch-specific"
)]
fn inspect_degradation_says_what_the_idr_can_and_cannot_tell() {
    let m = models();
    let out = edge(&["inspect-degradation", photo(), "-m", s(&m.split), "-j", "1"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("What this IDR can tell: unknown for these weights"),
        "{text}"
    );
    // The Gaussian-only model: no bank suggested, the measured limits stated.
    let gauss = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/edge/student-edge");
    let out = edge(&["inspect-degradation", photo(), "-m", s(&gauss), "-j", "1"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("What it cannot tell: blur, noise or compression"),
        "{text}"
    );
    assert!(!text.contains("make-bank"), "{text}");
    // The default camera model: its measured abilities and limits.
    let out = edge(&["inspect-degradation", photo(), "-j", "1"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("student-edge-camera"), "{text}");
    assert!(
        text.contains("What it cannot tell: the JPEG quality"),
        "{text}"
    );
}
