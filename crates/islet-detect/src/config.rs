//! `[detect]`: every threshold, with defaults for a data centre (docs/DETECTION.md).

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Off: no detector runs.
    pub enabled: Enabled,
    pub scan: ScanConfig,
    pub flood: FloodConfig,
    pub brute: BruteConfig,
    pub lateral: LateralConfig,
    pub volume: VolumeConfig,
    pub service: ServiceConfig,
    pub mitigation: MitigationConfig,
}

/// `detect.mitigation.mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MitigationMode {
    /// No mitigation.
    #[default]
    Off,
    /// Write the rule that would be installed, as an alert; install nothing.
    Recommend,
    /// Install the rule inline (`islet run --inline`); elsewhere as `recommend`.
    Enforce,
}

/// `[detect.mitigation]`: what a SYN flood's onset does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MitigationConfig {
    pub mode: MitigationMode,
    /// Seconds a rule lives; a flood still going after that raises a new onset.
    pub lifetime_s: u64,
    /// Heaviest sources of an own-address or distributed flood dropped by one rule.
    pub max_sources: usize,
    /// New SYNs per second let through to the victim of a spoofed flood from sources that
    /// have not completed a handshake with it (those that have pass).
    pub syn_rate: u32,
    /// Rules installed at once.
    pub max_rules: usize,
}

impl Default for MitigationConfig {
    fn default() -> Self {
        MitigationConfig {
            mode: MitigationMode::Off,
            lifetime_s: 60,
            max_sources: 8,
            syn_rate: 50,
            max_rules: 64,
        }
    }
}

/// `[detect.volume]`: packets and bytes per destination host and protocol per second
/// (FastNetMon's `threshold_pps` and `threshold_mbps`, set for east-west data-centre hosts).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// Packets per second to one host in one protocol.
    pub pps: u64,
    /// Megabits per second to one host in one protocol.
    pub mbps: u64,
    /// Distinct sources from which a flood is called spoofed.
    pub spoofed_sources: u64,
    /// Seconds below the thresholds that end an incident.
    pub quiet_s: u64,
    /// Victims tracked at once.
    pub max_victims: usize,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            pps: 200_000,
            mbps: 5_000,
            spoofed_sources: 50,
            quiet_s: 10,
            max_victims: 1_024,
        }
    }
}

/// `[detect.lateral]`: admin connections — pivots, fan-out, and the baseline that sets their
/// severity.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateralConfig {
    /// Admin services (TCP ports): SSH, RDP, SMB, WinRM, RPC endpoint mapper, VNC.
    pub admin_ports: Vec<u16>,
    /// Database ports treated as admin services too (none by default).
    pub database_ports: Vec<u16>,
    /// Seconds from the first admin connection during which edges are learned: they are not
    /// reported as `new_admin_edge`, and chains and fan-outs over them keep full severity.
    pub learn_s: u64,
    /// Distinct hosts one source must try over admin protocols within the window (automation
    /// over one protocol — SSH from a config manager — reaches a handful of hosts at a time).
    pub fanout_hosts: usize,
    pub fanout_window_s: u64,
    /// Or: distinct admin services (SMB, RDP, WinRM, SSH…) tried on at least
    /// `fanout_service_hosts` hosts — how attack tooling sprays credentials.
    pub fanout_services: usize,
    pub fanout_service_hosts: usize,
    /// A fan-out past its threshold is reported once its source is quiet this long.
    pub fanout_quiet_s: u64,
    /// A chain is reported once it has not grown for this long.
    pub chain_quiet_s: u64,
    /// After learning, a new edge out of a node within this long of a closed session into
    /// it continues that session's path.
    pub chain_window_s: u64,
    /// Baseline edges kept (more are reported as new, not learned).
    pub max_edges: usize,
    /// Nodes with fan-out or path state.
    pub max_nodes: usize,
    /// Fan-out thresholds per identity group; the first group the source belongs to wins.
    pub groups: Vec<LateralGroup>,
}

/// `[[detect.lateral.groups]]`: fan-out thresholds for the workloads of a namespace and/or
/// with a label (`key=value`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateralGroup {
    pub namespace: Option<String>,
    pub label: Option<String>,
    pub fanout_hosts: Option<usize>,
    pub fanout_window_s: Option<u64>,
}

impl Default for LateralConfig {
    fn default() -> Self {
        LateralConfig {
            admin_ports: vec![22, 3389, 445, 5985, 5986, 135, 5900],
            database_ports: Vec::new(),
            learn_s: 86_400,
            fanout_hosts: 10,
            fanout_window_s: 300,
            fanout_services: 3,
            fanout_service_hosts: 3,
            fanout_quiet_s: 10,
            chain_quiet_s: 300,
            chain_window_s: 3_600,
            max_edges: 262_144,
            max_nodes: 65_536,
            groups: Vec::new(),
        }
    }
}

