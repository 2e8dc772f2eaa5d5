//! `[output]` evidence settings and `[forward]`: how the sensor's records leave it (format,
//! event chain, file rotation, metrics endpoint, Fluentd Forward delivery), and building the
//! `islet_sink::Output` from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use islet_sink::chain::KeyError;
use islet_sink::file::{RotatingFile, Rotation};
use islet_sink::forward::{
    ForwardConfig, ForwardError, Forwarder, Mode, OnFull, RecordShape, TlsClient,
};
use islet_sink::metrics::Metrics;
use islet_sink::output::StateError;
use islet_sink::{FileOut, Format, Output, OutputConfig, ParseError};
use serde::Deserialize;

/// `[output]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Community ID seed.
    pub community_id_seed: u16,
    /// Write decoder anomalies as `anomaly` events (they are always counted).
    pub anomalies: Option<bool>,
    /// Record format of every sink: `eve` or `ocsf`.
    pub format: String,
    /// The sensor's name in checkpoints and gap records (default: the host name).
    pub sensor_name: Option<String>,
    /// Ed25519 key (`islet log keygen`) that signs checkpoints and gap records.
    pub sign_key: Option<PathBuf>,
    /// Directory where the chain head is kept, so a restarted sensor continues its chain.
    pub state_dir: Option<PathBuf>,
    /// A signed checkpoint after this many records.
    pub checkpoint_every: u64,
    /// … or after this many seconds of event time.
    pub checkpoint_interval: u64,
    /// Rotate the output file at this size in bytes (0: never).
    pub rotate_bytes: u64,
    /// Rotate the output file after this many seconds (0: never).
    pub rotate_seconds: u64,
    /// gzip rotated files.
    pub compress: bool,
    /// Serve Prometheus metrics on this address (e.g. `127.0.0.1:9911`; empty: off).
    pub metrics: String,
    /// A `stats` record with the output's figures every this many seconds of event time (0: off).
    pub stats_interval: u64,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            community_id_seed: 0,
            anomalies: None,
            format: "eve".into(),
            sensor_name: None,
            sign_key: None,
            state_dir: None,
            checkpoint_every: 10_000,
            checkpoint_interval: 60,
            rotate_bytes: 0,
            rotate_seconds: 0,
            compress: false,
            metrics: String::new(),
            stats_interval: 30,
        }
    }
}

/// `[forward]`: Fluentd Forward delivery (docs/EVIDENCE.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardSection {
    /// Receivers as `host:port`, in priority order (failover). Empty: no forwarding.
    pub servers: Vec<String>,
    pub tag: String,
    /// `forward`, `packed` or `compressed` (gzip).
    pub mode: String,
    /// `map` (each record's fields) or `message` (`{"message": "<json line>"}`).
    pub record: String,
    pub shared_key: Option<String>,
    /// Hostname sent in the handshake (default: this host's name).
    pub self_hostname: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Use TLS; `tls_ca` is the CA bundle to trust, `tls_cert`/`tls_key` a client certificate.
    pub tls: bool,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub batch_events: usize,
    /// Seconds to wait for an ack before resending.
    pub ack_timeout: f64,
    pub connect_timeout: f64,
    /// Reconnection backoff: first and largest wait, seconds.
    pub backoff_initial: f64,
    pub backoff_max: f64,
    pub heartbeat_interval: f64,
    /// Bytes queued in memory, then in `spool_dir` up to `disk_bytes`.
    pub memory_bytes: usize,
    pub spool_dir: Option<PathBuf>,
    pub disk_bytes: u64,
    /// When both are full: `block` or `drop_newest` (counted; a signed gap record is sent).
    pub on_full: String,
    /// Seconds to keep delivering at exit before spooling the rest.
    pub shutdown_timeout: f64,
}

