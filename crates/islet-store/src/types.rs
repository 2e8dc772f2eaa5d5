//! The store's vocabulary: what goes in, what queries ask, what comes out. These types are
//! also the console's JSON (serde) and OpenAPI schemas (utoipa).

use islet_event::record::EveRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Most rows one page returns.
pub const MAX_PAGE: u32 = 1000;

/// One record to keep, as the console decoded it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The sensor it came from.
    pub sensor: String,
    /// `islet.seq`, when the record is chained.
    pub seq: Option<u64>,
    /// SHA-256 of the record's line (duplicate detection; the chain's link).
    pub digest: [u8; 32],
    /// The record as its sensor sealed it: the bytes its chain hashes and signs, stored
    /// verbatim so the chain can be checked again from the store.
    pub line: Vec<u8>,
    /// Its typed reading, decoded once by whoever built the record.
    pub eve: EveRecord,
    /// Its `timestamp`, Unix ms (for a flow: its start).
    pub ts_ms: i64,
    /// For records with addresses: who each end was at the time (labels frozen here).
    pub src: Option<Endpoint>,
    pub dest: Option<Endpoint>,
    /// A flow record's fields, taken out ahead (by [`FlowFacts::from_record`], in the
    /// caller's thread); the store takes them itself when absent.
    pub flow: Option<FlowFacts>,
}

impl Record {
    /// A record from its line: decoded, hashed, timed by its `timestamp` (`now_ms` when it has
    /// none); no ends named, no flow facts taken ahead.
    pub fn from_line(
        sensor: &str,
        line: Vec<u8>,
        now_ms: i64,
    ) -> std::result::Result<Record, islet_event::record::DecodeError> {
        use sha2::Digest as _;
        let eve = EveRecord::decode(&line)?;
        Ok(Record {
            sensor: sensor.to_string(),
            seq: eve.seq(),
            digest: sha2::Sha256::digest(&line).into(),
            ts_ms: eve.ts_ms().unwrap_or(now_ms),
            line,
            eve,
            src: None,
            dest: None,
            flow: None,
        })
    }

    /// The line as text (it was decoded as JSON, so it is UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.line).unwrap_or("")
    }
}

/// What the store keeps of a flow record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFacts {
    pub start: i64,
    pub end: i64,
    pub src_ip: String,
    pub dest_ip: String,
    pub src_port: i64,
    pub dest_port: i64,
    pub proto: String,
    pub app_proto: Option<String>,
    pub pkts: i64,
    pub bytes: i64,
    /// The policy verdict, if a policy judged it.
    pub verdict: Option<String>,
    pub alerted: bool,
    pub community_id: Option<String>,
    pub flow_id: Option<i64>,
}

impl FlowFacts {
    /// Read a flow (or netflow) record; `ts_ms` stands in for a missing start.
    pub fn from_record(v: &EveRecord, ts_ms: i64) -> FlowFacts {
        let n = |x: u64| x.min(i64::MAX as u64) as i64;
        let f = v.flow.clone().unwrap_or_default();
        let ms = |t: &Option<String>| t.as_deref().and_then(islet_event::time::parse_iso_ms);
        let start = ms(&f.start).unwrap_or(ts_ms);
        FlowFacts {
            start,
            end: ms(&f.end).unwrap_or(start),
            src_ip: v.src_ip.clone().unwrap_or_default(),
            dest_ip: v.dest_ip.clone().unwrap_or_default(),
            src_port: v.src_port.map_or(0, n),
            dest_port: v.dest_port.map_or(0, n),
            proto: v.proto.clone().unwrap_or_default(),
            app_proto: v.app_proto.clone(),
            pkts: n(f.pkts()),
            bytes: n(f.bytes()),
            // The top-level `policy` member, as the console has always read it (islet writes its
            // verdicts under `islet.policy`; see `triage`).
            verdict: v.policy.as_ref().and_then(|p| p.verdict.clone()),
            alerted: f.alerted,
            community_id: v.community_id.clone(),
            flow_id: v.flow_id.and_then(|x| i64::try_from(x).ok()),
        }
    }
}

/// One end of a flow, as an identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// Stable key: `namespace/name` for a workload, the address otherwise.
    pub key: String,
    /// `pod`, `vm`, `host`, `service`, `external`, or `ip` for an unnamed address.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Marked critical (raises the severity of cases that involve it).
    pub critical: bool,
}

