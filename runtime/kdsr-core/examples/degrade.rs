//! Writes the classic LR image of an HR image: isotropic (or anisotropic) Gaussian blur, official
//! bicubic ↓scale, Gaussian noise, 8-bit — the degradation the classic models are trained and
//! evaluated on. Handy for trying `kdsr-edge upscale` / `inspect-degradation` on a known
//! degradation.
//!
//! ```sh
//! cargo run --release -p kdsr-core --features clap --example degrade -- \
//!     data/Set14/baboon.png baboon-s2.6.png --sigma 2.6 --noise 0
//! ```

use std::path::PathBuf;

use clap::Parser;
use kdsr_core::eval::to_rgb;
use kdsr_core::io::{BitDepth, load_image, save_image};
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, anisotropic_gaussian_deg, isotropic_gaussian};
use rand::SeedableRng;

/// Classic LR synthesis of one HR image.
#[derive(Parser)]
struct Args {
    /// HR image.
    input: PathBuf,
    /// LR image to write (8-bit; the format from the extension).
    output: PathBuf,
    /// Blur σ in HR pixels (isotropic), or λ1 with --lambda2/--theta (anisotropic).
    #[arg(long, default_value_t = 2.6)]
    sigma: f64,
    /// λ2 of an anisotropic kernel (σ is then λ1).
    #[arg(long)]
    lambda2: Option<f64>,
    /// Rotation of an anisotropic kernel, degrees.
    #[arg(long, default_value_t = 0.0)]
    theta: f64,
    /// Gaussian noise level, 0..255 units.
    #[arg(long, default_value_t = 0.0)]
    noise: f32,
    /// Downscaling factor.
    #[arg(long, default_value_t = 4)]
    scale: u32,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let kernel = match a.lambda2 {
        Some(l2) => anisotropic_gaussian_deg(KERNEL_SIZE, a.sigma, l2, a.theta)?,
        None => isotropic_gaussian(KERNEL_SIZE, a.sigma)?,
    };
    let hr = to_rgb(&load_image(&a.input)?.rgb)?.crop_to_multiple(a.scale as usize)?;
    let deg = ClassicDegradation::new(kernel, a.scale, a.noise, Downsample::Bicubic)?;
    let lr = deg.apply(&hr, &mut rand::rngs::StdRng::seed_from_u64(a.seed))?;
    save_image(&a.output, &lr, None, BitDepth::Eight)?;
    Ok(())
}
