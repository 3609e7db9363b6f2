//! Training behaviour on the CPU with the tiny network: a step on a fixed batch lowers the loss,
//! resume equals an uninterrupted run, the student takes exactly the teacher's `G` (a plain-conv
//! ablation student all of it but its first convs), `pretrain` starts a stage from given
//! weights, and a short run beats bicubic on a held-out image.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::{repo, train_dir};

use std::path::Path;

use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::{BlockConv, KdsrConfig};
use kdsr_trainer::checkpoint::weights_of;
use kdsr_trainer::classic::config::TrainConfig;
use kdsr_trainer::classic::train::{Stage, attach_teacher, run_stage};
use kdsr_trainer::driver::TrainOptions;
use kdsr_trainer::eval::{evaluate, gaussian8, load_folder};
use kdsr_trainer::loss::l1;
use kdsr_trainer::model::Model;
use kdsr_trainer::optim::Adam;
use tch::{Device, Kind, Tensor};

/// libtorch's generator and thread count are process-global: tests that draw from it or train
/// take this lock so that a parallel test cannot interleave its draws.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|e| e.into_inner())
}

fn smoke(dir: &Path, iters: u64) -> TrainConfig {
    let mut c = TrainConfig::smoke();
    c.data.train_dirs = vec![train_dir(dir, 6)];
    c.run.val_dir = None;
    c.run.val_every = 0;
    c.run.threads = 1;
    c.teacher.iterations = iters;
    c.student.stage.iterations = iters;
    c
}

fn opts(out: &Path) -> TrainOptions {
    TrainOptions {
        out_dir: out.to_path_buf(),
        quiet: true,
        log_every: Some(1),
        ..Default::default()
    }
}

#[test]
fn steps_on_a_fixed_batch_lower_the_loss() {
    let _g = torch_lock();
    tch::manual_seed(0);
    let m = Model::new(&KdsrConfig::teacher_tiny(), Device::Cpu);
    let hr = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let lr = hr.avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>);
    let params: Vec<(String, Tensor)> =
        m.vs.variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
    let mut adam = Adam::new(params, 0.9, 0.999, 1e-8);
    let loss = || l1(&m.net.forward(&lr, Some(&hr)).unwrap().sr, &hr);
    let first = tch::no_grad(|| loss().double_value(&[]));
    for _ in 0..10 {
        adam.zero_grad();
        loss().backward();
        adam.step(1e-3);
    }
    let after = tch::no_grad(|| loss().double_value(&[]));
    assert!(after < 0.95 * first, "loss {first} → {after}");
}

