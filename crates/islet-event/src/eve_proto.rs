//! EVE encoders for application-layer events (Suricata 8 field names).

use crate::CommunityId;
use crate::eve::EveOptions;
use crate::json::Json;
use crate::proto::{
    AppEvent, DnsAnswer, DnsEvent, Fingerprint, HttpEvent, QuicEvent, RdpEvent, SshEvent, SshSide,
    TlsEvent,
};
use crate::time::write_iso;
use islet_wire::Tuple;

/// Where an application event happened: its flow and the packet that completed it.
#[derive(Clone, Copy, Debug)]
pub struct EventContext<'a> {
    pub ts_ns: u64,
    pub flow_id: u64,
    pub pcap_cnt: Option<u64>,
    /// The flow's tuple, client → server.
    pub tuple: &'a Tuple,
    /// The flow's Community ID, when the caller already has it (computed here otherwise).
    pub community_id: Option<&'a CommunityId>,
}

pub(crate) fn header<'b>(
    buf: &'b mut Vec<u8>,
    c: &EventContext<'_>,
    event_type: &str,
    o: &EveOptions,
) -> Json<'b> {
    let mut j = Json::object(buf);
    j.with("timestamp", |b| write_iso(b, c.ts_ns));
    j.u64("flow_id", c.flow_id);
    if let Some(n) = c.pcap_cnt {
        j.u64("pcap_cnt", n);
    }
    j.str("event_type", event_type);
    crate::eve::tuple_fields(&mut j, c.tuple, true);
    match c.community_id {
        Some(cid) => j.str("community_id", cid.as_str()),
        None => j.str(
            "community_id",
            CommunityId::v1(o.community_id_seed, c.tuple).as_str(),
        ),
    };
    j
}

/// Append one application event.
pub fn write_app_event(buf: &mut Vec<u8>, c: &EventContext<'_>, ev: &AppEvent, o: &EveOptions) {
    let mut j = header(buf, c, event_type(ev), o);
    body(&mut j, ev);
    if has_islet_members(ev) {
        j.begin_object("islet");
        islet_members(&mut j, ev);
        j.end_object();
    }
    j.finish();
}

/// The EVE `event_type` of an application event.
pub fn event_type(ev: &AppEvent) -> &'static str {
    match ev {
        AppEvent::Tls(_) => "tls",
        AppEvent::Dns(_) => "dns",
        AppEvent::Http(_) => "http",
        AppEvent::Ssh(_) => "ssh",
        AppEvent::Quic(_) => "quic",
        AppEvent::Krb5(_) => "krb5",
        AppEvent::Rdp(_) => "rdp",
        AppEvent::Smb(_) => "smb",
        AppEvent::Stream { .. } | AppEvent::Anomaly { .. } => "anomaly",
    }
}

/// The event's own object (`"tls": {…}`, `"anomaly": {…}`).
pub(crate) fn body(j: &mut Json<'_>, ev: &AppEvent) {
    match ev {
        AppEvent::Tls(t) => tls(j, t),
        AppEvent::Dns(d) => dns(j, d),
        AppEvent::Http(h) => http(j, h),
        AppEvent::Ssh(s) => ssh(j, s),
        AppEvent::Quic(q) => quic(j, q),
        AppEvent::Krb5(k) => {
            j.begin_object("krb5");
            j.str("msg_type", &k.msg_type);
            if let Some(v) = &k.failed_request {
                j.str("failed_request", v);
            }
            if let Some(v) = &k.error_code {
                j.str("error_code", v);
            }
            j.str("cname", k.cname.as_deref().unwrap_or("<empty>"));
            j.str("realm", k.realm.as_deref().unwrap_or("<empty>"));
            j.str("sname", k.sname.as_deref().unwrap_or("<empty>"));
            if let Some(v) = &k.encryption {
                j.str("encryption", v);
                j.bool("weak_encryption", k.weak_encryption);
            }
            j.end_object();
        }
        AppEvent::Rdp(r) => rdp(j, r),
        AppEvent::Smb(m) => smb(j, m),
        AppEvent::Stream { event } => {
            j.begin_object("anomaly");
            j.str("type", "stream");
            j.with("event", |b| {
                b.extend_from_slice(b"\"stream.");
                b.extend_from_slice(event.as_bytes());
                b.push(b'"');
            });
            j.end_object();
        }
        AppEvent::Anomaly { app_proto, event } => {
            j.begin_object("anomaly");
            j.str("app_proto", app_proto.name().unwrap_or("unknown"));
            j.str("type", "applayer");
            j.str("event", event);
            j.str("layer", "proto_parser");
            j.end_object();
        }
    }
}