/// `[detect.brute]`: short sessions to one service of one target from one source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteConfig {
    /// Services watched (TCP ports): SSH and RDP.
    pub ports: Vec<u16>,
    /// Short sessions within the window that make a brute force. Zeek's
    /// `SSH::password_guesses_limit` is 30 per 30 minutes of failed logins, which Zeek tells
    /// from the encrypted traffic; islet counts short sessions, which automation (Ansible,
    /// monitoring) also makes, so it asks for 30 within a minute: a guessing tool's pace.
    pub sessions: u64,
    pub window_s: u64,
    /// A session that closes within this many seconds is short (a failed login).
    pub short_s: u64,
    /// (source, target, port) pairs tracked at once (the idlest goes first).
    pub max_pairs: usize,
}

impl Default for BruteConfig {
    fn default() -> Self {
        BruteConfig {
            ports: vec![22, 3389],
            sessions: 30,
            window_s: 60,
            short_s: 30,
            max_pairs: 16_384,
        }
    }
}

/// `detect.enabled`, true unless set false.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(transparent)]
pub struct Enabled(pub bool);

impl Default for Enabled {
    fn default() -> Self {
        Enabled(true)
    }
}

/// `[detect.scan]`: probes that were not answered or were rejected, per source and window.
/// Defaults are Zeek's `scan.zeek` (15 ports, 25 hosts, 5 minutes).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    pub window_s: u64,
    /// Distinct failed ports on one host: a vertical scan.
    pub ports_per_host: u32,
    /// Distinct hosts failed on one port: a horizontal scan.
    pub hosts_per_port: u32,
    /// Sources tracked at once (oldest first out).
    pub max_sources: usize,
    /// Failed (host, port) pairs kept per source.
    pub max_probes_per_source: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            window_s: 300,
            ports_per_host: 15,
            hosts_per_port: 25,
            max_sources: 65_536,
            max_probes_per_source: 4_096,
        }
    }
}

/// `[detect.flood]`: SYNs per destination service and per second, and how few were answered.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodConfig {
    /// SYNs to one destination address and port within one second.
    pub syns_per_second: u32,
    /// SYNs across all destinations within one second, for a flood spread over many.
    pub total_syns_per_second: u32,
    /// Most completed handshakes per SYN in a flood second of one service (legitimate
    /// clients complete theirs; a flooder's kernel resets them, a forged source never answers).
    pub max_completed_ratio: f64,
    /// Most SYN/ACKs per SYN for a second of SYNs spread over many destinations to be a flood.
    pub max_answered_ratio: f64,
    /// Distinct sources from which a flood is called spoofed.
    pub spoofed_sources: u64,
    /// Seconds without a flood second that end an incident.
    pub quiet_s: u64,
    /// Victims tracked at once.
    pub max_victims: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            syns_per_second: 100,
            total_syns_per_second: 100,
            max_completed_ratio: 0.2,
            max_answered_ratio: 0.1,
            spoofed_sources: 50,
            quiet_s: 10,
            max_victims: 1_024,
        }
    }
}

/// `[detect.service]`: per-flow detectors.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Management ports of hypervisors and BMCs, as `proto/port`: any flow to them from a
    /// workload not labelled `islet.io/admin: "true"` alerts.
    pub hypervisor_ports: Vec<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            hypervisor_ports: ["tcp/427", "udp/427", "tcp/902", "tcp/5989", "udp/623"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl ServiceConfig {
    /// The configured ports, parsed: `(protocol number, port)`.
    pub fn ports(&self) -> Result<Vec<(u8, u16)>, PortsError> {
        self.hypervisor_ports
            .iter()
            .map(|s| {
                let bad = |why| PortsError {
                    entry: s.clone(),
                    why,
                };
                let (p, n) = s
                    .split_once('/')
                    .ok_or_else(|| bad(PortsWhy::NotProtoPort))?;
                let proto = match p {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => return Err(bad(PortsWhy::Protocol)),
                };
                let port = n.parse().map_err(|_| bad(PortsWhy::Port))?;
                Ok((proto, port))
            })
            .collect()
    }
}

/// Why an entry of `detect.service.hypervisor_ports` is refused ([`ServiceConfig::ports`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortsError {
    /// The entry as configured.
    pub entry: String,
    pub why: PortsWhy,
}

/// What is wrong with a `proto/port` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortsWhy {
    /// No `/` between protocol and port.
    NotProtoPort,
    /// The protocol is neither `tcp` nor `udp`.
    Protocol,
    /// The port is not a number from 0 to 65535.
    Port,
}

impl std::fmt::Display for PortsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.entry;
        match self.why {
            PortsWhy::NotProtoPort => {
                write!(
                    f,
                    "detect.service.hypervisor_ports: {s:?} is not proto/port"
                )
            }
            PortsWhy::Protocol => write!(
                f,
                "detect.service.hypervisor_ports: {s:?}: protocol must be tcp or udp"
            ),
            PortsWhy::Port => write!(f, "detect.service.hypervisor_ports: {s:?}: bad port"),
        }
    }
}

impl std::error::Error for PortsError {}
