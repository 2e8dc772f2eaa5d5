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
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a line is not a record.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// JSON that is not an object (or not JSON at all).
    NotAnObject,
    /// Bytes that are not UTF-8 (JSON text is).
    NotUtf8,
    /// An object that is not well-formed JSON.
    Malformed(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotAnObject => f.write_str("not an EVE record (a JSON object)"),
            DecodeError::NotUtf8 => f.write_str("not an EVE record (not UTF-8)"),
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
    pub alert: Option<Box<AlertPart>>,
    #[serde(default, deserialize_with = "opt")]
    pub dns: Option<Box<Dns>>,
    #[serde(default, deserialize_with = "opt")]
    pub tls: Option<Box<Tls>>,
    #[serde(default, deserialize_with = "opt")]
    pub quic: Option<Box<Tls>>,
    #[serde(default, deserialize_with = "opt")]
    pub http: Option<Box<Http>>,
    #[serde(default, deserialize_with = "opt")]
    pub anomaly: Option<Box<AnomalyPart>>,
    /// A `policy` record's body (`event_type: policy`, e.g. a rejected bundle).
    #[serde(default, deserialize_with = "opt")]
    pub policy: Option<Box<Policy>>,
    #[serde(default, deserialize_with = "opt")]
    pub gap: Option<Box<Gap>>,
    #[serde(default, deserialize_with = "opt")]
    pub checkpoint: Option<Box<Checkpoint>>,
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
    /// Every name asked: the record's own `rrname`, then each query's.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rrname
            .as_deref()
            .into_iter()
            .chain(self.queries.iter().filter_map(|q| q.rrname.as_deref()))
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
    /// The request's `Referer`.
    #[serde(default, deserialize_with = "opt")]
    pub http_refer: Option<String>,
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
    /// How many records are missing (`last_seq - first_seq + 1`).
    #[serde(default, deserialize_with = "opt")]
    pub count: Option<u64>,
    #[serde(default, deserialize_with = "opt")]
    pub reason: Option<String>,
    /// Hex SHA-256 the chain resumes from after the gap.
    #[serde(default, deserialize_with = "opt")]
    pub resume_prev: Option<String>,
    /// The signing key's id (absent when the sensor had no key).
    #[serde(default, deserialize_with = "opt")]
    pub key_id: Option<String>,
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
    /// The signing key's id (absent when the sensor had no key).
    #[serde(default, deserialize_with = "opt")]
    pub key_id: Option<String>,
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
    pub policy: Option<Box<Policy>>,
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
        // serde_json checks UTF-8 only in the strings it reads, not in members it skips: a
        // record is JSON, so all of it must be UTF-8 (it is kept and given back as text).
        let text = std::str::from_utf8(line).map_err(|_| DecodeError::NotUtf8)?;
        serde_json::from_str(text).map_err(DecodeError::Malformed)
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
        self.islet.as_ref()?.policy.as_deref()
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

/// The members that place a record: its time, its type, the five-tuple, the flow id and the
/// Community ID. A consumer that maps records onto another schema (OCSF) maps these for every
/// record and carries the others through as written ([`Members`]).
pub const PLACE: [&str; 9] = [
    "timestamp",
    "event_type",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
    "community_id",
    "flow_id",
];

impl EveRecord {
    /// Whether the typed reading took the member `name` of [`PLACE`] (it was there, of the
    /// expected JSON type).
    fn took(&self, name: &str, written: &Value) -> bool {
        match name {
            "timestamp" => self.timestamp.is_some(),
            "event_type" => written.is_string(),
            "src_ip" => self.src_ip.is_some(),
            "src_port" => self.src_port.is_some(),
            "dest_ip" => self.dest_ip.is_some(),
            "dest_port" => self.dest_port.is_some(),
            "proto" => self.proto.is_some(),
            "community_id" => self.community_id.is_some(),
            "flow_id" => self.flow_id.is_some(),
            _ => false,
        }
    }
}

/// A record's members as written, beside its typed reading ([`EveRecord::decode_with_members`]):
/// what a consumer that maps the record onto another schema carries through unmapped.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Members {
    /// `islet` as written, whatever its JSON type.
    pub islet: Option<Value>,
    /// Every other member, by name, except the members of [`PLACE`] that the typed reading
    /// took (one of another type stays here, so nothing written is lost).
    pub rest: Map<String, Value>,
}

impl EveRecord {
    /// Decode one line (without its newline) into its typed reading and its members as written.
    /// The line is parsed once, into JSON values; the typed reading is taken from those (the
    /// same lenient reading as [`EveRecord::decode`]; a member repeated in the line counts once,
    /// the last).
    pub fn decode_with_members(line: &[u8]) -> Result<(EveRecord, Members), DecodeError> {
        if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(DecodeError::NotAnObject);
        }
        let v: Value = serde_json::from_slice(line).map_err(DecodeError::Malformed)?;
        let rec = EveRecord::deserialize(&v).map_err(DecodeError::Malformed)?;
        let Value::Object(mut rest) = v else {
            return Err(DecodeError::NotAnObject);
        };
        let islet = rest.remove("islet");
        for name in PLACE {
            if rest.get(name).is_some_and(|w| rec.took(name, w)) {
                rest.remove(name);
            }
        }
        Ok((rec, Members { islet, rest }))
    }

    /// The `event_type` of a line, read without decoding the record: the string value of the
    /// top-level `event_type` member, or None when there is none or its value holds an escape.
    /// For a stage that only counts records by type, once per record on the writer thread (the
    /// sink's metrics): it reads up to that member and no further. A line that is not JSON may
    /// still give a value; [`EveRecord::decode`] is the reading that checks.
    pub fn peek_event_type(line: &[u8]) -> Option<&str> {
        const KEY: &[u8] = b"\"event_type\"";
        let (mut depth, mut i) = (0u32, 0usize);
        while i < line.len() {
            match line[i] {
                b'"' => {
                    if depth == 1 && line[i..].starts_with(KEY) {
                        let after = skip_ws(line, i + KEY.len());
                        if line.get(after) == Some(&b':') {
                            let at = skip_ws(line, after + 1);
                            if line.get(at) != Some(&b'"') {
                                return None;
                            }
                            let v = &line[at + 1..];
                            let end = v.iter().position(|&c| c == b'"' || c == b'\\')?;
                            if v[end] == b'\\' {
                                return None;
                            }
                            return std::str::from_utf8(&v[..end]).ok();
                        }
                    }
                    // Past the string (a key or a value).
                    i += 1;
                    while i < line.len() && line[i] != b'"' {
                        i += if line[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// The text of a record's `timestamp` when it is the record's first member, as islet and
    /// Suricata write it (`{"timestamp":"…"`), read without decoding the record: for the stages
    /// that time every record on the writer thread (the event chain's checkpoints).
    pub fn peek_timestamp(line: &[u8]) -> Option<&[u8]> {
        const LEAD: &[u8] = b"{\"timestamp\":\"";
        let rest = line.strip_prefix(LEAD)?;
        let end = rest.iter().position(|&c| c == b'"')?;
        Some(&rest[..end])
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
    {
        i += 1;
    }
    i
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
