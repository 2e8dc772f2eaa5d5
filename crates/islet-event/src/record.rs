//! The typed reading of an EVE record: what every consumer past the writer (sink stages,
//! OCSF, the console's ingest and store, `policy suggest`/`simulate`, the demo's summary)
//! reads from a record islet — or Suricata — wrote, decoded once with serde.
//!
//! The writer side stays in [`crate::eve`], [`crate::eve_proto`] and [`crate::alert`], which
//! encode straight into byte buffers; this module is the one other place that knows EVE's
//! member names. A consumer decodes a line with [`EveRecord::decode`] and keeps the line itself
//! as the sealed bytes (it is what the chain hashes and signs).
//!
//! Decoding is lenient member by member: a member of an unexpected JSON type reads as absent
//! (see `lenient`), so a record is refused only when it is not a JSON object at all. Members
//! no consumer reads are skipped without being buffered.

mod lenient;

use lenient::{list, opt, or_default, strings};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Why a line is not a record.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// JSON that is not an object (or not JSON at all).
    NotAnObject,
    /// An object that is not well-formed JSON.
    Malformed(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotAnObject => f.write_str("not an EVE record (a JSON object)"),
            DecodeError::Malformed(e) => write!(f, "malformed EVE record: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One EVE record, as far as islet's consumers read it.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct EveRecord {
    #[serde(default, deserialize_with = "opt")]
    pub timestamp: Option<String>,
    /// `flow`, `netflow`, `alert`, `dns`, `tls`, `http`, `stats`, `checkpoint`, `gap`, … (empty
    /// when absent).
    #[serde(default, deserialize_with = "or_default")]
    pub event_type: String,
    #[serde(default, deserialize_with = "opt")]
    pub flow_id: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub src_ip: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub dest_ip: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub src_port: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub dest_port: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub proto: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub app_proto: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub community_id: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub flow: Option<Flow>,
    #[serde(default, deserialize_with = "opt")]
    pub tcp: Option<Tcp>,
    #[serde(default, deserialize_with = "opt")]
    pub alert: Option<AlertPart>,
    #[serde(default, deserialize_with = "opt")]
    pub dns: Option<Dns>,
    #[serde(default, deserialize_with = "opt")]
    pub tls: Option<Tls>,
    #[serde(default, deserialize_with = "opt")]
    pub quic: Option<Tls>,
    #[serde(default, deserialize_with = "opt")]
    pub http: Option<Http>,
    #[serde(default, deserialize_with = "opt")]
    pub anomaly: Option<AnomalyPart>,
    /// A `policy` record's body (`event_type: policy`, e.g. a rejected bundle).
    #[serde(default, deserialize_with = "opt")]
    pub policy: Option<Policy>,
    #[serde(default, deserialize_with = "opt")]
    pub gap: Option<Gap>,
    #[serde(default, deserialize_with = "opt")]
    pub checkpoint: Option<Checkpoint>,
    /// A `stats` record's body as written (kept as text; [`EveRecord::stats_summary`] reads it).
    #[serde(default)]
    pub stats: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "opt")]
    pub islet: Option<Islet>,
}

/// `flow`: the flow's counters and times.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Flow {
    #[serde(default, deserialize_with = "opt")]
    pub start: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub end: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub pkts_toserver: u64,
    #[serde(default, deserialize_with = "or_default")]
    pub pkts_toclient: u64,
    #[serde(default, deserialize_with = "or_default")]
    pub bytes_toserver: u64,
    #[serde(default, deserialize_with = "or_default")]
    pub bytes_toclient: u64,
    #[serde(default, deserialize_with = "or_default")]
    pub alerted: bool,
    #[serde(default, deserialize_with = "opt")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub action: Option<String>,
}

impl Flow {
    /// Packets both ways (saturating).
    pub fn pkts(&self) -> u64 {
        self.pkts_toserver.saturating_add(self.pkts_toclient)
    }
    /// Bytes both ways (saturating).
    pub fn bytes(&self) -> u64 {
        self.bytes_toserver.saturating_add(self.bytes_toclient)
    }
}

/// `tcp`: the flags a consumer reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Tcp {
    #[serde(default, deserialize_with = "or_default")]
    pub rst: bool,
    #[serde(default, deserialize_with = "or_default")]
    pub syn: bool,
    #[serde(default, deserialize_with = "or_default")]
    pub fin: bool,
    #[serde(default, deserialize_with = "opt")]
    pub state: Option<String>,
}

