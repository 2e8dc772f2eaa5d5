//! `islet run` in three steps, so that the binary keeps only its arguments, its signals and
//! its exit statuses: [`prepare`] checks everything that can be checked before a port is
//! touched (interfaces, privilege, user, intelligence, policy; `--check-config` stops there),
//! [`Prepared::start`] opens the sockets and the output and then drops privileges, and
//! [`Started::run`] runs until told to stop, reloading policy and intelligence when told to
//! (SIGHUP: a rejected bundle leaves the one in force), publishing the live figures as
//! metrics, and pulling intelligence on its schedule.

use crate::live::{self, Backend, Control, LiveConfig, LiveStats, Mode, OffloadConfig};
use crate::policy::PolicyRuntime;
use crate::policy_load::{Loading, PolicyLoadError};
use crate::session::{Observer, OpenedOutput, Options, OutputError, Undelivered, deliveries};
use crate::{ConfigError, Judges, SensorConfig};
use islet_capture::afpacket::RingConfig;
use islet_capture::privs;
use islet_event::Stats;
use islet_intel::feed::{FeedError, IntelRuntime, runtime_for};
use islet_intel::sightings::SightingQueue;
use islet_sink::metrics::Metrics;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the command line of `islet run` adds to [`Options`]; each overrides `[live]`.
#[derive(Debug, Clone, Default)]
pub struct LiveArgs {
    /// Pairs to bridge, `IFA,IFB` each.
    pub inline: Vec<String>,
    /// Interfaces to monitor, `IF[,IF…]` each.
    pub tap: Vec<String>,
    /// `afpacket` or `afxdp`.
    pub backend: Option<String>,
    /// Seconds between statistics lines and `stats` records.
    pub stats_interval: Option<u64>,
    /// The user to become once the sockets are open.
    pub user: Option<String>,
    /// Program no tc rules for denied flows.
    pub no_offload: bool,
    /// Validate and stop: change no policy state.
    pub check_config: bool,
}

