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

use serde_json::{Map, Value, json};

/// The OCSF schema release every event claims.
pub const OCSF_VERSION: &str = "1.3.0";

/// Convert one EVE line into an OCSF line (no newline). A line that is not a JSON object is
/// kept under `unmapped.raw` of a Base Event, so nothing is lost.
pub fn convert_line(line: &[u8], out: &mut Vec<u8>) {
    let v = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => m,
        _ => {
            let mut m = Map::new();
            m.insert(
                "raw".into(),
                Value::String(String::from_utf8_lossy(line).into_owned()),
            );
            m
        }
    };
    let o = convert(v);
    write_value(&o, out);
}

/// A field of the record, `null` when absent (a `Map` index would panic).
fn at<'a>(m: &'a Map<String, Value>, k: &str) -> &'a Value {
    m.get(k).unwrap_or(&Value::Null)
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// EVE timestamp text → ms since the epoch.
fn ms(t: Option<&str>) -> Option<u64> {
    crate::chain::parse_iso_ns(t?.as_bytes()).map(|ns| ns / 1_000_000)
}

/// Convert an EVE record (an object) into an OCSF event.
pub fn convert(mut eve: Map<String, Value>) -> Value {
    let kind = s(&eve, "event_type").unwrap_or("").to_string();
    let ts = s(&eve, "timestamp").map(str::to_string);
    let time = ms(ts.as_deref()).unwrap_or(0);
    let has_flow = eve.contains_key("src_ip") && eve.contains_key("dest_ip");
    let islet = eve.remove("islet");
    let mut o = Map::new();
    let (class_uid, activity_id, activity_name, severity_id): (u64, u64, String, u64) =
        match kind.as_str() {
            "flow" if has_flow => {
                let state = at(&eve, "flow")["state"].as_str().unwrap_or("");
                let (id, name) = match state {
                    "closed" => (2, "Close"),
                    _ if at(&eve, "tcp")["rst"].as_bool() == Some(true) => (3, "Reset"),
                    _ => (6, "Traffic"),
                };
                network(&eve, &mut o);
                traffic(&eve, &mut o);
                (4001, id, name.into(), 1)
            }
            "http" if has_flow => {
                let h = eve.get("http").cloned().unwrap_or(Value::Null);
                let method = h["http_method"].as_str().unwrap_or("");
                let (id, name) = http_activity(method);
                network(&eve, &mut o);
                let mut url = Map::new();
                if let Some(host) = h["hostname"].as_str() {
                    url.insert("hostname".into(), host.into());
                }
                if let Some(path) = h["url"].as_str() {
                    url.insert("path".into(), path.into());
                    let host = h["hostname"].as_str().unwrap_or("");
                    url.insert("url_string".into(), format!("http://{host}{path}").into());
                }
                if let Some(p) = h["http_port"].as_u64() {
                    url.insert("port".into(), p.into());
                }
                let mut req = Map::new();
                req.insert("http_method".into(), method.into());
                req.insert("url".into(), Value::Object(url));
                for (from, to) in [
                    ("http_user_agent", "user_agent"),
                    ("http_refer", "referrer"),
                    ("protocol", "version"),
                ] {
                    if let Some(x) = h[from].as_str() {
                        req.insert(to.into(), x.into());
                    }
                }
                o.insert("http_request".into(), Value::Object(req));
                let mut resp = Map::new();
                if let Some(c) = h["status"].as_u64() {
                    resp.insert("code".into(), c.into());
                    o.insert("http_status".into(), c.into());
                }
                if let Some(l) = h["length"].as_u64() {
                    resp.insert("length".into(), l.into());
                }
                if let Some(ct) = h["http_content_type"].as_str() {
                    resp.insert("content_type".into(), ct.into());
                }
                o.insert("http_response".into(), Value::Object(resp));
                (4002, id, name.into(), 1)
            }
            "dns" if has_flow => {
                let d = eve.get("dns").cloned().unwrap_or(Value::Null);
                let response = d["type"].as_str() == Some("response");
                network(&eve, &mut o);
                let q = d["queries"].get(0).cloned().unwrap_or_else(|| d.clone());
                let mut query = Map::new();
                if let Some(n) = q["rrname"].as_str() {
                    query.insert("hostname".into(), n.into());
                }
                if let Some(t) = q["rrtype"].as_str() {
                    query.insert("type".into(), t.into());
                }
                query.insert("class".into(), "IN".into());
                if let Some(id) = d["id"].as_u64() {
                    query.insert("packet_uid".into(), id.into());
                }
                o.insert("query".into(), Value::Object(query));
                if let Some(a) = d["answers"].as_array() {
                    let answers: Vec<Value> = a
                        .iter()
                        .map(|x| {
                            let mut m = Map::new();
                            for k in ["rdata", "ttl"] {
                                if !x[k].is_null() {
                                    m.insert(k.into(), x[k].clone());
                                }
                            }
                            if let Some(t) = x["rrtype"].as_str() {
                                m.insert("type".into(), t.into());
                            }
                            m.insert("class".into(), "IN".into());
                            Value::Object(m)
                        })
                        .collect();
                    o.insert("answers".into(), Value::Array(answers));
                }
                if let Some(rc) = d["rcode"].as_str() {
                    let (id, caption) = rcode(rc);
                    o.insert("rcode_id".into(), id.into());
                    o.insert("rcode".into(), caption.into());
                }
                if response {
                    (4003, 2, "Response".into(), 1)
                } else {
                    (4003, 1, "Query".into(), 1)
                }
            }
            "alert" => {
                if has_flow {
                    let mut ev = Map::new();
                    network(&eve, &mut ev);
                    o.insert("evidences".into(), json!([Value::Object(ev)]));
                }
                let a = eve.get("alert").cloned().unwrap_or(Value::Null);
                let sid = a["signature_id"].as_u64().unwrap_or(0);
                let title = a["signature"].as_str().unwrap_or("").to_string();
                let flow = eve.get("flow_id").and_then(Value::as_u64).unwrap_or(0);
                let mut info = Map::new();
                info.insert(
                    "uid".into(),
                    format!("{}:{sid}:{flow}:{time}", a["gid"].as_u64().unwrap_or(1)).into(),
                );
                info.insert("title".into(), title.clone().into());
                info.insert("desc".into(), title.clone().into());
                if let Some(c) = a["category"].as_str() {
                    info.insert("types".into(), json!([c]));
                }
                info.insert(
                    "analytic".into(),
                    json!({"uid": sid.to_string(), "name": title, "type_id": 1, "type": "Rule"}),
                );
                if let (Some(ids), names) = (
                    a["metadata"]["mitre_technique_id"].as_array(),
                    a["metadata"]["mitre_technique_name"].as_array(),
                ) {
                    let attacks: Vec<Value> = ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| {
                            let name = names.and_then(|n| n.get(i)).cloned().unwrap_or(Value::Null);
                            json!({"technique": {"uid": id, "name": name}, "version": "15"})
                        })
                        .collect();
                    info.insert("attacks".into(), Value::Array(attacks));
                }
                if let Some(t) = ts.as_deref().and_then(|t| ms(Some(t))) {
                    info.insert("created_time".into(), t.into());
                }
                o.insert("finding_info".into(), Value::Object(info));
                o.insert("status_id".into(), 1.into());
                o.insert("status".into(), "New".into());
                o.insert("confidence_id".into(), 3.into());
                o.insert("confidence".into(), "High".into());
                let action = a["action"].as_str().unwrap_or("allowed");
                let (aid, aname) = if action == "blocked" {
                    (2, "Denied")
                } else {
                    (1, "Allowed")
                };
                o.insert("action_id".into(), aid.into());
                o.insert("action".into(), aname.into());
                let sev = match a["severity"].as_u64() {
                    Some(1) => 4,
                    Some(2) => 3,
                    Some(3) => 2,
                    _ => 1,
                };
                (2004, 1, "Create".into(), sev)
            }
            _ if has_flow => {
                network(&eve, &mut o);
                if kind == "tls" {
                    let t = &at(&eve, "tls");
                    let mut tls = Map::new();
                    if let Some(x) = t["sni"].as_str() {
                        tls.insert("sni".into(), x.into());
                    }
                    if let Some(x) = t["version"].as_str() {
                        tls.insert("version".into(), x.into());
                    }
                    if let Some(h) = t["ja3"]["hash"].as_str() {
                        tls.insert(
                            "ja3_hash".into(),
                            json!({"value": h, "algorithm_id": 1, "algorithm": "MD5"}),
                        );
                    }
                    if let Some(h) = t["ja3s"]["hash"].as_str() {
                        tls.insert(
                            "ja3s_hash".into(),
                            json!({"value": h, "algorithm_id": 1, "algorithm": "MD5"}),
                        );
                    }
                    o.insert("tls".into(), Value::Object(tls));
                }
                if kind == "anomaly" {
                    (4001, 99, "Other".into(), 2)
                } else {
                    (4001, 6, "Traffic".into(), 1)
                }
            }
            _ => (0, 0, "Unknown".into(), 1),
        };
    let (category_uid, category_name, class_name) = match class_uid {
        4001 => (4, "Network Activity", "Network Activity"),
        4002 => (4, "Network Activity", "HTTP Activity"),
        4003 => (4, "Network Activity", "DNS Activity"),
        2004 => (2, "Findings", "Detection Finding"),
        _ => (0, "Uncategorized", "Base Event"),
    };
    o.insert("activity_id".into(), activity_id.into());
    o.insert("activity_name".into(), activity_name.clone().into());
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
    meta.insert("log_name".into(), kind.clone().into());
    if let Some(t) = &ts {
        meta.insert("original_time".into(), t.clone().into());
    }
    if let Some(c) = s(&eve, "community_id") {
        meta.insert("correlation_uid".into(), c.into());
    }
    o.insert("metadata".into(), Value::Object(meta));
    // What OCSF has no place for: the protocol record of unmapped classes, islet's own fields.
    let mut unmapped = Map::new();
    // The tuple and time are mapped for every record; the protocol record only for the
    // classes that have a place for it.
    const TUPLE: [&str; 9] = [
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
    let body_mapped = matches!(kind.as_str(), "flow" | "http" | "dns" | "alert");
    let mapped = |k: &str| TUPLE.contains(&k) || (body_mapped && k == kind.as_str());
    for (k, v) in eve {
        if !mapped(&k) {
            unmapped.insert(k, v);
        }
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
fn network(eve: &Map<String, Value>, o: &mut Map<String, Value>) {
    let ep = |ip: &str, port: &str| {
        let mut m = Map::new();
        if let Some(x) = eve.get(ip) {
            m.insert("ip".into(), x.clone());
        }
        if let Some(p) = eve.get(port) {
            m.insert("port".into(), p.clone());
        }
        Value::Object(m)
    };
    o.insert("src_endpoint".into(), ep("src_ip", "src_port"));
    o.insert("dst_endpoint".into(), ep("dest_ip", "dest_port"));
    let proto = s(eve, "proto").unwrap_or("");
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
    if let Some(id) = s(eve, "community_id") {
        c.insert("community_uid".into(), id.into());
    }
    if let Some(f) = eve.get("flow_id") {
        c.insert("uid".into(), f.to_string().into());
    }
    let v6 = s(eve, "src_ip").is_some_and(|ip| ip.contains(':'));
    c.insert("protocol_ver_id".into(), (if v6 { 6 } else { 4 }).into());
    o.insert("connection_info".into(), Value::Object(c));
    if let Some(a) = s(eve, "app_proto") {
        o.insert("app_name".into(), a.into());
    }
}

/// A flow's counters (Network Activity `traffic`, start and end time).
fn traffic(eve: &Map<String, Value>, o: &mut Map<String, Value>) {
    let f = at(eve, "flow");
    let g = |k: &str| f[k].as_u64().unwrap_or(0);
    let (po, pi, bo, bi) = (
        g("pkts_toserver"),
        g("pkts_toclient"),
        g("bytes_toserver"),
        g("bytes_toclient"),
    );
    o.insert(
        "traffic".into(),
        json!({"packets_out": po, "packets_in": pi, "packets": po + pi, "bytes_out": bo, "bytes_in": bi, "bytes": bo + bi}),
    );
    if let Some(t) = ms(f["start"].as_str()) {
        o.insert("start_time".into(), t.into());
    }
    if let Some(t) = ms(f["end"].as_str()) {
        o.insert("end_time".into(), t.into());
    }
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
