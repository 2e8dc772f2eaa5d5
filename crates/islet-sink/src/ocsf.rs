//! EVE records as OCSF 1.3.0 events.
//!
//! | EVE `event_type` | OCSF class |
//! |---|---|
//! | `flow` | Network Activity (4001): Close, Reset or Traffic, with endpoints, connection info, traffic counters |
//! | `http` | HTTP Activity (4002): activity by method, `http_request`, `http_response` |
//! | `dns` | DNS Activity (4003): Query or Response, `query`, `answers`, `rcode` |
//! | `alert` | Detection Finding (2004): `finding_info` (uid, title, analytic, MITRE ATT&CK), evidences |
//! | `tls`, `ssh`, `quic`, `smb`, `rdp`, `krb5`, `anomaly`, … (any record with a flow) | Network Activity (4001), Traffic or Other, the protocol record under `unmapped` |
//! | `stats`, `policy` (no flow) | Base Event (0), the record under `unmapped` |
//!
//! Every event carries the base attributes OCSF requires (`activity_id`, `category_uid`,
//! `class_uid`, `metadata` with `product` and `version` pinned to [`OCSF_VERSION`],
//! `severity_id`, `time`, `type_uid`) and their captions. islet's own fields (identities, policy
//! verdict, chain sequence) stay under `unmapped.islet`. Records are written with islet's JSON
//! conventions (the same escaping as EVE), so the event chain can rebuild them byte for byte.

use islet_event::record::{AlertPart, Dns, EveRecord, Flow, Http, Members, Tls};
use serde_json::{Map, Value, json};

/// The OCSF schema release every event claims.
pub const OCSF_VERSION: &str = "1.3.0";

/// Convert one EVE line into an OCSF line (no newline). A line that is not a JSON object is
/// kept under `unmapped.raw` of a Base Event, so nothing is lost.
pub fn convert_line(line: &[u8], out: &mut Vec<u8>) {
    let (eve, members) = EveRecord::decode_with_members(line).unwrap_or_else(|_| {
        let mut m = Members::default();
        m.rest.insert(
            "raw".into(),
            Value::String(String::from_utf8_lossy(line).into_owned()),
        );
        (EveRecord::default(), m)
    });
    let o = convert(&eve, members);
    write_value(&o, out);
}

/// EVE timestamp text → ms since the epoch.
fn ms(t: Option<&str>) -> Option<u64> {
    crate::chain::parse_iso_ns(t?.as_bytes()).map(|ns| ns / 1_000_000)
}

