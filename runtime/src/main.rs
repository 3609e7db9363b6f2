//! `kdsr-edge`: KDSR ×4 blind super-resolution on CPUs and ARM boards (see `kdsr-edge --help`).
//!
//! On Linux with glibc the process re-executes itself once with `MALLOC_MMAP_THRESHOLD_=1048576`
//! unless that variable is already set: glibc's default dynamic mmap threshold lets the large
//! per-tile tensors of later tiles come from a fragmenting heap, which raised peak RSS of a
//! tiled 1920×1080 ×4 run by up to 25 % and made it vary from run to run (436–552 MiB measured
//! for the edge preset; 392 MiB with the fixed threshold). Set the variable yourself to skip the
//! re-exec — needed under qemu-user without binfmt_misc, where the re-exec cannot run the foreign
//! binary (`scripts/test-arm.sh` sets it).

mod cli;
mod cmd;

use clap::Parser;

/// Replaces this process with itself under a fixed glibc mmap threshold (see the crate docs);
/// returns only when that is not needed or not possible.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(VAR, "1048576")
            .exec();
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_threshold() {}

fn main() -> std::process::ExitCode {
    fix_malloc_threshold();
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("kdsr-edge: error: {e:#}");
            cli::exit_code_of(&e).into()
        }
    }
}
