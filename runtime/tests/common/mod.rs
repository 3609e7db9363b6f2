//! Shared test helpers: fixture paths, the graphs exported (with `kdsr-converter`) from the
//! official tiny student weights, and running the `kdsr-edge` binary.
//!
//! The tiny weights (`tests/fixtures/reference/vectors/small_student_weights.safetensors`,
//! C 16, N 2, R 2, ×4) are the **random initialisation** the official reference vectors were
//! made with, not a trained model: the tests check the runtime reproduces the network, not that
//! the pictures look good.
#![allow(dead_code, missing_docs, clippy::unwrap_used)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use kdsr_converter::export::{ExportOptions, build, output_paths};
use kdsr_converter::idr_source::IdrSource;
use kdsr_converter::{ExportKind, Network};
use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use kdsr_runtime::{Options, Upscaler};

/// A file of the workspace's `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

/// The 96×120 RGB test photo of the pipeline vectors.
pub fn in_img() -> PathBuf {
    fixture("reference/vectors-pipeline/in_img.png")
}

/// The official tiny student weights (random init of the reference vectors).
pub fn tiny_weights() -> PathBuf {
    fixture("reference/vectors/small_student_weights.safetensors")
}

/// `in_img.png` as a 3-channel planar image in [0, 1].
pub fn in_planar() -> Planar {
    kdsr_core::io::load_image(in_img()).unwrap().rgb
}

/// The graphs exported from the tiny random-init weights.
pub struct Models {
    /// Folder holding them.
    pub dir: PathBuf,
    /// Split prefix (`tiny-ide.onnx` + `tiny-sr.onnx`).
    pub split: PathBuf,
    /// Dynamic graph.
    pub dynamic: PathBuf,
    /// Folded graph with [`Models::folded_idr`] built in.
    pub folded: PathBuf,
    /// The IDR folded in: the split model's estimate for `in_img.png`.
    pub folded_idr: Idr,
    /// The `.idr` file of it.
    pub folded_idr_path: PathBuf,
}

fn write(path: &Path, bytes: &[u8]) {
    kdsr_core::fsutil::write_atomic(path, bytes).unwrap();
}

/// Exports `kind` from the tiny weights to `out` (no verification: the converter's own tests
/// do that).
pub fn export(kind: ExportKind, out: &Path, idr: Option<IdrSource>) {
    let net = Network::load(Some(KdsrConfig::student_tiny()), &tiny_weights()).unwrap();
    let opts = ExportOptions {
        kind,
        idr,
        bench_size: None,
        ..ExportOptions::default()
    };
    let (built, _) = build(&net, &opts).unwrap();
    for (b, (_, p)) in built.iter().zip(output_paths(kind, out)) {
        write(&p, &b.bytes);
    }
}

/// The tiny graphs, exported once per test binary into `CARGO_TARGET_TMPDIR/tiny-models`
/// (deterministic bytes, written atomically, so concurrent test binaries agree).
pub fn models() -> &'static Models {
    static M: OnceLock<Models> = OnceLock::new();
    M.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tiny-models");
        std::fs::create_dir_all(&dir).unwrap();
        let split = dir.join("tiny");
        export(ExportKind::Split, &split, None);
        let dynamic = dir.join("tiny-dynamic.onnx");
        export(ExportKind::Dynamic, &dynamic, None);
        let up = Upscaler::load(&split, Options::default()).unwrap();
        let folded_idr = up.estimate_idr(&in_planar()).unwrap();
        let folded_idr_path = dir.join("in_img.idr");
        write(&folded_idr_path, &folded_idr.to_bytes().unwrap());
        let folded = dir.join("tiny-folded.onnx");
        export(
            ExportKind::Folded,
            &folded,
            Some(IdrSource::File(folded_idr_path.clone())),
        );
        Models {
            dir,
            split,
            dynamic,
            folded,
            folded_idr,
            folded_idr_path,
        }
    })
}

/// A folder of its own under `CARGO_TARGET_TMPDIR` for one test (emptied first).
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("scratch")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Max |a − b|.
pub fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .fold(0.0, f64::max)
}

/// Asserts `max |got − want| <= tol`, printing the value.
pub fn check(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let d = max_abs(got, want);
    eprintln!("{what}: max |Δ| = {d:.3e} (tolerance {tol:.0e})");
    assert!(d <= tol, "{what}: max |Δ| = {d:e} > {tol:e}");
}

/// Runs `kdsr-edge` with `args` (1 thread, to keep parallel tests light).
pub fn edge(args: &[&str]) -> Output {
    edge_in(args, None)
}

/// The command that runs the `kdsr-edge` binary: directly, or through `KDSR_TEST_RUNNER`
/// (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by `scripts/test-arm.sh`: under qemu-user
/// a test cannot exec a foreign binary unless binfmt_misc is registered).
pub fn edge_command() -> Command {
    command_for(Path::new(env!("CARGO_BIN_EXE_kdsr-edge")))
}

/// [`edge_command`] for a `kdsr-edge` binary at `bin` (e.g. a copy outside the repository).
pub fn command_for(bin: &Path) -> Command {
    match std::env::var("KDSR_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

/// Runs `kdsr-edge` with `args` and `stdin` bytes.
pub fn edge_in(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_with(edge_command(), args, stdin)
}

/// Runs `cmd` (a `kdsr-edge` command, [`command_for`]) with `args` and `stdin` bytes, printing
/// the command line, exit code and stderr.
pub fn run_with(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut si = child.stdin.take().unwrap();
        // A run that refuses its input (a bad stream header) may exit before reading all of it;
        // the test then checks the exit code and message, so a closed pipe is not a failure.
        if let Err(e) = si.write_all(bytes) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
    }
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "kdsr-edge {}\n  exit {:?}\n  stderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Files (names) in `dir`, sorted, including hidden ones.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The exit code of a finished `kdsr-edge`.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

/// The stderr of a finished `kdsr-edge` as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
