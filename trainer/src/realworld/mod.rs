//! Real-world KDSR (paper §4.4, the official `KDSR-GAN/` code tree): Real-ESRGAN's second-order
//! degradation on the training device, and the three stages KDSRNet_T (L1) → KDSRNet_S (L1 + KD)
//! → KDSR_S-GAN (L1 + perceptual + GAN + KD), each with an EMA of G (0.999).
//!
//! - [`degrade`]: the second-order degradation (kernels, resize, noise, JPEG, final sinc, paired
//!   crop) as batched tensor ops, with every random choice drawn from a seeded CPU generator.
//! - [`usm`]: unsharp masking of the GT.
//! - [`vgg`]: VGG19 features and the perceptual loss (weights from a user-supplied file).
//! - [`discriminator`]: the U-Net discriminator with spectral norm.
//! - [`lpips`]: LPIPS-Alex for validation (weights from a user-supplied file).
//! - [`eval`]: PSNR / SSIM / LPIPS on validation pairs.
//! - [`config`]: experiment presets (`paper-gan`, `edge-gan`, `smoke-gan`) and TOML files.
//! - [`train`]: the three stages as [`crate::driver::Step`]s.
//!
//! The networks are the crate's [`crate::model::BlindSr`] with a real-world
//! [`kdsr_core::spec::KdsrConfig`]; DiffJPEG ([`crate::jpeg`]), the KD loss, Adam, EMA, the step
//! schedule, the data loader, the stage driver and the checkpoints are shared with the classic
//! pipeline.

pub mod config;
pub mod degrade;
pub mod discriminator;
pub mod eval;
pub mod lpips;
pub mod train;
pub mod usm;
pub mod vgg;
