//! `converter`: KDSR student checkpoints → ONNX graphs verified with tract. See `converter --help`.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(text) => {
            println!("{}", text.trim_end());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e
                .downcast_ref::<kdsr_converter::ConvertError>()
                .map_or(1, kdsr_converter::ConvertError::exit_code);
            std::process::ExitCode::from(code)
        }
    }
}
