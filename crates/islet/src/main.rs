//! `islet` — the command-line program. It parses arguments, validates them into the layers'
//! own configuration, runs, and maps failures to exit statuses: 0 success, 1 runtime failure,
//! 2 bad usage or bad input, always with a one-line reason on stderr and never a backtrace.
#![forbid(unsafe_code)]

mod cli;
mod demo;
mod intel;
mod log;
mod policy;
mod read;
mod run;
mod serve;
mod suggest;
mod synth;

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: protocol events and per-flow parser state churn
/// small allocations, and glibc spent 32% of a full-metadata run in malloc/free; jemalloc was
/// measured slower than both (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A failure with the exit status it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage or bad input (exit 2).
    Input(String),
    /// Something failed at run time (exit 1).
    Runtime(String),
}

fn main() -> ExitCode {
    // A panic is a bug; still, never show a backtrace to an operator.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("islet: internal error: {info}");
    }));
    match cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(m)) => {
            eprintln!("islet: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("islet: {m}");
            ExitCode::from(1)
        }
    }
}
