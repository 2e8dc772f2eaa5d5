//! `alert` events: a detection or an indicator match on a flow, in Suricata's EVE shape
//! (`alert.{action,gid,signature_id,rev,signature,category,severity,metadata}`), with the
//! matched protocol object riding along and islet's context under `islet`.

use crate::eve::EveOptions;
use crate::eve_proto::{EventContext, body, event_type, header};
use crate::proto::AppEvent;

/// The indicator behind an alert, as the intelligence source holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntelMatch {
    /// Feed or file the indicator was imported from.
    pub feed: String,
    pub event_uuid: String,
    pub event_info: String,
    pub attribute_uuid: String,
    /// MISP attribute type.
    pub kind: &'static str,
    /// The value exactly as the source holds it.
    pub value: String,
    /// What was seen on the wire.
    pub matched: String,
    pub category: String,
    /// Event and attribute tags.
    pub tags: Vec<String>,
    pub tlp: Option<String>,
    pub threat_level: u8,
}

/// One alert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alert<'a> {
    /// `allowed` or `blocked`.
    pub action: &'static str,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    /// 1 high … 3 low.
    pub severity: u8,
    /// `alert.metadata`: each value a list of strings, Suricata's convention.
    pub metadata: Vec<(&'static str, Vec<String>)>,
    pub intel: Option<IntelMatch>,
    /// The policy verdict of a `policy_violation` alert (`islet.policy`).
    pub policy: Option<PolicyNote<'a>>,
    /// What triggered a behavioural detection (`islet.evidence`).
    pub evidence: Option<AlertEvidence<'a>>,
}

/// `islet.evidence`: the flows, counts and time window behind a detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertEvidence<'a> {
    pub flow_ids: &'a [u64],
    pub counts: &'a [(&'static str, u64)],
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A flow's policy verdict with its provenance, as events carry it (`islet.policy`). It
/// borrows its strings, so writing a verdict with every flow record allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyNote<'a> {
    /// `allow`, `deny` or `audit`.
    pub verdict: &'static str,
    /// What enforcement does with the flow (`flow.action`): `pass` or `drop`.
    pub action: &'static str,
    /// Whether islet enforced it (inline) or only judged it (tap, capture files).
    pub enforced: bool,
    /// The deciding rule and its tier and direction; none for an implicit deny or an
    /// unisolated flow.
    pub rule: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub direction: Option<&'static str>,
    /// The verdict in words: `deny by rule …` or `implicit-deny: no rule selects …`; none
    /// when a rule allowed the flow (`rule`, `tier` and `direction` say it).
    pub reason: Option<&'a str>,
    /// The audit rule that matched, if any.
    pub audit_rule: Option<&'a str>,
    /// Both ends' identities (`namespace/name`, or `world`/`cluster`/`host`).
    pub src_identity: &'a str,
    pub dest_identity: &'a str,
    /// For an end the inventory does not know but DNS named (its identity is then the name):
    /// the entity it resolved to, `world`, `cluster` or `host`.
    pub src_entity: Option<&'static str>,
    pub dest_entity: Option<&'static str>,
    /// The bundle in force: version and manifest SHA-256 (0 and empty when unsigned).
    pub bundle_version: u64,
    pub bundle_hash: &'a str,
    /// Decided (or changed) by L7 metadata rather than at the first packet.
    pub l7: bool,
}

/// A policy bundle refused at load (fail closed): what was offered, why it was refused, and
/// the bundle that stays in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyRejected<'a> {
    /// When it was refused, Unix ns (the load is not a packet: the sensor's clock).
    pub ts_ns: u64,
    pub bundle: &'a str,
    pub reason: &'a str,
    pub active_version: u64,
    pub active_hash: &'a str,
}

/// Append one `policy` event (`"policy": {"event": "bundle_rejected", …}`).
pub fn write_policy_rejected(buf: &mut Vec<u8>, r: &PolicyRejected<'_>) {
    let mut j = crate::Json::object(buf);
    j.with("timestamp", |b| crate::time::write_iso(b, r.ts_ns));
    j.str("event_type", "policy");
    j.begin_object("policy");
    j.str("event", "bundle_rejected");
    j.str("bundle", r.bundle);
    j.str("reason", r.reason);
    j.begin_object("active");
    j.u64("version", r.active_version);
    j.str("hash", r.active_hash);
    j.end_object();
    j.end_object();
    j.finish();
}

/// Write `"policy": {…}` into an open object.
pub fn write_policy(j: &mut crate::Json<'_>, p: &PolicyNote<'_>) {
    j.begin_object("policy");
    j.str("verdict", p.verdict);
    j.str("action", p.action);
    j.bool("enforced", p.enforced);
    if let Some(r) = p.rule {
        j.str("rule", r);
    }
    if let Some(t) = p.tier {
        j.str("tier", t);
    }
    if let Some(d) = p.direction {
        j.str("direction", d);
    }
    if let Some(r) = p.reason {
        j.str("reason", r);
    }
    if let Some(a) = p.audit_rule {
        j.str("audit_rule", a);
    }
    j.str("src_identity", p.src_identity);
    j.str("dest_identity", p.dest_identity);
    if let Some(x) = p.src_entity {
        j.str("src_entity", x);
    }
    if let Some(x) = p.dest_entity {
        j.str("dest_entity", x);
    }
    j.u64("bundle_version", p.bundle_version);
    j.str("bundle_hash", p.bundle_hash);
    if p.l7 {
        j.bool("l7", true);
    }
    j.end_object();
}

