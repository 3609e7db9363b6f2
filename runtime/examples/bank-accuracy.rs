//! How well `inspect-degradation`'s bank match names the blur σ: the first N images of a folder
//! (B100 by default), centre crops of 192 px HR, each degraded with a σ drawn uniformly from
//! 0.2–4.0 (seeded per image, noise 0, the classic pipeline), their IDR estimated by the model and
//! matched against the bank (the nearest entry, as `inspect-degradation` ranks them). Prints the
//! share of crops whose named σ is within ±0.6 of the true one, and the mean absolute error.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --bin kdsr-edge -- make-bank -m MODEL --noise 0 -o MODEL.bank
//! cargo run --release -p kdsr-runtime --example bank-accuracy -- MODEL MODEL.bank [data/B100] [100]
//! ```

use kdsr_core::eval::load_folder;
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
use kdsr_runtime::bank::Bank;
use kdsr_runtime::{Options, Upscaler};
use rand::{RngExt, SeedableRng};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, bank) = match args.as_slice() {
        [m, b, ..] => (m.clone(), b.clone()),
        _ => anyhow::bail!("usage: bank-accuracy MODEL BANK [DATA] [N]"),
    };
    let data = args.get(2).map_or("data/B100", String::as_str);
    let n: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let up = Upscaler::load(&model, Options::default())?;
    let bank = Bank::load_for(bank.as_ref(), &up.info().weights_hash)?;
    let scale = up.info().scale;
    let images = load_folder(data.as_ref(), scale, n)?;
    let (mut within, mut abs_err) = (0usize, 0.0f64);
    for (i, img) in images.iter().enumerate() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0000 + i as u64);
        let sigma = 0.2 + 3.8 * rng.random::<f64>();
        let c = 192.min(img.hr.height()).min(img.hr.width()) / scale as usize * scale as usize;
        let hr = img
            .hr
            .crop((img.hr.height() - c) / 2, (img.hr.width() - c) / 2, c, c)?;
        let deg = ClassicDegradation::new(
            isotropic_gaussian(KERNEL_SIZE, sigma)?,
            scale,
            0.0,
            Downsample::Bicubic,
        )?;
        let lr = deg.apply(&hr, &mut rng)?;
        let idr = up.estimate_idr(&lr)?;
        let best = bank
            .nearest(&idr.d_prime, 1)
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("empty bank"))?;
        let err = (f64::from(best.entry.sigma) - sigma).abs();
        within += usize::from(err <= 0.6);
        abs_err += err;
    }
    let total = images.len().max(1) as f64;
    println!(
        "{} crops of {data}: named σ within ±0.6 for {:.1} %, mean |error| {:.3}",
        images.len(),
        100.0 * within as f64 / total,
        abs_err / total
    );
    Ok(())
}