/// A chain head to persist with a batch (the console checks chains; the store remembers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SensorHead {
    pub sensor: String,
    pub next_seq: u64,
    /// Hex SHA-256 of the last record in the chain.
    pub prev: String,
    /// `ok`, `broken`, `gap` or `unchained`.
    pub chain: String,
    pub detail: String,
}

/// A batch for [`crate::Store::ingest`].
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub records: Vec<Record>,
    pub heads: Vec<SensorHead>,
    /// Grouping window for triage (ms): alerts sharing an observable within it share a case.
    pub case_window_ms: i64,
    pub now_ms: i64,
}

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub stored: u64,
    pub duplicates: u64,
    pub flows: u64,
    pub alerts_new: u64,
    pub alerts_repeated: u64,
    pub cases_new: u64,
}

/// Paging: `offset` rows skipped, at most `limit` (capped at [`MAX_PAGE`]) returned.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub struct PageReq {
    pub offset: u32,
    pub limit: u32,
}

impl Default for PageReq {
    fn default() -> Self {
        PageReq {
            offset: 0,
            limit: 100,
        }
    }
}

impl PageReq {
    pub fn limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_PAGE))
    }
    pub fn offset(&self) -> i64 {
        i64::from(self.offset)
    }
}

/// One page of results, and the total that matched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
}

