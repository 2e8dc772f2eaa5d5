//! The sensor's configuration: one TOML file, every field optional, defaults that work.
//! docs/CONFIG.md documents each field; these doc comments are its source.

use islet_flow::defrag::DefragConfig;
use islet_flow::stream::StreamConfig;
use islet_flow::{FlowConfig, Timeouts};
use serde::Deserialize;
use std::path::Path;

/// Top-level configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    pub sensor: SensorSection,
    pub flow: FlowSection,
    pub defrag: DefragSection,
    pub stream: StreamSection,
    pub app_layer: AppLayerSection,
    pub output: OutputSection,
    /// `[intel]`: threat intelligence sources and MISP/TAXII pulls (docs/CONFIG.md).
    pub intel: islet_intel::feed::IntelConfig,
    /// `[policy]`: the segmentation policy bundle, pinned keys, inventory (docs/POLICY.md).
    pub policy: PolicySection,
    /// `[detect]`: behavioural detectors and their thresholds (docs/DETECTION.md).
    pub detect: islet_detect::DetectConfig,
    /// `[forward]`: Fluentd Forward delivery (docs/EVIDENCE.md).
    pub forward: crate::output::ForwardSection,
    /// `[live]`: `islet run`, the live sensor (docs/CONFIG.md, docs/LIVE.md).
    pub live: LiveSection,
}

/// `[live]`: what `islet run` captures from and how it enforces.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSection {
    /// `inline` (bridge `pairs`) or `tap` (monitor `interfaces`). Empty: from the command line.
    pub mode: String,
    /// Inline: interface pairs bridged to each other, e.g. `[["eth0", "eth1"]]`.
    pub pairs: Vec<[String; 2]>,
    /// Tap: interfaces monitored (both directions).
    pub interfaces: Vec<String>,
    /// Capture backend: `afpacket` (TPACKET_V3 rings) or `afxdp`.
    pub backend: String,
    /// After opening its sockets, become this user (keeping CAP_NET_ADMIN and CAP_NET_RAW
    /// only). Empty: stay as started.
    pub user: String,
    /// Seconds between `stats` records (and stderr lines with `--stats-interval`); 0: only
    /// the final one.
    pub stats_interval: u64,
    /// Stop inspecting a flow once its metadata is logged and its verdict allows it (it is
    /// still counted; `flow.bypass` is `local`).
    pub bypass: bool,
    /// AF_XDP: keep bypassed flows in the kernel (the XDP program forwards them between the
    /// ports, or passes them to the stack on a tap). `auto`: on, except inline on virtual
    /// ports (veth), whose peers drop redirected frames unless they have GRO on and compute
    /// their own checksums; `on`; `off` (software bypass only).
    pub kernel_bypass: String,
    /// Bytes per ring block (a power of two, at least 128 KiB: a GSO frame fits one block).
    pub ring_block_size: u32,
    /// Blocks per ring (one ring per interface per worker).
    pub ring_blocks: u32,
    /// Milliseconds before the kernel hands over a block that is not full.
    pub ring_block_timeout_ms: u32,
    /// Program denied flows as tc flower drop rules on the ingress of the port they came in
    /// by (what a DPU's eSwitch offloads to hardware). Removed when the flow ends or islet
    /// stops.
    pub offload: bool,
    /// Most offloaded rules at once; past it, denied flows are dropped in software only.
    pub offload_max_rules: usize,
    /// Keep offloaded rules in the kernel's software datapath only (`skip_hw`).
    pub offload_skip_hw: bool,
}

impl Default for LiveSection {
    fn default() -> Self {
        LiveSection {
            mode: String::new(),
            pairs: Vec::new(),
            interfaces: Vec::new(),
            backend: "afpacket".into(),
            user: String::new(),
            stats_interval: 0,
            bypass: true,
            kernel_bypass: "auto".into(),
            ring_block_size: 1 << 20,
            ring_blocks: 64,
            ring_block_timeout_ms: 10,
            offload: true,
            offload_max_rules: 4096,
            offload_skip_hw: false,
        }
    }
}

/// Where `islet run` keeps the policy state when a key is pinned and neither
/// `--policy-state` nor `[policy] state_dir` names one: rollback protection does not depend
/// on remembering a flag.
pub const DEFAULT_POLICY_STATE_DIR: &str = "/var/lib/islet/policy";

