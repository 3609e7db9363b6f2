//! # simulator-upscale: the before/after scene (or the degradation meter) in
//! embedded-graphics-simulator, exported as PNG without a display
//!
//! Upscales one image with the `kdsr-runtime` [`Upscaler`](kdsr_runtime::Upscaler) and draws the
//! same before/after scene as `display-st7789-upscale` (same library code, same `Rgb565`
//! dithering) on a `SimulatorDisplay` of the chosen size, then writes it to `--out` as PNG (to a
//! temporary file that is renamed, so the PNG is never half-written). With `--scene meter` it
//! draws the SSD1306 degradation meter instead (`BinaryColor`, OLED-blue theme), from the
//! model's degradation bank as `display-ssd1306-degradation-meter` does.
//!
//! Headless by default: no SDL2 is needed. A window (`--window`) needs the crate feature `sdl`
//! and the SDL2 development library: `cargo run -p kdsr-firmware-examples --features sdl
//! --example simulator-upscale -- --window`.
//!
//! ## Run (on any machine)
//! ```sh
//! cargo run --release -p kdsr-firmware-examples --example simulator-upscale -- \
//!     --input data/Set5/butterfly.png --lr-crop 64x64 --size 240x135 --out /tmp/scene.png
//! cargo run --release -p kdsr-firmware-examples --example simulator-upscale -- \
//!     --input data/Set5/butterfly.png --size 320x240 --fit contain --pixel-scale 2 --out /tmp/whole.png
//! # the meter: the default camera model ships its bank (another model needs make-bank once)
//! cargo run --release -p kdsr-firmware-examples --example simulator-upscale -- \
//!     --scene meter --input data/Set14/lenna.png --size 128x64 --pixel-scale 3 --out /tmp/meter.png
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use embedded_graphics::Drawable;
use embedded_graphics::geometry::Dimensions;
use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::Size;
use embedded_graphics_simulator::{
    BinaryColorTheme, OutputImage, OutputSettings, OutputSettingsBuilder, SimulatorDisplay,
};
use kdsr_firmware_examples::pipeline::{
    centre_crop, inspect, load_bank, match_line, read_frame, upscale_frame,
};
use kdsr_firmware_examples::{
    BeforeAfter, DegradationMeter, Dither, Fit, SceneColors, parse_size, status_line,
};
use kdsr_runtime::{Options, Upscaler};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scene {
    /// Before/after of the upscaled image (the ST7789 example's scene).
    Upscale,
    /// The degradation meter (the SSD1306 example's scene).
    Meter,
}

/// kdsr's display scenes in embedded-graphics-simulator, written to a PNG.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The image.
    #[arg(short = 'i', long, default_value = "data/Set5/butterfly.png")]
    input: PathBuf,
    /// Model: split prefix (PREFIX-ide.onnx + PREFIX-sr.onnx), .onnx file or folder.
    #[arg(
        short = 'm',
        long,
        default_value = "models/edge/camera/student-edge-camera"
    )]
    model: PathBuf,
    /// What to draw.
    #[arg(long, value_enum, default_value = "upscale")]
    scene: Scene,
    /// Simulated display size WxH (default 240x240 for upscale, 128x64 for meter).
    #[arg(long, value_parser = parse_size)]
    size: Option<Size>,
    /// Fit/crop policy of the panels: crop (1:1 centre), contain (whole, shrunk), cover.
    #[arg(long, default_value = "crop")]
    fit: Fit,
    /// RGB888 → RGB565: bayer4 (ordered dithering) or none.
    #[arg(long, default_value = "bayer4")]
    dither: Dither,
    /// Upscale only the centre WxH of the image (the IDR still sees the whole image).
    #[arg(long, value_parser = parse_size)]
    lr_crop: Option<Size>,
    /// Degradation bank for `--scene meter` (default: PREFIX.bank next to the model).
    #[arg(long)]
    bank: Option<PathBuf>,
    /// Write the simulated display to this PNG file.
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
    /// Output pixels per display pixel in the PNG (and the window).
    #[arg(long, default_value_t = 1)]
    pixel_scale: u32,
    /// Also show the display in a window (needs the `sdl` crate feature).
    #[arg(long)]
    window: bool,
    /// Inference threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn write_png(image: &OutputImage<Rgb888>, path: &Path) -> Result<()> {
    let mut png = Vec::new();
    image
        .as_image_buffer()
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| format!("encoding {}", path.display()))?;
    kdsr_core::fsutil::write_atomic(path, &png)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(feature = "sdl")]
