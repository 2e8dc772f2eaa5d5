//! What a sensor run needs before its first packet and after its last, shared by `islet read`
//! ([`crate::offline`]) and `islet run` ([`crate::live_session`]): the command line's
//! [`Options`] laid over the configuration file, the output stage opened with its Forward
//! destinations and metrics endpoint, and what the forwarders delivered at the end.
//!
//! A run's messages for the operator go to an [`Observer`], one line each, in the order they
//! arise; the binary prints them, a test can collect them.

use crate::output::{BuildError, FileTarget, build_output};
use crate::pipeline::Progress;
use crate::policy_load::PolicyArgs;
use crate::{ConfigError, SensorConfig};
use islet_sink::FinishReport;
use islet_sink::metrics::{Metrics, MetricsServer};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a run's messages and progress go. Shared by the run's threads, so `Sync`.
pub trait Observer: Sync {
    /// A message for the operator: one line, without the program's name.
    fn note(&self, message: &str);
    /// How far an offline read has come (about every batch).
    fn progress(&self, _p: Progress) {}
    /// The packets are read; what follows is totals and delivery.
    fn finished(&self) {}
    /// A periodic statistics line of the live sensor (`live.stats_interval`).
    fn stats(&self, line: &str) {
        self.note(line);
    }
}

/// What the command line of `islet read` and `islet run` says: each `Some` overrides the
/// configuration file's setting, each list adds to it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where to write records; `-` is stdout.
    pub output: String,
    /// The configuration file (TOML).
    pub config: Option<PathBuf>,
    pub community_id_seed: Option<u16>,
    /// Worker threads (0: one per core).
    pub workers: Option<usize>,
    pub max_flows: Option<usize>,
    /// Fewer messages: no note of what was loaded.
    pub quiet: bool,
    /// Threat intelligence sources and the warninglists applied to them.
    pub intel: Vec<PathBuf>,
    pub warninglists: Vec<PathBuf>,
    /// A policy bundle directory or file, its pinned keys, the inventory and the policy state.
    pub policy: Option<PathBuf>,
    pub pubkeys: Vec<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub policy_state: Option<PathBuf>,
    /// Record format: `eve` or `ocsf`.
    pub format: Option<String>,
    pub sign_key: Option<PathBuf>,
    /// Forward destinations, each `host:port[,host:port…]` (a failover list).
    pub forward: Vec<String>,
    pub forward_shared_key: Option<String>,
    pub forward_ca: Option<PathBuf>,
    pub forward_cert: Option<PathBuf>,
    pub forward_key: Option<PathBuf>,
    pub forward_mode: Option<String>,
    pub forward_spool: Option<PathBuf>,
    pub forward_memory: Option<usize>,
    pub forward_on_full: Option<String>,
    /// Where the chain head is kept between runs.
    pub state_dir: Option<PathBuf>,
    /// Address of the Prometheus endpoint.
    pub metrics: Option<String>,
}