impl Default for ForwardSection {
    fn default() -> Self {
        let d = ForwardConfig::default();
        ForwardSection {
            servers: Vec::new(),
            tag: d.tag,
            mode: "packed".into(),
            record: "map".into(),
            shared_key: None,
            self_hostname: None,
            username: None,
            password: None,
            tls: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_server_name: None,
            batch_events: d.batch_events,
            ack_timeout: d.ack_timeout.as_secs_f64(),
            connect_timeout: d.connect_timeout.as_secs_f64(),
            backoff_initial: d.backoff_initial.as_secs_f64(),
            backoff_max: d.backoff_max.as_secs_f64(),
            heartbeat_interval: d.heartbeat_interval.as_secs_f64(),
            memory_bytes: d.memory_bytes,
            spool_dir: None,
            disk_bytes: d.disk_bytes,
            on_full: "block".into(),
            shutdown_timeout: d.shutdown_timeout.as_secs_f64(),
        }
    }
}

fn secs(field: &'static str, value: f64) -> Result<Duration, ForwardSectionError> {
    Duration::try_from_secs_f64(value).map_err(|_| ForwardSectionError::Duration { field, value })
}

/// Why `[forward]` does not make a forwarder's settings ([`ForwardSection::to_config`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ForwardSectionError {
    /// `forward.record` is neither `map` nor `message`.
    Record(String),
    /// `forward.mode` is not a Forward mode.
    Mode(ParseError),
    /// `forward.on_full` is not a full-buffer policy.
    OnFull(ParseError),
    /// A `forward.*` number of seconds that is not a duration (negative, not finite, too large).
    Duration { field: &'static str, value: f64 },
}

impl std::fmt::Display for ForwardSectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardSectionError::Record(r) => {
                write!(f, "forward.record: {r:?} is not map or message")
            }
            ForwardSectionError::Mode(e) => write!(f, "forward.mode: {e}"),
            ForwardSectionError::OnFull(e) => write!(f, "forward.on_full: {e}"),
            ForwardSectionError::Duration { field, value } => {
                write!(f, "forward.{field}: {value} is not a duration")
            }
        }
    }
}

impl std::error::Error for ForwardSectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForwardSectionError::Mode(e) | ForwardSectionError::OnFull(e) => Some(e),
            ForwardSectionError::Record(_) | ForwardSectionError::Duration { .. } => None,
        }
    }
}

impl ForwardSection {
    /// One forwarder's settings for `servers` (a failover list).
    pub fn to_config(&self, servers: Vec<String>) -> Result<ForwardConfig, ForwardSectionError> {
        let d = ForwardConfig::default();
        let record = match self.record.as_str() {
            "map" => RecordShape::Map,
            "message" => RecordShape::Message,
            r => return Err(ForwardSectionError::Record(r.to_string())),
        };
        let tls = (self.tls || self.tls_ca.is_some()).then(|| TlsClient {
            ca_file: self.tls_ca.clone(),
            cert_file: self.tls_cert.clone(),
            key_file: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
        });
        // Each destination spools in its own folder.
        let spool_dir = self.spool_dir.as_ref().map(|d| {
            let name: String = servers[0]
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            d.join(name)
        });
        Ok(ForwardConfig {
            servers,
            tag: self.tag.clone(),
            mode: Mode::parse(&self.mode).map_err(ForwardSectionError::Mode)?,
            record,
            tls,
            shared_key: self.shared_key.clone(),
            self_hostname: self.self_hostname.clone().unwrap_or(d.self_hostname),
            username: self.username.clone(),
            password: self.password.clone(),
            batch_events: self.batch_events.max(1),
            batch_bytes: d.batch_bytes,
            connect_timeout: secs("connect_timeout", self.connect_timeout)?,
            ack_timeout: secs("ack_timeout", self.ack_timeout)?,
            backoff_initial: secs("backoff_initial", self.backoff_initial)?,
            backoff_max: secs("backoff_max", self.backoff_max)?,
            heartbeat_interval: secs("heartbeat_interval", self.heartbeat_interval)?,
            memory_bytes: self.memory_bytes,
            spool_dir,
            disk_bytes: self.disk_bytes,
            on_full: OnFull::parse(&self.on_full).map_err(ForwardSectionError::OnFull)?,
            shutdown_timeout: secs("shutdown_timeout", self.shutdown_timeout)?,
        })
    }
}

