//! The data loader's workers never call libtorch (`kdsr_trainer::data` module docs): a libtorch
//! op on a worker would give it an OpenMP team of its own, i.e. more threads in the process, and
//! libgomp would then stop spin-waiting for every team. Counted here with `/proc/self/task`, in
//! a test binary of its own so that no other test adds threads meanwhile.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![cfg(target_os = "linux")]

use std::sync::Arc;

use kdsr_trainer::data::{Dataset, Loader};
use tch::{Device, Kind, Tensor};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn workers_start_no_openmp_teams() {
    let t91 = kdsr_test_support::repo("data/T91");
    // Everything that may start threads once, before counting: rayon's pool (opening the
    // dataset) and libtorch's OpenMP team on this thread (a parallel op).
    let (ds, _) = Dataset::open(&[t91], 96, 256).unwrap();
    tch::set_num_threads(2);
    let x = Tensor::rand([4_000_000], (Kind::Float, Device::Cpu));
    assert!(x.sum(Kind::Float).double_value(&[]) > 0.0);
    let before = threads();
    let workers = 2;
    let mut loader = Loader::start(Arc::new(ds), 8, 96, 0, 0, workers, 2);
    for it in 0..6 {
        let b = loader.next().unwrap();
        assert_eq!(b.iter, it);
        // The batch is a big enough tensor for libtorch to fill it in parallel.
        assert_eq!(b.hr.size(), [8, 3, 96, 96]);
        let _ = (&b.hr * 2.0).sum(Kind::Float);
    }
    assert_eq!(
        threads(),
        before + workers,
        "threads besides the {workers} workers appeared while the loader ran"
    );
}
