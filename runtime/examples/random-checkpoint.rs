//! Writes a checkpoint of **random weights** for a preset (`NAME.safetensors` + `NAME.json`), for
//! benchmarks and memory measurements of presets that have no trained model yet. The output is
//! not a model: what it upscales is meaningless. Never ship it or present it as trained.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example random-checkpoint -- student-edge /tmp/edge-random.safetensors
//! converter export --weights /tmp/edge-random.safetensors --graph split --out /tmp/edge-random
//! ```
//!
//! Weights are uniform in ±1/√fan_in (PyTorch's default init bound), seeded, with the official
//! identity/±mean MeanShifts.

use std::path::PathBuf;

use kdsr_core::spec::checkpoint::{Checkpoint, Tensor, Weights};
use kdsr_core::spec::{KdsrConfig, RGB_MEAN};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(preset), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: random-checkpoint PRESET OUT.safetensors [SEED]");
    };
    let seed: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let config = KdsrConfig::preset(&preset)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut weights = Weights::new();
    for t in config.tensors() {
        let n = t.numel();
        let data: Vec<f32> = match t.key.as_str() {
            "G.sub_mean.weight" | "G.add_mean.weight" => {
                (0..9).map(|i| if i % 4 == 0 { 1.0 } else { 0.0 }).collect()
            }
            "G.sub_mean.bias" => RGB_MEAN.iter().map(|m| -m).collect(),
            "G.add_mean.bias" => RGB_MEAN.to_vec(),
            _ => {
                let fan_in = if t.shape.len() == 1 {
                    config.n_feats
                } else {
                    t.shape[1..].iter().product::<usize>().max(1)
                };
                let bound = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            }
        };
        weights.insert(t.key.clone(), Tensor::new(t.shape.clone(), data)?);
    }
    let path = PathBuf::from(out);
    Checkpoint { config, weights }.save(&path)?;
    eprintln!(
        "{}: RANDOM weights for {preset} (seed {seed}) — for benchmarks only, not a model",
        path.display()
    );
    Ok(())
}
