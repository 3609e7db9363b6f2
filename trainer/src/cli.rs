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
    /// Trains the teacher (stage 1) and then the student (stage 2).
    Train(cmd::train::TrainArgs),
    /// Evaluates weights on Gaussian8 and the anisotropic + noise grid.
    Eval(cmd::eval::EvalArgs),
    /// The paper's Fig. 6: PCA scatter plots of teacher and student IDRs over σ, with how well
    /// the IDR separates them.
    IdrPlot(cmd::idr_plot::IdrPlotArgs),
    /// Real-world KDSR: KDSRNet_T → KDSRNet_S → KDSR_S-GAN on Real-ESRGAN degradations.
    #[command(name = "train-realworld", alias = "train-gan")]
    TrainRealworld(cmd::realworld::TrainArgs),
    /// Evaluates weights on real-world validation pairs (PSNR / SSIM, LPIPS with its weights).
    #[command(name = "eval-realworld", alias = "eval-real")]
    EvalRealworld(cmd::realworld::EvalArgs),
}

/// Dispatches to the command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Forward(a) => cmd::forward::run(&a),
        Command::Train(a) => cmd::train::run(&a),
        Command::Eval(a) => cmd::eval::run(&a),
        Command::IdrPlot(a) => cmd::idr_plot::run(&a),
        Command::TrainRealworld(a) => cmd::realworld::run(&a),
        Command::EvalRealworld(a) => cmd::realworld::run_eval(&a),
    }
}
