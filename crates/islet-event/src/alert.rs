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
pub struct Alert {
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
}

/// Append one alert. `proto` is the protocol event that matched, written alongside as
/// Suricata does (`"tls": {…}` next to `"alert": {…}`).
pub fn write_alert(
    buf: &mut Vec<u8>,
    c: &EventContext<'_>,
    a: &Alert,
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
    if let Some(ev) = proto.filter(|e| event_type(e) != "anomaly") {
        body(&mut j, ev);
    }
    if let Some(i) = &a.intel {
        j.begin_object("islet");
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
        j.end_object();
    }
    j.finish();
}
