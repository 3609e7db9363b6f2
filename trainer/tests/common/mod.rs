//! Helpers shared by the trainer's integration tests (each test binary includes this module;
//! not every binary uses every helper).
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

pub use kdsr_test_support::repo;

/// A training folder `dir/train` with the first `n` T91 images (by name).
pub fn train_dir(dir: &Path, n: usize) -> PathBuf {
    let d = dir.join("train");
    std::fs::create_dir_all(&d).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(repo("data/T91"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    names.sort();
    for p in names.iter().take(n) {
        std::fs::copy(p, d.join(p.file_name().unwrap())).unwrap();
    }
    d
}
