//! Fuzzing `kdsr-edge`'s untrusted inputs on the stable toolchain (issue 14, "Reliability").
//!
//! ```sh
//! # one target, 1,000,000 inputs, seed 1, the committed seed corpus runtime/fuzz/corpus/TARGET
//! cargo run --release -p kdsr-runtime --example fuzz -- image --iters 1000000 --seed 1
//! cargo run --release -p kdsr-runtime --example fuzz -- onnx --max-time 600
//! cargo run --release -p kdsr-runtime --example fuzz -- ckpt --iters 1000000
//! # rebuild the seed corpus (deterministic)
//! cargo run -p kdsr-runtime --example fuzz -- make-seeds
//! ```
//!
//! Targets: `image`, `onnx`, `ckpt` (see `targets.rs`). A panic or a per-input time over
//! `--timeout-ms` is a finding: the input is written to `--findings`
//! (default `runtime/fuzz/findings/`) and the exit status is non-zero (1 panic, 3 timeout,
//! 2 crash). The run is supervised: a worker process fuzzes and reports progress; if it dies
//! (abort, stack overflow, out of memory), the last block is replayed writing each input before
//! running it, and the crashing input is kept as `crash-TARGET.bin`.
#![allow(clippy::unwrap_used, missing_docs)]

mod engine;
mod seeds;
mod targets;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(about = "Mutation fuzzer for kdsr-edge's inputs (image, onnx, ckpt)")]
struct Args {
    /// `image`, `onnx`, `ckpt`, or `make-seeds`.
    target: String,
    /// Inputs to run.
    #[arg(long, default_value_t = 100_000)]
    iters: u64,
    /// Base seed (iteration i's input depends only on the seed, i and the corpus).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First iteration (to resume or replay).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Stop after this many seconds, whatever --iters says.
    #[arg(long)]
    max_time: Option<f64>,
    /// An input taking longer than this is a finding.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Longest input.
    #[arg(long, default_value_t = 4 << 20)]
    max_len: usize,
    /// Seed corpus folder (default runtime/fuzz/corpus/TARGET).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Findings folder.
    #[arg(long)]
    findings: Option<PathBuf>,
    /// Run one iteration and write its input to the findings folder as `replay-TARGET-I.bin`.
    #[arg(long)]
    replay: Option<u64>,
    /// Internal: run in this process (the supervisor spawns one).
    #[arg(long, hide = true)]
    worker: bool,
    /// Internal: write each input before running it.
    #[arg(long, hide = true)]
    save_each: bool,
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

const BLOCK: u64 = 1000;

fn main() -> ExitCode {
    let a = Args::parse();
    if a.target == "make-seeds" {
        seeds::make_seeds(&fuzz_dir().join("corpus"));
        return ExitCode::SUCCESS;
    }
    let Some(target) = targets::by_name(&a.target) else {
        eprintln!(
            "unknown target `{}` (targets: {:?}, or make-seeds)",
            a.target,
            targets::NAMES
        );
        return ExitCode::from(64);
    };
    let corpus_dir = a
        .corpus
        .clone()
        .unwrap_or_else(|| fuzz_dir().join("corpus").join(&a.target));
    let findings = a
        .findings
        .clone()
        .unwrap_or_else(|| fuzz_dir().join("findings"));
    let corpus = match engine::load_corpus(&corpus_dir) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            eprintln!("empty corpus {}", corpus_dir.display());
            return ExitCode::from(64);
        }
        Err(e) => {
            eprintln!("cannot read corpus {}: {e}", corpus_dir.display());
            return ExitCode::from(64);
        }
    };
    if let Some(i) = a.replay {
        let data = engine::make_input(target.as_ref(), &corpus, a.seed, i, a.max_len);
        let p = engine::save(&findings, "replay", target.name(), i, &data);
        eprintln!(
            "iteration {i}: {} bytes written to {}",
            data.len(),
            p.display()
        );
        target.run(&data);
        eprintln!("ran without panicking");
        return ExitCode::SUCCESS;
    }
    if !a.worker {
        return supervise(&a);
    }
    let cfg = engine::Config {
        seed: a.seed,
        start: a.start,
        iters: a.iters,
        max_time: a.max_time.map(Duration::from_secs_f64),
        timeout: Duration::from_millis(a.timeout_ms),
        max_len: a.max_len,
        findings,
        save_each: a.save_each,
        progress_every: BLOCK,
    };
    let r = engine::fuzz(target.as_ref(), &corpus, &cfg);
    eprintln!(
        "fuzz {}: {} execs ({} completed, {} findings) in {:.1} s = {:.0} exec/s, seed {}, \
         iterations {}..{}, corpus {} ({} seeds)",
        target.name(),
        r.execs,
        r.completed,
        r.findings.len(),
        r.seconds,
        r.execs as f64 / r.seconds.max(1e-9),
        a.seed,
        a.start,
        a.start + r.execs,
        corpus_dir.display(),
        corpus.len()
    );
    println!("END {}", r.execs);
    if r.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs the fuzzing in a worker process; if the worker dies, replays its last block with each
/// input saved first, so the crashing input is kept.
fn supervise(a: &Args) -> ExitCode {
    let exe = std::env::current_exe().unwrap();
    let mut base: Vec<String> = std::env::args().skip(1).collect();
    base.push("--worker".into());
    let mut child = Command::new(&exe)
        .args(&base)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last = a.start;
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("@ ") {
            last = n.trim().parse().unwrap_or(last);
        }
    }
    let status = child.wait().unwrap();
    match status.code() {
        Some(0) => return ExitCode::SUCCESS,
        Some(1) => return ExitCode::from(1),
        Some(3) => return ExitCode::from(3),
        _ => {}
    }
    eprintln!(
        "fuzz {}: FINDING crash: the worker died ({status}) after iteration {last}; replaying \
         iterations {last}.. with each input saved",
        a.target
    );
    let findings = a
        .findings
        .clone()
        .unwrap_or_else(|| fuzz_dir().join("findings"));
    let mut replay: Vec<String> = Vec::new();
    let mut skip = false;
    for arg in std::env::args().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if arg == "--start" || arg == "--iters" || arg == "--max-time" {
            skip = true;
            continue;
        }
        if arg.starts_with("--start=")
            || arg.starts_with("--iters=")
            || arg.starts_with("--max-time=")
        {
            continue;
        }
        replay.push(arg);
    }
    replay.extend([
        "--worker".into(),
        "--save-each".into(),
        "--start".into(),
        last.to_string(),
        "--iters".into(),
        (2 * BLOCK).to_string(),
    ]);
    let st = Command::new(&exe)
        .args(&replay)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let cur = engine::current_path(&findings, &a.target);
    if !st.success() && st.code() != Some(1) && st.code() != Some(3) {
        let kept = findings.join(format!("crash-{}.bin", a.target));
        let _ = std::fs::rename(&cur, &kept);
        eprintln!(
            "fuzz {}: crashing input kept as {}",
            a.target,
            kept.display()
        );
    } else {
        eprintln!(
            "fuzz {}: the replay did not crash ({st}); the crash may depend on state",
            a.target
        );
    }
    ExitCode::from(2)
}
