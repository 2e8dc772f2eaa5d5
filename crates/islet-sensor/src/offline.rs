//! `islet read` as one call: capture files through the pipeline into the output stage, with
//! the intelligence and policy the [`Options`] name, and the run's totals, warnings and
//! deliveries noted to the [`Observer`]. Also the raw read floor (`--raw-floor`): every
//! packet read and touched, nothing decoded, the figure throughput is compared with.

use crate::ConfigError;
use crate::pipeline::{Judges, Progress, Reader, RunError, Summary};
use crate::policy_load::{Loading, PolicyLoadError};
use crate::session::{
    Observer, OpenedOutput, Options, OutputError, Undelivered, deliveries, open_output,
};
use islet_capture::{CaptureError, PacketSource, PcapFiles};
use islet_intel::feed::{FeedError, runtime_for};
use islet_sink::metrics::Metrics;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Why a read failed. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The configuration file or an option is wrong.
    Config(ConfigError),
    /// A capture could not be opened, or was unreadable past some point (everything before it
    /// was processed, written, and its totals noted).
    Capture(CaptureError),
    /// The intelligence could not be loaded.
    Intel(FeedError),
    /// The policy could not be loaded.
    Policy(PolicyLoadError),
    /// The output stage could not be opened.
    Output(OutputError),
    /// Records could not be written.
    Write(std::io::Error),
    /// The output could not be finished (flushed, sealed, its chain state saved).
    Finish {
        output: String,
        error: std::io::Error,
    },
    /// Records were neither delivered nor spooled.
    Undelivered(Undelivered),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Config(e) => write!(f, "{e}"),
            ReadError::Capture(e) => write!(f, "{e}"),
            ReadError::Intel(e) => write!(f, "{e}"),
            ReadError::Policy(e) => write!(f, "{e}"),
            ReadError::Output(e) => write!(f, "{e}"),
            ReadError::Write(e) => write!(f, "cannot write output: {e}"),
            // The error names its own file (the chain state in the state or spool directory).
            ReadError::Finish { output, error } => match islet_sink::output::PathError::of(error) {
                Some(p) => write!(f, "{p}"),
                None => write!(f, "{output}: {error}"),
            },
            ReadError::Undelivered(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// What to read: capture files in order, as one stream.
#[derive(Debug, Clone, Default)]
pub struct ReadJob {
    pub pcaps: Vec<PathBuf>,
    /// Skip a corrupt pcapng block (with a warning) instead of stopping.
    pub keep_going: bool,
    /// Only read and touch each packet (`--raw-floor`).
    pub raw_floor: bool,
    pub options: Options,
}

/// Read `job`'s captures to their end. The run's totals are noted last (also before a
/// capture error).
pub fn read(job: &ReadJob, obs: &dyn Observer) -> Result<Summary, ReadError> {
    let o = &job.options;
    let cfg = o.config().map_err(ReadError::Config)?;
    let mut source = PcapFiles::open(&job.pcaps).map_err(ReadError::Capture)?;
    source.set_keep_going(job.keep_going);
    if job.raw_floor {
        return raw_floor(&mut source, obs);
    }
    let mut note = |m: &str| obs.note(m);
    let (intel, sightings) =
        match runtime_for(&cfg.intel, &o.intel, &o.warninglists, o.quiet, &mut note)
            .map_err(ReadError::Intel)?
        {
            Some((rt, q)) => (Some(rt), q),
            None => (None, None),
        };
    let policy = crate::policy_load::load(
        &o.policy_args(),
        &cfg.policy,
        &Loading::default(),
        &mut note,
    )
    .map_err(ReadError::Policy)?;
    let OpenedOutput {
        mut out,
        destinations,
        metrics,
        server: _server,
    } = open_output(&cfg, &o.output, &o.forward, &policy.rejected).map_err(ReadError::Output)?;
    let mut on_progress = |p: Progress| {
        metrics.packets.store(p.packets, Ordering::Relaxed);
        obs.progress(p);
    };
    let judges = Judges {
        intel,
        policy: policy.runtime,
    };
    let result = Reader::new(&cfg)
        .judges(judges)
        .progress(&mut on_progress)
        .run(&mut source, &mut out);
    obs.finished();
    for w in source.take_warnings() {
        obs.note(&format!("warning: {w}"));
    }
    if let Some(q) = sightings {
        let st = q.finish();
        obs.note(&format!(
            "sightings to MISP: {} sent in {} batches, {} dropped, {} undelivered{}",
            st.sent,
            st.batches,
            st.dropped,
            st.undelivered,
            st.last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ));
    }
    match &result {
        Ok(s) => note_totals(&metrics, s),
        Err(RunError::Capture(_, s)) => note_totals(&metrics, s),
        Err(_) => {}
    }
    let fin = out.finish().map_err(|error| ReadError::Finish {
        output: o.output.clone(),
        error,
    })?;
    deliveries(&fin, &destinations, obs).map_err(ReadError::Undelivered)?;
    match result {
        Ok(s) => {
            note_summary(&s, obs);
            Ok(s)
        }
        Err(RunError::Capture(e, s)) => {
            note_summary(&s, obs);
            Err(ReadError::Capture(e))
        }
        Err(RunError::Output(e)) => Err(ReadError::Write(e)),
    }
}

/// The pipeline's totals into the metrics registry.
fn note_totals(m: &Metrics, s: &Summary) {
    m.packets.store(s.packets, Ordering::Relaxed);
    m.bytes.store(s.bytes, Ordering::Relaxed);
    m.flows.store(s.flows, Ordering::Relaxed);
    m.drop_decode.store(
        s.decode_events.iter().map(|(_, n)| n).sum(),
        Ordering::Relaxed,
    );
    m.drop_flow_table
        .store(s.stats.flows_forced, Ordering::Relaxed);
}

/// Read every packet and touch its first byte, nothing more.
fn raw_floor(source: &mut PcapFiles, obs: &dyn Observer) -> Result<Summary, ReadError> {
    let started = std::time::Instant::now();
    let (mut packets, mut bytes, mut touch) = (0u64, 0u64, 0u8);
    loop {
        let n = source
            .read_batch(1024, &mut |p| {
                packets += 1;
                bytes += p.data.len() as u64;
                touch ^= p.data.first().copied().unwrap_or(0);
            })
            .map_err(ReadError::Capture)?;
        if n == 0 {
            break;
        }
    }
    let s = Summary {
        packets,
        bytes,
        wall: started.elapsed(),
        workers: 1,
        ..Summary::default()
    };
    obs.note(&format!(
        "raw read floor: {} packets, {} bytes in {:.3}s ({:.0} pkts/s, {:.2} Gbit/s) [{touch}]",
        s.packets,
        s.bytes,
        s.wall.as_secs_f64(),
        s.packets_per_sec(),
        s.gbits_per_sec()
    ));
    Ok(s)
}

/// A run's totals: packets, bytes, flows, anomalies, time and rate, and the decode failures
/// by kind when there were any.
fn note_summary(s: &Summary, obs: &dyn Observer) {
    obs.note(&format!(
        "{} packets, {} bytes, {} flows, {} anomalies in {:.3}s ({:.0} pkts/s, {:.2} Gbit/s, {} worker{})",
        s.packets,
        s.bytes,
        s.flows,
        s.anomalies,
        s.wall.as_secs_f64(),
        s.packets_per_sec(),
        s.gbits_per_sec(),
        s.workers,
        if s.workers == 1 { "" } else { "s" }
    ));
    if !s.decode_events.is_empty() {
        let list: Vec<String> = s
            .decode_events
            .iter()
            .map(|(ev, n)| format!("{ev}={n}"))
            .collect();
        obs.note(&format!("decode failures: {}", list.join(", ")));
    }
}
