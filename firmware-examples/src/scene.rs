//! The before/after scene: the low-resolution input enlarged by pixel replication next to the
//! network's ×s output, each labelled, with a status line (sizes and latency) underneath.
//!
//! # Layout ([`layout`])
//! - The **status strip** is one text line at the bottom, in the largest of the fonts 6×10, 5×8
//!   and 4×6 whose width holds the text (4×6, clipped, when none does). It is left out when the
//!   display is shorter than three strips, or when there is no status text.
//! - The rest is split into two equal **panels**: side by side when it is at least as wide as
//!   tall (a 2-pixel gap from 32 pixels of width), stacked otherwise. "before" is the first
//!   (left/top), "after" the second.
//! - Both panels place their picture with the same [`Fit`] (see [`crate::fit`]). The "before"
//!   picture is the input on the output's grid ([`Zoomed`] by the scale), so with equal panel
//!   sizes both show the same part of the scene.
//! - A label ("LR", "KDSR") sits in each panel's top-left corner on the background colour when
//!   the panel is at least two lines tall and wide enough for it.
//!
//! Everything is clipped to the scene's area and the target: any display size, from 0×0 up,
//! draws without panicking.

use std::time::Duration;

use embedded_graphics::Drawable;
use embedded_graphics::draw_target::{DrawTarget, DrawTargetExt};
use embedded_graphics::mono_font::ascii::{FONT_4X6, FONT_5X8, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyleBuilder};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{Point, RgbColor, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

use crate::color::Dither;
use crate::fit::{Fit, Placement};
use crate::picture::{Picture, RgbSource, Zoomed};

/// Fonts tried for text, largest first.
pub const FONTS: [&MonoFont<'static>; 3] = [&FONT_6X10, &FONT_5X8, &FONT_4X6];

/// Label of the "before" panel.
pub const BEFORE_LABEL: &str = "LR";
/// Label of the "after" panel.
pub const AFTER_LABEL: &str = "KDSR";

/// Width in pixels of `text` in `font` (one line).
pub fn text_width(text: &str, font: &MonoFont<'_>) -> u32 {
    let n = text.chars().count() as u32;
    n * font.character_size.width + n.saturating_sub(1) * font.character_spacing
}

/// The largest font of [`FONTS`] in which `text` fits `width` pixels, else the smallest.
pub fn font_for(text: &str, width: u32) -> &'static MonoFont<'static> {
    FONTS
        .into_iter()
        .find(|f| text_width(text, f) <= width)
        .unwrap_or(&FONT_4X6)
}

/// How long one frame took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// IDR estimation (`None`: the IDR was reused, or the model has no separate IDE).
    pub ide: Option<Duration>,
    /// Super-resolution (all tiles).
    pub sr: Duration,
}

impl Latency {
    /// IDE + SR.
    pub fn total(&self) -> Duration {
        self.sr + self.ide.unwrap_or_default()
    }
}

/// The status line of a frame: `"64x48>256x192 SR 345ms IDE 41ms"` (`IDR cached` when the IDR
/// was reused).
pub fn status_line(lr: Size, sr: Size, latency: &Latency) -> String {
    let ide = match latency.ide {
        Some(d) => format!("IDE {}ms", d.as_millis()),
        None => "IDR cached".to_owned(),
    };
    format!(
        "{}x{}>{}x{} SR {}ms {ide}",
        lr.width,
        lr.height,
        sr.width,
        sr.height,
        latency.sr.as_millis()
    )
}

/// Where the parts of the scene go (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SceneLayout {
    /// The "before" panel.
    pub before: Rectangle,
    /// The "after" panel.
    pub after: Rectangle,
    /// The status strip and its font, if shown.
    pub status: Option<(Rectangle, &'static MonoFont<'static>)>,
}

/// Splits `area` into the panels and the status strip for `status` text.
pub fn layout(area: Rectangle, status: Option<&str>) -> SceneLayout {
    let Size { width, height } = area.size;
    let status = status.and_then(|text| {
        let font = font_for(text, width);
        let strip = font.character_size.height + 2;
        (height >= 3 * strip).then(|| {
            let rect = Rectangle::new(
                area.top_left + Point::new(0, (height - strip) as i32),
                Size::new(width, strip),
            );
            (rect, font)
        })
    });
    let panels_h = height - status.map_or(0, |(r, _)| r.size.height);
    let (before, after) = if width >= panels_h {
        let gap = if width >= 32 { 2 } else { 0 };
        let pw = (width - gap) / 2;
        (
            Rectangle::new(area.top_left, Size::new(pw, panels_h)),
            Rectangle::new(
                area.top_left + Point::new((width - pw) as i32, 0),
                Size::new(pw, panels_h),
            ),
        )
    } else {
        let gap = if panels_h >= 32 { 2 } else { 0 };
        let ph = (panels_h - gap) / 2;
        (
            Rectangle::new(area.top_left, Size::new(width, ph)),
            Rectangle::new(
                area.top_left + Point::new(0, (panels_h - ph) as i32),
                Size::new(width, ph),
            ),
        )
    };
    SceneLayout {
        before,
        after,
        status,
    }
}

/// The before/after scene of one frame (see the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct BeforeAfter<'a> {
    /// The low-resolution input.
    pub lr: &'a RgbImage,
    /// The network's output.
    pub sr: &'a RgbImage,
    /// The upscaling factor (the "before" enlargement).
    pub scale: u32,
    /// Where on the target the scene goes (usually the whole display).
    pub area: Rectangle,
    /// The fit/crop policy of both panels.
    pub fit: Fit,
    /// RGB888 → Rgb565 reduction.
    pub dither: Dither,
    /// The status line ([`status_line`]), if any.
    pub status: Option<&'a str>,
    /// Background, label and status colours.
    pub colors: SceneColors,
}

