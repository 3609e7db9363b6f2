//! The degradation meter: the blur and noise that `kdsr-edge inspect-degradation` names for an
//! image (the nearest entry of the model's degradation bank) drawn as three horizontal bars, in
//! any colour type (`BinaryColor` on an SSD1306, `Rgb565` on a TFT or in the simulator).
//!
//! | bar | value | full at |
//! |---|---|---|
//! | `BLUR` | the nearest entry's Gaussian blur σ (HR pixels), text `2.2px` | the bank's largest σ |
//! | `NOISE` | its noise σ in 0..255 units, text `5/255` | the bank's largest noise level |
//! | `FIT` | `exp(−KL)` of the match distance ([`kdsr_runtime::bank::Match::distance`]), text `87%` | a perfect match (KL 0) |
//!
//! # Layout
//! Each bar is a 1-pixel outline filled from the left in proportion to its value (at least one
//! pixel of fill for a non-zero value). With `labels` on and room for them, a row is
//! `LABEL [bar] value` in the largest font of 6×10, 5×8 and 4×6 whose line fits the row height
//! and whose 11 characters leave a bar of at least 16 pixels (4×6 needs 66 pixels of width and
//! 7-pixel rows), and a title line goes on top when a quarter of the height holds one. Otherwise the three bars split the whole area into equal rows with a 1-pixel gap. Any
//! size, 0×0 included, draws without panicking.

use embedded_graphics::Drawable;
use embedded_graphics::draw_target::{DrawTarget, DrawTargetExt};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{PixelColor, Point, Primitive, Size};
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use kdsr_runtime::bank::{Bank, Match};

use crate::scene::{FONTS, text_width};

/// One reading of the meter: the estimated degradation and the scales of its bars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// Blur σ of the nearest bank entry (HR pixels).
    pub blur_sigma: f32,
    /// Noise σ of the nearest bank entry (0..255 units).
    pub noise: f32,
    /// `KL(p_bank ‖ p_image)` of that entry (0 = identical).
    pub distance: f64,
    /// Blur σ that fills the `BLUR` bar.
    pub blur_max: f32,
    /// Noise that fills the `NOISE` bar.
    pub noise_max: f32,
}

impl Reading {
    /// The reading of `nearest` (the first of [`Bank::nearest`]), with bar scales from the
    /// bank's largest σ and noise (at least 1). `None` when `nearest` is empty.
    pub fn from_nearest(bank: &Bank, nearest: &[Match]) -> Option<Self> {
        let m = nearest.first()?;
        let max = |f: fn(&kdsr_runtime::bank::BankEntry) -> f32| {
            bank.entries.iter().map(f).fold(1.0f32, f32::max)
        };
        Some(Self {
            blur_sigma: m.entry.sigma,
            noise: m.entry.noise,
            distance: m.distance,
            blur_max: max(|e| e.sigma),
            noise_max: max(|e| e.noise),
        })
    }

    /// The match quality `exp(−distance)` in [0, 1].
    pub fn fit(&self) -> f32 {
        if self.distance.is_finite() {
            (-self.distance.max(0.0)).exp() as f32
        } else {
            0.0
        }
    }

    /// The three bars: label, fill fraction in [0, 1], value text.
    pub fn bars(&self) -> [(&'static str, f32, String); 3] {
        let frac = |v: f32, max: f32| {
            if max > 0.0 && v.is_finite() {
                (v / max).clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        [
            (
                "BLUR",
                frac(self.blur_sigma, self.blur_max),
                format!("{:.1}px", self.blur_sigma),
            ),
            (
                "NOISE",
                frac(self.noise, self.noise_max),
                format!("{:.0}/255", self.noise),
            ),
            (
                "FIT",
                self.fit(),
                format!("{:.0}%", f64::from(self.fit()) * 100.0),
            ),
        ]
    }
}

/// Colours of the meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterStyle<C> {
    /// Outlines, fills and text.
    pub foreground: C,
    /// Everything else (the area is cleared to it).
    pub background: C,
}

/// The meter drawable (see the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct DegradationMeter<'a, C> {
    /// What to show.
    pub reading: &'a Reading,
    /// Where (usually the whole display).
    pub area: Rectangle,
    /// Colours.
    pub style: MeterStyle<C>,
    /// Labels, values and title when they fit; bars only when `false`.
    pub labels: bool,
    /// The title line (shown when `labels` and there is room).
    pub title: &'a str,
}

impl<'a> DegradationMeter<'a, BinaryColor> {
    /// The monochrome meter of an OLED such as the SSD1306 (white on black, with labels).
    pub fn mono(reading: &'a Reading, area: Rectangle, title: &'a str) -> Self {
        Self {
            reading,
            area,
            style: MeterStyle {
                foreground: BinaryColor::On,
                background: BinaryColor::Off,
            },
            labels: true,
            title,
        }
    }
}

/// The fill of a bar of `inner` pixels at `fraction`: `round(fraction · inner)`, at least 1 for
/// a non-zero fraction.
pub fn fill_width(fraction: f32, inner: u32) -> u32 {
    if fraction.is_nan() || fraction <= 0.0 || inner == 0 {
        return 0;
    }
    ((fraction.min(1.0) * inner as f32).round() as u32).clamp(1, inner)
}

fn draw_bar<D: DrawTarget>(
    t: &mut D,
    rect: Rectangle,
    fraction: f32,
    fg: D::Color,
) -> Result<(), D::Error> {
    if rect.size.width == 0 || rect.size.height == 0 {
        return Ok(());
    }
    rect.into_styled(PrimitiveStyle::with_stroke(fg, 1))
        .draw(t)?;
    let inner = Size::new(
        rect.size.width.saturating_sub(2),
        rect.size.height.saturating_sub(2),
    );
    let w = fill_width(fraction, inner.width);
    if w > 0 && inner.height > 0 {
        t.fill_solid(
            &Rectangle::new(rect.top_left + Point::new(1, 1), Size::new(w, inner.height)),
            fg,
        )?;
    }
    Ok(())
}

/// Smallest bar width kept next to labels.
const MIN_LABELLED_BAR: u32 = 16;

/// The largest font whose line fits `row_h` pixels and whose labelled row (5 label characters,
/// 6 value characters, a bar of [`MIN_LABELLED_BAR`]) fits `width`, if any.
fn row_font(row_h: u32, width: u32) -> Option<&'static MonoFont<'static>> {
    FONTS.into_iter().find(|f| {
        let cw = f.character_size.width + f.character_spacing;
        f.character_size.height < row_h && 11 * cw + 3 + MIN_LABELLED_BAR <= width
    })
}

impl<C: PixelColor> Drawable for DegradationMeter<'_, C> {
    type Color = C;
    type Output = ();

