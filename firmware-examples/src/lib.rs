//! `kdsr-firmware-examples`: kdsr on the small SPI/I2C displays wired to a Raspberry Pi.
//!
//! The drawing code is generic over embedded-graphics' `DrawTarget`, so the same scene runs on
//! an ST7789/ILI9341 (mipidsi), an SSD1306 (ssd1306), in embedded-graphics-simulator, in the
//! in-memory [`Framebuffer`] and under `MockDisplay` in the tests.
//!
//! - [`color`]: RGB888 → `Rgb565` with ordered (Bayer 4×4) dithering, and back for PNG export.
//! - [`fit`]: the fit/crop policy for displays smaller (or larger) than the image.
//! - [`picture`]: an RGB888 image placed, resampled, dithered and clipped ([`Picture`]).
//! - [`scene`]: the before/after layout with labels and the latency line ([`BeforeAfter`]).
//! - [`meter`]: the estimated degradation as bars ([`DegradationMeter`]), in any colour type.
//! - [`framebuffer`]: an in-memory `DrawTarget` exportable as PNG.
//! - [`pipeline`]: frames from a folder through [`kdsr_runtime::Upscaler`], timed, and the
//!   `inspect-degradation` reading for the meter.
//!
//! ```
//! use embedded_graphics::{pixelcolor::Rgb565, prelude::*};
//! use kdsr_firmware_examples::{BeforeAfter, Framebuffer};
//!
//! let lr = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 40, 40]));
//! let sr = image::RgbImage::from_pixel(32, 32, image::Rgb([200, 40, 40]));
//! let mut display = Framebuffer::new(Size::new(80, 40), Rgb565::BLACK);
//! let area = display.bounding_box();
//! let out = BeforeAfter::new(&lr, &sr, 4, area).draw(&mut display).unwrap();
//! assert_eq!(out.after.unwrap().dst.size, Size::new(32, 32));
//! assert_eq!(display.out_of_bounds(), 0);
//! ```

pub mod color;
pub mod fit;
pub mod framebuffer;
pub mod meter;
pub mod picture;
pub mod pipeline;
pub mod scene;

pub use color::{Dither, to_rgb565};
pub use fit::{Fit, Placement, parse_size, place};
pub use framebuffer::Framebuffer;
pub use meter::{DegradationMeter, MeterStyle, Reading};
pub use picture::{Picture, RgbSource, Zoomed};
pub use scene::{BeforeAfter, Latency, SceneColors, SceneLayout, layout, status_line};