/// `[policy]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// A policy bundle directory (or one policy file). Unset: no policy, no verdicts.
    pub bundle: Option<std::path::PathBuf>,
    /// Public keys (`policy.pub` files) a bundle must be signed by. Empty: an unsigned policy
    /// is accepted, with a warning at every start.
    pub pubkeys: Vec<std::path::PathBuf>,
    /// The workload inventory (islet TOML or a Kubernetes pod list).
    pub inventory: Option<std::path::PathBuf>,
    /// Where the active bundle is kept: a rejected bundle leaves it in force, and versions
    /// below it are refused. Unset: `islet run` with a pinned key uses
    /// [`DEFAULT_POLICY_STATE_DIR`]; `islet read` keeps none and says it cannot refuse a
    /// rollback.
    pub state_dir: Option<std::path::PathBuf>,
    /// Addresses whose DNS-learned names each worker keeps (for `fqdn` peers and derived
    /// identities); the least recently learned go first.
    pub names_max: usize,
    /// Seconds a learned name holds at least, whatever the answer's TTL (Cilium's
    /// `tofqdns-min-ttl`).
    pub dns_min_ttl: u64,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            bundle: None,
            pubkeys: Vec::new(),
            inventory: None,
            state_dir: None,
            names_max: 65_536,
            dns_min_ttl: 3_600,
        }
    }
}

/// `[app_layer]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppLayerSection {
    /// Detect application protocols and parse their metadata. Off, islet tracks flows only.
    pub enabled: bool,
}

impl Default for AppLayerSection {
    fn default() -> Self {
        AppLayerSection { enabled: true }
    }
}

/// `[sensor]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Packets handed to a worker per batch.
    pub batch_packets: usize,
}

impl Default for SensorSection {
    fn default() -> Self {
        SensorSection {
            workers: 0,
            batch_packets: 256,
        }
    }
}

/// Timeouts of one protocol, in seconds.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSection {
    pub new: u32,
    pub established: u32,
    #[serde(default)]
    pub closed: u32,
    pub emergency_new: u32,
    pub emergency_established: u32,
    #[serde(default)]
    pub emergency_closed: u32,
}

/// `[flow]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSection {
    /// Most flows tracked at once (over all workers).
    pub max_flows: usize,
    /// Leave emergency mode when the table is this many percent below `max_flows`.
    pub emergency_recovery: u8,
    /// Track TCP sessions that began before islet saw them.
    pub midstream: bool,
    pub tcp: TimeoutSection,
    pub udp: TimeoutSection,
    pub icmp: TimeoutSection,
    pub default: TimeoutSection,
}

fn ts(t: &Timeouts, e: &Timeouts) -> TimeoutSection {
    TimeoutSection {
        new: t.new,
        established: t.established,
        closed: t.closed,
        emergency_new: e.new,
        emergency_established: e.established,
        emergency_closed: e.closed,
    }
}

impl Default for FlowSection {
    fn default() -> Self {
        let d = FlowConfig::default();
        let (t, e) = (&d.timeouts, &d.emergency_timeouts);
        FlowSection {
            max_flows: d.max_flows,
            emergency_recovery: d.emergency_recovery_pct,
            midstream: d.midstream,
            tcp: ts(&t[0], &e[0]),
            udp: ts(&t[1], &e[1]),
            icmp: ts(&t[2], &e[2]),
            default: ts(&t[3], &e[3]),
        }
    }
}

/// `[defrag]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragSection {
    /// Most datagrams under reassembly.
    pub max_trackers: usize,
    /// Most bytes held in fragments.
    pub memcap: usize,
    /// Most datagrams under reassembly from one source address.
    pub max_trackers_per_source: usize,
    /// Most bytes held in fragments from one source address.
    pub memcap_per_source: usize,
    /// Seconds before an incomplete datagram is dropped.
    pub timeout: u32,
}

impl Default for DefragSection {
    fn default() -> Self {
        let d = DefragConfig::default();
        DefragSection {
            max_trackers: d.max_trackers,
            memcap: d.max_bytes,
            max_trackers_per_source: d.max_trackers_per_source,
            memcap_per_source: d.max_bytes_per_source,
            timeout: (d.timeout_ns / 1_000_000_000) as u32,
        }
    }
}

/// `[stream]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// Most bytes reassembled per direction of a TCP session.
    pub depth: u64,
    /// Most out-of-order bytes buffered per direction.
    pub max_buffered: usize,
}

impl Default for StreamSection {
    fn default() -> Self {
        let d = StreamConfig::default();
        StreamSection {
            depth: d.depth,
            max_buffered: d.max_buffered,
        }
    }
}

pub use crate::output::OutputSection;

