//! RGB888 pictures drawn on any `DrawTarget<Color = Rgb565>`: placed by a [`Fit`] policy,
//! resampled (box average when shrinking), dithered ([`Dither`]) and clipped to the target.

use embedded_graphics::Drawable;
use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::{PointsIter, Rectangle};
use image::RgbImage;

use crate::color::{Dither, to_rgb565};
use crate::fit::{Fit, Placement, place};

/// Something that yields 8-bit RGB pixels.
pub trait RgbSource {
    /// Width and height in pixels.
    fn size(&self) -> Size;
    /// The pixel at `(x, y)`; callers stay inside [`RgbSource::size`].
    fn pixel(&self, x: u32, y: u32) -> [u8; 3];
}

impl RgbSource for RgbImage {
    fn size(&self) -> Size {
        Size::new(self.width(), self.height())
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.get_pixel(x, y).0
    }
}

/// An image enlarged `factor` times by pixel replication (nearest neighbour): the "before"
/// view, which puts the low-resolution input on the same grid as the ×`factor` output.
#[derive(Clone, Copy, Debug)]
pub struct Zoomed<'a, S> {
    /// The image.
    pub image: &'a S,
    /// The enlargement (0 is taken as 1).
    pub factor: u32,
}

impl<S: RgbSource> RgbSource for Zoomed<'_, S> {
    fn size(&self) -> Size {
        let f = self.factor.max(1);
        let s = self.image.size();
        Size::new(s.width.saturating_mul(f), s.height.saturating_mul(f))
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let f = self.factor.max(1);
        self.image.pixel(x / f, y / f)
    }
}

/// The mean colour of the source pixels that display pixel `d` of `p` covers: the box
/// `[⌊i·sw/dw⌋, ⌊(i+1)·sw/dw⌋)` per axis (at least one pixel); one pixel at 1:1.
fn sample<S: RgbSource>(source: &S, p: &Placement, d: Point) -> [u8; 3] {
    let span = |i: i32, s0: i32, sn: u32, dn: u32| {
        let i = u64::try_from(i).unwrap_or(0);
        let (sn, dn) = (u64::from(sn), u64::from(dn.max(1)));
        let a = (i * sn / dn).min(sn.saturating_sub(1));
        let b = ((i + 1) * sn / dn).clamp(a + 1, sn.max(1));
        (s0 as u64 + a, s0 as u64 + b)
    };
    let (x0, x1) = span(
        d.x - p.dst.top_left.x,
        p.src.top_left.x,
        p.src.size.width,
        p.dst.size.width,
    );
    let (y0, y1) = span(
        d.y - p.dst.top_left.y,
        p.src.top_left.y,
        p.src.size.height,
        p.dst.size.height,
    );
    if x1 - x0 == 1 && y1 - y0 == 1 {
        return source.pixel(x0 as u32, y0 as u32);
    }
    let mut sum = [0u64; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            for (s, v) in sum.iter_mut().zip(source.pixel(x as u32, y as u32)) {
                *s += u64::from(v);
            }
        }
    }
    let n = (x1 - x0) * (y1 - y0);
    sum.map(|s| ((s + n / 2) / n) as u8)
}

/// A picture in a panel: `source` placed in `area` by `fit`, dithered to [`Rgb565`]. Drawing
/// touches only `dst ∩ area ∩ target` (the rest of `area` is left as it was) and returns the
/// [`Placement`] used (`None` for an empty source or area).
#[derive(Clone, Copy, Debug)]
pub struct Picture<'a, S> {
    /// The pixels.
    pub source: &'a S,
    /// The panel, in display coordinates.
    pub area: Rectangle,
    /// The fit/crop policy.
    pub fit: Fit,
    /// RGB888 → Rgb565 reduction.
    pub dither: Dither,
}

impl<S: RgbSource> Drawable for Picture<'_, S> {
    type Color = Rgb565;
    type Output = Option<Placement>;

    fn draw<D>(&self, target: &mut D) -> Result<Self::Output, D::Error>
    where
        D: DrawTarget<Color = Rgb565>,
    {
        let Some(p) = place(self.source.size(), self.area, self.fit) else {
            return Ok(None);
        };
        let visible = p
            .dst
            .intersection(&self.area)
            .intersection(&target.bounding_box());
        if visible.size.width == 0 || visible.size.height == 0 {
            return Ok(Some(p));
        }
        let dither = self.dither;
        let source = self.source;
        target.fill_contiguous(
            &visible,
            visible
                .points()
                .map(|d| to_rgb565(sample(source, &p, d), d.x, d.y, dither)),
        )?;
        Ok(Some(p))
    }
}
