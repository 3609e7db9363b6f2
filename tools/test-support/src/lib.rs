//! Test helpers shared by the workspace's test suites; every crate takes it as a
//! dev-dependency only. It depends on `kdsr-core` alone (whose integration tests use it too: they
//! link the same `kdsr-core` library, so there is one copy of its types).
//!
//! - Paths: [`repo`], [`fixture`] (the fixture store `tests/fixtures/`, see its README),
//!   [`vectors`] and [`pipeline`] (the official reference vectors).
//! - Comparisons with a stated tolerance: [`max_abs`], [`check`].
//! - Running a workspace binary: [`command_for`] (through `KDSR_TEST_RUNNER`, e.g. qemu-user),
//!   [`run_with`], [`code`], [`stderr`], [`listing`], [`s`].
//! - A crate's module graph read from its sources: [`modules`] (no import circles).
#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

pub mod modules;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A path relative to the repository root.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// A file of the workspace's fixture store `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo("tests/fixtures").join(rel)
}

/// A file of `tests/fixtures/reference/vectors/` (the official small-model vectors).
pub fn vectors(name: &str) -> PathBuf {
    fixture("reference/vectors").join(name)
}

/// A file of `tests/fixtures/reference/vectors-pipeline/` (the official pipeline vectors).
pub fn pipeline(name: &str) -> PathBuf {
    fixture("reference/vectors-pipeline").join(name)
}

/// Max |a − b| in f64 ([`kdsr_core::metrics::max_abs_diff`]), asserting equal lengths; a NaN on
/// either side counts as infinite.
pub fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    kdsr_core::metrics::max_abs_diff(a, b)
}

/// Asserts `max |got − want| <= tol` ([`max_abs`]), printing the value.
pub fn check(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let d = max_abs(got, want);
    eprintln!("{what}: max |Δ| = {d:.3e} (tolerance {tol:.0e})");
    assert!(d <= tol, "{what}: max |Δ| = {d:e} > {tol:e}");
}

/// The command that runs the binary `bin`: directly, or through `KDSR_TEST_RUNNER` (e.g.
/// `qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu`, set by `scripts/test-arm.sh`: under
/// qemu-user a test cannot exec a foreign binary unless binfmt_misc is registered).
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

/// Runs `cmd` with `args` and `stdin` bytes, printing the command line, exit code and stderr.
/// A run that exits before reading all of `stdin` (a refused stream header) is not a failure
/// here: the caller checks its exit code and message.
pub fn run_with(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut si = child.stdin.take().unwrap();
        if let Err(e) = si.write_all(bytes) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
    }
    let out = child.wait_with_output().unwrap();
    let name = Path::new(&program)
        .file_name()
        .map_or(program.clone(), |n| n.to_string_lossy().into_owned());
    eprintln!(
        "{name} {}\n  exit {:?}\n  stderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Files (names) in `dir`, sorted, hidden ones included.
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

/// The exit code of a finished process (a kill by signal is a test failure).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

/// The stderr of a finished process as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_store_is_found() {
        assert!(
            fixture("README.md").is_file(),
            "{}",
            fixture("README.md").display()
        );
        assert!(vectors("small_student_weights.safetensors").is_file());
    }

    #[test]
    fn max_abs_counts_nan_as_infinite() {
        assert_eq!(max_abs(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
        assert_eq!(max_abs(&[f32::NAN], &[0.0]), f64::INFINITY);
    }

    #[test]
    #[should_panic(expected = "max |Δ|")]
    fn check_fails_over_the_tolerance() {
        check("t", &[1.0], &[1.1], 0.01);
    }
}
