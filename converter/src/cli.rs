//! Command-line interface: a thin layer over the library's commands.
//!
//! Exit codes: 0 success, 1 I/O or other failure, 2 usage error (clap), 3 bad input (config,
//! weights, IDR, image, options), 4 verification failed (tract error or a difference above the
//! tolerance).

use anyhow::Context;
use clap::{Parser, Subcommand};
use kdsr_converter::cmd;

/// KDSR student checkpoints → ONNX graphs (dynamic, split, folded, batched), loaded back and
/// verified with tract against a plain-Rust reference forward.
#[derive(Debug, Parser)]
#[command(name = "converter", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes ONNX graph(s) for a student checkpoint and reports parameters, MACs, size, the
    /// difference to the reference forward and tract latency.
    Export(Box<cmd::export::ExportArgs>),
    /// Prints the canonical dump of an ONNX graph (metadata, shapes, initializers, nodes).
    Inspect(cmd::inspect::InspectArgs),
}

/// Dispatches to the command; returns the text to print.
pub fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::Export(a) => cmd::export::run(&a)
            .with_context(|| format!("exporting {} to {}", a.weights.display(), a.out.display())),
        Command::Inspect(a) => {
            cmd::inspect::run(&a).with_context(|| format!("inspecting {}", a.model.display()))
        }
    }
}
