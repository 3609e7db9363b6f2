//! The subcommands (one module each) and what they share: model loading, listing image folders,
//! progress bars, peak memory.

mod bench;
mod calibrate;
mod eval;
mod inspect;
mod make_bank;
mod man;
mod stream;
mod upscale;

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use kdsr_runtime::{Idr, Options, Upscaler, models};
use serde_json::json;

use crate::cli::{Cli, Command, Failure, ModelArgs, ScaleArg};

/// Runs one command; `Ok(code)` is the exit code of a run that reported its own failures.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Upscale(a) => upscale::run(a),
        Command::Stream(a) => stream::run(a),
        Command::InspectDegradation(a) => inspect::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::MakeBank(a) => make_bank::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Man(a) => man::run(a),
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

/// Loads the model of `args` with `options` (threads and knob taken from `args`): `-m`, else
/// `-n NAME` or the default model searched for ([`kdsr_runtime::models::resolve`]).
pub fn load_model(args: &ModelArgs, options: Options) -> anyhow::Result<Upscaler> {
    load_model_with(args, options, &Reporter::terminal_only(true))
}

/// [`load_model`], saying on `rep` which model is loading (and from where) before it starts.
pub fn load_model_with(
    args: &ModelArgs,
    mut options: Options,
    rep: &Reporter,
) -> anyhow::Result<Upscaler> {
    options.threads = cap_threads(args.threads);
    options.direct_spatial = args.direct_spatial.into();
    options.precision = args.precision.into();
    let found = models::resolve(args.model.as_deref(), args.name.as_deref())?;
    let label = found.label();
    let spinner = rep.spinner(&format!("loading the model {label}"));
    rep.event(
        "loading-model",
        json!({"model": label, "found_by": found.how}),
        || format!("loading the model {label} (found by: {})", found.how),
    );
    let up = Upscaler::load_found(&found.found, options);
    spinner.finish_and_clear();
    let up = up.with_context(|| match &found.found {
        models::Found::Path(_) if found.how == "-m" || found.how == models::ENV_VAR => {
            format!("loading the model given by {}", found.how)
        }
        _ => format!("loading the default model (found by: {})", found.how),
    })?;
    rep.event(
        "model-loaded",
        json!({"model": label, "kind": up.info().kind, "preset": up.info().preset}),
        || format!("model loaded: {} {:?}", up.info().preset, up.info().kind),
    );
    Ok(up)
}

/// The IDR of `--idr FILE` (`None` without it), labelled with its path and checked against the
/// model ([`Upscaler::accept_idr`]: split models only, same weights, sane values).
pub fn given_idr(path: Option<&std::path::Path>, up: &Upscaler) -> anyhow::Result<Option<Idr>> {
    let Some(p) = path else {
        return Ok(None);
    };
    let idr = Idr::load(p).map_err(|e| kdsr_runtime::Error::ModelData {
        path: p.to_path_buf(),
        message: e.to_string(),
    })?;
    let idr = Idr {
        source: p.display().to_string(),
        ..idr
    };
    up.accept_idr(&idr)?;
    Ok(Some(idr))
}

/// Refuses `-s` values other than the model's scale, with the reason.
pub fn check_scale(scale: &ScaleArg, up: &Upscaler) -> anyhow::Result<()> {
    match scale.scale {
        Some(s) if s as usize != up.scale() => Err(Failure::usage(format!(
            "-s {s}: this model upscales x{m}, and the factor is fixed by the network (KDSR              trains one network per scale; its upsampler is part of the graph, and resizing              the x{m} output would only interpolate); use -s {m} or leave -s out",
            m = up.scale()
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Where progress goes: a bar on a terminal, lines or JSON lines on stderr, or nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// No progress.
    Off,
    /// indicatif bars and spinners (stderr is a terminal).
    Bar,
    /// `kdsr-edge: [12.3 s] …` lines on stderr.
    Lines,
    /// One JSON object per line on stderr.
    Json,
}

/// Progress reporting shared by the commands (see [`ProgressMode`]), timed from its creation.
#[derive(Debug)]
pub struct Reporter {
    /// Where progress goes.
    pub mode: ProgressMode,
    start: Instant,
}

impl Reporter {
    /// `--progress` gives lines (JSON lines with `json`); else a bar when stderr is a terminal
    /// and `show`; else nothing.
    pub fn new(progress: bool, json: bool, show: bool) -> Self {
        let mode = match (progress, json) {
            (true, true) => ProgressMode::Json,
            (true, false) => ProgressMode::Lines,
            _ if show && std::io::stderr().is_terminal() => ProgressMode::Bar,
            _ => ProgressMode::Off,
        };
        Self {
            mode,
            start: Instant::now(),
        }
    }

    /// A bar on a terminal when `show`, nothing otherwise.
    pub fn terminal_only(show: bool) -> Self {
        Self::new(false, false, show)
    }

    /// Seconds since the reporter was made.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Reports one event: `fields` (plus `event` and `t`) as a JSON line, or `text()` as a line.
    pub fn event(&self, event: &str, fields: serde_json::Value, text: impl FnOnce() -> String) {
        let t = (self.elapsed() * 1000.0).round() / 1000.0;
        match self.mode {
            ProgressMode::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert("event".into(), event.into());
                obj.insert("t".into(), t.into());
                if let serde_json::Value::Object(m) = fields {
                    obj.extend(m);
                }
                eprintln!("{}", serde_json::Value::Object(obj));
            }
            ProgressMode::Lines => eprintln!("kdsr-edge: [{t:.1} s] {}", text()),
            ProgressMode::Bar | ProgressMode::Off => {}
        }
    }

    /// A ticking spinner with `msg` on a terminal (hidden otherwise).
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if self.mode != ProgressMode::Bar {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_message(msg.to_owned());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    }

    /// A bar of `len` steps labelled `what` on a terminal (hidden otherwise).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        progress_bar(len, self.mode == ProgressMode::Bar, what)
    }
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