/// A configuration problem, naming the file and what is wrong.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A TOML error as one line: `line L, column C: message` (the parser's own rendering draws
/// the offending line over several).
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {}", msg.trim())
        }
        None => msg.trim().to_owned(),
    }
}

impl SensorConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let c: SensorConfig = toml::from_str(text).map_err(|e| ConfigError(one_line(text, &e)))?;
        c.validate()?;
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.flow.max_flows == 0 {
            return Err(ConfigError("flow.max_flows must be at least 1".into()));
        }
        if self.flow.emergency_recovery > 100 {
            return Err(ConfigError(
                "flow.emergency_recovery is a percentage (0-100)".into(),
            ));
        }
        self.detect
            .service
            .ports()
            .map_err(|e| ConfigError(e.to_string()))?;
        if self.detect.scan.max_sources == 0 || self.detect.flood.max_victims == 0 {
            return Err(ConfigError(
                "detect.scan.max_sources and detect.flood.max_victims must be at least 1".into(),
            ));
        }
        if self.policy.names_max == 0 {
            return Err(ConfigError("policy.names_max must be at least 1".into()));
        }
        let l = &self.live;
        if !matches!(l.mode.as_str(), "" | "inline" | "tap") {
            return Err(ConfigError(format!(
                "live.mode: {:?} is neither \"inline\" nor \"tap\"",
                l.mode
            )));
        }
        if !matches!(l.backend.as_str(), "afpacket" | "afxdp") {
            return Err(ConfigError(format!(
                "live.backend: {:?} is neither \"afpacket\" nor \"afxdp\"",
                l.backend
            )));
        }
        if !matches!(l.kernel_bypass.as_str(), "auto" | "on" | "off") {
            return Err(ConfigError(format!(
                "live.kernel_bypass: {:?} is not \"auto\", \"on\" or \"off\"",
                l.kernel_bypass
            )));
        }
        if l.offload_max_rules == 0 {
            return Err(ConfigError(
                "live.offload_max_rules must be at least 1".into(),
            ));
        }
        for p in &l.pairs {
            if p[0] == p[1] || p[0].is_empty() {
                return Err(ConfigError(format!(
                    "live.pairs: [{:?}, {:?}] must be two different interfaces",
                    p[0], p[1]
                )));
            }
        }
        if self.sensor.batch_packets == 0 {
            return Err(ConfigError(
                "sensor.batch_packets must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Worker count after resolving 0 to the number of cores.
    pub fn workers(&self) -> usize {
        match self.sensor.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        }
    }

    /// The flow table settings for one of `workers` tables.
    pub fn flow_config(&self, workers: usize) -> FlowConfig {
        let t = |s: &TimeoutSection| Timeouts {
            new: s.new,
            established: s.established,
            closed: s.closed,
        };
        let e = |s: &TimeoutSection| Timeouts {
            new: s.emergency_new,
            established: s.emergency_established,
            closed: s.emergency_closed,
        };
        let f = &self.flow;
        FlowConfig {
            max_flows: (f.max_flows / workers.max(1)).max(1),
            emergency_recovery_pct: f.emergency_recovery,
            timeouts: [t(&f.tcp), t(&f.udp), t(&f.icmp), t(&f.default)],
            emergency_timeouts: [e(&f.tcp), e(&f.udp), e(&f.icmp), e(&f.default)],
            midstream: f.midstream,
        }
    }

    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            depth: self.stream.depth,
            max_buffered: self.stream.max_buffered,
        }
    }

    pub fn defrag_config(&self) -> DefragConfig {
        DefragConfig {
            max_trackers: self.defrag.max_trackers,
            max_bytes: self.defrag.memcap,
            max_trackers_per_source: self.defrag.max_trackers_per_source,
            max_bytes_per_source: self.defrag.memcap_per_source,
            timeout_ns: u64::from(self.defrag.timeout) * 1_000_000_000,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = SensorConfig::from_toml("").unwrap();
        assert_eq!(c.flow.tcp.established, 600);
        assert_eq!(c.defrag.timeout, 60);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = SensorConfig::from_toml("[flow]\nmax_flow = 3\n").unwrap_err();
        assert!(e.0.contains("max_flow"), "{e}");
    }

    #[test]
    fn partial_section_overrides() {
        let c =
            SensorConfig::from_toml("[flow]\nmax_flows = 10\n[output]\ncommunity_id_seed = 7\n")
                .unwrap();
        assert_eq!((c.flow.max_flows, c.output.community_id_seed), (10, 7));
        assert_eq!(c.flow.udp.new, 30);
    }
}
