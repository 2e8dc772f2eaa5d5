//! What the live sensor counts, and its `stats` record.

use super::*;

/// One worker's counters, read by the stats loop (each worker writes only its own).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames without IP (ARP, LLDP, …): forwarded, not flows, outside coverage.
    pub non_ip: AtomicU64,
    /// IP packets whose flow had a verdict (or was tracked, without a policy).
    pub covered: AtomicU64,
    pub forwarded: AtomicU64,
    pub blocked: AtomicU64,
    pub bypassed: AtomicU64,
    /// Packets of flows the XDP program kept in the kernel (never seen by a worker).
    pub kernel_bypassed: AtomicU64,
    pub send_errors: AtomicU64,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_freezes: AtomicU64,
}

/// A worker's counts since it last published them to its [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) non_ip: u64,
    pub(crate) covered: u64,
    pub(crate) bypassed: u64,
    pub(crate) forwarded: u64,
    pub(crate) blocked: u64,
    pub(crate) send_errors: u64,
}

impl Tally {
    pub(crate) fn publish(&mut self, c: &Counters) {
        for (n, a) in [
            (self.packets, &c.packets),
            (self.bytes, &c.bytes),
            (self.non_ip, &c.non_ip),
            (self.covered, &c.covered),
            (self.bypassed, &c.bypassed),
            (self.forwarded, &c.forwarded),
            (self.blocked, &c.blocked),
            (self.send_errors, &c.send_errors),
        ] {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
        *self = Tally::default();
    }
}

/// A snapshot of the live sensor, as the stats record and `--stats-interval` report it.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub uptime: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub covered: u64,
    pub forwarded: u64,
    pub blocked: u64,
    pub bypassed: u64,
    pub kernel_bypassed: u64,
    pub send_errors: u64,
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub offload_rules: u64,
    pub offload_installed: u64,
    pub offload_removed: u64,
    pub offload_budget_full: u64,
    pub offload_errors: u64,
    pub cpu_seconds: f64,
}

impl LiveStats {
    /// Share of offered packets whose flow had a verdict and metadata: 1 − drops − uninspected.
    pub fn coverage(&self) -> f64 {
        let offered = (self.packets - self.non_ip.min(self.packets))
            + self.kernel_bypassed
            + self.kernel_drops;
        if offered == 0 {
            return 1.0;
        }
        (self.covered + self.kernel_bypassed) as f64 / offered as f64
    }

    /// Protected packets per CPU-second.
    pub fn protected_per_cpu_second(&self) -> f64 {
        // /proc counts CPU time in 10 ms ticks: never divide by less than one.
        (self.covered + self.kernel_bypassed) as f64 / self.cpu_seconds.max(0.01)
    }

    pub(crate) fn delta_rate(now: u64, before: u64, secs: f64) -> f64 {
        now.saturating_sub(before) as f64 / secs.max(1e-6)
    }

    /// One line for stderr: cost and protection together.
    pub fn line(&self, prev: &LiveStats) -> String {
        let dt = (self.uptime.saturating_sub(prev.uptime)).as_secs_f64();
        let cpu = self.cpu_seconds - prev.cpu_seconds;
        format!(
            "islet: {:.0} pkt/s inspected, {:.0} bypassed, {:.0} kept in the kernel, {:.0} blocked, {} offload rules; drops {} kernel; cpu {:.2} s/s; {:.0} protected pkt per cpu-s; coverage {:.4}",
            Self::delta_rate(
                self.packets - self.bypassed,
                prev.packets - prev.bypassed,
                dt
            ),
            Self::delta_rate(self.bypassed, prev.bypassed, dt),
            Self::delta_rate(self.kernel_bypassed, prev.kernel_bypassed, dt),
            Self::delta_rate(self.blocked, prev.blocked, dt),
            self.offload_rules,
            self.kernel_drops,
            cpu / dt.max(1e-6),
            self.protected_per_cpu_second(),
            self.coverage(),
        )
    }
}

/// CPU seconds this process used (user + system).
pub fn cpu_seconds() -> f64 {
    let t = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = t.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let utime = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let stime = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (utime + stime) / tick
}

pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(crate) fn merge_decoder(t: &mut Stats, d: &Stats) {
    t.pkts += d.pkts;
    t.bytes += d.bytes;
    t.invalid += d.invalid;
    t.ethernet += d.ethernet;
    t.ipv4 += d.ipv4;
    t.ipv6 += d.ipv6;
    t.tcp += d.tcp;
    t.udp += d.udp;
    t.icmpv4 += d.icmpv4;
    t.icmpv6 += d.icmpv6;
    t.vlan += d.vlan;
    t.vxlan += d.vxlan;
    t.gre += d.gre;
    t.erspan += d.erspan;
    t.mpls += d.mpls;
    t.arp += d.arp;
    t.unknown_ethertype += d.unknown_ethertype;
    t.anomalies += d.anomalies;
    t.alerts += d.alerts;
    t.frags += d.frags;
    t.frags_reassembled += d.frags_reassembled;
    t.frags_dropped += d.frags_dropped;
    t.frags_timeouts += d.frags_timeouts;
    t.defrag_drops.add(&d.defrag_drops);
    for (e, c) in &d.decode_events {
        match t.decode_events.iter_mut().find(|x| x.0 == *e) {
            Some(x) => x.1 += c,
            None => t.decode_events.push((*e, *c)),
        }
    }
}

/// The live `stats` record: Suricata's `capture` and `ips` sections and `flow_bypassed`;
/// `offload` (tc rules), `live` (mode and packet counts) and `protection`: the
/// performance-to-protection ratio, cost (CPU seconds) beside protection (coverage, protected
/// packets per CPU-second). (Not under `islet`: that object is the chain's.)
pub fn write_live_stats(b: &mut Vec<u8>, ts_ns: u64, st: &LiveStats, mode: &str, backend: &str) {
    let mut j = Json::object(b);
    j.with("timestamp", |b| islet_event::time::write_iso(b, ts_ns));
    j.str("event_type", "stats");
    j.begin_object("stats");
    j.u64("uptime", st.uptime.as_secs());
    j.begin_object("capture");
    j.u64("kernel_packets", st.kernel_packets);
    j.u64("kernel_drops", st.kernel_drops);
    j.end_object();
    j.begin_object("ips");
    j.u64("accepted", st.forwarded);
    j.u64("blocked", st.blocked);
    j.end_object();
    j.begin_object("flow_bypassed");
    j.u64("local_pkts", st.bypassed);
    j.u64("pkts", st.kernel_bypassed);
    j.end_object();
    j.begin_object("offload");
    j.u64("rules", st.offload_rules);
    j.u64("installed", st.offload_installed);
    j.u64("removed", st.offload_removed);
    j.u64("budget_full", st.offload_budget_full);
    j.u64("errors", st.offload_errors);
    j.end_object();
    j.begin_object("live");
    j.str("mode", mode);
    j.str("backend", backend);
    j.u64("packets", st.packets);
    j.u64("bytes", st.bytes);
    j.u64("non_ip", st.non_ip);
    j.u64("inspected", st.packets.saturating_sub(st.bypassed));
    j.u64("bypassed", st.bypassed);
    j.u64("send_errors", st.send_errors);
    j.end_object();
    j.begin_object("protection");
    j.f64("cpu_seconds", st.cpu_seconds);
    j.f64(
        "protected_pkts_per_cpu_second",
        st.protected_per_cpu_second(),
    );
    j.f64("coverage", st.coverage());
    j.end_object();
    j.end_object();
    j.finish();
}
