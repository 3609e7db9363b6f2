//! Times the parts of one teacher training step (degradation, forward, backward, Adam) for a
//! preset, to find where the trainer spends its time. Run:
//! `cargo run --release -p kdsr-trainer --example step_profile [PRESET] [BATCH] [PATCH] [ITERS]
//! [tuned|default]` (the last: host malloc as `trainer train` sets it, or glibc's defaults).

use std::time::Instant;

use kdsr_core::spec::KdsrConfig;
use kdsr_trainer::classic::config::TrainConfig;
use kdsr_trainer::classic::degrade::Degrader;
use kdsr_trainer::loss::l1;
use kdsr_trainer::model::Model;
use kdsr_trainer::optim::Adam;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let preset = a.first().map_or("teacher-edge", String::as_str);
    let batch: i64 = a.get(1).map_or(Ok(8), |s| s.parse())?;
    let patch: i64 = a.get(2).map_or(Ok(192), |s| s.parse())?;
    let iters: usize = a.get(3).map_or(Ok(20), |s| s.parse())?;
    let malloc = a.get(4).map_or("tuned", String::as_str);
    if malloc == "tuned" {
        kdsr_trainer::alloc::tune_host_malloc();
    }
    let cfg = KdsrConfig::preset(preset)?;
    let m = Model::new(&cfg, Device::Cpu);
    let params: Vec<(String, Tensor)> =
        m.vs.variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
    let mut adam = Adam::new(params, 0.9, 0.999, 1e-8);
    let deg = Degrader::new(&TrainConfig::cpu_edge().degradation, cfg.scale, Device::Cpu);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut t = [0f64; 4];
    for i in 0..iters + 3 {
        let hr = Tensor::rand([batch, 3, patch, patch], (Kind::Float, Device::Cpu));
        let s0 = Instant::now();
        let (lr, _) = deg.degrade(&hr, &mut rng)?;
        let s1 = Instant::now();
        let out = m.net.forward(&lr, Some(&hr))?;
        let loss = l1(&out.sr, &hr);
        let _ = loss.double_value(&[]);
        let s2 = Instant::now();
        adam.zero_grad();
        loss.backward();
        let s3 = Instant::now();
        adam.step(2e-4);
        let s4 = Instant::now();
        if i >= 3 {
            for (k, (x, y)) in [(s0, s1), (s1, s2), (s2, s3), (s3, s4)].iter().enumerate() {
                t[k] += (*y - *x).as_secs_f64();
            }
        }
    }
    let n = iters as f64;
    println!(
        "{preset} b{batch} p{patch} malloc {malloc}: degrade {:.1} ms, forward {:.1} ms, backward {:.1} ms, adam {:.1} ms, total {:.1} ms ({:.2} it/s), threads {}",
        t[0] / n * 1e3,
        t[1] / n * 1e3,
        t[2] / n * 1e3,
        t[3] / n * 1e3,
        t.iter().sum::<f64>() / n * 1e3,
        n / t.iter().sum::<f64>(),
        tch::get_num_threads()
    );
    Ok(())
}
