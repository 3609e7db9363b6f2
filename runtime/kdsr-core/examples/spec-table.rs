//! Prints every preset's parameter counts and MACs as a markdown table — the source of the
//! numbers in README's model table. Run: `cargo run -p kdsr-core --example spec-table [H W]`
//! (LR size, default 180 320).

use kdsr_core::spec::macs::Counting;
use kdsr_core::spec::{KdsrConfig, PRESETS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (h, w) = match args.as_slice() {
        [] => (180, 320),
        [h, w] => (*h, *w),
        _ => return Err("usage: spec-table [LR_HEIGHT LR_WIDTH]".into()),
    };
    println!(
        "| preset | C | N | R | params | GMACs @ LR {h}×{w} (all ops) | (paper-style) | SR net only (all) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in PRESETS {
        let c = KdsrConfig::preset(name)?;
        println!(
            "| {name} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            c.n_feats,
            c.n_blocks,
            c.n_resblocks,
            c.param_count(),
            c.macs(h, w, Counting::All) as f64 / 1e9,
            c.macs(h, w, Counting::Paper) as f64 / 1e9,
            c.sr_macs(h, w, Counting::All) as f64 / 1e9,
        );
    }
    Ok(())
}
