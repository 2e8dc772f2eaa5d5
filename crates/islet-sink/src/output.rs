//! The sensor's output stage: records in, sealed records out to every sink.
//!
//! [`Output`] is the `Write` the pipeline's writer thread writes EVE lines into. It converts
//! them to the chosen format (EVE as is, or OCSF), seals each into the event chain, writes the
//! sealed lines to the file sink (stdout or a rotating file) and offers them to every Forward
//! client, counting events per type for the metrics. [`Output::finish`] ends the log with a
//! signed final checkpoint, closes the forwarders (delivering or spooling what is queued) and
//! saves the chain head so a restarted sensor continues the chain.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ed25519_dalek::SigningKey;

use crate::ParseError;
use crate::chain::{ChainConfig, HeadError, SavedHead, Sealer};
use crate::file::RotatingFile;
use crate::forward::{CloseReport, Forwarder};
use crate::metrics::Metrics;

/// The record format of every sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Eve,
    Ocsf,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, ParseError> {
        match s {
            "eve" => Ok(Format::Eve),
            "ocsf" => Ok(Format::Ocsf),
            _ => Err(ParseError::unknown("format", s, "eve, ocsf")),
        }
    }
}

/// Where the file sink writes.
pub enum FileOut {
    None,
    Stream(Box<dyn Write + Send>),
    Rotating(RotatingFile),
}

impl std::fmt::Debug for FileOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileOut::None => "none",
            FileOut::Stream(_) => "stream",
            FileOut::Rotating(_) => "rotating file",
        })
    }
}

/// How to build an [`Output`].
#[derive(Debug, Default)]
pub struct OutputConfig {
    pub format: Format,
    pub chain: ChainConfig,
    pub key: Option<SigningKey>,
    /// Where the chain head is kept across restarts (none: every run starts a new chain).
    pub state_dir: Option<PathBuf>,
    /// A `stats` record with the output's figures every this many ns of event time (0: never).
    pub stats_interval_ns: u64,
}

/// What [`Output::finish`] did.
#[derive(Debug, Clone, Default)]
pub struct FinishReport {
    pub records: u64,
    pub checkpoints: u64,
    pub forward: Vec<CloseReport>,
}

/// The output stage (see the module doc).
#[derive(Debug)]
pub struct Output {
    format: Format,
    sealer: Sealer,
    file: FileOut,
    forwarders: Vec<Forwarder>,
    metrics: Arc<Metrics>,
    state: Option<PathBuf>,
    carry: Vec<u8>,
    conv: Vec<u8>,
    sealed: Vec<u8>,
    /// The head after the last delivery to the sinks.
    delivered: crate::chain::Head,
    first_record: u64,
    stats_interval_ns: u64,
    /// Event time of the first record and of the last stats record.
    first_ns: Option<u64>,
    last_stats_ns: u64,
}

