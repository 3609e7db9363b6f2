//! # display-st7789-upscale: camera frames upscaled ×4 by kdsr, before/after on a SPI TFT
//!
//! Plays the image files of a folder (name order; a camera that drops JPEGs into a folder, or
//! frames exported with `ffmpeg -i cam.mp4 frames/%05d.png`), upscales each with the
//! `kdsr-runtime` [`Upscaler`](kdsr_runtime::Upscaler) and shows the input (enlarged by pixel
//! replication, "LR") next to the network's output ("KDSR") on an ST7789 or ILI9341 panel, with
//! the sizes and the IDE/SR latency on the bottom line. The IDR is estimated on the first frame
//! and reused (one camera, one degradation) unless `--reestimate` is given.
//!
//! Reading a V4L2 camera device directly is **not** implemented: point `--frames` at a folder
//! the camera writes to (e.g. `libcamera-still --timelapse 2000 -o frames/%05d.jpg`).
//!
//! ## Wiring (Raspberry Pi, BCM numbering; the defaults)
//! SPI0 MOSI → SDA/DIN, SCLK → SCL/CLK, CE0 → CS (`/dev/spidev0.0`), GPIO25 → DC, GPIO27 → RST,
//! backlight to 3.3 V or to a GPIO given with `--backlight` (GPIO24 on Waveshare HATs). Enable
//! SPI with `dtparam=spi=on`.
//!
//! ## Run on the board
//! ```sh
//! # on the build machine (cross-builds for the Pi, see firmware-examples/README.md):
//! bash scripts/build-firmware-arm.sh aarch64 --release
//! scp target/aarch64-unknown-linux-gnu/release/examples/display-st7789-upscale pi:
//! scp -r models/edge pi:models/
//! # on the Pi (1.3" 240×240 ST7789):
//! ./display-st7789-upscale --frames frames/ -m models/camera/student-edge-camera --lr-crop 60x60
//! # 2.8" 320×240 ILI9341 in landscape:
//! ./display-st7789-upscale --frames frames/ --display ili9341 --size 240x320 --rotate 90
//! ```
//! `--lr-crop WxH` upscales only the centre of each frame (the IDR still comes from the whole
//! frame): a 240×240 panel shows 120×~110 output pixels per panel at `--fit crop`, i.e. 30×28
//! input pixels, so there is no point paying for a full 640×480 → 2560×1920 run on a Pi.
//! `--fit contain` shows whole frames shrunk instead (see the crate README for the policies).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use embedded_graphics::Drawable;
use embedded_graphics::geometry::Dimensions;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::Size;
use embedded_hal::digital::OutputPin;
use kdsr_firmware_examples::pipeline::{centre_crop, list_frames, read_frame, upscale_frame};
use kdsr_firmware_examples::{BeforeAfter, Dither, Fit, SceneColors, parse_size, status_line};
use kdsr_runtime::{Idr, ModelKind, Options, Upscaler};
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
use mipidsi::interface::SpiInterface;
use mipidsi::models::{ILI9341Rgb565, Model, ST7789};
use mipidsi::options::{ColorInversion, Orientation, Rotation};
use mipidsi::{Builder, Display};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Panel {
    /// ST7789 (240×240, 240×320, 135×240 …; colours inverted by default).
    St7789,
    /// ILI9341 (240×320), RGB565 over SPI.
    Ili9341,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Invert {
    /// ST7789 on, ILI9341 off (what most IPS/TN modules need).
    Auto,
    On,
    Off,
}

/// Frames from a folder, upscaled ×4 by kdsr, before/after on an ST7789/ILI9341 SPI display.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Folder of frames (png, jpg, webp, tif, pnm), played in name order.
    #[arg(short = 'i', long)]
    frames: PathBuf,
    /// Model: split prefix (PREFIX-ide.onnx + PREFIX-sr.onnx), .onnx file or folder.
    #[arg(
        short = 'm',
        long,
        default_value = "models/edge/camera/student-edge-camera"
    )]
    model: PathBuf,
    /// Display controller.
    #[arg(long, value_enum, default_value = "st7789")]
    display: Panel,
    /// Panel size WxH in the controller's native (unrotated) orientation.
    #[arg(long, value_parser = parse_size, default_value = "240x240")]
    size: Size,
    /// Offset X,Y of the panel in the controller's framebuffer (e.g. 52,40 for a 135×240
    /// ST7789; 0,80 for a 240×240 one rotated by 180).
    #[arg(long, value_parser = parse_size_or_zero, default_value = "0,0")]
    offset: (u16, u16),
    /// Rotation in degrees: 0, 90, 180 or 270.
    #[arg(long, default_value_t = 0)]
    rotate: u16,
    /// Colour inversion.
    #[arg(long, value_enum, default_value = "auto")]
    invert: Invert,
    /// SPI device.
    #[arg(long, default_value = "/dev/spidev0.0")]
    spi: PathBuf,
    /// SPI clock in Hz.
    #[arg(long, default_value_t = 32_000_000)]
    spi_hz: u32,
    /// GPIO character device of the DC/RST/backlight lines.
    #[arg(long, default_value = "/dev/gpiochip0")]
    gpiochip: PathBuf,
    /// Data/command GPIO line (BCM number).
    #[arg(long, default_value_t = 25)]
    dc: u32,
    /// Reset GPIO line (BCM number).
    #[arg(long, default_value_t = 27)]
    rst: u32,
    /// Backlight GPIO line, driven high (leave out when wired to 3.3 V).
    #[arg(long)]
    backlight: Option<u32>,
    /// Fit/crop policy of the panels: crop (1:1 centre), contain (whole, shrunk), cover.
    #[arg(long, default_value = "crop")]
    fit: Fit,
    /// RGB888 → RGB565: bayer4 (ordered dithering) or none.
    #[arg(long, default_value = "bayer4")]
    dither: Dither,
    /// Upscale only the centre WxH of each frame (the IDR still sees the whole frame).
    #[arg(long, value_parser = parse_size)]
    lr_crop: Option<Size>,
    /// Estimate the IDR on every frame instead of once.
    #[arg(long)]
    reestimate: bool,
    /// Shortest time each frame stays on screen, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Start again after the last frame (until interrupted).
    #[arg(long = "loop")]
    repeat: bool,
    /// Inference threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn parse_size_or_zero(s: &str) -> Result<(u16, u16), String> {
    let (x, y) = s
        .split_once([',', 'x'])
        .ok_or_else(|| format!("`{s}` is not X,Y"))?;
    let p = |v: &str| v.trim().parse::<u16>().map_err(|e| format!("`{s}`: {e}"));
    Ok((p(x)?, p(y)?))
}