/// Alert metadata: Suricata's map of lists of strings.
#[derive(Debug, Clone, Default)]
pub struct Metadata(pub BTreeMap<String, Vec<String>>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Strings(#[serde(deserialize_with = "strings")] Vec<String>);
        let m: BTreeMap<String, Strings> = BTreeMap::deserialize(d)?;
        Ok(Metadata(m.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

/// Metadata members that name addresses involved in a detection (the victim, a lateral
/// movement path, a flood's attacker, a scan's ends).
pub const ADDRESS_METADATA: [&str; 6] = [
    "victim",
    "path",
    "path_addresses",
    "src_node",
    "dest_node",
    "attacker",
];

impl Metadata {
    /// The values under `key` (empty when absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }
    /// islet's detection name (`syn_flood`, `lateral_movement_chain`, …), the first value of
    /// `detection`.
    pub fn detection(&self) -> Option<&str> {
        self.get("detection").first().map(String::as_str)
    }
    /// ATT&CK technique ids.
    pub fn technique_ids(&self) -> &[String] {
        self.get("mitre_technique_id")
    }
    /// ATT&CK technique names, in the order of the ids.
    pub fn technique_names(&self) -> &[String] {
        self.get("mitre_technique_name")
    }
    /// A lateral movement chain's hops, in order.
    pub fn path(&self) -> &[String] {
        self.get("path")
    }
    /// Every value of the members in [`ADDRESS_METADATA`].
    pub fn address_values(&self) -> impl Iterator<Item = &str> {
        ADDRESS_METADATA
            .iter()
            .flat_map(|k| self.get(k).iter().map(String::as_str))
    }
}

/// `alert`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct AlertPart {
    #[serde(default, deserialize_with = "opt")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub gid: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub signature_id: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub rev: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub signature: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub severity: Option<u64>,
    #[serde(default, deserialize_with = "or_default")]
    pub metadata: Metadata,
}

/// `dns` (Suricata 8, version 3): a query or a response.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Dns {
    /// `query` or `response`.
    #[serde(default, deserialize_with = "opt", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub rrname: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub rrtype: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub rcode: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub queries: Vec<DnsRr>,
    #[serde(default, deserialize_with = "list")]
    pub answers: Vec<DnsRr>,
}

impl Dns {
    /// Every name asked: each query's `rrname`, and the record's own.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.queries
            .iter()
            .filter_map(|q| q.rrname.as_deref())
            .chain(self.rrname.as_deref())
    }
}

/// One query or answer of a `dns` record.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct DnsRr {
    #[serde(default, deserialize_with = "opt")]
    pub rrname: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub rrtype: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub rdata: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub ttl: Option<u64>,
}

/// A fingerprint member (`ja3`, `ja3s`): `{"hash": …, "string": …}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Hash {
    #[serde(default, deserialize_with = "opt")]
    pub hash: Option<String>,
}

/// `tls` (also `quic`, which carries the same names).
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Tls {
    #[serde(default, deserialize_with = "opt")]
    pub sni: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub version: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub ja3: Option<Hash>,
    #[serde(default, deserialize_with = "opt")]
    pub ja3s: Option<Hash>,
    #[serde(default, deserialize_with = "opt")]
    pub ja4: Option<String>,
}

/// `http`: request and response metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Http {
    #[serde(default, deserialize_with = "opt")]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub http_method: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub http_port: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub http_user_agent: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub http_content_type: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub status: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub length: Option<u64>,
}

/// `anomaly`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct AnomalyPart {
    #[serde(default, deserialize_with = "opt", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub event: Option<String>,
}

/// A policy verdict (`islet.policy` of a flow or an alert) or a `policy` record's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Policy {
    #[serde(default, deserialize_with = "opt")]
    pub verdict: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub rule: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub src_identity: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub dest_identity: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub bundle_version: Option<u64>,
    /// A `policy` record's event (`bundle_rejected`, …).
    #[serde(default, deserialize_with = "opt")]
    pub event: Option<String>,
}

/// `gap`: records a sensor declares lost (signed).
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Gap {
    #[serde(default, deserialize_with = "opt")]
    pub first_seq: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub last_seq: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub reason: Option<String>,
    /// Hex SHA-256 the chain resumes from after the gap.
    #[serde(default, deserialize_with = "opt")]
    pub resume_prev: Option<String>,
}

/// `checkpoint`: a signed statement over a range of the chain.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    #[serde(default, deserialize_with = "opt")]
    pub first_seq: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub last_seq: Option<u64>,
    #[serde(default, deserialize_with = "opt", rename = "final")]
    pub is_final: Option<bool>,
}

/// `islet`: what islet adds to a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Islet {
    /// The record's place in its sensor's chain.
    #[serde(default, deserialize_with = "opt")]
    pub seq: Option<u64>,
    /// Hex SHA-256 of the record before it.
    #[serde(default, deserialize_with = "opt")]
    pub prev: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub key_id: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub policy: Option<Policy>,
    #[serde(default, deserialize_with = "opt")]
    pub intel: Option<Intel>,
}

