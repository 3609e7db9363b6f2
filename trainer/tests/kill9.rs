//! Training survives `kill -9`: a short `trainer train` is killed (SIGKILL) again and again — at
//! seeded random moments and the moment a checkpoint's temporary file appears — and restarted
//! with `--resume`; after every kill each checkpoint on disk loads, and the run finishes with
//! weights identical to an uninterrupted run's.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::train_dir;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kdsr_core::fsutil::TEMP_MARKER;
use kdsr_core::spec::checkpoint::Checkpoint;
use rand::{RngExt, SeedableRng};

/// `trainer train` of the tiny teacher, 120 iterations, a checkpoint every 5.
fn start(data: &Path, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "train", "--config", "smoke", "--stage", "teacher", "-q", "--resume",
        ])
        .arg("--out")
        .arg(out)
        .arg("--set")
        .arg(format!(
            "data.train_dirs=[{:?}]",
            data.display().to_string()
        ))
        .args([
            "--set",
            "teacher.iterations=120",
            "--set",
            "run.save_every=5",
            "--set",
            "run.keep_last=3",
            "--set",
            "run.val_every=0",
            "--set",
            "run.threads=1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether process `pid` has a temporary file open in `dir` (`.NAME.kdsr-tmp.PID.…`: it is
/// writing a checkpoint). Files left by killed processes carry their own PIDs.
fn writing(dir: &Path, pid: u32) -> bool {
    let mark = format!("{TEMP_MARKER}{pid}.");
    std::fs::read_dir(dir).is_ok_and(|r| {
        r.flatten()
            .any(|e| e.file_name().to_string_lossy().contains(&mark))
    })
}

/// Every checkpoint in the stage folder loads (weights with their config), and the resume state
/// parses.
fn all_checkpoints_load(stage: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(stage).unwrap().flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(TEMP_MARKER) || !name.ends_with(".safetensors") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        safetensors::SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("{name} does not parse after a kill: {e}"));
        if name != "last.state.safetensors" {
            Checkpoint::load(&p, None)
                .unwrap_or_else(|e| panic!("{name} does not load after a kill: {e}"));
        }
        n += 1;
    }
    n
}

fn final_weights(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("teacher").join("final.safetensors")).unwrap()
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let data = train_dir(tmp.path(), 6);
    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    assert!(start(&data, &reference).wait().unwrap().success());
    // Kill times are drawn within the uninterrupted run's duration.
    let full_ms = t0.elapsed().as_millis().max(20) as u64;
    let want = final_weights(&reference);

    let mut kills_during_writes = 0;
    for seed in 0..3u64 {
        let out = tmp.path().join(format!("killed-{seed}"));
        let stage = out.join("teacher");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut kills = 0;
        loop {
            let mut child = start(&data, &out);
            // Odd attempts: kill the moment a checkpoint is being written; even ones: at a random
            // moment (most of a run is start-up and training steps).
            let at_write = kills % 2 == 1;
            let deadline = Instant::now()
                + Duration::from_millis(rng.random_range(full_ms / 20..full_ms * 6 / 10));
            let finished = loop {
                if let Some(st) = child.try_wait().unwrap() {
                    assert!(st.success(), "a resumed run failed: {st}");
                    break true;
                }
                let pid = child.id();
                if (at_write && writing(&stage, pid)) || (!at_write && Instant::now() >= deadline) {
                    break false;
                }
                if at_write && Instant::now() >= deadline + Duration::from_secs(20) {
                    break false;
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            if finished {
                break;
            }
            kills_during_writes += usize::from(writing(&stage, child.id()));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            if stage.exists() {
                all_checkpoints_load(&stage);
            }
            assert!(kills < 40, "seed {seed}: the run never finished");
        }
        assert!(
            kills >= 1,
            "seed {seed}: never killed (the run is too short)"
        );
        assert!(all_checkpoints_load(&stage) >= 3);
        assert_eq!(
            final_weights(&out),
            want,
            "seed {seed}: after {kills} kills the result differs from the uninterrupted run"
        );
    }
    eprintln!("killed during a checkpoint write {kills_during_writes} times");
    assert!(
        kills_during_writes >= 1,
        "no kill landed during a checkpoint write"
    );
}
