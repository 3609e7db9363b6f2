//! The subcommands (one module each) and what they share: model loading, listing image folders,
//! progress bars, peak memory.

mod bench;
mod calibrate;
mod eval;
mod inspect;
mod make_bank;
mod upscale;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use kdsr_runtime::{Options, Upscaler};

use crate::cli::{Cli, Command, Failure, ModelArgs};

/// Runs one command; `Ok(code)` is the exit code of a run that reported its own failures.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Upscale(a) => upscale::run(a),
        Command::InspectDegradation(a) => inspect::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::MakeBank(a) => make_bank::run(a),
        Command::Eval(a) => eval::run(a),
    }
}

/// Loads the model of `args` with `options` (threads and knob taken from `args`).
pub fn load_model(args: &ModelArgs, mut options: Options) -> anyhow::Result<Upscaler> {
    options.threads = args.threads;
    options.direct_spatial = args.direct_spatial.into();
    Upscaler::load(&args.model, options).with_context(|| {
        format!(
            "loading the model (-m {}; export one with `converter export --graph split`)",
            args.model.display()
        )
    })
}

/// Extensions treated as images when a folder is listed.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jfif", "webp", "tif", "tiff", "pnm", "ppm", "pgm", "pbm", "pam",
];

/// The image files of `dir` (by extension, not recursive), sorted.
pub fn list_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Failure {
        class: kdsr_runtime::ErrorClass::Input,
        message: format!("cannot list {}: {e}", dir.display()),
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A progress bar on stderr when it is a terminal and `show`, else a hidden one.
pub fn progress_bar(len: u64, show: bool, what: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{msg}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Peak resident memory of this process in MiB (`VmHWM`, Linux only).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
