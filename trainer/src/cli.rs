//! Command-line interface: a thin layer over the library's commands.

use clap::{Parser, Subcommand};
use kdsr_trainer::cmd;

/// KDSR teacher → student training on libtorch (CUDA when present, CPU otherwise).
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a network on tensors from a safetensors file (parity checks with other implementations).
    Forward(cmd::forward::ForwardArgs),
}

/// Dispatches to the command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Forward(a) => cmd::forward::run(&a),
    }
}