    fn draw<D>(&self, target: &mut D) -> Result<(), D::Error>
    where
        D: DrawTarget<Color = C>,
    {
        let area = self.area.intersection(&target.bounding_box());
        let mut t = target.clipped(&area);
        t.fill_solid(&area, self.style.background)?;
        let (w, h) = (area.size.width, area.size.height);
        let fg = self.style.foreground;
        let bars = self.reading.bars();
        let labelled = self.labels;
        let title_font = row_font(h / 4, w).filter(|_| labelled);
        let top = title_font.map_or(0, |f| f.character_size.height + 2);
        let rows_h = h - top;
        let row_h = rows_h / 3;
        let font = row_font(row_h, w).filter(|_| labelled);
        if let Some(f) = title_font {
            let style = MonoTextStyle::new(f, fg);
            Text::with_baseline(self.title, area.top_left, style, Baseline::Top).draw(&mut t)?;
        }
        for (i, (label, fraction, value)) in bars.iter().enumerate() {
            let y = area.top_left.y + (top + i as u32 * row_h) as i32;
            let row = Rectangle::new(Point::new(area.top_left.x, y), Size::new(w, row_h));
            let bar = match font {
                Some(f) => {
                    let style = MonoTextStyle::new(f, fg);
                    let cw = f.character_size.width + f.character_spacing;
                    let label_w = 5 * cw + 1;
                    let value_w = 6 * cw;
                    let ty = y + (row_h.saturating_sub(f.character_size.height) / 2) as i32;
                    Text::with_baseline(
                        label,
                        Point::new(row.top_left.x, ty),
                        style,
                        Baseline::Top,
                    )
                    .draw(&mut t)?;
                    let vx = row.top_left.x + w.saturating_sub(text_width(value, f)) as i32;
                    Text::with_baseline(value, Point::new(vx, ty), style, Baseline::Top)
                        .draw(&mut t)?;
                    let bar_h = row_h.saturating_sub(2).min(f.character_size.height + 2);
                    Rectangle::new(
                        Point::new(
                            row.top_left.x + label_w as i32,
                            y + (row_h.saturating_sub(bar_h) / 2) as i32,
                        ),
                        Size::new(w.saturating_sub(label_w + value_w + 2), bar_h),
                    )
                }
                None => Rectangle::new(row.top_left, Size::new(w, row_h.saturating_sub(1))),
            };
            draw_bar(&mut t, bar, *fraction, fg)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rounds_and_keeps_nonzero_visible() {
        assert_eq!(fill_width(0.0, 10), 0);
        assert_eq!(fill_width(0.01, 10), 1);
        assert_eq!(fill_width(0.55, 10), 6);
        assert_eq!(fill_width(2.0, 10), 10);
        assert_eq!(fill_width(f32::NAN, 10), 0);
        assert_eq!(fill_width(0.5, 0), 0);
    }

    #[test]
    fn bar_values() {
        let r = Reading {
            blur_sigma: 2.2,
            noise: 5.0,
            distance: 0.0,
            blur_max: 4.0,
            noise_max: 20.0,
        };
        let b = r.bars();
        assert_eq!((b[0].1, b[0].2.as_str()), (0.55, "2.2px"));
        assert_eq!((b[1].1, b[1].2.as_str()), (0.25, "5/255"));
        assert_eq!((b[2].1, b[2].2.as_str()), (1.0, "100%"));
    }
}