/// Convert an EVE record (its typed reading, and its members as written for what OCSF has no
/// place for) into an OCSF event.
pub fn convert(eve: &EveRecord, members: Members) -> Value {
    let kind = eve.event_type.as_str();
    let ts = eve.timestamp.as_deref();
    let time = ms(ts).unwrap_or(0);
    let has_flow = eve.src_ip.is_some() && eve.dest_ip.is_some();
    let mut o = Map::new();
    let (class_uid, activity_id, activity_name, severity_id): (u64, u64, &str, u64) = match kind {
        "flow" if has_flow => {
            let state = eve.flow.as_ref().and_then(|f| f.state.as_deref());
            let (id, name) = match state.unwrap_or("") {
                "closed" => (2, "Close"),
                _ if eve.tcp.as_ref().is_some_and(|t| t.rst) => (3, "Reset"),
                _ => (6, "Traffic"),
            };
            network(eve, &mut o);
            traffic(eve.flow.as_ref(), &mut o);
            (4001, id, name, 1)
        }
        "http" if has_flow => {
            network(eve, &mut o);
            let (id, name) = http(eve.http.as_deref(), &mut o);
            (4002, id, name, 1)
        }
        "dns" if has_flow => {
            network(eve, &mut o);
            if dns(eve.dns.as_deref(), &mut o) {
                (4003, 2, "Response", 1)
            } else {
                (4003, 1, "Query", 1)
            }
        }
        "alert" => {
            if has_flow {
                let mut ev = Map::new();
                network(eve, &mut ev);
                o.insert("evidences".into(), json!([Value::Object(ev)]));
            }
            let sev = finding(eve, eve.alert.as_deref(), time, &mut o);
            (2004, 1, "Create", sev)
        }
        _ if has_flow => {
            network(eve, &mut o);
            if kind == "tls" {
                o.insert("tls".into(), tls(eve.tls.as_deref()));
            }
            if kind == "anomaly" {
                (4001, 99, "Other", 2)
            } else {
                (4001, 6, "Traffic", 1)
            }
        }
        _ => (0, 0, "Unknown", 1),
    };
    let (category_uid, category_name, class_name) = match class_uid {
        4001 => (4, "Network Activity", "Network Activity"),
        4002 => (4, "Network Activity", "HTTP Activity"),
        4003 => (4, "Network Activity", "DNS Activity"),
        2004 => (2, "Findings", "Detection Finding"),
        _ => (0, "Uncategorized", "Base Event"),
    };
    o.insert("activity_id".into(), activity_id.into());
    o.insert("activity_name".into(), activity_name.into());
    o.insert("category_uid".into(), category_uid.into());
    o.insert("category_name".into(), category_name.into());
    o.insert("class_uid".into(), class_uid.into());
    o.insert("class_name".into(), class_name.into());
    o.insert("type_uid".into(), (class_uid * 100 + activity_id).into());
    o.insert(
        "type_name".into(),
        format!("{class_name}: {activity_name}").into(),
    );
    o.insert("severity_id".into(), severity_id.into());
    o.insert(
        "severity".into(),
        match severity_id {
            1 => "Informational",
            2 => "Low",
            3 => "Medium",
            4 => "High",
            5 => "Critical",
            _ => "Unknown",
        }
        .into(),
    );
    o.insert("time".into(), time.into());
    let mut meta = Map::new();
    meta.insert("version".into(), OCSF_VERSION.into());
    meta.insert(
        "product".into(),
        json!({"name": "islet", "vendor_name": "islet", "version": env!("CARGO_PKG_VERSION")}),
    );
    meta.insert("log_name".into(), kind.into());
    if let Some(t) = ts {
        meta.insert("original_time".into(), t.into());
    }
    if let Some(c) = &eve.community_id {
        meta.insert("correlation_uid".into(), c.as_str().into());
    }
    o.insert("metadata".into(), Value::Object(meta));
    // What OCSF has no place for: the members beyond the record's place (mapped for every
    // record), the protocol record of the classes without a place for it, islet's own fields.
    let Members {
        islet,
        rest: mut unmapped,
        ..
    } = members;
    if matches!(kind, "flow" | "http" | "dns" | "alert") {
        // The protocol record is the member named by the record's type.
        unmapped.remove(kind);
    }
    // Always present: the event chain's sequence number and link go here.
    unmapped.insert(
        "islet".into(),
        islet.unwrap_or_else(|| Value::Object(Map::new())),
    );
    o.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(o)
}

/// Endpoints and connection info of a record with a flow.
fn network(eve: &EveRecord, o: &mut Map<String, Value>) {
    let ep = |ip: Option<&str>, port: Option<u64>| {
        let mut m = Map::new();
        if let Some(x) = ip {
            m.insert("ip".into(), x.into());
        }
        if let Some(p) = port {
            m.insert("port".into(), p.into());
        }
        Value::Object(m)
    };
    o.insert(
        "src_endpoint".into(),
        ep(eve.src_ip.as_deref(), eve.src_port),
    );
    o.insert(
        "dst_endpoint".into(),
        ep(eve.dest_ip.as_deref(), eve.dest_port),
    );
    let proto = eve.proto.as_deref().unwrap_or("");
    let num = match proto {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "IPv6-ICMP" => 58,
        "SCTP" => 132,
        _ => proto.parse().unwrap_or(0),
    };
    let mut c = Map::new();
    c.insert("protocol_name".into(), proto.to_ascii_lowercase().into());
    c.insert("protocol_num".into(), num.into());
    if let Some(id) = &eve.community_id {
        c.insert("community_uid".into(), id.as_str().into());
    }
    if let Some(f) = eve.flow_id {
        c.insert("uid".into(), f.to_string().into());
    }
    let v6 = eve.src_ip.as_deref().is_some_and(|ip| ip.contains(':'));
    c.insert("protocol_ver_id".into(), (if v6 { 6 } else { 4 }).into());
    o.insert("connection_info".into(), Value::Object(c));
    if let Some(a) = &eve.app_proto {
        o.insert("app_name".into(), a.as_str().into());
    }
}

