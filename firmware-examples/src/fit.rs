//! Where an image goes in a display panel that may be smaller (or larger) than it: the fit/crop
//! policy.
//!
//! | [`Fit`] | image larger than the panel | image smaller than the panel |
//! |---|---|---|
//! | [`Fit::Crop`] (default) | centre crop at 1:1 pixels | centred at 1:1 |
//! | [`Fit::Contain`] | whole image shrunk (aspect kept, box-averaged), letterboxed | centred at 1:1 |
//! | [`Fit::Cover`] | shrunk (aspect kept) until it fills the panel, the excess centre-cropped | centred at 1:1 |
//!
//! Images are never enlarged: a small display shows real pixels (the point of a before/after
//! view is to see them), and a large one shows the image centred on the background. An empty
//! image or panel places nothing ([`place`] returns `None`); no size panics.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

/// The fit/crop policy (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Centre crop at 1:1 pixels.
    #[default]
    Crop,
    /// The whole image, shrunk to fit, letterboxed.
    Contain,
    /// Shrunk to fill the panel, the rest centre-cropped.
    Cover,
}

impl std::str::FromStr for Fit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "crop" => Ok(Self::Crop),
            "contain" | "fit" => Ok(Self::Contain),
            "cover" | "fill" => Ok(Self::Cover),
            _ => Err(format!("unknown fit `{s}` (crop, contain, cover)")),
        }
    }
}

/// Which source pixels go where: `src` (image coordinates) is resampled onto `dst` (display
/// coordinates). `dst` lies inside the panel; its size is `src`'s or smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The region of the image shown.
    pub src: Rectangle,
    /// Where it is shown.
    pub dst: Rectangle,
}

fn centred(outer: Rectangle, size: Size) -> Rectangle {
    let dx = (outer.size.width.saturating_sub(size.width) / 2) as i32;
    let dy = (outer.size.height.saturating_sub(size.height) / 2) as i32;
    Rectangle::new(outer.top_left + Point::new(dx, dy), size)
}

fn at_one_to_one(image: Size, panel: Rectangle) -> Placement {
    let size = Size::new(
        image.width.min(panel.size.width),
        image.height.min(panel.size.height),
    );
    Placement {
        src: centred(Rectangle::new(Point::zero(), image), size),
        dst: centred(panel, size),
    }
}

/// Places an `image`-sized picture in `panel` under `fit`; `None` when either is empty.
pub fn place(image: Size, panel: Rectangle, fit: Fit) -> Option<Placement> {
    if image.width == 0 || image.height == 0 || panel.size.width == 0 || panel.size.height == 0 {
        return None;
    }
    let (iw, ih) = (u64::from(image.width), u64::from(image.height));
    let (pw, ph) = (u64::from(panel.size.width), u64::from(panel.size.height));
    let fits = iw <= pw && ih <= ph;
    Some(match fit {
        Fit::Crop => at_one_to_one(image, panel),
        Fit::Contain if fits => at_one_to_one(image, panel),
        Fit::Contain => {
            let (dw, dh) = if iw * ph >= ih * pw {
                (pw, (ih * pw / iw).max(1))
            } else {
                ((iw * ph / ih).max(1), ph)
            };
            Placement {
                src: Rectangle::new(Point::zero(), image),
                dst: centred(panel, Size::new(dw as u32, dh as u32)),
            }
        }
        Fit::Cover if iw <= pw || ih <= ph => at_one_to_one(image, panel),
        Fit::Cover => {
            let (sw, sh) = if iw * ph > ih * pw {
                ((pw * ih / ph).clamp(1, iw), ih)
            } else {
                (iw, (ph * iw / pw).clamp(1, ih))
            };
            Placement {
                src: centred(
                    Rectangle::new(Point::zero(), image),
                    Size::new(sw as u32, sh as u32),
                ),
                dst: panel,
            }
        }
    })
}

/// Parses `"WxH"` (also `W×H`, `W,H`; [`kdsr_core::io::ImageSize`], the workspace's one size
/// syntax) into a [`Size`]; both sides must be positive.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let size: kdsr_core::io::ImageSize = s.parse()?;
    let side = |v: usize| u32::try_from(v).map_err(|_| format!("`{s}`: {v} is too large"));
    Ok(Size::new(side(size.width)?, side(size.height)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: i32, y: i32, w: u32, h: u32) -> Rectangle {
        Rectangle::new(Point::new(x, y), Size::new(w, h))
    }

    #[test]
    fn policies() {
        let panel = r(10, 20, 100, 50);
        let big = Size::new(400, 400);
        assert_eq!(
            place(big, panel, Fit::Crop),
            Some(Placement {
                src: r(150, 175, 100, 50),
                dst: panel
            })
        );
        assert_eq!(
            place(big, panel, Fit::Contain),
            Some(Placement {
                src: r(0, 0, 400, 400),
                dst: r(35, 20, 50, 50)
            })
        );
        assert_eq!(
            place(big, panel, Fit::Cover),
            Some(Placement {
                src: r(0, 100, 400, 200),
                dst: panel
            })
        );
        let small = Size::new(20, 10);
        for fit in [Fit::Crop, Fit::Contain, Fit::Cover] {
            assert_eq!(
                place(small, panel, fit),
                Some(Placement {
                    src: r(0, 0, 20, 10),
                    dst: r(50, 40, 20, 10)
                })
            );
            assert_eq!(place(Size::zero(), panel, fit), None);
            assert_eq!(place(small, r(0, 0, 0, 5), fit), None);
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("240x135"), Ok(Size::new(240, 135)));
        assert_eq!(parse_size("128×64"), Ok(Size::new(128, 64)));
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("240").is_err());
        assert!(parse_size("ax5").is_err());
    }

    #[test]
    fn extreme_aspects_never_empty() {
        for (iw, ih) in [(1, 10_000), (10_000, 1), (3, 3), (7, 1)] {
            for (pw, ph) in [(1, 1), (2, 1), (1, 2), (240, 135)] {
                for fit in [Fit::Crop, Fit::Contain, Fit::Cover] {
                    let p = place(Size::new(iw, ih), r(0, 0, pw, ph), fit).expect("placed");
                    assert!(p.dst.size.width >= 1 && p.dst.size.height >= 1);
                    assert!(p.dst.size.width <= p.src.size.width.max(1));
                    assert!(p.src.size.width <= iw && p.src.size.height <= ih);
                    assert!(p.dst.size.width <= pw && p.dst.size.height <= ph);
                }
            }
        }
    }
}
