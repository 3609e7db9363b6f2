//! Forward parity with the official model: `tests/fixtures/reference/vectors/small_io.safetensors`
//! (C 16, N 2, R 2, batch 2, per-sample dynamic kernels). Tolerances from the vectors' README:
//! max-abs ≤ 2e-6 on `sr`, ≤ 1e-6 on D, D' and intermediates, relative 1e-5 on the KD loss.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::HashMap;

use kdsr_core::spec::KdsrConfig;
use kdsr_trainer::loss::{KdLoss, default_tau, kd_loss};
use kdsr_trainer::model::Model;
use tch::{Device, Tensor};

use kdsr_test_support::vectors;

fn io() -> HashMap<String, Tensor> {
    Tensor::read_safetensors(vectors("small_io.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn check(name: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let d = max_abs(got, want);
    assert!(d <= tol, "{name}: max |Δ| = {d:e} > {tol:e}");
}

#[test]
fn student_matches_official() {
    let io = io();
    let cfg = KdsrConfig::student_tiny();
    let m = Model::load(
        &cfg,
        &vectors("small_student_weights.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    tch::no_grad(|| {
        let lr = &io["lr"];
        let (d, d_prime) = m.net.e.forward(lr);
        check(
            "E_out_pooled",
            &m.net.e.pooled(lr),
            &io["student.E_st.E_out_pooled"],
            1e-6,
        );
        check("D", &d, &io["student.D"], 1e-6);
        check("D_prime", &d_prime, &io["student.D_prime"], 1e-6);
        let t = m.net.g.forward_trace(lr, &d);
        check(
            "block0 kernel",
            t.block0_kernel.as_ref().expect("an IDR-DDC block"),
            &io["student.block0_dynamic_kernel"],
            1e-6,
        );
        check("head_out", &t.head_out, &io["student.G.head_out"], 1e-6);
        check(
            "block0_out",
            &t.block0_out,
            &io["student.G.block0_out"],
            1e-6,
        );
        check("dag_out", &t.dag_out, &io["student.G.dag_out"], 1e-6);
        check(
            "body_conv_out",
            &t.body_conv_out,
            &io["student.G.body_conv_out"],
            1e-6,
        );
        check(
            "upsampler_out",
            &t.upsampler_out,
            &io["student.G.upsampler_out"],
            1e-6,
        );
        check("sr (trace)", &t.sr, &io["student.sr"], 2e-6);
        let out = m.net.forward(lr, None).unwrap();
        check("sr", &out.sr, &io["student.sr"], 2e-6);
        // Batch 1 equals the batch-2 slice: per-sample kernels, no shared statistics.
        let one = m.net.forward(&lr.narrow(0, 1, 1), None).unwrap();
        check(
            "sr batch-1",
            &one.sr,
            &io["student.sr"].narrow(0, 1, 1),
            2e-6,
        );
    });
}

#[test]
fn teacher_matches_official() {
    let io = io();
    let cfg = KdsrConfig::teacher_tiny();
    let m = Model::load(
        &cfg,
        &vectors("small_teacher_weights.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    tch::no_grad(|| {
        let inp = m.net.ide_input(&io["lr"], Some(&io["hr"])).unwrap();
        check("ide_input", &inp, &io["teacher.ide_input"], 0.0);
        let out = m.net.forward(&io["lr"], Some(&io["hr"])).unwrap();
        check("D", &out.d, &io["teacher.D"], 1e-6);
        check("D_prime", &out.d_prime, &io["teacher.D_prime"], 1e-6);
        check("sr", &out.sr, &io["teacher.sr"], 2e-6);
        assert!(
            m.net.forward(&io["lr"], None).is_err(),
            "a teacher without HR must fail"
        );
    });
}

#[test]
fn kd_loss_matches_official() {
    let io = io();
    let got = kd_loss(
        KdLoss::Kl,
        &io["student.D_prime"],
        &io["teacher.D_prime"],
        default_tau(),
    )
    .double_value(&[]);
    let want = io["kd_loss_batchmean_T0.15"].double_value(&[0]);
    assert!(((got - want) / want).abs() <= 1e-5, "kd {got} vs {want}");
    assert!((want - 0.0909786).abs() < 1e-7);
    // Identical distributions give zero; L1/L2 variants are plain distances.
    let z = kd_loss(
        KdLoss::Kl,
        &io["student.D_prime"],
        &io["student.D_prime"],
        default_tau(),
    )
    .double_value(&[]);
    assert!(z.abs() < 1e-7);
    let l1 = kd_loss(
        KdLoss::L1,
        &io["student.D_prime"],
        &io["teacher.D_prime"],
        default_tau(),
    )
    .double_value(&[]);
    let want_l1 = (&io["student.D_prime"] - &io["teacher.D_prime"])
        .abs()
        .mean(None)
        .double_value(&[]);
    assert!((l1 - want_l1).abs() < 1e-9);
}

#[test]
fn checkpoint_round_trip_and_errors() {
    let cfg = KdsrConfig::student_tiny();
    let m = Model::load(
        &cfg,
        &vectors("small_student_weights.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.safetensors");
    m.save(&p).unwrap();
    let back = kdsr_core::spec::checkpoint::Checkpoint::load(&p, None).unwrap();
    let orig = kdsr_core::spec::checkpoint::load_weights(
        &cfg,
        &vectors("small_student_weights.safetensors"),
    )
    .unwrap();
    assert_eq!(back.weights, orig);
    // Wrong config: the error names the tensor and both shapes.
    let e = Model::load(&KdsrConfig::student_edge(), &p, Device::Cpu).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("G.head.0.weight")
            && msg.contains("[16, 3, 3, 3]")
            && msg.contains("[32, 3, 3, 3]"),
        "{msg}"
    );
}

#[test]
fn leaky_relu_is_the_scripted_kernel_with_slope_0_1() {
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let act = kdsr_trainer::model::layers::LeakyRelu::new(&vs.root());
    assert!(act.is_scripted(), "the TorchScript leaky_relu did not load");
    let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.5, 3.0]).set_requires_grad(true);
    let y = act.forward(&x);
    let want = [-0.2f32, -0.05, 0.0, 0.5, 3.0];
    assert_eq!(Vec::<f32>::try_from(&y).unwrap(), want);
    y.sum(None).backward();
    assert_eq!(
        Vec::<f32>::try_from(x.grad()).unwrap(),
        [0.1f32, 0.1, 0.1, 1.0, 1.0]
    );
}
