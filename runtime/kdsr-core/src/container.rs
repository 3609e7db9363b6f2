//! Container-level checks that the decoders do not make: where a JPEG's marker structure ends
//! and how many pages a TIFF holds. These walk the segment / IFD structure only (lengths and
//! offsets); no pixel data is decoded. [`crate::io::load_image`] (the trainer's and converter's
//! image loading) and `kdsr-edge` both refuse a JPEG cut before its end-of-image marker with
//! [`truncated_jpeg`]'s message: the decoder would fill the missing part grey and succeed.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

/// How a JPEG stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JpegEnd {
    /// The end-of-image marker (`FF D9`) was reached.
    Complete,
    /// The stream ended (at this byte offset) before the end-of-image marker: inside a segment,
    /// inside entropy-coded data, or between segments.
    Truncated(u64),
    /// Not a JPEG marker structure this walk understands (no `FF D8` start, or a malformed
    /// segment length); the decoder decides.
    Unknown,
}

/// The error text for a JPEG whose data end at byte `at` before the end-of-image marker
/// ([`JpegEnd::Truncated`]).
pub fn truncated_jpeg(at: u64) -> String {
    format!(
        "truncated JPEG: the data end at byte {at} before the end-of-image marker, so part of \
         the picture is missing (the decoder would fill it grey); re-copy the file"
    )
}

/// Bytes of a [`BufRead`] with the position counted.
struct Bytes<'r, R> {
    r: &'r mut R,
    pos: u64,
}

impl<R: BufRead> Bytes<'_, R> {
    fn next(&mut self) -> io::Result<Option<u8>> {
        let buf = self.r.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.r.consume(1);
        self.pos += 1;
        Ok(Some(b))
    }

    /// Skips `n` bytes; `false` when the stream ends first.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let k = (buf.len() as u64).min(n) as usize;
            self.r.consume(k);
            self.pos += k as u64;
            n -= k as u64;
        }
        Ok(true)
    }

    /// Skips entropy-coded data up to the next `FF` byte (consumed); `false` at the end.
    fn skip_to_ff(&mut self) -> io::Result<bool> {
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            match buf.iter().position(|&b| b == 0xFF) {
                Some(i) => {
                    self.r.consume(i + 1);
                    self.pos += i as u64 + 1;
                    return Ok(true);
                }
                None => {
                    let k = buf.len();
                    self.r.consume(k);
                    self.pos += k as u64;
                }
            }
        }
    }
}

/// Walks a JPEG's marker segments from `SOI` to `EOI`, skipping each segment by its length and
/// the entropy-coded data after each `SOS` (up to the next marker that is not a stuffed `FF 00`
/// or a restart marker). A file cut anywhere before its `EOI` ends the walk early, for baseline
/// and progressive files alike; an EXIF thumbnail's own `EOI` inside `APP1` is skipped with its
/// segment. Bytes after `EOI` are not read.
pub fn jpeg_end<R: BufRead>(r: &mut R) -> io::Result<JpegEnd> {
    let mut b = Bytes { r, pos: 0 };
    if (b.next()?, b.next()?) != (Some(0xFF), Some(0xD8)) {
        return Ok(JpegEnd::Unknown);
    }
    let mut pending: Option<u8> = None;
    loop {
        let marker = match pending.take() {
            Some(m) => m,
            None => {
                // Find the next marker: FF (fill FFs) code. Stray bytes between segments are
                // tolerated, as the decoder tolerates them.
                let mut byte = b.next()?;
                while let Some(x) = byte
                    && x != 0xFF
                {
                    byte = b.next()?;
                }
                if byte.is_none() {
                    return Ok(JpegEnd::Truncated(b.pos));
                }
                let mut code = b.next()?;
                while code == Some(0xFF) {
                    code = b.next()?;
                }
                match code {
                    Some(c) => c,
                    None => return Ok(JpegEnd::Truncated(b.pos)),
                }
            }
        };
        match marker {
            0xD9 => return Ok(JpegEnd::Complete),
            // Markers without a length: TEM, restart markers, a stuffed zero.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let (Some(hi), Some(lo)) = (b.next()?, b.next()?) else {
            return Ok(JpegEnd::Truncated(b.pos));
        };
        let len = u16::from_be_bytes([hi, lo]);
        if len < 2 {
            return Ok(JpegEnd::Unknown);
        }
        if !b.skip(u64::from(len) - 2)? {
            return Ok(JpegEnd::Truncated(b.pos));
        }
        if marker != 0xDA {
            continue;
        }
        // Entropy-coded data after SOS: ends at a marker other than FF 00 and RSTn.
        'scan: loop {
            if !b.skip_to_ff()? {
                return Ok(JpegEnd::Truncated(b.pos));
            }
            loop {
                match b.next()? {
                    None => return Ok(JpegEnd::Truncated(b.pos)),
                    Some(0xFF) => {}
                    Some(0x00 | 0xD0..=0xD7) => continue 'scan,
                    Some(m) => {
                        pending = Some(m);
                        break 'scan;
                    }
                }
            }
        }
    }
}

/// The number of images (pages) in a TIFF's main IFD chain, counted up to 2, for classic TIFF
/// and BigTIFF. A next-IFD offset beyond the end of the file is not counted.
pub fn tiff_pages<R: Read + Seek>(r: &mut R) -> io::Result<usize> {
    let len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 16];
    r.read_exact(&mut head[..8])?;
    let le = match &head[..2] {
        b"II" => true,
        b"MM" => false,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a TIFF")),
    };
    let u16_at = |b: &[u8]| {
        let a = [b[0], b[1]];
        if le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    };
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let u64_at = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        if le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    };
    let big = match u16_at(&head[2..4]) {
        42 => false,
        43 => true,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a TIFF")),
    };
    let first = if big {
        r.read_exact(&mut head[8..16])?;
        u64_at(&head[8..16])
    } else {
        u64::from(u32_at(&head[4..8]))
    };
    if first == 0 || first >= len {
        return Ok(0);
    }
    r.seek(SeekFrom::Start(first))?;
    let (entries, entry_size) = if big {
        let mut c = [0u8; 8];
        r.read_exact(&mut c)?;
        (u64_at(&c), 20u64)
    } else {
        let mut c = [0u8; 2];
        r.read_exact(&mut c)?;
        (u64::from(u16_at(&c)), 12u64)
    };
    r.seek(SeekFrom::Current(
        i64::try_from(entries.saturating_mul(entry_size)).unwrap_or(i64::MAX),
    ))?;
    let next = if big {
        let mut n = [0u8; 8];
        r.read_exact(&mut n)?;
        u64_at(&n)
    } else {
        let mut n = [0u8; 4];
        r.read_exact(&mut n)?;
        u64::from(u32_at(&n))
    };
    Ok(if next != 0 && next < len { 2 } else { 1 })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn jpeg_walk_sees_the_end_marker_and_cuts() {
        // SOI, APP0 (len 4), SOS (len 3) with data holding a stuffed FF00 and RST0, EOI.
        let full: &[u8] = &[
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 1, 2, 0xFF, 0xDA, 0x00, 0x03, 9, 0x12, 0xFF, 0x00,
            0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_end(&mut &full[..]).unwrap(), JpegEnd::Complete);
        for cut in 2..full.len() {
            assert!(
                matches!(jpeg_end(&mut &full[..cut]).unwrap(), JpegEnd::Truncated(_)),
                "cut at {cut}"
            );
        }
        assert_eq!(jpeg_end(&mut &b"GIF89a"[..]).unwrap(), JpegEnd::Unknown);
    }
}
