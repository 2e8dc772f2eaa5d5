//! Triage rules, backend-neutral: what an alert is about (its observables), its fingerprint
//! (a repeat updates the first), and how severe a case is. No storage here.

use crate::types::MispContext;
use serde_json::Value;
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

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(s).collect(),
        Value::String(x) => vec![x.clone()],
        _ => Vec::new(),
    }
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
    pub fn from_record(sensor: &str, r: &Value) -> AlertFacts {
        let a = &r["alert"];
        let md = &a["metadata"];
        let detection = strings(&md["detection"])
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("sid:{}", a["signature_id"].as_i64().unwrap_or(0)));
        let intel = &r["islet"]["intel"];
        let misp = intel.is_object().then(|| MispContext {
            event_uuid: s(&intel["event_uuid"]).unwrap_or_default(),
            event_info: s(&intel["event_info"]).unwrap_or_default(),
            attribute_uuid: s(&intel["attribute_uuid"]).unwrap_or_default(),
            kind: s(&intel["type"])
                .or_else(|| s(&intel["kind"]))
                .unwrap_or_default(),
            value: s(&intel["value"]).unwrap_or_default(),
            feed: s(&intel["feed"]).unwrap_or_default(),
            tags: strings(&intel["tags"]),
            threat_level: intel["threat_level_id"]
                .as_u64()
                .map_or(0, |x| x.min(4) as u8),
        });
        let src_ip = s(&r["src_ip"]);
        let dest_ip = s(&r["dest_ip"]);
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
        for key in [
            "victim",
            "path",
            "path_addresses",
            "src_node",
            "dest_node",
            "attacker",
        ] {
            for ip in strings(&md[key]) {
                if is_ip(&ip) {
                    push(&mut obs, "ip", "ip", &ip, is_ioc(&ip));
                }
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
        let tls = &r["tls"];
        if let Some(x) = tls["sni"].as_str() {
            push(&mut obs, "domain", "sni", x, is_ioc(x));
        }
        if let Some(x) = tls["ja3"]["hash"].as_str() {
            push(&mut obs, "hash", "ja3", x, is_ioc(x));
        }
        if let Some(x) = tls["ja4"].as_str() {
            push(&mut obs, "hash", "ja4", x, is_ioc(x));
        }
        if let Some(x) = r["http"]["hostname"].as_str() {
            push(&mut obs, "domain", "http_host", x, is_ioc(x));
        }
        let dns = &r["dns"];
        for q in dns["queries"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(dns))
        {
            if let Some(x) = q["rrname"].as_str() {
                push(&mut obs, "domain", "dns", x, is_ioc(x));
            }
        }
        let pol = &r["policy"];
        for k in ["src_identity", "dest_identity"] {
            if let Some(x) = pol[k].as_str().filter(|x| workload_identity(x)) {
                push(&mut obs, "other", "identity", x, false);
            }
        }
        let techniques = strings(&md["mitre_technique_id"]);
        let subject = match (&misp, detection.as_str()) {
            (Some(m), _) => format!("{}|{}", m.value, src_ip.as_deref().unwrap_or("")),
            (None, "lateral_movement_chain") => strings(&md["path"]).join(">"),
            _ => format!(
                "{}|{}|{}",
                a["signature_id"].as_i64().unwrap_or(0),
                src_ip.as_deref().unwrap_or(""),
                dest_ip.as_deref().unwrap_or("")
            ),
        };
        let fingerprint = fingerprint(&detection, sensor, &subject);
        AlertFacts {
            detection,
            signature_id: a["signature_id"].as_i64().unwrap_or(0),
            signature: s(&a["signature"]).unwrap_or_default(),
            category: s(&a["category"]).unwrap_or_default(),
            severity: a["severity"].as_u64().map_or(3, |x| x.clamp(1, 255) as u8),
            action: s(&a["action"]).unwrap_or_else(|| "allowed".into()),
            src_ip,
            dest_ip,
            flow_id: r["flow_id"].as_i64(),
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
        let r = json!({"src_ip":"10.1.0.0","alert":{"metadata":{"victim": many}}});
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