/// Where the file sink goes: `-` for stdout, a path (rotating per `[output]`), or nowhere.
#[derive(Debug, Clone)]
pub enum FileTarget {
    Stdout,
    Path(PathBuf),
    None,
}

/// Build the output stage: file sink, one forwarder per destination (each a failover list),
/// the event chain, the metrics registry.
pub fn build_output(
    ev: &OutputSection,
    fwd: &ForwardSection,
    destinations: &[Vec<String>],
    file: FileTarget,
    metrics: Arc<Metrics>,
) -> Result<Output, BuildError> {
    let format = Format::parse(&ev.format).map_err(BuildError::Format)?;
    let key = match &ev.sign_key {
        Some(p) => Some(islet_sink::chain::read_signing_key(p).map_err(BuildError::Key)?),
        None => None,
    };
    let sensor = ev
        .sensor_name
        .clone()
        .unwrap_or_else(islet_sink::forward::hostname);
    let mut forwarders = Vec::new();
    for servers in destinations {
        let cfg = fwd
            .to_config(servers.clone())
            .map_err(BuildError::Forward)?;
        let f = Forwarder::start(cfg, key.clone(), &sensor).map_err(BuildError::Forwarder)?;
        metrics.add_forwarder(&servers.join(","), f.stats());
        forwarders.push(f);
    }
    let file = match file {
        FileTarget::None => FileOut::None,
        FileTarget::Stdout => FileOut::Stream(Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout(),
        ))),
        FileTarget::Path(p) => FileOut::Rotating(
            RotatingFile::create(
                &p,
                Rotation {
                    max_bytes: ev.rotate_bytes,
                    max_age: Duration::from_secs(ev.rotate_seconds),
                    compress: ev.compress,
                },
            )
            .map_err(|source| BuildError::File {
                path: p.clone(),
                source,
            })?,
        ),
    };
    Output::new(
        OutputConfig {
            format,
            chain: islet_sink::chain::ChainConfig {
                sensor,
                checkpoint_every: ev.checkpoint_every,
                checkpoint_interval_ns: ev.checkpoint_interval.saturating_mul(1_000_000_000),
            },
            key,
            // A spool outlives the process; so must the chain it continues.
            state_dir: ev
                .state_dir
                .clone()
                .or_else(|| fwd.spool_dir.as_ref().map(|d| d.join("state"))),
            stats_interval_ns: ev.stats_interval.saturating_mul(1_000_000_000),
        },
        file,
        forwarders,
        metrics,
    )
    .map_err(BuildError::State)
}

/// Why [`build_output`] could not build the output stage.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `output.format` is not a record format.
    Format(ParseError),
    /// `output.sign_key` cannot be read (the error names the file).
    Key(KeyError),
    /// `[forward]` is wrong.
    Forward(ForwardSectionError),
    /// A forwarder did not start.
    Forwarder(ForwardError),
    /// The output file cannot be opened.
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The chain's state directory cannot be used.
    State(StateError),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Format(e) => write!(f, "output.format: {e}"),
            BuildError::Key(e) => write!(f, "{e}"),
            BuildError::Forward(e) => write!(f, "{e}"),
            BuildError::Forwarder(e) => write!(f, "{e}"),
            BuildError::File { path, source } => write!(f, "{}: {source}", path.display()),
            BuildError::State(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Format(e) => Some(e),
            BuildError::File { source, .. } => Some(source),
            // Shown as they are: their causes are theirs.
            BuildError::Key(e) => e.source(),
            BuildError::Forward(e) => e.source(),
            BuildError::Forwarder(e) => e.source(),
            BuildError::State(e) => e.source(),
        }
    }
}
