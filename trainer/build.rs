//! Links `libtorch_cuda` into the trainer's binaries when the libtorch it builds against has one.
//!
//! torch-sys asks for `-ltorch_cuda`, but no symbol of ours comes from it, so a linker that
//! defaults to `--as-needed` (Debian's and Ubuntu's gcc) drops it: the binary then never loads
//! libtorch's CUDA backend and `Cuda::device_count()` is 0 on a GPU machine (seen with the
//! PyPI torch 2.11.0+cu130 wheel: `readelf -d target/release/trainer` listed libtorch_cpu and
//! libc10 only). tch-rs documents the same fix: `--no-as-needed` before `-ltorch_cuda`.
//! The library directory is found the way torch-sys finds it: with `LIBTORCH_USE_PYTORCH`, the
//! active Python's torch package, else `LIBTORCH_LIB` or `LIBTORCH` (`…/lib`).
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn env_rerun(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).ok()
}

fn libtorch_lib_dir() -> Option<PathBuf> {
    // torch-sys's precedence: LIBTORCH_USE_PYTORCH, then LIBTORCH_LIB, then LIBTORCH.
    if env_rerun("LIBTORCH_USE_PYTORCH").is_some() {
        // torch-sys runs `python` inside a virtualenv, `python3` otherwise.
        let python = if env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        return Some(PathBuf::from(dir.trim()));
    }
    env_rerun("LIBTORCH_LIB")
        .or_else(|| env_rerun("LIBTORCH"))
        .map(|d| PathBuf::from(d).join("lib"))
}

fn main() {
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let Some(dir) = libtorch_lib_dir() else {
        return;
    };
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
