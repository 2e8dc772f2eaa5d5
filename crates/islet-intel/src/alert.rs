//! From protocol metadata to indicator matches, and from a match to its EVE alert.

use crate::model::Kind;
use crate::snapshot::Snapshot;
use islet_event::proto::AppEvent;
use islet_event::{Alert, IntelMatch};
use std::net::IpAddr;

/// Longest event description quoted in `alert.signature`.
pub const MAX_INFO_IN_SIGNATURE: usize = 80;

/// A flow's endpoints, client first.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
}

/// A match: the indicator and what was seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub indicator: u32,
    pub matched: String,
}

/// Move `found` into `out` as hits of `matched` (formatted only when something matched).
fn add(found: &mut Vec<u32>, matched: impl std::fmt::Display, out: &mut Vec<Hit>) {
    if found.is_empty() {
        return;
    }
    let matched = matched.to_string();
    for i in found.drain(..) {
        if !out.iter().any(|h| h.indicator == i) {
            out.push(Hit {
                indicator: i,
                matched: matched.clone(),
            });
        }
    }
}

/// Indicators naming the flow's endpoints.
pub fn match_endpoints(s: &Snapshot, e: &Endpoints, out: &mut Vec<Hit>) {
    let mut found = Vec::new();
    s.match_addr(e.client, e.client_port, true, &mut found);
    add(
        &mut found,
        format_args!("{}:{}", e.client, e.client_port),
        out,
    );
    s.match_addr(e.server, e.server_port, false, &mut found);
    add(
        &mut found,
        format_args!("{}:{}", e.server, e.server_port),
        out,
    );
}

/// Indicators an application event matches: names (DNS, TLS/QUIC SNI, HTTP host), URLs,
/// fingerprints, user agents. Each indicator once per event.
pub fn match_event(s: &Snapshot, ev: &AppEvent, e: &Endpoints, out: &mut Vec<Hit>) {
    if s.is_empty() {
        return;
    }
    let mut f = Vec::new();
    let name = |n: &str, f: &mut Vec<u32>, out: &mut Vec<Hit>| {
        s.match_name(n, f);
        s.match_domain_ip(n, e.server, f);
        add(f, n, out);
    };
    match ev {
        AppEvent::Tls(t) => {
            if let Some(sni) = &t.sni {
                name(sni, &mut f, out);
            }
            if let Some(j) = &t.ja3 {
                s.match_value(Kind::Ja3, &j.hash, &mut f);
                add(&mut f, &j.hash, out);
            }
            if let Some(j) = &t.ja4 {
                s.match_value(Kind::Ja4, j, &mut f);
                add(&mut f, j, out);
            }
            if let Some(c) = &t.cert {
                for (k, v) in [
                    (Kind::X509Sha1, &c.fingerprint),
                    (Kind::X509Sha256, &c.sha256),
                    (Kind::X509Md5, &c.md5),
                ] {
                    s.match_value(k, v, &mut f);
                    add(&mut f, v, out);
                }
            }
        }
        AppEvent::Quic(q) => {
            if let Some(sni) = &q.sni {
                name(sni, &mut f, out);
            }
            if let Some(j) = &q.ja3 {
                s.match_value(Kind::Ja3, &j.hash, &mut f);
                add(&mut f, &j.hash, out);
            }
            if let Some(j) = &q.ja4 {
                s.match_value(Kind::Ja4, j, &mut f);
                add(&mut f, j, out);
            }
        }
        AppEvent::Dns(d) => {
            // An answer usually repeats the query's name: each name is looked up once.
            let mut last: Option<&str> = None;
            for q in &d.queries {
                if last != Some(q.rrname.as_str()) {
                    s.match_name(&q.rrname, &mut f);
                    add(&mut f, &q.rrname, out);
                    last = Some(&q.rrname);
                }
            }
            for a in &d.answers {
                if last != Some(a.rrname.as_str()) {
                    s.match_name(&a.rrname, &mut f);
                    add(&mut f, &a.rrname, out);
                    last = Some(&a.rrname);
                }
                match a.rrtype.as_ref() {
                    "A" | "AAAA" => {
                        if let Ok(ip) = a.rdata.parse::<IpAddr>() {
                            s.match_domain_ip(&a.rrname, ip, &mut f);
                            add(&mut f, format_args!("{}|{}", a.rrname, a.rdata), out);
                        }
                    }
                    "CNAME" => {
                        s.match_name(&a.rdata, &mut f);
                        add(&mut f, &a.rdata, out);
                    }
                    _ => {}
                }
            }
        }
        AppEvent::Http(h) => {
            if let Some(host) = &h.hostname {
                name(host, &mut f, out);
            }
            s.match_http(
                h.hostname.as_deref(),
                h.http_port.unwrap_or(e.server_port),
                &h.url,
                &mut f,
            );
            add(&mut f, &h.url, out);
            if let Some(ua) = &h.http_user_agent {
                s.match_value(Kind::UserAgent, ua, &mut f);
                add(&mut f, ua, out);
            }
        }
        AppEvent::Ssh(x) => {
            if let Some(h) = x.client.as_ref().and_then(|c| c.hassh.as_ref()) {
                s.match_value(Kind::Hassh, &h.hash, &mut f);
                add(&mut f, &h.hash, out);
            }
            if let Some(h) = x.server.as_ref().and_then(|c| c.hassh.as_ref()) {
                s.match_value(Kind::HasshServer, &h.hash, &mut f);
                add(&mut f, &h.hash, out);
            }
        }
        _ => {}
    }
}