/// A flow's counters (Network Activity `traffic`, start and end time).
fn traffic(f: Option<&Flow>, o: &mut Map<String, Value>) {
    let none = Flow::default();
    let f = f.unwrap_or(&none);
    let (po, pi, bo, bi) = (
        f.pkts_toserver,
        f.pkts_toclient,
        f.bytes_toserver,
        f.bytes_toclient,
    );
    o.insert(
        "traffic".into(),
        json!({"packets_out": po, "packets_in": pi, "packets": f.pkts(), "bytes_out": bo, "bytes_in": bi, "bytes": f.bytes()}),
    );
    if let Some(t) = ms(f.start.as_deref()) {
        o.insert("start_time".into(), t.into());
    }
    if let Some(t) = ms(f.end.as_deref()) {
        o.insert("end_time".into(), t.into());
    }
}

/// HTTP Activity's request and response; the activity by method.
fn http(h: Option<&Http>, o: &mut Map<String, Value>) -> (u64, &'static str) {
    let none = Http::default();
    let h = h.unwrap_or(&none);
    let method = h.http_method.as_deref().unwrap_or("");
    let mut url = Map::new();
    if let Some(host) = &h.hostname {
        url.insert("hostname".into(), host.as_str().into());
    }
    if let Some(path) = &h.url {
        url.insert("path".into(), path.as_str().into());
        let host = h.hostname.as_deref().unwrap_or("");
        url.insert("url_string".into(), format!("http://{host}{path}").into());
    }
    if let Some(p) = h.http_port {
        url.insert("port".into(), p.into());
    }
    let mut req = Map::new();
    req.insert("http_method".into(), method.into());
    req.insert("url".into(), Value::Object(url));
    for (from, to) in [
        (&h.http_user_agent, "user_agent"),
        (&h.http_refer, "referrer"),
        (&h.protocol, "version"),
    ] {
        if let Some(x) = from {
            req.insert(to.into(), x.as_str().into());
        }
    }
    o.insert("http_request".into(), Value::Object(req));
    let mut resp = Map::new();
    if let Some(c) = h.status {
        resp.insert("code".into(), c.into());
        o.insert("http_status".into(), c.into());
    }
    if let Some(l) = h.length {
        resp.insert("length".into(), l.into());
    }
    if let Some(ct) = &h.http_content_type {
        resp.insert("content_type".into(), ct.as_str().into());
    }
    o.insert("http_response".into(), Value::Object(resp));
    http_activity(method)
}

/// DNS Activity's query, answers and rcode; whether the record is a response.
fn dns(d: Option<&Dns>, o: &mut Map<String, Value>) -> bool {
    let none = Dns::default();
    let d = d.unwrap_or(&none);
    // The first query, or the record's own name (a response may carry only that).
    let (name, rrtype) = match d.queries.first() {
        Some(q) => (q.rrname.as_deref(), q.rrtype.as_deref()),
        None => (d.rrname.as_deref(), d.rrtype.as_deref()),
    };
    let mut query = Map::new();
    if let Some(n) = name {
        query.insert("hostname".into(), n.into());
    }
    if let Some(t) = rrtype {
        query.insert("type".into(), t.into());
    }
    query.insert("class".into(), "IN".into());
    if let Some(id) = d.id {
        query.insert("packet_uid".into(), id.into());
    }
    o.insert("query".into(), Value::Object(query));
    // islet writes `answers` only when there are some.
    if !d.answers.is_empty() {
        let answers: Vec<Value> = d
            .answers
            .iter()
            .map(|x| {
                let mut m = Map::new();
                if let Some(r) = &x.rdata {
                    m.insert("rdata".into(), r.as_str().into());
                }
                if let Some(t) = x.ttl {
                    m.insert("ttl".into(), t.into());
                }
                if let Some(t) = &x.rrtype {
                    m.insert("type".into(), t.as_str().into());
                }
                m.insert("class".into(), "IN".into());
                Value::Object(m)
            })
            .collect();
        o.insert("answers".into(), Value::Array(answers));
    }
    if let Some(rc) = &d.rcode {
        let (id, caption) = rcode(rc);
        o.insert("rcode_id".into(), id.into());
        o.insert("rcode".into(), caption.into());
    }
    d.kind.as_deref() == Some("response")
}

