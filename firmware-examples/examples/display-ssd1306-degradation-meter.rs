//! # display-ssd1306-degradation-meter: the estimated degradation as bars on an SSD1306 OLED
//!
//! For each image (one file, or every image of a folder in name order) this runs what
//! `kdsr-edge inspect-degradation` runs — the model's IDE on the image, then the nearest entries
//! of the model's degradation bank by the KD loss — prints the nearest entries, and shows the
//! nearest one on a 128×64 (or 128×32, 96×16, 72×40, 64×48, 64×32) SSD1306 over I2C as three
//! bars: blur σ, noise level and match quality (see the crate README for the scales).
//!
//! The bank is `PREFIX.bank` next to the model unless `--bank` is given; the model's own weights
//! must have made it. The default camera model ships its bank
//! (`models/edge/camera/student-edge-camera.bank`); for another model build it once with
//! `kdsr-edge make-bank -m MODEL` (it degrades `data/Set5`).
//!
//! ## Wiring (Raspberry Pi)
//! SDA → GPIO2 (pin 3), SCL → GPIO3 (pin 5), VCC → 3.3 V, GND. Enable I2C with
//! `dtparam=i2c_arm=on`; the display answers at 0x3C (`i2cdetect -y 1`), some at 0x3D.
//!
//! ## Run on the board
//! ```sh
//! # on the build machine (see firmware-examples/README.md):
//! bash scripts/build-firmware-arm.sh aarch64 --release
//! scp target/aarch64-unknown-linux-gnu/release/examples/display-ssd1306-degradation-meter pi:
//! scp -r models/edge/camera pi:models/   # the camera model and its bank
//! # on the Pi:
//! ./display-ssd1306-degradation-meter --images frames/ -m models/camera/student-edge-camera --loop
//! ./display-ssd1306-degradation-meter --images photo.jpg --size 128x32 --address 0x3d
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use embedded_graphics::Drawable;
use embedded_graphics::geometry::Dimensions;
use kdsr_firmware_examples::DegradationMeter;
use kdsr_firmware_examples::pipeline::{inspect, list_frames, load_bank, match_line, read_frame};
use kdsr_runtime::bank::Bank;
use kdsr_runtime::{Options, Upscaler};
use linux_embedded_hal::I2cdev;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OledSize {
    #[value(name = "128x64")]
    S128x64,
    #[value(name = "128x32")]
    S128x32,
    #[value(name = "96x16")]
    S96x16,
    #[value(name = "72x40")]
    S72x40,
    #[value(name = "64x48")]
    S64x48,
    #[value(name = "64x32")]
    S64x32,
}

/// The degradation kdsr estimates for each image, as bars on an SSD1306 OLED.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// An image file or a folder of images (png, jpg, webp, tif, pnm), name order.
    #[arg(short = 'i', long)]
    images: PathBuf,
    /// Model: split prefix (PREFIX-ide.onnx + PREFIX-sr.onnx) or a folder holding one.
    #[arg(
        short = 'm',
        long,
        default_value = "models/edge/camera/student-edge-camera"
    )]
    model: PathBuf,
    /// Degradation bank (default: PREFIX.bank next to the model).
    #[arg(long)]
    bank: Option<PathBuf>,
    /// I2C bus device.
    #[arg(long, default_value = "/dev/i2c-1")]
    i2c: PathBuf,
    /// 7-bit I2C address (0x3c or 0x3d).
    #[arg(long, value_parser = parse_address, default_value = "0x3c")]
    address: u8,
    /// Display size.
    #[arg(long, value_enum, default_value = "128x64")]
    size: OledSize,
    /// Rotate the picture by 180 degrees.
    #[arg(long)]
    flip: bool,
    /// Nearest bank entries printed per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Shortest time each reading stays on screen, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    interval_ms: u64,
    /// Start again after the last image (until interrupted).
    #[arg(long = "loop")]
    repeat: bool,
    /// Title line (shown when the display has room).
    #[arg(long, default_value = "KDSR degradation")]
    title: String,
}

fn parse_address(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => t.parse(),
    };
    v.ok()
        .filter(|a| *a < 0x80)
        .ok_or_else(|| format!("`{s}` is not a 7-bit I2C address"))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let up = Upscaler::load(&a.model, Options::default())
        .with_context(|| format!("loading model {}", a.model.display()))?;
    let bank_path = a
        .bank
        .clone()
        .unwrap_or_else(|| up.info().bank_path.clone());
    let bank = load_bank(&up, &bank_path)?;
    let images = if a.images.is_dir() {
        list_frames(&a.images)?
    } else {
        vec![a.images.clone()]
    };
    if images.is_empty() {
        bail!("no image files in {}", a.images.display());
    }
    let i2c =
        I2cdev::new(&a.i2c).with_context(|| format!("opening I2C bus {}", a.i2c.display()))?;
    let interface = I2CDisplayInterface::new_custom_address(i2c, a.address);
    let rotation = if a.flip {
        DisplayRotation::Rotate180
    } else {
        DisplayRotation::Rotate0
    };
    let what = format!("SSD1306 at {:#04x} on {}", a.address, a.i2c.display());
    match a.size {
        OledSize::S128x64 => run(
            interface,
            DisplaySize128x64,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
        OledSize::S128x32 => run(
            interface,
            DisplaySize128x32,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
        OledSize::S96x16 => run(
            interface,
            DisplaySize96x16,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
        OledSize::S72x40 => run(
            interface,
            DisplaySize72x40,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
        OledSize::S64x48 => run(
            interface,
            DisplaySize64x48,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
        OledSize::S64x32 => run(
            interface,
            DisplaySize64x32,
            rotation,
            &up,
            &bank,
            &images,
            &a,
            &what,
        ),
    }
}

fn run<DI, SIZE>(
    interface: DI,
    size: SIZE,
    rotation: DisplayRotation,
    up: &Upscaler,
    bank: &Bank,
    images: &[PathBuf],
    a: &Args,
    what: &str,
) -> Result<()>
where
    DI: WriteOnlyDataCommand,
    SIZE: DisplaySize,
{
    let mut display = Ssd1306::new(interface, size, rotation).into_buffered_graphics_mode();
    display
        .init()
        .map_err(|e| anyhow!("initialising the {what}: {e:?} (check wiring and --address)"))?;
    let area = display.bounding_box();
    loop {
        for path in images {
            let started = Instant::now();
            let frame = read_frame(path)?;
            let (_, nearest, reading) = inspect(up, bank, &frame, a.top)
                .with_context(|| format!("estimating the degradation of {}", path.display()))?;
            let reading =
                reading.ok_or_else(|| anyhow!("the bank has no entry of this model's IDR size"))?;
            println!("{}:", path.display());
            for m in &nearest {
                println!("  {}", match_line(m));
            }
            DegradationMeter::mono(&reading, area, &a.title)
                .draw(&mut display)
                .map_err(|e| anyhow!("drawing on the {what}: {e:?}"))?;
            display
                .flush()
                .map_err(|e| anyhow!("sending the picture to the {what}: {e:?}"))?;
            let wait = Duration::from_millis(a.interval_ms).saturating_sub(started.elapsed());
            std::thread::sleep(wait);
        }
        if !a.repeat {
            return Ok(());
        }
    }
}
