//! `islet run`: the live sensor (tap or inline), with signals: SIGHUP reloads policy and
//! intelligence, SIGTERM/SIGINT drain and stop.

use crate::Failure;
use crate::cli::RunArgs;
use crate::read::{Term, options};
use islet_sensor::live_session::{LiveArgs, prepare};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub(crate) fn run(a: &RunArgs) -> Result<(), Failure> {
    let args = same!(a => LiveArgs; copy stats_interval no_offload check_config;
        clone inline tap backend user);
    let term = Term::new(false);
    let prepared = prepare(&options(&a.sensor), &args, &term)?;
    if a.check_config {
        println!("islet: configuration OK: {}", prepared.summary());
        return Ok(());
    }
    let started = prepared.start(&term)?;
    let stop = signal_flag(&[SIGTERM, SIGINT], "signal handler: ")?;
    let hup = signal_flag(&[SIGHUP], "signal handler: ")?;
    let st = started.run(&stop, &hup, &term, |m: &str| eprintln!("islet: {m}"))?;
    eprintln!("islet: stopped: {st}");
    Ok(())
}

/// A flag that any of `signals` sets; a registration failure is said after `context`.
pub(crate) fn signal_flag(signals: &[i32], context: &str) -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for s in signals {
        signal_hook::flag::register(*s, flag.clone())
            .map_err(|e| Failure::Runtime(format!("{context}{e}")))?;
    }
    Ok(flag)
}