/// Append one alert. `proto` is the protocol event that matched, written alongside as
/// Suricata does (`"tls": {…}` next to `"alert": {…}`).
pub fn write_alert(
    buf: &mut Vec<u8>,
    c: &EventContext<'_>,
    a: &Alert<'_>,
    proto: Option<&AppEvent>,
    app_proto: Option<&str>,
    o: &EveOptions,
) {
    let mut j = header(buf, c, "alert", o);
    j.begin_object("alert");
    j.str("action", a.action);
    j.u64("gid", 1);
    j.u64("signature_id", u64::from(a.signature_id));
    j.u64("rev", u64::from(a.rev));
    j.str("signature", &a.signature);
    j.str("category", &a.category);
    j.u64("severity", u64::from(a.severity));
    if !a.metadata.is_empty() {
        j.begin_object("metadata");
        for (k, vs) in &a.metadata {
            j.begin_array(k);
            for v in vs {
                j.item_str(v);
            }
            j.end_array();
        }
        j.end_object();
    }
    j.end_object();
    if let Some(p) = app_proto {
        j.str("app_proto", p);
    }
    let proto = proto.filter(|e| event_type(e) != "anomaly");
    if let Some(ev) = proto {
        body(&mut j, ev);
    }
    // One `islet` object, last, holding whatever islet adds.
    let members = proto.is_some_and(crate::eve_proto::has_islet_members);
    if !(members || a.policy.is_some() || a.evidence.is_some() || a.intel.is_some()) {
        j.finish();
        return;
    }
    j.begin_object("islet");
    if let Some(ev) = proto {
        crate::eve_proto::islet_members(&mut j, ev);
    }
    if let Some(p) = &a.policy {
        write_policy(&mut j, p);
    }
    if let Some(e) = &a.evidence {
        j.begin_object("evidence");
        j.begin_array("flow_ids");
        for id in e.flow_ids {
            j.item_u64(*id);
        }
        j.end_array();
        j.begin_object("counts");
        for (k, v) in e.counts {
            j.u64(k, *v);
        }
        j.end_object();
        j.with("start", |b| crate::time::write_iso(b, e.start_ns));
        j.with("end", |b| crate::time::write_iso(b, e.end_ns));
        j.end_object();
    }
    if let Some(i) = &a.intel {
        j.begin_object("intel");
        j.str("feed", &i.feed);
        j.str("event_uuid", &i.event_uuid);
        j.str("event_info", &i.event_info);
        j.str("attribute_uuid", &i.attribute_uuid);
        j.str("type", i.kind);
        j.str("value", &i.value);
        j.str("matched", &i.matched);
        j.str("category", &i.category);
        j.begin_array("tags");
        for t in &i.tags {
            j.item_str(t);
        }
        j.end_array();
        if let Some(t) = &i.tlp {
            j.str("tlp", t);
        }
        j.u64("threat_level_id", u64::from(i.threat_level));
        j.end_object();
    }
    j.end_object();
    j.finish();
}

/// The console's own alert about a sensor's evidence chain (a break, a gap, a restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainFinding<'a> {
    pub sensor: &'a str,
    pub seq: u64,
    /// The `timestamp` of the record that raised it, as written (null when it had none).
    pub timestamp: Option<&'a str>,
    /// `chain_broken`, `chain_gap`, `chain_restart`.
    pub detection: &'a str,
    pub signature_id: u32,
    pub text: &'a str,
}

/// Append one [`ChainFinding`] alert, members in name order, without the newline.
pub fn write_chain_finding(buf: &mut Vec<u8>, f: &ChainFinding<'_>) {
    let mut j = crate::Json::object(buf);
    j.begin_object("alert");
    j.str("action", "allowed");
    j.str("category", "Evidence integrity");
    j.u64("gid", 1);
    j.begin_object("metadata");
    for (k, v) in [("detection", f.detection), ("sensor", f.sensor)] {
        j.begin_array(k);
        j.item_str(v);
        j.end_array();
    }
    j.begin_array("seq");
    j.item_str(itoa::Buffer::new().format(f.seq));
    j.end_array();
    j.end_object();
    j.u64("rev", 1);
    j.u64("severity", 1);
    j.str(
        "signature",
        &format!(
            "islet console: evidence chain of sensor {}: {}",
            f.sensor, f.text
        ),
    );
    j.u64("signature_id", u64::from(f.signature_id));
    j.end_object();
    j.str("event_type", "alert");
    j.begin_object("islet");
    j.begin_object("console");
    j.str("sensor", f.sensor);
    j.u64("seq", f.seq);
    j.end_object();
    j.end_object();
    match f.timestamp {
        Some(t) => j.str("timestamp", t),
        None => j.raw("timestamp", b"null"),
    };
    j.finish();
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
}
