//! Shared test helpers: fixture paths, the graphs exported (with `kdsr-converter`) from the
//! official tiny student weights, and running the `kdsr-edge` binary.
//!
//! The tiny weights (`tests/fixtures/reference/vectors/small_student_weights.safetensors`,
//! C 16, N 2, R 2, ×4) are the **random initialisation** the official reference vectors were
//! made with, not a trained model: the tests check the runtime reproduces the network, not that
//! the pictures look good.
#![allow(dead_code, unused_imports, missing_docs, clippy::unwrap_used)] // each test binary uses its own subset

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

pub use kdsr_test_support::{
    check, code, command_for, fixture, listing, max_abs, run_with, s, stderr,
};

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

/// Runs `kdsr-edge` with `args` (1 thread, to keep parallel tests light).
pub fn edge(args: &[&str]) -> Output {
    edge_in(args, None)
}

/// The command that runs the `kdsr-edge` binary: directly, or through `KDSR_TEST_RUNNER`
/// (e.g. `qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu`, set by `scripts/test-arm.sh`:
/// under qemu-user a test cannot exec a foreign binary unless binfmt_misc is registered).
pub fn edge_command() -> Command {
    command_for(Path::new(env!("CARGO_BIN_EXE_kdsr-edge")))
}

/// Runs `kdsr-edge` with `args` and `stdin` bytes.
pub fn edge_in(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_with(edge_command(), args, stdin)
}