/// Why the live sensor could not start or stopped failing. The `Display` text is the message
/// users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveError {
    /// The configuration file or an option is wrong.
    Config(ConfigError),
    /// The live settings are wrong (interfaces, backend, ring).
    Settings(String),
    /// An interface does not exist.
    Interface(std::io::Error),
    /// The user to become does not exist.
    NoUser(String),
    /// Capturing needs a privilege this process lacks.
    Privilege,
    /// The intelligence could not be loaded.
    Intel(FeedError),
    /// The policy could not be loaded.
    Policy(PolicyLoadError),
    /// The sockets could not be opened.
    Open(live::OpenError),
    /// The output stage could not be opened.
    Output(OutputError),
    /// Privileges could not be dropped.
    DropPrivileges(String),
    /// The output could not be finished.
    Finish {
        output: String,
        error: std::io::Error,
    },
    /// Capture failed while running.
    Capture(std::io::Error),
    /// Records were neither delivered nor spooled.
    Undelivered(Undelivered),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::Config(e) => write!(f, "{e}"),
            LiveError::Settings(m) => f.write_str(m),
            LiveError::Open(e) => write!(f, "{e}"),
            LiveError::Interface(e) => write!(f, "{e}"),
            LiveError::NoUser(u) => write!(f, "live.user: user {u:?} does not exist"),
            LiveError::Privilege => f.write_str(
                "capturing needs root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode and tc)",
            ),
            LiveError::Intel(e) => write!(f, "{e}"),
            LiveError::Policy(e) => write!(f, "{e}"),
            LiveError::Output(e) => write!(f, "{e}"),
            LiveError::DropPrivileges(m) => write!(f, "live.user: {m}"),
            LiveError::Finish { output, error } => write!(f, "{output}: {error}"),
            LiveError::Capture(e) => write!(f, "live capture: {e}"),
            LiveError::Undelivered(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// The live settings: the configuration's `[live]`, overridden by the command line.
pub fn live_config(cfg: &SensorConfig, a: &LiveArgs) -> Result<LiveConfig, LiveError> {
    let l = &cfg.live;
    let bad = |m: &str| LiveError::Settings(m.to_string());
    let mode = if !a.inline.is_empty() {
        if !a.tap.is_empty() {
            return Err(bad("--inline and --tap exclude each other"));
        }
        let mut pairs = Vec::new();
        for p in &a.inline {
            pairs.push(live::parse_pair(p).map_err(|e| LiveError::Settings(e.to_string()))?);
        }
        Mode::Inline(pairs)
    } else if !a.tap.is_empty() {
        let ifs = a.tap.iter().flat_map(|t| t.split(','));
        Mode::Tap(ifs.filter(|s| !s.is_empty()).map(str::to_owned).collect())
    } else {
        match l.mode.as_str() {
            "inline" if !l.pairs.is_empty() => Mode::Inline(
                l.pairs
                    .iter()
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            ),
            "inline" => return Err(bad("live.pairs: inline mode needs at least one pair")),
            "tap" if !l.interfaces.is_empty() => Mode::Tap(l.interfaces.clone()),
            "tap" => {
                return Err(bad(
                    "live.interfaces: tap mode needs at least one interface",
                ));
            }
            _ => {
                return Err(bad(
                    "no interfaces: give --inline IFA,IFB or --tap IF (or live.mode in the config)",
                ));
            }
        }
    };
    let ifs = mode.interfaces();
    for (i, x) in ifs.iter().enumerate() {
        if ifs[..i].contains(x) {
            return Err(bad(&format!("interface {x} is given twice")));
        }
        if x.is_empty() || x.len() > 15 || x.contains(['/', ' ']) {
            return Err(bad(&format!("interface {x:?}: not a valid interface name")));
        }
    }
    if ifs.len() > 16 {
        return Err(bad("at most 16 interfaces"));
    }
    let backend = match a.backend.as_deref().unwrap_or(l.backend.as_str()) {
        "afpacket" => Backend::AfPacket,
        "afxdp" => Backend::AfXdp,
        other => {
            return Err(bad(&format!(
                "--backend {other:?}: expected afpacket or afxdp"
            )));
        }
    };
    let ring = RingConfig {
        block_size: l.ring_block_size,
        block_count: l.ring_blocks,
        block_timeout_ms: l.ring_block_timeout_ms,
    };
    ring.validate()
        .map_err(|e| LiveError::Settings(e.to_string()))?;
    Ok(LiveConfig {
        mode,
        backend,
        ring,
        offload: OffloadConfig {
            enabled: l.offload && !a.no_offload,
            max_rules: l.offload_max_rules,
            skip_hw: l.offload_skip_hw,
        },
        bypass: l.bypass,
        kernel_bypass: match l.kernel_bypass.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        stats_interval: Duration::from_secs(a.stats_interval.unwrap_or(l.stats_interval)),
    })
}

/// The interfaces of a mode as given: `a,b` for a tap, `a<->b c<->d` for pairs.
fn describe(m: &Mode) -> String {
    match m {
        Mode::Tap(v) => v.join(","),
        Mode::Inline(p) => p
            .iter()
            .map(|(a, b)| format!("{a}<->{b}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Everything checked and loaded; no socket open yet.
#[derive(Debug)]
pub struct Prepared {
    options: Options,
    stats_every: Option<Duration>,
    cfg: SensorConfig,
    live: LiveConfig,
    user: String,
    intel: Option<IntelRuntime>,
    sightings: Option<SightingQueue>,
    policy: Option<PolicyRuntime>,
    rejected: Vec<u8>,
}

/// Check the configuration, interfaces, privilege and user, and load intelligence and policy
/// (with `check_config`, changing no policy state).
pub fn prepare(o: &Options, a: &LiveArgs, obs: &dyn Observer) -> Result<Prepared, LiveError> {
    let cfg = o.config().map_err(LiveError::Config)?;
    let live = live_config(&cfg, a)?;
    for i in live.mode.interfaces() {
        islet_capture::afpacket::ifindex(&i).map_err(LiveError::Interface)?;
    }
    let user = a.user.clone().unwrap_or_else(|| cfg.live.user.clone());
    if !user.is_empty() && !privs::user_exists(&user) {
        return Err(LiveError::NoUser(user));
    }
    if !privs::has_cap(privs::CAP_NET_RAW) {
        return Err(LiveError::Privilege);
    }
    let mut note = |m: &str| obs.note(m);
    let (intel, sightings) =
        match runtime_for(&cfg.intel, &o.intel, &o.warninglists, o.quiet, &mut note)
            .map_err(LiveError::Intel)?
        {
            Some((rt, q)) => (Some(rt), q),
            None => (None, None),
        };
    let how = Loading::live(a.check_config);
    let loaded = crate::policy_load::load(&o.policy_args(), &cfg.policy, &how, &mut note)
        .map_err(LiveError::Policy)?;
    Ok(Prepared {
        options: o.clone(),
        stats_every: a.stats_interval.map(Duration::from_secs),
        cfg,
        live,
        user,
        intel,
        sightings,
        policy: loaded.runtime,
        rejected: loaded.rejected,
    })
}

impl Prepared {
    /// What would run: `tap lo, 2 workers, policy on, intel off, offload on`.
    pub fn summary(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "{} {}, {} workers, policy {}, intel {}, offload {}",
            self.live.mode.name(),
            describe(&self.live.mode),
            self.cfg.workers(),
            on(self.policy.is_some()),
            on(self.intel.is_some()),
            on(self.live.offload.enabled),
        )
    }

    /// Open the sockets, then the output (files, spool, metrics listener), then become the
    /// configured user.
    pub fn start(mut self, obs: &dyn Observer) -> Result<Started, LiveError> {
        let inline = matches!(self.live.mode, Mode::Inline(_));
        if let Some(p) = self.policy.as_mut() {
            p.enforced = inline;
            p.rejudge = true;
        }
        let workers = self.cfg.workers().max(1);
        let opened = live::open(&self.live, workers).map_err(LiveError::Open)?;
        obs.note(&format!(
            "{} {} over {}; offloads: {}",
            self.live.mode.name(),
            describe(&self.live.mode),
            opened.describe,
            match (inline, self.live.backend) {
                (false, _) => "none needed (tap)",
                (true, Backend::AfPacket) => {
                    "checksum and segmentation left to the kernel via virtio_net_hdr on receive and send"
                }
                (true, Backend::AfXdp) => {
                    "frames as the wire carries them (XDP turns a veth peer's GSO off); partial checksums completed"
                }
            }
        ));
        let o = &self.options;
        let output = crate::session::open_output(&self.cfg, &o.output, &o.forward, &self.rejected)
            .map_err(LiveError::Output)?;
        if !self.user.is_empty() {
            let d = privs::drop_to(&self.user, &[privs::CAP_NET_ADMIN, privs::CAP_NET_RAW])
                .map_err(|e| LiveError::DropPrivileges(e.to_string()))?;
            obs.note(&format!(
                "now running as {} (uid {}, gid {}), keeping {}",
                d.user,
                d.uid,
                d.gid,
                d.kept.join(" and ")
            ));
        }
        Ok(Started {
            prepared: self,
            opened,
            output,
        })
    }
}

/// Sockets and output open, privileges dropped.
#[derive(Debug)]
pub struct Started {
    prepared: Prepared,
    opened: live::Opened,
    output: OpenedOutput,
}

/// What a live run did, for its last line.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub stats: Stats,
    pub live: LiveStats,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stats, st) = (&self.stats, &self.live);
        write!(
            f,
            "{} packets ({} forwarded, {} blocked, {} bypassed), {} flows, {} alerts; kernel drops {}; offload rules {} added, {} removed; {:.2} cpu-s, {:.0} protected pkt per cpu-s, coverage {:.4}",
            st.packets,
            st.forwarded,
            st.blocked,
            st.bypassed,
            stats.flows_total,
            stats.alerts,
            st.kernel_drops,
            st.offload_installed,
            st.offload_removed,
            st.cpu_seconds,
            st.protected_per_cpu_second(),
            st.coverage()
        )
    }
}

impl Started {
    /// Run until `term` is set; `hup` set reloads policy and intelligence (and is cleared).
    /// Scheduled intelligence pulls run on their own thread and tell their failures to
    /// `pull_note` (`intel pull: …`).
    pub fn run(
        self,
        term: &AtomicBool,
        hup: &AtomicBool,
        obs: &dyn Observer,
        pull_note: impl Fn(&str) + Send + 'static,
    ) -> Result<Stopped, LiveError> {
        let Started {
            prepared: p,
            opened,
            output,
        } = self;
        let OpenedOutput {
            mut out,
            destinations,
            metrics,
            server: _server,
        } = output;
        let (o, cfg) = (&p.options, &p.cfg);
        let ctl = Control::default();
        let judges = Judges {
            intel: p.intel.clone(),
            policy: p.policy.clone(),
        };
        let mut last_line = Instant::now();
        let mut prev = LiveStats::default();
        let mut tick = |st: &LiveStats, records: &mut Vec<u8>| {
            publish(&metrics, st);
            if term.load(Ordering::Relaxed) {
                ctl.stop.store(true, Ordering::Relaxed);
            }
            if hup.swap(false, Ordering::Relaxed) {
                reload(o, cfg, p.policy.as_ref(), p.intel.as_ref(), records, obs);
            }
            if let Some(every) = p.stats_every
                && !every.is_zero()
                && last_line.elapsed() >= every
            {
                last_line = Instant::now();
                if !o.quiet {
                    obs.stats(&st.line(&prev));
                }
                prev = st.clone();
            }
        };
        // Scheduled MISP/TAXII pulls swap fresh snapshots in while the sensor runs.
        let every = [
            cfg.intel.misp.as_ref().map_or(0, |m| m.pull_every_s),
            cfg.intel.taxii.as_ref().map_or(0, |t| t.poll_every_s),
        ]
        .into_iter()
        .filter(|s| *s > 0)
        .min();
        let puller = match (&p.intel, every) {
            (Some(rt), Some(s)) => {
                let mut icfg = cfg.intel.clone();
                icfg.warninglists.extend(o.warninglists.iter().cloned());
                Some(islet_intel::feed::Puller::start(
                    icfg,
                    o.intel.clone(),
                    islet_intel::feed::Pulled::default(),
                    rt.snapshot.clone(),
                    Duration::from_secs(s),
                    move |e| pull_note(&format!("intel pull: {e}")),
                ))
            }
            _ => None,
        };
        let log = |m: String| obs.note(&m);
        let result = live::run(
            cfg, &p.live, opened, judges, &mut out, &ctl, &mut tick, &log,
        );
        if let Some(pl) = puller {
            let n = pl.stop();
            obs.note(&format!(
                "intel: {n} snapshots pulled and swapped in while running"
            ));
        }
        if let Some(q) = p.sightings {
            let st = q.finish();
            obs.note(&format!(
                "sightings to MISP: {} sent, {} dropped, {} undelivered",
                st.sent, st.dropped, st.undelivered
            ));
        }
        let fin = out.finish().map_err(|error| LiveError::Finish {
            output: o.output.clone(),
            error,
        })?;
        let (stats, live) = result.map_err(LiveError::Capture)?;
        deliveries(&fin, &destinations, obs).map_err(LiveError::Undelivered)?;
        Ok(Stopped { stats, live })
    }
}

/// SIGHUP: load the policy and intelligence again and swap them in. A bundle that fails
/// verification leaves the one in force ([`crate::policy_load::reload`]); unreadable
/// intelligence leaves the snapshot in force.
fn reload(
    o: &Options,
    cfg: &SensorConfig,
    policy: Option<&PolicyRuntime>,
    intel: Option<&IntelRuntime>,
    records: &mut Vec<u8>,
    obs: &dyn Observer,
) {
    let mut note = |m: &str| obs.note(m);
    if let Some(rt) = policy {
        crate::policy_load::reload(&o.policy_args(), &cfg.policy, rt, records, &mut note);
    }
    if let Some(rt) = intel {
        match runtime_for(&cfg.intel, &o.intel, &o.warninglists, true, &mut note) {
            Ok(Some((new, _))) => {
                let s = new.snapshot.load_full();
                note(&format!("SIGHUP: intel reloaded ({} indicators)", s.len()));
                rt.snapshot.store(s);
            }
            Ok(None) => {}
            Err(e) => note(&format!(
                "SIGHUP: intel not reloaded, the snapshot in force stays: {e}"
            )),
        }
    }
}

/// The live figures and the performance-to-protection ratio as Prometheus metrics.
fn publish(m: &Metrics, st: &LiveStats) {
    m.packets.store(st.packets, Ordering::Relaxed);
    m.bytes.store(st.bytes, Ordering::Relaxed);
    let c = "counter";
    for (name, help, kind, v) in [
        (
            "islet_live_inspected_packets_total",
            "Packets inspected (not bypassed).",
            c,
            st.packets.saturating_sub(st.bypassed) as f64,
        ),
        (
            "islet_live_bypassed_packets_total",
            "Packets of bypassed flows that still reached islet (counted, not parsed).",
            c,
            st.bypassed as f64,
        ),
        (
            "islet_live_kernel_bypassed_packets_total",
            "Packets of flows the XDP program kept in the kernel.",
            c,
            st.kernel_bypassed as f64,
        ),
        (
            "islet_live_forwarded_packets_total",
            "Frames sent on by the inline bridge.",
            c,
            st.forwarded as f64,
        ),
        (
            "islet_live_blocked_packets_total",
            "Frames of denied flows dropped inline.",
            c,
            st.blocked as f64,
        ),
        (
            "islet_live_kernel_drops_total",
            "Frames the kernel dropped before islet (ring full).",
            c,
            st.kernel_drops as f64,
        ),
        (
            "islet_offload_rules",
            "tc rules in place for denied flows.",
            "gauge",
            st.offload_rules as f64,
        ),
        (
            "islet_offload_rules_installed_total",
            "tc rules added.",
            c,
            st.offload_installed as f64,
        ),
        (
            "islet_cpu_seconds_total",
            "CPU time islet used (user + system).",
            c,
            st.cpu_seconds,
        ),
        (
            "islet_protected_packets_per_cpu_second",
            "Covered packets per CPU-second: the performance-to-protection ratio.",
            "gauge",
            st.protected_per_cpu_second(),
        ),
        (
            "islet_coverage_ratio",
            "Share of offered IP packets whose flow had a verdict and metadata.",
            "gauge",
            st.coverage(),
        ),
    ] {
        m.publish(name, help, kind, v);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn err(a: &LiveArgs) -> String {
        match live_config(&SensorConfig::default(), a) {
            Err(e) => e.to_string(),
            Ok(l) => panic!("accepted: {l:?}"),
        }
    }

    #[test]
    fn interfaces_are_checked_before_any_socket() {
        let tap = |t: &[&str]| LiveArgs {
            tap: t.iter().map(|s| s.to_string()).collect(),
            ..LiveArgs::default()
        };
        assert_eq!(
            err(&LiveArgs::default()),
            "no interfaces: give --inline IFA,IFB or --tap IF (or live.mode in the config)"
        );
        assert_eq!(
            err(&LiveArgs {
                inline: vec!["a,b".into()],
                ..tap(&["c"])
            }),
            "--inline and --tap exclude each other"
        );
        assert_eq!(err(&tap(&["a,a"])), "interface a is given twice");
        assert_eq!(
            err(&tap(&["a/b"])),
            "interface \"a/b\": not a valid interface name"
        );
        assert_eq!(
            err(&LiveArgs {
                backend: Some("dpdk".into()),
                ..tap(&["a"])
            }),
            "--backend \"dpdk\": expected afpacket or afxdp"
        );
        let l = live_config(&SensorConfig::default(), &tap(&["a,b", "c"])).expect("tap");
        assert_eq!(describe(&l.mode), "a,b,c");
    }
}