/// Detection Finding's `finding_info`, status, confidence and action; the severity id.
fn finding(eve: &EveRecord, a: Option<&AlertPart>, time: u64, o: &mut Map<String, Value>) -> u64 {
    let none = AlertPart::default();
    let a = a.unwrap_or(&none);
    let sid = a.signature_id.unwrap_or(0);
    let title = a.signature.as_deref().unwrap_or("");
    let flow = eve.flow_id.unwrap_or(0);
    let mut info = Map::new();
    info.insert(
        "uid".into(),
        format!("{}:{sid}:{flow}:{time}", a.gid.unwrap_or(1)).into(),
    );
    info.insert("title".into(), title.into());
    info.insert("desc".into(), title.into());
    if let Some(c) = &a.category {
        info.insert("types".into(), json!([c]));
    }
    info.insert(
        "analytic".into(),
        json!({"uid": sid.to_string(), "name": title, "type_id": 1, "type": "Rule"}),
    );
    let ids = a.metadata.technique_ids();
    if !ids.is_empty() {
        let names = a.metadata.technique_names();
        let attacks: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| json!({"technique": {"uid": id, "name": names.get(i)}, "version": "15"}))
            .collect();
        info.insert("attacks".into(), Value::Array(attacks));
    }
    if let Some(t) = ms(eve.timestamp.as_deref()) {
        info.insert("created_time".into(), t.into());
    }
    o.insert("finding_info".into(), Value::Object(info));
    o.insert("status_id".into(), 1.into());
    o.insert("status".into(), "New".into());
    o.insert("confidence_id".into(), 3.into());
    o.insert("confidence".into(), "High".into());
    let (aid, aname) = if a.action.as_deref() == Some("blocked") {
        (2, "Denied")
    } else {
        (1, "Allowed")
    };
    o.insert("action_id".into(), aid.into());
    o.insert("action".into(), aname.into());
    match a.severity {
        Some(1) => 4,
        Some(2) => 3,
        Some(3) => 2,
        _ => 1,
    }
}

/// TLS's server name, version and JA3/JA3S hashes.
fn tls(t: Option<&Tls>) -> Value {
    let none = Tls::default();
    let t = t.unwrap_or(&none);
    let mut tls = Map::new();
    if let Some(x) = &t.sni {
        tls.insert("sni".into(), x.as_str().into());
    }
    if let Some(x) = &t.version {
        tls.insert("version".into(), x.as_str().into());
    }
    for (h, name) in [(&t.ja3, "ja3_hash"), (&t.ja3s, "ja3s_hash")] {
        if let Some(h) = h.as_ref().and_then(|h| h.hash.as_deref()) {
            tls.insert(
                name.into(),
                json!({"value": h, "algorithm_id": 1, "algorithm": "MD5"}),
            );
        }
    }
    Value::Object(tls)
}

fn http_activity(method: &str) -> (u64, &'static str) {
    match method {
        "CONNECT" => (1, "Connect"),
        "DELETE" => (2, "Delete"),
        "GET" => (3, "Get"),
        "HEAD" => (4, "Head"),
        "OPTIONS" => (5, "Options"),
        "POST" => (6, "Post"),
        "PUT" => (7, "Put"),
        "TRACE" => (8, "Trace"),
        _ => (99, "Other"),
    }
}

fn rcode(rc: &str) -> (u64, &'static str) {
    match rc {
        "NOERROR" => (0, "NoError"),
        "FORMERR" => (1, "FormError"),
        "SERVFAIL" => (2, "ServError"),
        "NXDOMAIN" => (3, "NXDomain"),
        "NOTIMP" => (4, "NotImp"),
        "REFUSED" => (5, "Refused"),
        "YXDOMAIN" => (6, "YXDomain"),
        "YXRRSET" => (7, "YXRRSet"),
        "NXRRSET" => (8, "NXRRSet"),
        "NOTAUTH" => (9, "NotAuth"),
        "NOTZONE" => (10, "NotZone"),
        _ => (99, "Other"),
    }
}

/// Write a JSON value with islet's conventions (keys in map order, islet's string escaping,
/// floats in Rust's shortest round-trip form).
pub fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                let f = if f == 0.0 { 0.0 } else { f };
                out.extend_from_slice(f.to_string().as_bytes());
            } else {
                out.extend_from_slice(b"null");
            }
        }
        Value::String(s) => islet_event::json::escape(out, s.as_bytes()),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(x, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                islet_event::json::escape(out, k.as_bytes());
                out.push(b':');
                write_value(x, out);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests;
