//! Tiling: overlapping windows whose centres tile the image exactly, so a tiled run equals an
//! untiled one.
//!
//! # Why crop-centre tiling is exact
//! Given `D`, the KDSR SR network is a stack of 3×3 convolutions (with zero padding), pointwise
//! ops and pixel shuffles: an output pixel depends only on the LR pixels within its receptive
//! radius, and the IDR is estimated once per image and shared by every tile. Each tile is run on a
//! window of the LR image that extends at least [`receptive_radius`] pixels past the part of it
//! that is kept (its *core*), except at the image borders, where the window's zero padding is the
//! image's own. So every kept pixel sees exactly the inputs it sees in an untiled run; the only
//! differences are float32 summation-order effects of tract's kernels (measured below 1e-5).
//! No blending is needed: cores meet edge to edge, there is nothing to feather.
//!
//! All windows of an image have the same size (the last window along an axis is shifted back to
//! end at the border instead of being cut short), so an image needs one optimized plan.

/// The receptive radius of the SR network in LR pixels: every 3×3 convolution adds one LR pixel
/// (those running after a pixel shuffle add half or a quarter, counted as one).
///
/// The count is `1` (head) `+ 2·N` (each IDR-DCRB: the dynamic depthwise 3×3 and `conv1`)
/// `+ 1` (`body.1`) `+ stages` (one conv per upsampler stage: 2 for ×4, 1 for ×2 and ×3)
/// `+ 1` (`tail.1`) = `2·N + 5` at ×4: 9 for `student-tiny` (N = 2), 21 for `student-edge`
/// (N = 8), 111 for `student-m` (N = 53).
pub fn receptive_radius(n_blocks: usize, scale: u32) -> usize {
    let stages = if scale == 4 { 2 } else { 1 };
    1 + 2 * n_blocks + 1 + stages + 1
}

/// One window along one axis, in LR pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First pixel of the window the network sees.
    pub start: usize,
    /// Window length.
    pub len: usize,
    /// First pixel of the core (the part kept), `start <= core_start`.
    pub core_start: usize,
    /// One past the last core pixel, `core_end <= start + len`.
    pub core_end: usize,
}

/// Windows of length `min(window, len)` covering `0..len`, overlapping so that every core pixel
/// has at least `margin` pixels of context inside the window on each side that is not an image
/// border. Cores partition `0..len` in order.
///
/// Fails (`None`) when `window <= 2·margin` and the axis is longer than the window (no core would
/// be left), or when `len == 0`.
pub fn spans(len: usize, window: usize, margin: usize) -> Option<Vec<Span>> {
    if len == 0 || window == 0 {
        return None;
    }
    if len <= window {
        return Some(vec![Span {
            start: 0,
            len,
            core_start: 0,
            core_end: len,
        }]);
    }
    if window <= 2 * margin {
        return None;
    }
    let step = window - 2 * margin;
    let n = (len - window).div_ceil(step) + 1;
    let last = len - window;
    let starts: Vec<usize> = (0..n)
        .map(|i| {
            if n == 1 {
                0
            } else {
                (i * last + (n - 1) / 2) / (n - 1)
            }
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut core_start = 0;
    for i in 0..n {
        let core_end = if i + 1 == n {
            len
        } else {
            (starts[i] + starts[i + 1] + window) / 2
        };
        out.push(Span {
            start: starts[i],
            len: window,
            core_start,
            core_end,
        });
        core_start = core_end;
    }
    Some(out)
}

/// A tiling of an `h × w` LR image: the row spans times the column spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileGrid {
    /// Spans along the height.
    pub rows: Vec<Span>,
    /// Spans along the width.
    pub cols: Vec<Span>,
    /// Context kept around each core (LR pixels).
    pub margin: usize,
}

impl TileGrid {
    /// Tiles `h × w` with windows of `window = (height, width)` and context `margin`
    /// (`None` when the window leaves no core, see [`spans`]).
    pub fn new(h: usize, w: usize, window: (usize, usize), margin: usize) -> Option<Self> {
        Some(Self {
            rows: spans(h, window.0, margin)?,
            cols: spans(w, window.1, margin)?,
            margin,
        })
    }

    /// One tile covering the whole image.
    pub fn whole(h: usize, w: usize) -> Option<Self> {
        Self::new(h, w, (h, w), 0)
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.rows.len() * self.cols.len()
    }

    /// Whether the grid is empty (never, for a grid built by [`TileGrid::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The window size every tile is run at: `(height, width)`.
    pub fn window(&self) -> (usize, usize) {
        (
            self.rows.first().map_or(0, |s| s.len),
            self.cols.first().map_or(0, |s| s.len),
        )
    }

    /// Network input pixels over image pixels (1.0 untiled).
    pub fn overhead(&self) -> f64 {
        let (wh, ww) = self.window();
        let h = self.rows.last().map_or(0, |s| s.core_end);
        let w = self.cols.last().map_or(0, |s| s.core_end);
        (self.len() * wh * ww) as f64 / (h * w).max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_partition_and_keep_context() {
        for len in 1..200 {
            for window in [8, 19, 20, 21, 33, 64] {
                for margin in [0, 3, 9] {
                    let Some(sp) = spans(len, window, margin) else {
                        assert!(window <= 2 * margin && len > window);
                        continue;
                    };
                    assert_eq!(sp[0].core_start, 0);
                    assert_eq!(sp.last().map(|s| s.core_end), Some(len));
                    for (i, s) in sp.iter().enumerate() {
                        assert!(s.start + s.len <= len);
                        assert!(s.core_start < s.core_end, "{len} {window} {margin} {sp:?}");
                        if i > 0 {
                            assert_eq!(sp[i - 1].core_end, s.core_start);
                            assert!(s.core_start >= s.start + margin);
                        }
                        if i + 1 < sp.len() {
                            assert!(s.core_end + margin <= s.start + s.len);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn receptive_radius_of_presets() {
        assert_eq!(receptive_radius(2, 4), 9);
        assert_eq!(receptive_radius(8, 4), 21);
        assert_eq!(receptive_radius(53, 4), 111);
    }
}