impl Output {
    pub fn new(
        cfg: OutputConfig,
        file: FileOut,
        forwarders: Vec<Forwarder>,
        metrics: Arc<Metrics>,
    ) -> Result<Output, StateError> {
        let mut sealed = Vec::with_capacity(512 << 10);
        let (sealer, state) = match &cfg.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
                    path: dir.clone(),
                    source,
                })?;
                let p = dir.join("chain.head");
                let saved = SavedHead::load(&p).map_err(StateError::Load)?;
                let s = match saved {
                    Some(h) => Sealer::resume(cfg.chain, cfg.key, h.head),
                    None => Sealer::new(cfg.chain, cfg.key),
                };
                if let Some(SavedHead {
                    head,
                    clean: false,
                    pending: Some((first, prev)),
                }) = saved
                    && first < head.next_seq
                {
                    // The last delivery before an unclean stop may not have reached every sink.
                    let last = head.next_seq - 1;
                    s.gap_record(
                        first,
                        last,
                        &prev,
                        &head.prev,
                        &format!(
                            "unclean stop: records {first}..{last} may not have reached every sink"
                        ),
                        &mut sealed,
                    );
                }
                (s, Some(p))
            }
            None => (Sealer::new(cfg.chain, cfg.key), None),
        };
        let sealer_head = sealer.head();
        let first_record = sealer_head.next_seq;
        let mut o = Output {
            format: cfg.format,
            sealer,
            file,
            forwarders,
            metrics,
            state,
            carry: Vec::new(),
            conv: Vec::new(),
            sealed,
            delivered: sealer_head,
            first_record,
            stats_interval_ns: cfg.stats_interval_ns,
            first_ns: None,
            last_stats_ns: 0,
        };
        o.save(false, None).map_err(StateError::Save)?;
        Ok(o)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Save the head: after `pending` (the range about to be delivered), or a clean stop.
    fn save(&mut self, clean: bool, pending: Option<(u64, [u8; 32])>) -> std::io::Result<()> {
        if let Some(p) = &self.state {
            SavedHead {
                head: self.sealer.head(),
                clean,
                pending,
            }
            .store(p)
            .map_err(|e| PathError::wrap(p, e))?;
        }
        Ok(())
    }

    /// Convert, seal and deliver the complete lines of `buf`.
    fn ingest(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let owned;
        let input: &[u8] = if self.carry.is_empty() {
            buf
        } else {
            self.carry.extend_from_slice(buf);
            owned = std::mem::take(&mut self.carry);
            &owned
        };
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &input[start..]) {
            let line = &input[start..start + nl];
            start += nl + 1;
            if line.is_empty() {
                continue;
            }
            self.metrics.event(line);
            self.record(line);
            if self.stats_interval_ns > 0
                && let Some((ts, now)) = crate::chain::event_time(line)
            {
                let first = *self.first_ns.get_or_insert(now);
                if self.last_stats_ns == 0 {
                    self.last_stats_ns = now;
                } else if now.saturating_sub(self.last_stats_ns) >= self.stats_interval_ns {
                    self.last_stats_ns = now;
                    let mut st = Vec::with_capacity(1024);
                    self.metrics
                        .stats_record(ts, (now - first) / 1_000_000_000, &mut st);
                    self.metrics.event(&st);
                    self.record(&st);
                }
            }
        }
        if start < input.len() {
            self.carry.extend_from_slice(&input[start..]);
        }
        self.deliver()
    }

    /// Convert (for OCSF) and seal one record.
    fn record(&mut self, line: &[u8]) {
        match self.format {
            Format::Eve => self.sealer.seal(line, &mut self.sealed),
            Format::Ocsf => {
                self.conv.clear();
                crate::ocsf::convert_line(line, &mut self.conv);
                let conv = std::mem::take(&mut self.conv);
                self.sealer.seal(&conv, &mut self.sealed);
                self.conv = conv;
            }
        }
    }

    fn deliver(&mut self) -> std::io::Result<()> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        // The head goes to disk before the records go to the sinks (see `SavedHead`).
        let before = self.delivered;
        self.delivered = self.sealer.head();
        if self.state.is_some() {
            self.save(false, Some((before.next_seq, before.prev)))?;
        }
        match &mut self.file {
            FileOut::None => {}
            FileOut::Stream(w) => w.write_all(&self.sealed)?,
            FileOut::Rotating(f) => f.write_lines(&self.sealed)?,
        }
        for f in &self.forwarders {
            f.offer(&self.sealed);
        }
        self.sealed.clear();
        let cps = self.sealer.checkpoints();
        let m = &self.metrics;
        m.chain_seq
            .store(self.sealer.head().next_seq - 1, Ordering::Relaxed);
        m.checkpoints.store(cps, Ordering::Relaxed);
        Ok(())
    }

    /// End the log: a final checkpoint, forwarders closed, the head saved as a clean stop.
    pub fn finish(mut self) -> std::io::Result<FinishReport> {
        if !self.carry.is_empty() {
            self.carry.push(b'\n');
            let rest = std::mem::take(&mut self.carry);
            self.ingest(&rest)?;
        }
        self.sealer.checkpoint(true, &mut self.sealed);
        self.deliver()?;
        match std::mem::replace(&mut self.file, FileOut::None) {
            FileOut::None => {}
            FileOut::Stream(mut w) => w.flush()?,
            FileOut::Rotating(f) => f.close()?,
        }
        let forward = std::mem::take(&mut self.forwarders)
            .into_iter()
            .map(Forwarder::close)
            .collect();
        self.save(true, None)?;
        Ok(FinishReport {
            records: self.sealer.head().next_seq - self.first_record,
            checkpoints: self.sealer.checkpoints(),
            forward,
        })
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ingest(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            FileOut::None => Ok(()),
            FileOut::Stream(w) => w.flush(),
            FileOut::Rotating(f) => f.flush(),
        }
    }
}

/// Why [`Output::new`] could not continue or start the chain from its state directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// The state directory cannot be made.
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The saved chain head cannot be read, or is not one (shown as it is).
    Load(HeadError),
    /// The chain head cannot be saved (the error names the file: [`PathError`]).
    Save(std::io::Error),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Dir { path, source } => write!(f, "{}: {source}", path.display()),
            StateError::Load(e) => write!(f, "{e}"),
            StateError::Save(e) => write!(f, "chain head: {e}"),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Dir { source, .. } | StateError::Save(source) => Some(source),
            StateError::Load(e) => e.source(),
        }
    }
}

/// An I/O error on a file other than the output itself (the chain's saved head, in the state
/// or spool directory): it names that file, so a full disk under the spool is not reported
/// as a failure of the EVE file.
#[derive(Debug)]
pub struct PathError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

impl PathError {
    fn wrap(path: &std::path::Path, source: std::io::Error) -> std::io::Error {
        std::io::Error::new(
            source.kind(),
            PathError {
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// The `PathError` inside an I/O error, if it carries one.
    pub fn of(e: &std::io::Error) -> Option<&PathError> {
        e.get_ref()?.downcast_ref::<PathError>()
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