/// A case's status, as TheHive names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Status {
    New,
    InProgress,
    TruePositive,
    FalsePositive,
    Duplicated,
    Closed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::InProgress,
        Status::TruePositive,
        Status::FalsePositive,
        Status::Duplicated,
        Status::Closed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::InProgress => "InProgress",
            Status::TruePositive => "TruePositive",
            Status::FalsePositive => "FalsePositive",
            Status::Duplicated => "Duplicated",
            Status::Closed => "Closed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.name() == s)
    }
    /// Still open: new alerts can join it.
    pub fn open(self) -> bool {
        matches!(self, Status::New | Status::InProgress)
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CaseQuery {
    pub status: Option<Status>,
    pub min_severity: Option<u8>,
    pub page: PageReq,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseSummary {
    pub id: i64,
    pub title: String,
    pub status: Status,
    /// 1 low, 2 medium, 3 high, 4 critical (TheHive's scale).
    pub severity: u8,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    pub tlp: u8,
    pub pap: u8,
    pub alerts: u64,
    pub observables: u64,
    pub techniques: Vec<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub created: i64,
    pub updated: i64,
}

/// An observable of a case, deduplicated per case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Observable {
    pub id: i64,
    /// TheHive data types: `ip`, `domain`, `hash` (JA3/JA4), `other` (identity).
    #[serde(rename = "dataType")]
    pub data_type: String,
    pub data: String,
    /// What it is beyond the data type: `ja3`, `ja4`, `identity`, `sni`…
    pub kind: String,
    /// Matched an indicator.
    pub ioc: bool,
    pub sighted: bool,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// MISP context of an indicator hit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MispContext {
    pub event_uuid: String,
    pub event_info: String,
    pub attribute_uuid: String,
    pub kind: String,
    pub value: String,
    pub feed: String,
    pub tags: Vec<String>,
    pub threat_level: u8,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub ts: i64,
    /// `alert`, `note`, `status`, `merge`, `detach`, `update`, `export`.
    pub kind: String,
    pub text: String,
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub ts: i64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// Why its alerts were grouped.
    pub reasons: Vec<String>,
    pub misp: Vec<MispContext>,
    pub observables: Vec<Observable>,
    pub alerts: Vec<AlertRow>,
    pub notes: Vec<Note>,
    pub timeline: Vec<TimelineEntry>,
    pub merged_into: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AlertQuery {
    pub case: Option<i64>,
    pub detection: Option<String>,
    pub sensor: Option<String>,
    pub ip: Option<String>,
    /// Only alerts with an indicator (MISP/STIX) hit.
    pub intel: Option<bool>,
    pub max_severity: Option<u8>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: PageReq,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRow {
    pub id: i64,
    /// Stable per (detection, source, subject): TheHive's `sourceRef`.
    pub fingerprint: String,
    pub detection: String,
    pub sensor: String,
    pub signature_id: i64,
    pub signature: String,
    pub category: String,
    /// Suricata's scale: 1 highest.
    pub severity: u8,
    pub action: String,
    pub src_ip: Option<String>,
    pub dest_ip: Option<String>,
    pub flow_id: Option<i64>,
    pub techniques: Vec<String>,
    pub misp: Option<MispContext>,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub case_id: Option<i64>,
    /// The latest occurrence, as the sensor wrote it.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FlowQuery {
    /// Either end.
    pub ip: Option<String>,
    /// Either end's identity key (`namespace/name`, or an address).
    pub identity: Option<String>,
    /// Both ends of one edge (with `identity`): flows from `identity` to `peer`.
    pub peer: Option<String>,
    pub port: Option<u16>,
    pub app_proto: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: PageReq,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowRow {
    pub id: i64,
    pub sensor: String,
    pub flow_id: Option<i64>,
    pub start: i64,
    pub end: i64,
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: String,
    pub app_proto: Option<String>,
    pub pkts: u64,
    pub bytes: u64,
    pub verdict: Option<String>,
    pub alerted: bool,
    pub community_id: Option<String>,
    pub src: Endpoint,
    pub dest: Endpoint,
}

/// A protocol event or alert that mentions something.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventRow {
    pub id: i64,
    pub sensor: String,
    pub ts: i64,
    pub event_type: String,
    pub flow_id: Option<i64>,
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Links {
    pub flows: Vec<FlowRow>,
    pub events: Vec<EventRow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapNode {
    pub key: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub critical: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapEdge {
    pub src: String,
    pub dest: String,
    /// `tcp/445`, `udp/53`…
    pub service: String,
    /// `allow`, `deny`, `audit`, or `none` (no policy judged it).
    pub verdict: String,
    pub alerted: bool,
    pub flows: u64,
    pub bytes: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapView {
    pub from: i64,
    pub to: i64,
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
    /// More edges matched than were returned.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NameHit {
    pub name: String,
    /// `dns`, `tls` (SNI), `http` (Host).
    pub via: String,
    pub ts: i64,
    pub src_ip: String,
    pub dest_ip: String,
    pub flow_id: Option<i64>,
    pub sensor: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SensorRow {
    pub name: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub events: u64,
    pub duplicates: u64,
    pub next_seq: u64,
    pub chain: String,
    pub chain_detail: String,
    /// From the sensor's latest `stats` record.
    pub drops: u64,
    pub events_per_sec: f64,
    /// Protected packets per CPU-second, as the sensor reports it.
    pub protection_ratio: Option<f64>,
    #[schema(value_type = Object)]
    pub last_stats: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct WorkloadQuery {
    pub key: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: PageReq,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkloadRow {
    #[serde(flatten)]
    pub node: MapNode,
    pub flows: u64,
}

/// A change to a case; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseChange {
    pub status: Option<Status>,
    pub assignee: Option<String>,
    pub tags: Option<Vec<String>>,
    /// 0 white/clear, 1 green, 2 amber, 3 red.
    pub tlp: Option<u8>,
    /// 0 white, 1 green, 2 amber, 3 red.
    pub pap: Option<u8>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub case_id: Option<i64>,
    pub detail: String,
}

/// Roles, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    /// The secret's argon2 PHC string (the secret itself is never stored).
    pub hash: String,
    pub role: Role,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub role: Role,
    pub name: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewExport {
    /// `thehive` or `misp-event` or `misp-sighting`.
    pub target: String,
    pub case_id: Option<i64>,
    pub alert_id: Option<i64>,
    /// The request body, ready to send.
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportRow {
    pub id: i64,
    pub target: String,
    pub case_id: Option<i64>,
    pub alert_id: Option<i64>,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// `queued`, `sent`, `failed` (gave up after the bounded retries).
    pub state: String,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub created: i64,
    pub done_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum ExportOutcome {
    Sent,
    /// Retry at this time.
    Retry {
        at_ms: i64,
        error: String,
    },
    Failed {
        error: String,
    },
}

/// Retention: per table, an age limit (ms, 0 = none) and a row budget (0 = none).
#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub flows_age_ms: i64,
    pub flows_rows: u64,
    pub events_age_ms: i64,
    pub events_rows: u64,
    pub edges_age_ms: i64,
    pub alerts_age_ms: i64,
    /// Duplicate keys kept per sensor, counted back from its chain head (0: all). A resend
    /// older than this many records would be stored again.
    pub dedupe_window: u64,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PruneReport {
    pub seen: u64,
    pub flows: u64,
    pub events: u64,
    pub edges: u64,
    pub alerts: u64,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Usage {
    pub rows: BTreeMap<String, u64>,
    pub bytes: u64,
}
