//! The `converter` subcommands, one module each: their clap arguments and a `run` that returns
//! the text to print.

pub mod export;
pub mod inspect;

/// Parses `HxW` (e.g. `64x64`, `180x320`) into `(height, width)`, both at least 1.
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not HxW (e.g. 64x64)"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("`{s}`: `{v}` is not a size >= 1"))
    };
    Ok((p(h)?, p(w)?))
}