fn fingerprint(j: &mut Json<'_>, key: &str, f: &Fingerprint) {
    j.begin_object(key)
        .str("hash", &f.hash)
        .str("string", &f.string)
        .end_object();
}

fn str_list<S: AsRef<str>>(j: &mut Json<'_>, key: &str, v: &[S]) {
    j.begin_array(key);
    for s in v {
        j.item_str(s.as_ref());
    }
    j.end_array();
}

fn tls(j: &mut Json<'_>, t: &TlsEvent) {
    j.begin_object("tls");
    if let Some(c) = &t.cert {
        j.str("subject", &c.subject);
        j.str("issuerdn", &c.issuerdn);
        j.str("serial", &c.serial);
        j.str("fingerprint", &c.fingerprint);
    }
    if t.session_resumed {
        j.bool("session_resumed", true);
    }
    if let Some(s) = &t.sni {
        j.str("sni", s);
    }
    j.str("version", &t.version);
    if let Some(c) = &t.cert {
        j.str("notbefore", &c.notbefore);
        j.str("notafter", &c.notafter);
        if !c.subjectaltname.is_empty() {
            str_list(j, "subjectaltname", &c.subjectaltname);
        }
    }
    if let Some(f) = &t.ja3 {
        fingerprint(j, "ja3", f);
    }
    if let Some(f) = &t.ja3s {
        fingerprint(j, "ja3s", f);
    }
    if let Some(f) = &t.ja4 {
        j.str("ja4", f);
    }
    if !t.client_alpns.is_empty() {
        str_list(j, "client_alpns", &t.client_alpns);
    }
    if !t.server_alpns.is_empty() {
        str_list(j, "server_alpns", &t.server_alpns);
    }
    j.end_object();
}

fn answers(j: &mut Json<'_>, key: &str, v: &[DnsAnswer]) {
    j.begin_array(key);
    for a in v {
        j.begin_item_object();
        j.str("rrname", &a.rrname)
            .str("rrtype", &a.rrtype)
            .u64("ttl", u64::from(a.ttl));
        if !a.rdata.is_empty() {
            j.str("rdata", &a.rdata);
        }
        j.end_object();
    }
    j.end_array();
}

fn dns(j: &mut Json<'_>, d: &DnsEvent) {
    j.begin_object("dns");
    j.u64("version", 3);
    j.str("type", if d.response { "response" } else { "request" });
    j.u64("tx_id", d.tx_id);
    j.u64("id", u64::from(d.id));
    j.with("flags", |b| {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        b.push(b'"');
        let mut started = false;
        for shift in [12u16, 8, 4, 0] {
            let n = (d.flags >> shift) & 0xf;
            if n != 0 || started || shift == 0 {
                b.push(HEX[usize::from(n)]);
                started = true;
            }
        }
        b.push(b'"');
    });
    for (bit, name) in [
        (0x8000u16, "qr"),
        (0x0400, "aa"),
        (0x0200, "tc"),
        (0x0100, "rd"),
        (0x0080, "ra"),
        (0x0020, "z"),
    ] {
        if d.flags & bit != 0 {
            j.bool(name, true);
        }
    }
    j.u64("opcode", u64::from(d.opcode));
    if d.response {
        j.str("rcode", &d.rcode);
    }
    j.begin_array("queries");
    for q in &d.queries {
        j.begin_item_object();
        j.str("rrname", &q.rrname).str("rrtype", &q.rrtype);
        j.end_object();
    }
    j.end_array();
    if !d.answers.is_empty() {
        answers(j, "answers", &d.answers);
        // Suricata's "grouped" form: rdata by record type, in answer order.
        let mut types: Vec<&str> = Vec::new();
        for a in &d.answers {
            if !a.rdata.is_empty() && !types.contains(&a.rrtype.as_ref()) {
                types.push(a.rrtype.as_ref());
            }
        }
        if !types.is_empty() {
            j.begin_object("grouped");
            for ty in types {
                j.begin_array(ty);
                for a in d
                    .answers
                    .iter()
                    .filter(|a| a.rrtype == ty && !a.rdata.is_empty())
                {
                    j.item_str(&a.rdata);
                }
                j.end_array();
            }
            j.end_object();
        }
    }
    if !d.authorities.is_empty() {
        answers(j, "authorities", &d.authorities);
    }
    j.end_object();
}