fn show<C>(display: &SimulatorDisplay<C>, settings: &OutputSettings)
where
    C: embedded_graphics::prelude::PixelColor + Into<Rgb888> + From<Rgb888>,
{
    embedded_graphics_simulator::Window::new("kdsr", settings).show_static(display);
}

#[cfg(not(feature = "sdl"))]
fn show<C>(_: &SimulatorDisplay<C>, _: &OutputSettings) {}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.window && !cfg!(feature = "sdl") {
        bail!(
            "--window needs the `sdl` feature: cargo run --features sdl --example simulator-upscale"
        );
    }
    if a.out.is_none() && !a.window {
        bail!("nothing to do: give --out FILE.png (or --window with the `sdl` feature)");
    }
    if a.pixel_scale == 0 {
        bail!("--pixel-scale must be at least 1");
    }
    let up = Upscaler::load(
        &a.model,
        Options {
            threads: a.threads,
            ..Options::default()
        },
    )
    .with_context(|| format!("loading model {}", a.model.display()))?;
    let frame = read_frame(&a.input)?;
    match a.scene {
        Scene::Upscale => {
            let size = a.size.unwrap_or(Size::new(240, 240));
            let lr = match a.lr_crop {
                Some(c) => centre_crop(&frame, c.width as usize, c.height as usize)?,
                None => frame.clone(),
            };
            let started = std::time::Instant::now();
            let idr = up
                .estimate_idr(&frame.rgb)
                .with_context(|| format!("estimating the IDR of {}", a.input.display()))?;
            let ide_time = started.elapsed();
            let mut out = upscale_frame(&up, &lr, Some(&idr))
                .with_context(|| format!("upscaling {}", a.input.display()))?;
            out.latency.ide = Some(ide_time);
            let (lr_size, sr_size) = out.sizes();
            let status = status_line(lr_size, sr_size, &out.latency);
            println!("{}: {status}", a.input.display());
            let mut display = SimulatorDisplay::<Rgb565>::new(size);
            let area = display.bounding_box();
            let drawn = BeforeAfter {
                lr: &out.lr,
                sr: &out.sr,
                scale: up.scale() as u32,
                area,
                fit: a.fit,
                dither: a.dither,
                status: Some(&status),
                colors: SceneColors::default(),
            }
            .draw(&mut display)
            .map_err(|e| anyhow!("drawing: {e:?}"))?;
            if let Some(p) = drawn.after {
                println!("after panel: source {:?} → display {:?}", p.src, p.dst);
            }
            let settings = OutputSettingsBuilder::new().scale(a.pixel_scale).build();
            if let Some(path) = &a.out {
                write_png(&display.to_rgb_output_image(&settings), path)?;
                println!("wrote {}", path.display());
            }
            if a.window {
                show(&display, &settings);
            }
        }
        Scene::Meter => {
            let size = a.size.unwrap_or(Size::new(128, 64));
            let bank_path = a
                .bank
                .clone()
                .unwrap_or_else(|| up.info().bank_path.clone());
            let bank = load_bank(&up, &bank_path)?;
            let (_, nearest, reading) = inspect(&up, &bank, &frame, 3)?;
            let reading =
                reading.ok_or_else(|| anyhow!("the bank has no entry of this model's IDR size"))?;
            for m in &nearest {
                println!("  {}", match_line(m));
            }
            let mut display = SimulatorDisplay::<BinaryColor>::new(size);
            let area = display.bounding_box();
            DegradationMeter::mono(&reading, area, "KDSR degradation")
                .draw(&mut display)
                .map_err(|e| anyhow!("drawing: {e:?}"))?;
            let settings = OutputSettingsBuilder::new()
                .scale(a.pixel_scale)
                .theme(BinaryColorTheme::OledBlue)
                .build();
            if let Some(path) = &a.out {
                write_png(&display.to_rgb_output_image(&settings), path)?;
                println!("wrote {}", path.display());
            }
            if a.window {
                show(&display, &settings);
            }
        }
    }
    Ok(())
}
