//! Triage rules, backend-neutral: what an alert is about (its observables), its fingerprint
//! (a repeat updates the first), and how severe a case is. No storage here.

use crate::types::MispContext;
use islet_event::record::EveRecord;
use sha2::{Digest as _, Sha256};

/// Most observables taken from one alert (an attacker-made record could name thousands).
pub const MAX_OBSERVABLES_PER_ALERT: usize = 64;
/// Longest observable value kept.
pub const MAX_OBSERVABLE_LEN: usize = 512;

/// One observable an alert mentions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Obs {
    /// TheHive data type: `ip`, `domain`, `hash`, `other`.
    pub data_type: &'static str,
    pub data: String,
    /// `ip`, `domain`, `sni`, `ja3`, `ja4`, `identity`…
    pub kind: &'static str,
    pub ioc: bool,
}

/// What an alert record says, in triage's terms.
#[derive(Debug, Clone)]
pub struct AlertFacts {
    pub detection: String,
    pub signature_id: i64,
    pub signature: String,
    pub category: String,
    pub severity: u8,
    pub action: String,
    pub src_ip: Option<String>,
    pub dest_ip: Option<String>,
    pub flow_id: Option<i64>,
    pub techniques: Vec<String>,
    pub misp: Option<MispContext>,
    pub observables: Vec<Obs>,
    pub fingerprint: String,
}

/// Parse an EVE timestamp to Unix ms (moved to `islet_event::time::parse_iso_ms`).
pub fn parse_ts(t: &str) -> Option<i64> {
    islet_event::time::parse_iso_ms(t)
}

fn push(out: &mut Vec<Obs>, data_type: &'static str, kind: &'static str, data: &str, ioc: bool) {
    let data = data.trim();
    if data.is_empty() || data.len() > MAX_OBSERVABLE_LEN || out.len() >= MAX_OBSERVABLES_PER_ALERT
    {
        return;
    }
    let data = if data_type == "domain" {
        data.trim_end_matches('.').to_ascii_lowercase()
    } else {
        data.to_string()
    };
    if let Some(o) = out
        .iter_mut()
        .find(|o| o.data_type == data_type && o.data == data)
    {
        o.ioc |= ioc;
        return;
    }
    out.push(Obs {
        data_type,
        data,
        kind,
        ioc,
    });
}

fn is_ip(x: &str) -> bool {
    x.parse::<std::net::IpAddr>().is_ok()
}

/// The identity names a policy verdict gives that are not places (`world`, `cluster`, `host`).
fn workload_identity(x: &str) -> bool {
    !x.is_empty() && !matches!(x, "world" | "cluster" | "host") && !is_ip(x)
}

impl AlertFacts {
    /// Read an alert record (`event_type: alert`); `sensor` is its source.
    pub fn from_record(sensor: &str, r: &EveRecord) -> AlertFacts {
        let a = r.alert.clone().unwrap_or_default();
        let md = &a.metadata;
        let sid = a.signature_id.map_or(0, |x| x.min(i64::MAX as u64) as i64);
        let detection = md
            .detection()
            .map_or_else(|| format!("sid:{sid}"), str::to_string);
        let misp = r.intel().map(|i| MispContext {
            event_uuid: i.event_uuid.clone().unwrap_or_default(),
            event_info: i.event_info.clone().unwrap_or_default(),
            attribute_uuid: i.attribute_uuid.clone().unwrap_or_default(),
            kind: i.kind.clone().unwrap_or_default(),
            value: i.value.clone().unwrap_or_default(),
            feed: i.feed.clone().unwrap_or_default(),
            tags: i.tags.clone(),
            threat_level: i.threat_level_id.map_or(0, |x| x.min(4) as u8),
        });
        let src_ip = r.src_ip.clone();
        let dest_ip = r.dest_ip.clone();
        let mut obs = Vec::new();
        let ioc_value = misp.as_ref().map(|m| m.value.to_ascii_lowercase());
        let is_ioc = |v: &str| {
            ioc_value
                .as_deref()
                .is_some_and(|x| x == v.trim_end_matches('.').to_ascii_lowercase())
        };
        for ip in src_ip.iter().chain(dest_ip.iter()) {
            push(&mut obs, "ip", "ip", ip, is_ioc(ip));
        }
        for ip in md.address_values() {
            if is_ip(ip) {
                push(&mut obs, "ip", "ip", ip, is_ioc(ip));
            }
        }
        if let Some(m) = &misp {
            match m.kind.as_str() {
                "domain" | "hostname" | "domain|ip" | "sni" => {
                    push(&mut obs, "domain", "domain", &m.value, true)
                }
                "ip-dst" | "ip-src" | "ip" => push(&mut obs, "ip", "ip", &m.value, true),
                "ja3-fingerprint-md5" | "ja3" => push(&mut obs, "hash", "ja3", &m.value, true),
                "ja4" => push(&mut obs, "hash", "ja4", &m.value, true),
                _ => {}
            }
        }
        if let Some(tls) = &r.tls {
            if let Some(x) = tls.sni.as_deref() {
                push(&mut obs, "domain", "sni", x, is_ioc(x));
            }
            if let Some(x) = tls.ja3.as_ref().and_then(|h| h.hash.as_deref()) {
                push(&mut obs, "hash", "ja3", x, is_ioc(x));
            }
            if let Some(x) = tls.ja4.as_deref() {
                push(&mut obs, "hash", "ja4", x, is_ioc(x));
            }
        }
        if let Some(x) = r.http.as_ref().and_then(|h| h.hostname.as_deref()) {
            push(&mut obs, "domain", "http_host", x, is_ioc(x));
        }
        let asked = r.dns.iter().flat_map(|d| {
            let queries = d.queries.iter().filter_map(|q| q.rrname.as_deref());
            queries.chain(d.rrname.as_deref())
        });
        for x in asked {
            push(&mut obs, "domain", "dns", x, is_ioc(x));
        }
        // A top-level `policy` member, as the console has always read it. islet writes its
        // verdicts under `islet.policy` (`EveRecord::verdict`), so its own alerts add no identity
        // observables today; switching is a triage change (identities would group cases), left
        // for the console issue.
        if let Some(p) = &r.policy {
            for x in [&p.src_identity, &p.dest_identity].into_iter().flatten() {
                if workload_identity(x) {
                    push(&mut obs, "other", "identity", x, false);
                }
            }
        }
        let techniques = md.technique_ids().to_vec();
        let subject = match (&misp, detection.as_str()) {
            (Some(m), _) => format!("{}|{}", m.value, src_ip.as_deref().unwrap_or("")),
            (None, "lateral_movement_chain") => md.path().join(">"),
            _ => format!(
                "{sid}|{}|{}",
                src_ip.as_deref().unwrap_or(""),
                dest_ip.as_deref().unwrap_or("")
            ),
        };
        let fingerprint = fingerprint(&detection, sensor, &subject);
        AlertFacts {
            detection,
            signature_id: sid,
            signature: a.signature.clone().unwrap_or_default(),
            category: a.category.clone().unwrap_or_default(),
            severity: a.severity.map_or(3, |x| x.clamp(1, 255) as u8),
            action: a.action.clone().unwrap_or_else(|| "allowed".into()),
            src_ip,
            dest_ip,
            flow_id: r.flow_id.and_then(|x| i64::try_from(x).ok()),
            techniques,
            misp,
            observables: obs,
            fingerprint,
        }
    }
}