fn http(j: &mut Json<'_>, h: &HttpEvent) {
    j.begin_object("http");
    if let Some(v) = &h.hostname {
        j.str("hostname", v);
    }
    if let Some(p) = h.http_port {
        j.u64("http_port", u64::from(p));
    }
    j.str("url", &h.url);
    if let Some(v) = &h.http_user_agent {
        j.str("http_user_agent", v);
    }
    if let Some(v) = &h.http_content_type {
        j.str("http_content_type", v);
    }
    if let Some(v) = &h.http_refer {
        j.str("http_refer", v);
    }
    if let Some(v) = &h.xff {
        j.str("xff", v);
    }
    j.str("http_method", &h.http_method);
    j.str("protocol", &h.protocol);
    if let Some(s) = h.status {
        j.u64("status", u64::from(s));
    }
    j.u64("length", h.length);
    j.end_object();
}

/// Whether the event has fields of its own for the record's `islet` object.
pub(crate) fn has_islet_members(ev: &AppEvent) -> bool {
    matches!(ev, AppEvent::Http(_))
}

/// The event's fields inside the record's one `islet` object (opened by the caller, which
/// may add its own: a record has a single `islet` object, written last).
pub(crate) fn islet_members(j: &mut Json<'_>, ev: &AppEvent) {
    if let AppEvent::Http(h) = ev {
        str_list(j, "request_header_names", &h.request_header_names);
        str_list(j, "response_header_names", &h.response_header_names);
    }
}

fn quic(j: &mut Json<'_>, q: &QuicEvent) {
    j.begin_object("quic");
    j.str("version", &q.version);
    if let Some(s) = &q.sni {
        j.str("sni", s);
    }
    if let Some(f) = &q.ja3 {
        fingerprint(j, "ja3", f);
    }
    if let Some(f) = &q.ja4 {
        j.str("ja4", f);
    }
    if !q.alpns.is_empty() {
        str_list(j, "alpns", &q.alpns);
    }
    j.end_object();
}

fn rdp(j: &mut Json<'_>, r: &RdpEvent) {
    j.begin_object("rdp");
    j.u64("tx_id", r.tx_id);
    j.str("event_type", &r.event_type);
    if let Some(c) = &r.cookie {
        j.str("cookie", c);
    }
    if !r.requested_protocols.is_empty() {
        str_list(j, "protocols", &r.requested_protocols);
    }
    if let Some(p) = &r.protocol {
        j.str("protocol", p);
    }
    if let Some(e) = &r.error_code {
        j.str("error_code", e);
    }
    if let Some(c) = &r.client {
        j.begin_object("client");
        if let Some(v) = &c.version {
            j.str("version", v);
        }
        if let Some(v) = c.desktop_width {
            j.u64("desktop_width", u64::from(v));
        }
        if let Some(v) = c.desktop_height {
            j.u64("desktop_height", u64::from(v));
        }
        if let Some(v) = c.keyboard_layout {
            j.u64("keyboard_layout", u64::from(v));
        }
        if let Some(v) = &c.build {
            j.str("build", v);
        }
        if let Some(v) = &c.client_name {
            j.str("client_name", v);
        }
        if !c.capabilities.is_empty() {
            str_list(j, "capabilities", &c.capabilities);
        }
        if let Some(v) = &c.id {
            j.str("id", v);
        }
        j.end_object();
    }
    if !r.channels.is_empty() {
        str_list(j, "channels", &r.channels);
    }
    j.end_object();
}

