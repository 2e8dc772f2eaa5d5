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

/// `[detect.lateral]`: the admin-protocol graph, its baseline and what departs from it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateralConfig {
    /// Admin services (TCP ports): SSH, RDP, SMB, WinRM, RPC endpoint mapper, VNC.
    pub admin_ports: Vec<u16>,
    /// Database ports treated as admin services too (none by default).
    pub database_ports: Vec<u16>,
    /// Seconds from the first admin connection during which edges are learned, not reported.
    pub learn_s: u64,
    /// New hosts one source must reach over admin protocols within the window.
    pub fanout_hosts: usize,
    pub fanout_window_s: u64,
    /// Most time between one hop and the next of a path.
    pub chain_window_s: u64,
    /// Baseline edges kept (more are reported as new, not learned).
    pub max_edges: usize,
    /// Nodes with fan-out or path state.
    pub max_nodes: usize,
}

impl Default for LateralConfig {
    fn default() -> Self {
        LateralConfig {
            admin_ports: vec![22, 3389, 445, 5985, 5986, 135, 5900],
            database_ports: Vec::new(),
            learn_s: 86_400,
            fanout_hosts: 5,
            fanout_window_s: 600,
            chain_window_s: 3_600,
            max_edges: 262_144,
            max_nodes: 65_536,
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
    /// Most SYN/ACKs per SYN for it to be a flood (a busy server answers).
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
    pub fn ports(&self) -> Result<Vec<(u8, u16)>, String> {
        self.hypervisor_ports
            .iter()
            .map(|s| {
                let (p, n) = s.split_once('/').ok_or_else(|| {
                    format!("detect.service.hypervisor_ports: {s:?} is not proto/port")
                })?;
                let proto = match p {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => {
                        return Err(format!(
                            "detect.service.hypervisor_ports: {s:?}: protocol must be tcp or udp"
                        ));
                    }
                };
                let port = n
                    .parse()
                    .map_err(|_| format!("detect.service.hypervisor_ports: {s:?}: bad port"))?;
                Ok((proto, port))
            })
            .collect()
    }
}