fn output_pin(chip: &mut Chip, path: &Path, line: u32, what: &str) -> Result<CdevPin> {
    let handle = chip
        .get_line(line)
        .and_then(|l| l.request(LineRequestFlags::OUTPUT, 1, "kdsr-display"))
        .with_context(|| format!("requesting GPIO line {line} ({what}) on {}", path.display()))?;
    CdevPin::new(handle).with_context(|| format!("GPIO line {line} ({what})"))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let rotation = match a.rotate {
        0 => Rotation::Deg0,
        90 => Rotation::Deg90,
        180 => Rotation::Deg180,
        270 => Rotation::Deg270,
        r => bail!("--rotate {r}: use 0, 90, 180 or 270"),
    };
    let (w, h) = (
        u16::try_from(a.size.width).context("--size width over 65535")?,
        u16::try_from(a.size.height).context("--size height over 65535")?,
    );
    let up = Upscaler::load(
        &a.model,
        Options {
            threads: a.threads,
            ..Options::default()
        },
    )
    .with_context(|| format!("loading model {}", a.model.display()))?;
    let frames = list_frames(&a.frames)?;
    if frames.is_empty() {
        bail!("no image files in {}", a.frames.display());
    }

    let mut spi = SpidevDevice::open(&a.spi)
        .with_context(|| format!("opening SPI device {}", a.spi.display()))?;
    spi.configure(
        &SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(a.spi_hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build(),
    )
    .with_context(|| format!("configuring SPI device {}", a.spi.display()))?;
    let mut chip =
        Chip::new(&a.gpiochip).with_context(|| format!("opening {}", a.gpiochip.display()))?;
    let dc = output_pin(&mut chip, &a.gpiochip, a.dc, "DC")?;
    let rst = output_pin(&mut chip, &a.gpiochip, a.rst, "RST")?;
    let _backlight = match a.backlight {
        Some(line) => {
            let mut bl = output_pin(&mut chip, &a.gpiochip, line, "backlight")?;
            bl.set_high()
                .map_err(|e| anyhow!("switching the backlight on (GPIO {line}): {e}"))?;
            Some(bl)
        }
        None => None,
    };
    let mut buffer = [0u8; 4096];
    let di = SpiInterface::new(spi, dc, &mut buffer);
    let inverted = match (a.invert, a.display) {
        (Invert::On, _) | (Invert::Auto, Panel::St7789) => ColorInversion::Inverted,
        _ => ColorInversion::Normal,
    };
    let orientation = Orientation::new().rotate(rotation);
    let mut delay = Delay;
    let what = format!("{:?} on {}", a.display, a.spi.display());
    match a.display {
        Panel::St7789 => {
            let display = Builder::new(ST7789, di)
                .display_size(w, h)
                .display_offset(a.offset.0, a.offset.1)
                .orientation(orientation)
                .invert_colors(inverted)
                .reset_pin(rst)
                .init(&mut delay)
                .map_err(|e| anyhow!("initialising the {what}: {e:?}"))?;
            play(display, &up, &frames, &a, &what)
        }
        Panel::Ili9341 => {
            let display = Builder::new(ILI9341Rgb565, di)
                .display_size(w, h)
                .display_offset(a.offset.0, a.offset.1)
                .orientation(orientation)
                .invert_colors(inverted)
                .reset_pin(rst)
                .init(&mut delay)
                .map_err(|e| anyhow!("initialising the {what}: {e:?}"))?;
            play(display, &up, &frames, &a, &what)
        }
    }
}

fn play<DI, M, RST>(
    mut display: Display<DI, M, RST>,
    up: &Upscaler,
    frames: &[PathBuf],
    a: &Args,
    what: &str,
) -> Result<()>
where
    DI: mipidsi::interface::Interface,
    M: Model<ColorFormat = Rgb565>,
    Rgb565: mipidsi::interface::InterfacePixelFormat<DI::Word>,
    RST: OutputPin,
{
    let area = display.bounding_box();
    let mut idr: Option<Idr> = None;
    loop {
        for path in frames {
            let started = Instant::now();
            let frame = read_frame(path)?;
            let lr = match a.lr_crop {
                Some(c) => centre_crop(&frame, c.width as usize, c.height as usize)?,
                None => frame.clone(),
            };
            let mut ide_time = None;
            if up.info().kind == ModelKind::Split && (idr.is_none() || a.reestimate) {
                let t = Instant::now();
                idr = Some(
                    up.estimate_idr(&frame.rgb)
                        .with_context(|| format!("estimating the IDR of {}", path.display()))?,
                );
                ide_time = Some(t.elapsed());
            }
            let mut out = upscale_frame(up, &lr, idr.as_ref())
                .with_context(|| format!("upscaling {}", path.display()))?;
            out.latency.ide = ide_time;
            let (lr_size, sr_size) = out.sizes();
            let status = status_line(lr_size, sr_size, &out.latency);
            println!("{}: {status}", path.display());
            BeforeAfter {
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
            .map_err(|e| anyhow!("drawing on the {what}: {e:?}"))?;
            let wait = Duration::from_millis(a.interval_ms).saturating_sub(started.elapsed());
            std::thread::sleep(wait);
        }
        if !a.repeat {
            return Ok(());
        }
    }
}
