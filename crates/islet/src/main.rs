//! `islet` — the command-line program. It parses arguments, validates them into the layers'
//! own configuration, runs, and maps failures to exit statuses: 0 success, 1 runtime failure,
//! 2 bad usage or bad input, always with a one-line reason on stderr and never a backtrace.
#![forbid(unsafe_code)]

/// A library options struct from clap arguments with the same field names:
/// `same!(a => Options; copy x y; clone z; w: expr)` copies `x` and `y`, clones `z`, and sets
/// the other fields (`w`) from expressions.
macro_rules! same {
    ($a:ident => $t:ident; copy $($c:ident)*; clone $($k:ident)* $(; $f:ident: $e:expr)*) => {
        $t { $($c: $a.$c,)* $($k: $a.$k.clone(),)* $($f: $e,)* }
    };
}

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

/// Which failures of the libraries are bad usage or bad input (exit 2); the rest are runtime
/// failures (exit 1). The message is the error's own.
macro_rules! exit_status {
    ($($t:ty => $input:pat,)*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                #[allow(unreachable_patterns, reason = "some errors are all bad input")]
                match e {
                    $input => Failure::Input(e.to_string()),
                    _ => Failure::Runtime(e.to_string()),
                }
            }
        }
    )*};
}

use islet_sensor::{
    demo::DemoError, live_session::LiveError, offline::ReadError, session::OutputError,
    simulate::SimulateError, suggest::SuggestError,
};

exit_status! {
    ReadError => ReadError::Config(_) | ReadError::Capture(_) | ReadError::Intel(_)
        | ReadError::Policy(_) | ReadError::Output(OutputError::Settings(_)),
    // Once the sockets are open, failing to drop privileges, write, capture or deliver is
    // a runtime failure.
    LiveError => LiveError::Config(_) | LiveError::Settings(_) | LiveError::Interface(_)
        | LiveError::NoUser(_) | LiveError::Privilege | LiveError::Intel(_)
        | LiveError::Policy(_) | LiveError::Open(_) | LiveError::Output(OutputError::Settings(_)),
    DemoError => DemoError::Profile(_) | DemoError::Read(ReadError::Config(_)
        | ReadError::Capture(_) | ReadError::Intel(_) | ReadError::Policy(_)
        | ReadError::Output(OutputError::Settings(_))),
    SimulateError => SimulateError::Policy(_) | SimulateError::Inventory(_)
        | SimulateError::Capture(_),
    SuggestError => SuggestError::Inventory(_) | SuggestError::Capture(_),
    islet_intel::feed::FeedError => _,
    islet_policy::signing::SigningError => _,
}

fn main() -> ExitCode {
    // A panic is a bug; still, never show a backtrace to an operator.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("islet: internal error: {info}");
    }));
    let (m, status) = match cli::main() {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Input(m)) => (m, 2),
        Err(Failure::Runtime(m)) => (m, 1),
    };
    eprintln!("islet: {m}");
    ExitCode::from(status)
}
