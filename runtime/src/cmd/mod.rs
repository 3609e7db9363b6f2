//! The subcommands (one module each) and what they share: model loading, listing image folders,
//! progress bars, peak memory.

mod bench;
mod calibrate;
mod eval;
mod inspect;
mod make_bank;
mod upscale;

use std::io::IsTerminal;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use kdsr_runtime::{Options, Upscaler};

use crate::cli::{Cli, Command, ModelArgs};

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

/// The thread count for `--threads requested`: 0 means every core, and more than the cores is
/// capped at the cores with a warning (tract's executor with more threads than cores made a
/// 2.4 s run take 136.6 s).
pub fn cap_threads(requested: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if requested == 0 {
        cores
    } else if requested > cores {
        eprintln!(
            "kdsr-edge: warning: --threads {requested} is more than the {cores} cores; using \
             {cores} (more threads than cores only slow tract down)"
        );
        cores
    } else {
        requested
    }
}

/// Loads the model of `args` with `options` (threads and knob taken from `args`).
pub fn load_model(args: &ModelArgs, mut options: Options) -> anyhow::Result<Upscaler> {
    options.threads = cap_threads(args.threads);
    options.direct_spatial = args.direct_spatial.into();
    Upscaler::load(&args.model, options).with_context(|| {
        format!(
            "loading the model (-m {}; export one with `converter export --graph split`)",
            args.model.display()
        )
    })
}

pub use kdsr_runtime::io::list_images;

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
