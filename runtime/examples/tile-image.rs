//! Builds a test image of any size by mirror-tiling a photo (for memory and speed measurements,
//! e.g. a 1920×1080 input from a Set14 image).
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example tile-image -- data/Set14/baboon.png 1920 1080 /tmp/1080p.png
//! ```

use image::{GenericImageView, RgbImage};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, w, h, out] = args.as_slice() else {
        anyhow::bail!("usage: tile-image IN.png WIDTH HEIGHT OUT.png");
    };
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let img = image::open(src)?.to_rgb8();
    let (sw, sh) = img.dimensions();
    let mirror = |v: u32, n: u32| {
        let p = v % (2 * n);
        if p < n { p } else { 2 * n - 1 - p }
    };
    let out_img = RgbImage::from_fn(w, h, |x, y| *img.get_pixel(mirror(x, sw), mirror(y, sh)));
    out_img.save(out)?;
    eprintln!(
        "{out}: {w}x{h} mirror-tiled from {src} ({:?})",
        img.dimensions()
    );
    let _ = image::open(out)?.dimensions();
    Ok(())
}