/// Colours of the scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SceneColors {
    /// Behind the pictures and the text.
    pub background: Rgb565,
    /// Labels and status text.
    pub text: Rgb565,
}

impl Default for SceneColors {
    fn default() -> Self {
        Self {
            background: Rgb565::BLACK,
            text: Rgb565::WHITE,
        }
    }
}

/// What [`BeforeAfter`] drew.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SceneOutput {
    /// The layout used.
    pub layout: SceneLayout,
    /// The placements of the "before" and "after" pictures (`None` for an empty one).
    pub before: Option<Placement>,
    /// See `before`.
    pub after: Option<Placement>,
}

impl<'a> BeforeAfter<'a> {
    /// A scene covering the whole of `target_area` with the default fit, dither and colours.
    pub fn new(lr: &'a RgbImage, sr: &'a RgbImage, scale: u32, target_area: Rectangle) -> Self {
        Self {
            lr,
            sr,
            scale,
            area: target_area,
            fit: Fit::default(),
            dither: Dither::default(),
            status: None,
            colors: SceneColors::default(),
        }
    }
}

fn draw_label<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    panel: Rectangle,
    text: &str,
    colors: SceneColors,
) -> Result<(), D::Error> {
    let font = font_for(text, panel.size.width.saturating_sub(2));
    let fits = text_width(text, font) + 2 <= panel.size.width
        && 2 * (font.character_size.height + 2) <= panel.size.height;
    if !fits {
        return Ok(());
    }
    let style = MonoTextStyleBuilder::new()
        .font(font)
        .text_color(colors.text)
        .background_color(colors.background)
        .build();
    Text::with_baseline(
        text,
        panel.top_left + Point::new(1, 1),
        style,
        Baseline::Top,
    )
    .draw(target)?;
    Ok(())
}

impl Drawable for BeforeAfter<'_> {
    type Color = Rgb565;
    type Output = SceneOutput;

    fn draw<D>(&self, target: &mut D) -> Result<Self::Output, D::Error>
    where
        D: DrawTarget<Color = Rgb565>,
    {
        let area = self.area.intersection(&target.bounding_box());
        let layout = layout(area, self.status);
        let mut t = target.clipped(&area);
        t.fill_solid(&area, self.colors.background)?;
        let zoomed = Zoomed {
            image: self.lr,
            factor: self.scale,
        };
        let before = Picture {
            source: &zoomed,
            area: layout.before,
            fit: self.fit,
            dither: self.dither,
        }
        .draw(&mut t)?;
        let after = Picture {
            source: self.sr,
            area: layout.after,
            fit: self.fit,
            dither: self.dither,
        }
        .draw(&mut t)?;
        if zoomed.size() != Size::zero() {
            draw_label(&mut t, layout.before, BEFORE_LABEL, self.colors)?;
        }
        if self.sr.size() != Size::zero() {
            draw_label(&mut t, layout.after, AFTER_LABEL, self.colors)?;
        }
        if let (Some((strip, font)), Some(text)) = (layout.status, self.status) {
            let style = MonoTextStyleBuilder::new()
                .font(font)
                .text_color(self.colors.text)
                .build();
            let mut s = t.clipped(&strip);
            Text::with_baseline(
                text,
                strip.top_left + Point::new(0, 1),
                style,
                Baseline::Top,
            )
            .draw(&mut s)?;
        }
        Ok(SceneOutput {
            layout,
            before,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_orientations() {
        let l = layout(
            Rectangle::new(Point::zero(), Size::new(240, 135)),
            Some("x"),
        );
        let (strip, font) = l.status.expect("status strip");
        assert_eq!(font.character_size, Size::new(6, 10));
        assert_eq!(
            strip,
            Rectangle::new(Point::new(0, 123), Size::new(240, 12))
        );
        assert_eq!(l.before, Rectangle::new(Point::zero(), Size::new(119, 123)));
        assert_eq!(
            l.after,
            Rectangle::new(Point::new(121, 0), Size::new(119, 123))
        );
        let l = layout(Rectangle::new(Point::zero(), Size::new(240, 320)), None);
        assert_eq!(l.status, None);
        assert_eq!(l.before, Rectangle::new(Point::zero(), Size::new(240, 159)));
        assert_eq!(
            l.after,
            Rectangle::new(Point::new(0, 161), Size::new(240, 159))
        );
        let l = layout(Rectangle::new(Point::zero(), Size::new(0, 0)), Some("x"));
        assert_eq!(l.status, None);
        assert_eq!(l.before.size, Size::zero());
    }

    #[test]
    fn status_text() {
        let lat = Latency {
            ide: Some(Duration::from_millis(41)),
            sr: Duration::from_millis(345),
        };
        assert_eq!(
            status_line(Size::new(64, 48), Size::new(256, 192), &lat),
            "64x48>256x192 SR 345ms IDE 41ms"
        );
        let lat = Latency { ide: None, ..lat };
        assert_eq!(
            status_line(Size::new(1, 2), Size::new(4, 8), &lat),
            "1x2>4x8 SR 345ms IDR cached"
        );
        assert_eq!(font_for("abc", 5).character_size, Size::new(4, 6));
    }
}