fn smb(j: &mut Json<'_>, m: &crate::proto::SmbEvent) {
    j.begin_object("smb");
    j.u64("id", m.id);
    j.str("dialect", &m.dialect);
    j.str("command", &m.command);
    if !m.status.is_empty() {
        j.str("status", &m.status);
        j.str("status_code", &m.status_code);
    }
    j.u64("session_id", m.session_id);
    if let Some(t) = m.tree_id {
        j.u64("tree_id", u64::from(t));
    }
    if !m.client_dialects.is_empty() {
        str_list(j, "client_dialects", &m.client_dialects);
    }
    if let Some(g) = &m.server_guid {
        j.str("server_guid", g);
    }
    if let Some(s) = &m.share {
        j.str("share", s);
    }
    if let Some(f) = &m.filename {
        j.str("filename", f);
    }
    if let Some(d) = &m.disposition {
        j.str("disposition", d);
        j.str("access", "normal");
    }
    for (k, v) in [
        ("created", m.created),
        ("accessed", m.accessed),
        ("modified", m.modified),
        ("changed", m.changed),
    ] {
        if let Some(v) = v {
            j.i64(k, v);
        }
    }
    if let Some(sz) = m.size {
        j.u64("size", sz);
    }
    if let Some(f) = &m.fuid {
        j.str("fuid", f);
    }
    if m.request_native_os.is_some() || m.request_native_lm.is_some() {
        j.begin_object("request");
        j.str("native_os", m.request_native_os.as_deref().unwrap_or(""));
        j.str("native_lm", m.request_native_lm.as_deref().unwrap_or(""));
        j.end_object();
    }
    if m.response_native_os.is_some() || m.response_native_lm.is_some() {
        j.begin_object("response");
        j.str("native_os", m.response_native_os.as_deref().unwrap_or(""));
        j.str("native_lm", m.response_native_lm.as_deref().unwrap_or(""));
        j.end_object();
    }
    if let Some(d) = &m.dcerpc {
        dcerpc(j, d);
    }
    j.end_object();
}

fn dcerpc(j: &mut Json<'_>, d: &crate::proto::DcerpcCall) {
    j.begin_object("dcerpc");
    j.str("request", d.request);
    j.str("response", d.response.unwrap_or("UNREPLIED"));
    if !d.interfaces.is_empty() {
        j.begin_array("interfaces");
        for i in &d.interfaces {
            j.begin_item_object();
            j.str("uuid", &i.uuid);
            j.str("version", &i.version);
            if let Some(r) = i.ack_result {
                j.u64("ack_result", u64::from(r));
            }
            if let Some(r) = i.ack_reason {
                j.u64("ack_reason", u64::from(r));
            }
            j.end_object();
        }
        j.end_array();
    }
    if let Some(o) = d.opnum {
        j.u64("opnum", u64::from(o));
    }
    for (key, side) in [("req", d.req), ("res", d.res)] {
        if let Some(s) = side {
            j.begin_object(key);
            j.u64("frag_cnt", u64::from(s.frag_cnt));
            j.u64("stub_data_size", s.stub_data_size);
            j.end_object();
        }
    }
    j.u64("call_id", u64::from(d.call_id));
    j.end_object();
}

fn ssh_side(j: &mut Json<'_>, key: &str, s: &SshSide) {
    j.begin_object(key);
    j.str("proto_version", &s.proto_version);
    j.str("software_version", &s.software_version);
    if let Some(h) = &s.hassh {
        fingerprint(j, "hassh", h);
    }
    j.end_object();
}

fn ssh(j: &mut Json<'_>, s: &SshEvent) {
    j.begin_object("ssh");
    if let Some(c) = &s.client {
        ssh_side(j, "client", c);
    }
    if let Some(c) = &s.server {
        ssh_side(j, "server", c);
    }
    j.end_object();
}