impl Options {
    /// The configuration file (or the defaults) with these options laid over it, validated.
    pub fn config(&self) -> Result<SensorConfig, ConfigError> {
        let mut cfg = match &self.config {
            Some(p) => SensorConfig::load(p)?,
            None => SensorConfig::default(),
        };
        if let Some(s) = self.community_id_seed {
            cfg.output.community_id_seed = s;
        }
        if let Some(w) = self.workers {
            cfg.sensor.workers = w;
        }
        if let Some(m) = self.max_flows {
            cfg.flow.max_flows = m;
        }
        let o = &mut cfg.output;
        set(&mut o.format, &self.format);
        if let Some(k) = &self.sign_key {
            o.sign_key = Some(k.clone());
        }
        if let Some(d) = &self.state_dir {
            o.state_dir = Some(d.clone());
        }
        set(&mut o.metrics, &self.metrics);
        let f = &mut cfg.forward;
        if let Some(k) = &self.forward_shared_key {
            f.shared_key = Some(k.clone());
        }
        if self.forward_ca.is_some() {
            f.tls = true;
            f.tls_ca.clone_from(&self.forward_ca);
        }
        if self.forward_cert.is_some() {
            f.tls_cert.clone_from(&self.forward_cert);
            f.tls_key.clone_from(&self.forward_key);
        }
        set(&mut f.mode, &self.forward_mode);
        if let Some(d) = &self.forward_spool {
            f.spool_dir = Some(d.clone());
        }
        if let Some(m) = self.forward_memory {
            f.memory_bytes = m;
        }
        set(&mut f.on_full, &self.forward_on_full);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where the policy comes from.
    pub fn policy_args(&self) -> PolicyArgs {
        PolicyArgs {
            bundle: self.policy.clone(),
            pubkeys: self.pubkeys.clone(),
            inventory: self.inventory.clone(),
            state: self.policy_state.clone(),
            quiet: self.quiet,
        }
    }
}

fn set(field: &mut String, over: &Option<String>) {
    if let Some(v) = over {
        field.clone_from(v);
    }
}

/// Why the output stage could not be opened. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputError {
    /// The metrics endpoint could not listen.
    Metrics { addr: String, error: std::io::Error },
    /// The output's settings are wrong (format, signing key, Forward settings), or the output
    /// file, a forwarder or the chain's state could not be opened.
    Settings(BuildError),
    /// The first records could not be written.
    Write {
        output: String,
        error: std::io::Error,
    },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::Metrics { addr, error } => write!(f, "metrics on {addr}: {error}"),
            OutputError::Settings(e) => write!(f, "{e}"),
            OutputError::Write { output, error } => write!(f, "{output}: {error}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// Where records go, opened: the output stage, its Forward destinations (each a failover
/// list), the metrics registry and its endpoint (kept alive by holding it).
#[derive(Debug)]
pub struct OpenedOutput {
    pub out: islet_sink::Output,
    pub destinations: Vec<Vec<String>>,
    pub metrics: Arc<Metrics>,
    pub server: Option<MetricsServer>,
}

/// Open the output stage for `output` (`-`: stdout) and the `forward` destinations (else
/// `forward.servers`), start the metrics endpoint, and write `first` (records that precede
/// the run's, such as a rejected policy bundle's).
pub fn open_output(
    cfg: &SensorConfig,
    output: &str,
    forward: &[String],
    first: &[u8],
) -> Result<OpenedOutput, OutputError> {
    let mut destinations: Vec<Vec<String>> = forward
        .iter()
        .map(|d| d.split(',').map(str::to_string).collect())
        .collect();
    if destinations.is_empty() && !cfg.forward.servers.is_empty() {
        destinations.push(cfg.forward.servers.clone());
    }
    let target = if output == "-" {
        FileTarget::Stdout
    } else {
        FileTarget::Path(output.into())
    };
    let metrics = Arc::new(Metrics::default());
    let server = match cfg.output.metrics.as_str() {
        "" => None,
        addr => Some(
            MetricsServer::start(addr, metrics.clone()).map_err(|error| OutputError::Metrics {
                addr: addr.to_string(),
                error,
            })?,
        ),
    };
    let mut out = build_output(
        &cfg.output,
        &cfg.forward,
        &destinations,
        target,
        metrics.clone(),
    )
    .map_err(OutputError::Settings)?;
    out.write_all(first).map_err(|error| OutputError::Write {
        output: output.to_string(),
        error,
    })?;
    Ok(OpenedOutput {
        out,
        destinations,
        metrics,
        server,
    })
}

/// Records that were neither delivered nor kept in a spool: a run that loses records fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undelivered(pub u64);

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records could not be delivered or spooled (set forward.spool_dir to keep them)",
            self.0
        )
    }
}

impl std::error::Error for Undelivered {}

/// Note what each Forward destination delivered; records neither delivered nor kept are an
/// error.
pub fn deliveries(
    fin: &FinishReport,
    destinations: &[Vec<String>],
    obs: &dyn Observer,
) -> Result<(), Undelivered> {
    let mut lost = 0;
    for (r, d) in fin.forward.iter().zip(destinations) {
        obs.note(&format!(
            "forward to {}: {} records acknowledged, {} spooled for the next run, {} dropped (buffer full), {} lost",
            d.join(","),
            r.delivered,
            r.spooled,
            r.dropped,
            r.lost
        ));
        lost += r.lost;
    }
    if lost > 0 {
        return Err(Undelivered(lost));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_command_line_overrides_the_configuration() {
        let o = Options {
            workers: Some(3),
            max_flows: Some(10),
            format: Some("ocsf".into()),
            forward_ca: Some("ca.pem".into()),
            forward_on_full: Some("drop_newest".into()),
            ..Options::default()
        };
        let cfg = o.config().expect("config");
        assert_eq!(cfg.sensor.workers, 3);
        assert_eq!(cfg.flow.max_flows, 10);
        assert_eq!(cfg.output.format, "ocsf");
        assert!(cfg.forward.tls, "a CA means TLS");
        assert_eq!(cfg.forward.on_full, "drop_newest");
        let bad = Options {
            max_flows: Some(0),
            ..Options::default()
        };
        assert!(matches!(bad.config(), Err(ConfigError(_))));
    }

    #[test]
    fn policy_arguments_carry_quiet() {
        let o = Options {
            policy: Some("p".into()),
            quiet: true,
            ..Options::default()
        };
        let p = o.policy_args();
        assert_eq!(p.bundle, Some(PathBuf::from("p")));
        assert!(p.quiet);
    }
}