/// The stable reference of an alert: the same detection by the same source about the same
/// subject always has the same one (TheHive deduplicates on it as `sourceRef`).
pub fn fingerprint(detection: &str, source: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in [detection, source, subject] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

/// A case's severity on TheHive's 1–4 scale from its alerts' Suricata severities (1 highest),
/// raised one step when a critical asset is involved.
pub fn case_severity(min_suricata_severity: u8, critical: bool) -> u8 {
    let base = match min_suricata_severity {
        0 | 1 => 3,
        2 => 2,
        _ => 1,
    };
    if critical { (base + 1).min(4) } else { base }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eve(v: serde_json::Value) -> EveRecord {
        EveRecord::decode(v.to_string().as_bytes()).expect("record")
    }

    #[test]
    fn timestamps_parse_with_offsets() {
        assert_eq!(
            parse_ts("1970-01-01T00:00:01.500000+0000"),
            Some(1500),
            "fraction"
        );
        assert_eq!(parse_ts("2026-01-06T10:10:00Z"), Some(1_767_694_200_000));
        assert_eq!(
            parse_ts("2026-01-06T11:10:00.000+01:00"),
            parse_ts("2026-01-06T10:10:00Z")
        );
        assert_eq!(parse_ts("2026-13-06T10:10:00Z"), None);
        assert_eq!(parse_ts("2026-01-06T10:10:00.+0000"), None);
        assert_eq!(parse_ts("garbage"), None);
    }

    #[test]
    fn chain_alert_names_every_host_of_its_path() {
        let r = json!({"event_type":"alert","src_ip":"10.0.3.30","dest_ip":"10.0.3.40",
            "alert":{"signature_id":9300006,"severity":1,"signature":"x",
              "metadata":{"detection":["lateral_movement_chain"],"mitre_technique_id":["T1210"],
                "path":["10.0.2.21","10.0.3.30","10.0.3.40","10.0.3.50"]}}});
        let r = eve(r);
        let f = AlertFacts::from_record("s1", &r);
        let ips: Vec<_> = f.observables.iter().map(|o| o.data.as_str()).collect();
        assert_eq!(ips, ["10.0.3.30", "10.0.3.40", "10.0.2.21", "10.0.3.50"]);
        assert_eq!(f.techniques, ["T1210"]);
        assert_eq!(f.fingerprint, AlertFacts::from_record("s1", &r).fingerprint);
        assert_ne!(f.fingerprint, AlertFacts::from_record("s2", &r).fingerprint);
    }

    #[test]
    fn observables_are_bounded_and_deduplicated() {
        let many: Vec<String> = (0..1000)
            .map(|i| format!("10.1.{}.{}", i / 250, i % 250))
            .collect();
        let r = eve(json!({"src_ip":"10.1.0.0","alert":{"metadata":{"victim": many}}}));
        let f = AlertFacts::from_record("s", &r);
        assert_eq!(f.observables.len(), MAX_OBSERVABLES_PER_ALERT);
        assert_eq!(
            f.observables
                .iter()
                .filter(|o| o.data == "10.1.0.0")
                .count(),
            1
        );
    }

    #[test]
    fn severity_scale() {
        assert_eq!(case_severity(1, false), 3);
        assert_eq!(case_severity(1, true), 4);
        assert_eq!(case_severity(3, false), 1);
        assert_eq!(case_severity(2, true), 3);
    }
}