/// The EVE alert of a match on a `to_ids` indicator.
pub fn alert(s: &Snapshot, hit: &Hit) -> Alert<'static> {
    let ind = s.indicator(hit.indicator);
    let ctx = s.context(hit.indicator);
    let info: String = if ctx.event_info.chars().count() > MAX_INFO_IN_SIGNATURE {
        let mut t: String = ctx.event_info.chars().take(MAX_INFO_IN_SIGNATURE).collect();
        t.push('…');
        t
    } else {
        ctx.event_info.clone()
    };
    let origin = if ctx.origin.is_empty() {
        "MISP event"
    } else {
        ctx.origin
    };
    let mut tags = ctx.tags.clone();
    tags.extend(ind.tags.iter().cloned());
    let mut metadata = vec![
        ("detection", vec!["ioc_match".to_string()]),
        ("intel_type", vec![ind.kind.name().to_string()]),
    ];
    if !ctx.event_uuid.is_empty() {
        metadata.push(("misp_event_uuid", vec![ctx.event_uuid.clone()]));
    }
    if !ind.uuid.is_empty() {
        metadata.push(("misp_attribute_uuid", vec![ind.uuid.clone()]));
    }
    if !tags.is_empty() {
        metadata.push(("tags", tags.clone()));
    }
    Alert {
        action: "allowed",
        signature_id: ind.kind.signature_id(),
        rev: 1,
        signature: format!("islet IoC: {} {} ({origin} '{info}')", ind.kind, ind.value),
        category: if ind.category.is_empty() {
            "Network activity".to_string()
        } else {
            ind.category.clone()
        },
        severity: match ctx.threat_level {
            1 => 1,
            2 => 2,
            _ => 3,
        },
        metadata,
        intel: Some(IntelMatch {
            feed: ctx.feed.clone(),
            event_uuid: ctx.event_uuid.clone(),
            event_info: ctx.event_info.clone(),
            attribute_uuid: ind.uuid.clone(),
            kind: ind.kind.name(),
            value: ind.value.clone(),
            matched: hit.matched.clone(),
            category: ind.category.clone(),
            tlp: ctx.tlp().map(str::to_string),
            tags,
            threat_level: ctx.threat_level,
        }),
        policy: None,
        evidence: None,
    }
}