fn losses(path: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| (v["iter"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn resume_continues_exactly() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = smoke(tmp.path(), 6);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let ra = run_stage(&cfg, Stage::Teacher, &opts(&a)).unwrap();
    assert_eq!(ra.iterations, 6);
    let rb1 = run_stage(
        &cfg,
        Stage::Teacher,
        &TrainOptions {
            stop_after: Some(3),
            ..opts(&b)
        },
    )
    .unwrap();
    assert_eq!((rb1.iterations, rb1.ran), (3, 3));
    assert!(!b.join("teacher/final.safetensors").exists());
    let rb2 = run_stage(
        &cfg,
        Stage::Teacher,
        &TrainOptions {
            resume: true,
            ..opts(&b)
        },
    )
    .unwrap();
    assert_eq!((rb2.iterations, rb2.ran), (6, 3));
    // Same losses at every iteration, same final weights, bit for bit.
    assert_eq!(
        losses(&a.join("teacher/metrics.jsonl")),
        losses(&b.join("teacher/metrics.jsonl"))
    );
    let wa =
        kdsr_core::spec::checkpoint::Checkpoint::load(&a.join("teacher/final.safetensors"), None)
            .unwrap();
    let wb =
        kdsr_core::spec::checkpoint::Checkpoint::load(&b.join("teacher/final.safetensors"), None)
            .unwrap();
    assert_eq!(wa.weights, wb.weights);
    // keep_last = 1: one periodic checkpoint remains, plus the resume state.
    let iters: Vec<_> = std::fs::read_dir(a.join("teacher"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            (n.starts_with("iter_") && n.ends_with(".safetensors")).then_some(n)
        })
        .collect();
    assert_eq!(iters, vec!["iter_0000006.safetensors".to_string()]);
    assert!(a.join("teacher/last.state.safetensors").exists());
    assert!(a.join("teacher/train.toml").exists());
}

/// A fresh student for `cfg` with the reference teacher attached: (student, teacher, the
/// student's weights before and after attaching, the teacher's weights).
fn attached(cfg: &TrainConfig) -> (Model, Model, Weights, Weights, Weights) {
    let teacher = repo("tests/fixtures/reference/vectors/small_teacher_weights.safetensors");
    tch::manual_seed(3);
    let mut student = Model::new(&cfg.student_model().unwrap(), Device::Cpu);
    let before = weights_of(&student.vs).unwrap();
    let t = attach_teacher(cfg, &mut student, &teacher, Device::Cpu).unwrap();
    let sw = weights_of(&student.vs).unwrap();
    let tw = weights_of(&t.vs).unwrap();
    (student, t, before, sw, tw)
}

#[test]
fn student_takes_exactly_the_teachers_g() {
    let _g = torch_lock();
    let (_student, t, before, sw, tw) = attached(&TrainConfig::smoke());
    let mut g = 0;
    for (k, v) in &sw {
        if k.starts_with("G.") {
            assert_eq!(v, &tw[k], "{k} not copied");
            g += 1;
        } else {
            assert!(k.starts_with("E_st."), "{k}");
            assert_eq!(v, &before[k], "{k} changed");
        }
    }
    assert_eq!(g, 22);
    // The teacher is frozen.
    assert!(t.vs.variables().values().all(|v| !v.requires_grad()));
}

#[test]
fn plain_student_takes_the_shared_g_and_keeps_its_own_first_convs() {
    let _g = torch_lock();
    let mut cfg = TrainConfig::smoke();
    cfg.model.block_conv = BlockConv::Plain;
    assert_eq!(cfg.teacher_model().unwrap().block_conv, BlockConv::IdrDdc);
    let (student, _t, before, sw, tw) = attached(&cfg);
    let (mut copied, mut own) = (0, 0);
    for (k, v) in &sw {
        if k.contains(".da_conv1.conv.") {
            assert!(!tw.contains_key(k), "{k}");
            assert_eq!(v, &before[k], "{k} changed");
            own += 1;
        } else if k.starts_with("G.") {
            assert_eq!(v, &tw[k], "{k} not copied");
            copied += 1;
        } else {
            assert_eq!(v, &before[k], "{k} changed");
        }
    }
    // student-tiny: N 2 blocks, each with a plain conv (weight + bias) instead of the DDC MLP.
    assert_eq!((copied, own), (22 - 4, 4));
    let lr = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    let out = student.net.forward(&lr, None).unwrap();
    assert_eq!(out.sr.size(), [1, 3, 32, 32]);
}

#[test]
fn pretrain_starts_the_stage_from_the_given_weights() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = smoke(tmp.path(), 2);
    // `first` starts from another seed's init, so that a fresh run of `again` is far from it.
    let mut other_seed = cfg.clone();
    other_seed.run.seed = 7;
    let first = run_stage(&other_seed, Stage::Teacher, &opts(&tmp.path().join("a"))).unwrap();
    let mut again = cfg.clone();
    again.teacher.iterations = 1;
    again.teacher.lr = 1e-12;
    let fresh = run_stage(&again, Stage::Teacher, &opts(&tmp.path().join("b"))).unwrap();
    again.teacher.pretrain = Some(first.weights.clone());
    let tuned = run_stage(&again, Stage::Teacher, &opts(&tmp.path().join("c"))).unwrap();
    let load = |p: &Path| {
        kdsr_core::spec::checkpoint::Checkpoint::load(p, None)
            .unwrap()
            .weights
    };
    let (w0, wf, wt) = (
        load(&first.weights),
        load(&fresh.weights),
        load(&tuned.weights),
    );
    let max_diff = |a: &Weights| {
        a.iter()
            .flat_map(|(k, t)| t.data.iter().zip(&w0[k].data).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max)
    };
    // One step at lr 1e-12 moves no weight measurably: the stage started from `first`.
    assert!(
        max_diff(&wt) < 1e-6,
        "pretrained run drifted {}",
        max_diff(&wt)
    );
    // Without `pretrain` the same run starts from a fresh init, far from `first`.
    assert!(
        max_diff(&wf) > 1e-2,
        "fresh run too close: {}",
        max_diff(&wf)
    );
    assert!(
        std::fs::read_to_string(tmp.path().join("c/teacher/train.toml"))
            .unwrap()
            .contains("pretrain")
    );
}

#[test]
fn a_short_run_beats_bicubic_on_a_held_out_image() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = smoke(tmp.path(), 200);
    cfg.data.train_dirs = vec![train_dir(tmp.path(), 20)];
    cfg.data.hr_patch = 96;
    cfg.data.batch_size = 4;
    cfg.teacher.lr = 5e-4;
    cfg.student.stage.lr = 5e-4;
    cfg.run.save_every = 1000;
    cfg.run.threads = 0;
    let out = tmp.path().join("run");
    run_stage(&cfg, Stage::Teacher, &opts(&out)).unwrap();
    let r = run_stage(&cfg, Stage::Student, &opts(&out)).unwrap();
    let m = Model::load(&cfg.student_model().unwrap(), &r.weights, Device::Cpu).unwrap();
    // Held out: Set5 "baby" is not among the training images.
    let held = tmp.path().join("held");
    std::fs::create_dir_all(&held).unwrap();
    std::fs::copy(repo("data/Set5/baby.png"), held.join("baby.png")).unwrap();
    let imgs = load_folder(&held, 4, 1).unwrap();
    let rep = evaluate(
        &m.net,
        &imgs,
        &gaussian8(4, &[2.0]).unwrap(),
        Device::Cpu,
        MetricVariant::Kdsr,
        0,
    )
    .unwrap();
    let (psnr, _, bic, _) = rep.mean;
    assert!(
        psnr > bic + 0.2,
        "student {psnr:.2} dB vs bicubic {bic:.2} dB"
    );
}
