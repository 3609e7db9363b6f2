//! An in-memory `DrawTarget`: the display of the tests and of headless renders, exportable as an
//! RGB image (PNG).

use std::convert::Infallible;

use embedded_graphics::Pixel;
use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::OriginDimensions;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{PixelColor, Point, Size};
use image::RgbImage;

use crate::color::rgb565_to_rgb888;

/// A `width × height` framebuffer of `C` pixels, row-major. Pixels drawn outside it are ignored
/// and counted ([`Framebuffer::out_of_bounds`]), so a test can check that drawing code clips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framebuffer<C> {
    size: Size,
    pixels: Vec<C>,
    out_of_bounds: usize,
}

impl<C: PixelColor> Framebuffer<C> {
    /// A framebuffer filled with `fill`.
    pub fn new(size: Size, fill: C) -> Self {
        Self {
            size,
            pixels: vec![fill; size.width as usize * size.height as usize],
            out_of_bounds: 0,
        }
    }

    fn index(&self, p: Point) -> Option<usize> {
        let (x, y) = (u32::try_from(p.x).ok()?, u32::try_from(p.y).ok()?);
        (x < self.size.width && y < self.size.height)
            .then(|| y as usize * self.size.width as usize + x as usize)
    }

    /// The pixel at `p`, `None` outside.
    pub fn pixel(&self, p: Point) -> Option<C> {
        self.index(p).map(|i| self.pixels[i])
    }

    /// All pixels, row-major.
    pub fn pixels(&self) -> &[C] {
        &self.pixels
    }

    /// How many pixels were drawn outside the framebuffer (and ignored).
    pub fn out_of_bounds(&self) -> usize {
        self.out_of_bounds
    }
}

impl Framebuffer<Rgb565> {
    /// The contents as 8-bit RGB ([`rgb565_to_rgb888`], bit replication).
    pub fn to_rgb_image(&self) -> RgbImage {
        let raw = self
            .pixels
            .iter()
            .flat_map(|c| rgb565_to_rgb888(*c))
            .collect();
        RgbImage::from_raw(self.size.width, self.size.height, raw)
            .unwrap_or_else(|| RgbImage::new(0, 0))
    }
}

impl<C: PixelColor> OriginDimensions for Framebuffer<C> {
    fn size(&self) -> Size {
        self.size
    }
}

impl<C: PixelColor> DrawTarget for Framebuffer<C> {
    type Color = C;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<C>>,
    {
        for Pixel(p, c) in pixels {
            match self.index(p) {
                Some(i) => self.pixels[i] = c,
                None => self.out_of_bounds += 1,
            }
        }
        Ok(())
    }
}
