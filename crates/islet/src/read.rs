//! `islet read`: capture files → EVE JSON; and the terminal that every sensor command reports
//! to.

use crate::Failure;
use crate::cli::{ReadArgs, SensorArgs};
use indicatif::{ProgressBar, ProgressStyle};
use islet_sensor::Progress;
use islet_sensor::offline::ReadJob;
use islet_sensor::session::{Observer, Options};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Instant;

/// Where a sensor command's messages go: stderr, each line prefixed `islet: `; and, with
/// `bar` and stderr a terminal, a progress bar while packets are read.
pub(crate) struct Term {
    bar: Option<OnceLock<ProgressBar>>,
    started: Instant,
}

impl Term {
    pub(crate) fn new(bar: bool) -> Term {
        Term {
            bar: (bar && std::io::stderr().is_terminal()).then(OnceLock::new),
            started: Instant::now(),
        }
    }
}

impl Observer for Term {
    fn note(&self, message: &str) {
        eprintln!("islet: {message}");
    }

    fn progress(&self, p: Progress) {
        let Some(bar) = &self.bar else { return };
        let b = bar.get_or_init(|| {
            let style =
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} ({eta} left)");
            ProgressBar::new(0).with_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()))
        });
        b.set_length(p.bytes_total);
        b.set_position(p.bytes_done);
        let pps = p.packets as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        b.set_message(format!("{} pkts, {:.0} pkts/s", p.packets, pps));
    }

    fn finished(&self) {
        if let Some(b) = self.bar.as_ref().and_then(OnceLock::get) {
            b.finish_and_clear();
        }
    }

    fn stats(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// The sensor options of `read` and `run`.
pub(crate) fn options(a: &SensorArgs) -> Options {
    same!(a => Options; copy community_id_seed workers max_flows quiet forward_memory;
        clone output config intel warninglists policy pubkeys inventory policy_state format
        sign_key forward forward_shared_key forward_ca forward_cert forward_key forward_mode
        forward_spool forward_on_full state_dir metrics)
}

pub(crate) fn run(r: &ReadArgs) -> Result<(), Failure> {
    let job =
        same!(r => ReadJob; copy keep_going raw_floor; clone pcaps; options: options(&r.sensor));
    islet_sensor::offline::read(&job, &Term::new(!r.sensor.quiet))?;
    Ok(())
}
