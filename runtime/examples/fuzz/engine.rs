//! A small mutation fuzzer on the stable toolchain (no libFuzzer, no coverage feedback): each
//! iteration takes a seed of the corpus, applies 1–4 stacked mutations (bit flips, byte sets,
//! interesting integers, inserts, deletes, duplicated ranges, truncation, splicing with another
//! seed, dictionary tokens, or a target's structure-aware mutator) and runs the target under
//! `catch_unwind`. A panic, or an input that takes longer than the time limit, is a finding.
//!
//! Iteration `i` draws its input from its own generator seeded by `(seed, i)`, so any iteration
//! can be replayed alone (`--replay I`): a crash that kills the process (abort, stack overflow)
//! is found again by the supervising parent, which re-runs the last block of iterations saving
//! each input before running it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SplitMix64: small, fast, and enough for choosing mutations.
pub struct Rng(u64);

impl Rng {
    /// The generator of iteration `iter` of a run seeded with `seed`.
    pub fn for_iter(seed: u64, iter: u64) -> Self {
        let mut r = Rng(seed ^ iter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// What a fuzz target does with one input: `Ok`/`Err` are both fine (a refused input is the
/// expected outcome); only a panic, a crash or a hang is a finding.
pub trait Target: Sync {
    /// The target's name (`image`, `onnx`, `ckpt`).
    fn name(&self) -> &'static str;
    /// Runs one input.
    fn run(&self, data: &[u8]);
    /// Tokens worth inserting (magic numbers, keys, field names).
    fn dictionary(&self) -> &[&[u8]] {
        &[]
    }
    /// A structure-aware mutation (e.g. decode, change a field, re-encode); `None` when it does
    /// not apply, and a byte-level mutation is used instead.
    fn mutate(&self, _data: &[u8], _rng: &mut Rng) -> Option<Vec<u8>> {
        None
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
];

/// One byte-level mutation of `data` (may change its length), using `others` to splice.
pub fn mutate_bytes(
    data: &mut Vec<u8>,
    rng: &mut Rng,
    dict: &[&[u8]],
    others: &[Vec<u8>],
    max_len: usize,
) {
    if data.is_empty() {
        data.push(rng.next() as u8);
        return;
    }
    let len = data.len();
    match rng.below(12) {
        0 => {
            // Bit flips.
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(len);
            data[i] = data[i].wrapping_add(rng.below(35) as u8).wrapping_sub(17);
        }
        3 => {
            // An interesting integer of 1, 2, 4 or 8 bytes, little- or big-endian.
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let w = [1usize, 2, 4, 8][rng.below(4)];
            let bytes = if rng.one_in(2) {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let src: Vec<u8> = if bytes[0] == 0 && w < 8 {
                bytes[8 - w..].to_vec()
            } else {
                bytes[..w].to_vec()
            };
            let i = rng.below(len);
            for (k, b) in src.iter().enumerate() {
                if let Some(d) = data.get_mut(i + k) {
                    *d = *b;
                }
            }
        }
        4 => {
            // Insert random bytes.
            let n = 1 + rng.below(16);
            let i = rng.below(len + 1);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(i..i, ins);
        }
        5 => {
            // Delete a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            data.drain(i..i + n);
        }
        6 => {
            // Duplicate a range elsewhere.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            let chunk = data[i..i + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        7 => {
            // Truncate.
            let at = rng.below(len);
            data.truncate(at);
        }
        8 if !others.is_empty() => {
            // Splice: a prefix of this one and a suffix of another.
            let o = &others[rng.below(others.len())];
            if !o.is_empty() {
                let at = rng.below(len);
                let from = rng.below(o.len());
                data.truncate(at);
                data.extend_from_slice(&o[from..]);
            }
        }
        9 | 10 if !dict.is_empty() => {
            let tok = dict[rng.below(dict.len())];
            let i = rng.below(len + 1);
            if rng.one_in(2) {
                data.splice(i..i, tok.iter().copied());
            } else {
                for (k, b) in tok.iter().enumerate() {
                    if let Some(d) = data.get_mut(i + k) {
                        *d = *b;
                    }
                }
            }
        }
        _ => {
            // Overwrite a range with a copy of another range (e.g. a chunk header).
            let i = rng.below(len);
            let j = rng.below(len);
            let n = 1 + rng.below((len - i.max(j)).min(32));
            let chunk = data[i..i + n].to_vec();
            data[j..j + n].copy_from_slice(&chunk);
        }
    }
    data.truncate(max_len);
}

/// Input `iter` of a run: a corpus seed with 1–4 stacked mutations.
pub fn make_input(
    target: &dyn Target,
    corpus: &[Vec<u8>],
    seed: u64,
    iter: u64,
    max_len: usize,
) -> Vec<u8> {
    let mut rng = Rng::for_iter(seed, iter);
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        if rng.one_in(3)
            && let Some(m) = target.mutate(&data, &mut rng)
        {
            data = m;
            continue;
        }
        mutate_bytes(&mut data, &mut rng, target.dictionary(), corpus, max_len);
    }
    data
}

/// Reads every file of `dir` (sorted by name) as a seed.
pub fn load_corpus(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.iter().map(std::fs::read).collect()
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base seed.
    pub seed: u64,
    /// First iteration.
    pub start: u64,
    /// Iterations to run (from `start`).
    pub iters: u64,
    /// Stop after this long, whatever `iters` says.
    pub max_time: Option<Duration>,
    /// Per-input time limit: an input that takes longer is a finding.
    pub timeout: Duration,
    /// Longest input made by mutation.
    pub max_len: usize,
    /// Where findings are written (`FOLDER/{panic,timeout,crash}-TARGET-ITER.bin`).
    pub findings: PathBuf,
    /// Write each input to `FOLDER/current-TARGET.bin` before running it (crash replay).
    pub save_each: bool,
    /// Print `@ ITER` on stdout every this many iterations (0: never), for the supervisor.
    pub progress_every: u64,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Iterations run.
    pub execs: u64,
    /// Inputs the target ran in full (not counting panics).
    pub completed: u64,
    /// Findings: (kind, iteration, file written).
    pub findings: Vec<(String, u64, PathBuf)>,
    /// Wall time.
    pub seconds: f64,
}

/// Runs `cfg.iters` inputs against `target` in this process. Panics are caught (and their
/// default message silenced); a hang is reported by a watchdog thread, which writes the input
/// and exits the process with status 3 (a hung target cannot be interrupted).
pub fn fuzz(target: &dyn Target, corpus: &[Vec<u8>], cfg: &Config) -> Report {
    assert!(!corpus.is_empty(), "empty corpus");
    let t0 = Instant::now();
    let mut report = Report::default();
    let current: Arc<Mutex<(u64, Vec<u8>)>> = Arc::new(Mutex::new((0, Vec::new())));
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, started_ms, done) = (current.clone(), started_ms.clone(), done.clone());
        let (timeout, findings, name) = (cfg.timeout, cfg.findings.clone(), target.name());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let s = started_ms.load(Ordering::Relaxed);
                if s == u64::MAX {
                    continue;
                }
                let now = t0.elapsed().as_millis() as u64;
                if now.saturating_sub(s) > timeout.as_millis() as u64 {
                    let (iter, data) = match current.lock() {
                        Ok(g) => g.clone(),
                        Err(p) => p.into_inner().clone(),
                    };
                    let path = save(&findings, "timeout", name, iter, &data);
                    eprintln!(
                        "fuzz {name}: FINDING timeout: iteration {iter} ran over {:?}; input \
                         saved to {}",
                        timeout,
                        path.display()
                    );
                    std::process::exit(3);
                }
            }
        })
    };
    let quiet = Arc::new(AtomicBool::new(true));
    let prev_hook = std::panic::take_hook();
    {
        let quiet = quiet.clone();
        std::panic::set_hook(Box::new(move |info| {
            if !quiet.load(Ordering::Relaxed) {
                eprintln!("{info}");
            }
        }));
    }
    let _ = prev_hook;
    for iter in cfg.start..cfg.start.saturating_add(cfg.iters) {
        if let Some(max) = cfg.max_time
            && t0.elapsed() >= max
        {
            break;
        }
        let data = make_input(target, corpus, cfg.seed, iter, cfg.max_len);
        if cfg.save_each {
            let _ = std::fs::create_dir_all(&cfg.findings);
            let _ = std::fs::write(current_path(&cfg.findings, target.name()), &data);
        }
        if let Ok(mut g) = current.lock() {
            g.0 = iter;
            g.1.clear();
            g.1.extend_from_slice(&data);
        }
        started_ms.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| target.run(&data)));
        started_ms.store(u64::MAX, Ordering::Relaxed);
        report.execs += 1;
        match outcome {
            Ok(()) => report.completed += 1,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string panic>".to_owned());
                let path = save(&cfg.findings, "panic", target.name(), iter, &data);
                eprintln!(
                    "fuzz {}: FINDING panic at iteration {iter}: {msg}; input saved to {}",
                    target.name(),
                    path.display()
                );
                report.findings.push(("panic".into(), iter, path));
            }
        }
        if cfg.progress_every > 0 && (iter + 1) % cfg.progress_every == 0 {
            println!("@ {}", iter + 1);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    quiet.store(false, Ordering::Relaxed);
    let _ = std::panic::take_hook();
    report.seconds = t0.elapsed().as_secs_f64();
    report
}

/// `FOLDER/current-TARGET.bin`.
pub fn current_path(findings: &Path, target: &str) -> PathBuf {
    findings.join(format!("current-{target}.bin"))
}

/// Writes a finding, returns its path.
pub fn save(findings: &Path, kind: &str, target: &str, iter: u64, data: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(findings);
    let path = findings.join(format!("{kind}-{target}-{iter}.bin"));
    let _ = std::fs::write(&path, data);
    path
}
