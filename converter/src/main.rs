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
            // The chain without repeats: an I/O error's text is often part of its parent's.
            let mut msg = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if msg.contains(&text) {
                    continue;
                }
                if !msg.is_empty() {
                    msg.push_str(": ");
                }
                msg.push_str(&text);
            }
            eprintln!("error: {msg}");
            let code = e
                .downcast_ref::<kdsr_converter::ConvertError>()
                .map_or(1, kdsr_converter::ConvertError::exit_code);
            std::process::ExitCode::from(code)
        }
    }
}
