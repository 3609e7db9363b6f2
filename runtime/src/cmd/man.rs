//! `kdsr-edge man --out-dir DIR`: the manual pages, rendered by clap_mangen from the same clap
//! definitions as `--help`, so they cannot drift from it.

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// Writes `kdsr-edge.1` and `kdsr-edge-SUBCOMMAND.1` for every visible subcommand.
pub fn run(a: ManArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("{}: cannot create the folder", a.out_dir.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, &a.out_dir)
        .with_context(|| format!("{}: cannot write the manual pages", a.out_dir.display()))?;
    Ok(0)
}