/// `islet.intel`: the MISP attribute an alert matched.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Intel {
    #[serde(default, deserialize_with = "opt")]
    pub feed: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub event_uuid: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub event_info: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub attribute_uuid: Option<String>,
    /// The MISP attribute type (`domain`, `ip-dst`, `ja3-fingerprint-md5`, …).
    #[serde(default, deserialize_with = "opt", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "opt")]
    pub threat_level_id: Option<u64>,
}

/// What a console reads of a `stats` record.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct StatsSummary {
    /// Packets lost anywhere: decode, flow table, buffer and sink drops plus kernel drops.
    pub drops: u64,
    /// Events written, all types.
    pub events: u64,
    pub uptime_s: Option<f64>,
    pub protected_pkts_per_cpu_second: Option<f64>,
}

#[derive(Deserialize, Default)]
struct StatsBody {
    #[serde(default, deserialize_with = "opt")]
    uptime: Option<f64>,
    #[serde(default, deserialize_with = "or_default")]
    capture: StatsCapture,
    #[serde(default, deserialize_with = "or_default")]
    output: StatsOutput,
    #[serde(default, deserialize_with = "or_default")]
    protection: StatsProtection,
}

#[derive(Deserialize, Default)]
struct StatsCapture {
    #[serde(default, deserialize_with = "or_default")]
    kernel_drops: u64,
}

#[derive(Deserialize, Default)]
struct StatsOutput {
    #[serde(default, deserialize_with = "or_default")]
    drops: StatsDrops,
    #[serde(default, deserialize_with = "or_default")]
    events: BTreeMap<String, Count>,
}

#[derive(Deserialize, Default)]
struct Count(#[serde(deserialize_with = "or_default")] u64);

#[derive(Deserialize, Default)]
struct StatsDrops {
    #[serde(default, deserialize_with = "or_default")]
    decode: u64,
    #[serde(default, deserialize_with = "or_default")]
    flow_table: u64,
    #[serde(default, deserialize_with = "or_default")]
    buffer: u64,
    #[serde(default, deserialize_with = "or_default")]
    sink: u64,
}

#[derive(Deserialize, Default)]
struct StatsProtection {
    #[serde(default, deserialize_with = "opt")]
    protected_pkts_per_cpu_second: Option<f64>,
}

impl EveRecord {
    /// Decode one line (without its newline).
    pub fn decode(line: &[u8]) -> Result<EveRecord, DecodeError> {
        // serde would take an array positionally as a struct: only an object is a record.
        if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(DecodeError::NotAnObject);
        }
        serde_json::from_slice(line).map_err(DecodeError::Malformed)
    }

    /// `islet.seq`.
    pub fn seq(&self) -> Option<u64> {
        self.islet.as_ref().and_then(|i| i.seq)
    }

    /// `islet.prev`, decoded (None when absent or not 64 hex digits).
    pub fn prev(&self) -> Option<[u8; 32]> {
        hex32(self.islet.as_ref()?.prev.as_deref()?)
    }

    /// The policy verdict on this flow or alert (`islet.policy`).
    pub fn verdict(&self) -> Option<&Policy> {
        self.islet.as_ref()?.policy.as_ref()
    }

    /// The MISP attribute an alert matched (`islet.intel`).
    pub fn intel(&self) -> Option<&Intel> {
        self.islet.as_ref()?.intel.as_ref()
    }

    /// `timestamp` as Unix ms.
    pub fn ts_ms(&self) -> Option<i64> {
        crate::time::parse_iso_ms(self.timestamp.as_deref()?)
    }

    /// Names this record puts on its flow: DNS names asked, TLS/QUIC SNI, HTTP Host, each with
    /// how it was seen (`dns`, `tls`, `http`).
    pub fn names(&self) -> Vec<(&str, &'static str)> {
        let mut out = Vec::new();
        if let Some(d) = &self.dns {
            out.extend(d.names().map(|n| (n, "dns")));
        }
        for t in [&self.tls, &self.quic].into_iter().flatten() {
            out.extend(t.sni.as_deref().map(|n| (n, "tls")));
        }
        if let Some(h) = &self.http {
            out.extend(h.hostname.as_deref().map(|n| (n, "http")));
        }
        out
    }

    /// A `stats` record's counters (None for other records or a body that is not an object).
    pub fn stats_summary(&self) -> Option<StatsSummary> {
        let b: StatsBody = serde_json::from_str(self.stats.as_ref()?.get()).ok()?;
        let d = &b.output.drops;
        Some(StatsSummary {
            drops: [
                d.decode,
                d.flow_table,
                d.buffer,
                d.sink,
                b.capture.kernel_drops,
            ]
            .iter()
            .fold(0u64, |a, x| a.saturating_add(*x)),
            events: b
                .output
                .events
                .values()
                .fold(0u64, |a, x| a.saturating_add(x.0)),
            uptime_s: b.uptime,
            protected_pkts_per_cpu_second: b.protection.protected_pkts_per_cpu_second,
        })
    }
}

/// 64 hex digits as 32 bytes.
pub fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let n = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        *o = n(b[2 * i])? << 4 | n(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
