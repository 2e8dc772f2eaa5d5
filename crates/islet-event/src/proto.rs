//! Application-layer metadata records: what the protocol parsers found, as plain data. Never
//! payload: names, versions, fingerprints, certificate fields, header names.

use crate::AppProto;

/// A fingerprint and the string it hashes (JA3, JA3S, HASSH).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: String,
    pub string: String,
}

/// The server certificate (the first of the chain), as Suricata logs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuerdn: String,
    /// Upper-case hex bytes joined by ':'.
    pub serial: String,
    /// SHA-1 of the DER, lower-case hex bytes joined by ':'.
    pub fingerprint: String,
    /// SHA-256 and MD5 of the DER, lower-case hex (for indicator matching; not in EVE).
    pub sha256: String,
    pub md5: String,
    /// `2018-07-13T09:01:05` (UTC, no offset), as Suricata writes it.
    pub notbefore: String,
    pub notafter: String,
    pub subjectaltname: Vec<String>,
}

/// One TLS session's handshake metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsEvent {
    /// Suricata's version string ("TLSv1", "TLS 1.3", "TLS 1.3 draft-28", "UNDETERMINED").
    pub version: String,
    pub sni: Option<String>,
    pub ja3: Option<Fingerprint>,
    pub ja3s: Option<Fingerprint>,
    pub ja4: Option<String>,
    pub client_alpns: Vec<String>,
    pub server_alpns: Vec<String>,
    pub session_resumed: bool,
    pub cert: Option<CertInfo>,
}

/// One DNS question.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQuery {
    pub rrname: String,
    pub rrtype: std::borrow::Cow<'static, str>,
}

/// One DNS answer record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    pub rrname: String,
    pub rrtype: std::borrow::Cow<'static, str>,
    pub ttl: u32,
    /// Text form of the data (address, name, text); empty for types not rendered.
    pub rdata: String,
}

/// One DNS message (Suricata 8 EVE `dns.version: 3`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsEvent {
    pub response: bool,
    pub tx_id: u64,
    pub id: u16,
    pub flags: u16,
    pub opcode: u8,
    pub rcode: std::borrow::Cow<'static, str>,
    pub queries: Vec<DnsQuery>,
    pub answers: Vec<DnsAnswer>,
    pub authorities: Vec<DnsAnswer>,
}

/// One HTTP/1.x transaction (request and, when seen, its response). No bodies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpEvent {
    pub tx_id: u64,
    pub hostname: Option<String>,
    pub http_port: Option<u16>,
    pub url: String,
    pub http_method: String,
    pub protocol: String,
    pub http_user_agent: Option<String>,
    pub http_content_type: Option<String>,
    pub http_refer: Option<String>,
    pub xff: Option<String>,
    pub status: Option<u16>,
    /// Response body length (from Content-Length, or counted).
    pub length: u64,
    pub request_header_names: Vec<std::borrow::Cow<'static, str>>,
    pub response_header_names: Vec<std::borrow::Cow<'static, str>>,
}

/// One side of an SSH session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshSide {
    pub proto_version: String,
    pub software_version: String,
    pub hassh: Option<Fingerprint>,
}

/// One SSH session's banners and key-exchange fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshEvent {
    pub client: Option<SshSide>,
    pub server: Option<SshSide>,
}

/// A QUIC connection's ClientHello, read from its decrypted Initial packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuicEvent {
    pub version: String,
    pub sni: Option<String>,
    pub ja3: Option<Fingerprint>,
    pub ja4: Option<String>,
    pub alpns: Vec<String>,
}

/// The client side of an RDP connect request (MCS Connect-Initial core data).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdpClient {
    pub version: Option<String>,
    pub desktop_width: Option<u16>,
    pub desktop_height: Option<u16>,
    pub keyboard_layout: Option<u32>,
    pub build: Option<String>,
    pub client_name: Option<String>,
    pub capabilities: Vec<String>,
    pub id: Option<String>,
    pub channels: Vec<String>,
}

/// One RDP connection-setup step (Suricata's `rdp.event_type`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdpEvent {
    pub tx_id: u64,
    /// `initial_request`, `initial_response` or `connect_request`.
    pub event_type: String,
    pub cookie: Option<String>,
    pub requested_protocols: Vec<String>,
    pub protocol: Option<String>,
    pub error_code: Option<String>,
    pub client: Option<RdpClient>,
    pub channels: Vec<String>,
}

/// One Kerberos exchange (a request and its reply or error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Krb5Event {
    /// `KRB_AS_REP`, `KRB_TGS_REP`, `KRB_ERROR`, or the request type when unanswered.
    pub msg_type: String,
    pub failed_request: Option<String>,
    pub error_code: Option<String>,
    pub cname: Option<String>,
    pub realm: Option<String>,
    pub sname: Option<String>,
    pub encryption: Option<String>,
    pub weak_encryption: bool,
}

/// One SMB request/response pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmbEvent {
    pub id: u64,
    pub dialect: String,
    pub command: String,
    pub status: String,
    pub status_code: String,
    pub session_id: u64,
    pub tree_id: Option<u32>,
    pub client_dialects: Vec<String>,
    pub server_guid: Option<String>,
    pub request_native_os: Option<String>,
    pub request_native_lm: Option<String>,
    pub response_native_os: Option<String>,
    pub response_native_lm: Option<String>,
    /// TREE_CONNECT share path (`\\host\IPC$`).
    pub share: Option<String>,
    /// CREATE file or named pipe name.
    pub filename: Option<String>,
    pub disposition: Option<String>,
    pub created: Option<i64>,
    pub accessed: Option<i64>,
    pub modified: Option<i64>,
    pub changed: Option<i64>,
    pub size: Option<u64>,
    pub fuid: Option<String>,
    /// A DCE/RPC call carried over a named pipe (WRITE/READ or IOCTL transceive).
    pub dcerpc: Option<DcerpcCall>,
}

/// A DCE/RPC interface offered in a BIND, with the server's answer when seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DcerpcInterface {
    pub uuid: String,
    /// `major.minor`.
    pub version: String,
    pub ack_result: Option<u16>,
    pub ack_reason: Option<u16>,
}

/// Fragment count and stub bytes of one side of a DCE/RPC REQUEST/RESPONSE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DcerpcStub {
    pub frag_cnt: u32,
    pub stub_data_size: u64,
}

/// One DCE/RPC call: a BIND and its BINDACK, or a REQUEST and its RESPONSE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DcerpcCall {
    /// PDU type name of the request (`BIND`, `REQUEST`, …).
    pub request: &'static str,
    /// PDU type name of the answer; `None` is logged as `UNREPLIED`.
    pub response: Option<&'static str>,
    pub interfaces: Vec<DcerpcInterface>,
    pub opnum: Option<u16>,
    pub req: Option<DcerpcStub>,
    pub res: Option<DcerpcStub>,
    pub call_id: u32,
}

/// Metadata a protocol parser emits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppEvent {
    Tls(Box<TlsEvent>),
    Dns(Box<DnsEvent>),
    Http(Box<HttpEvent>),
    Ssh(Box<SshEvent>),
    Quic(Box<QuicEvent>),
    Rdp(Box<RdpEvent>),
    Krb5(Box<Krb5Event>),
    Smb(Box<SmbEvent>),
    /// A TCP stream reassembly event (`anomaly.type: stream`), by Suricata's name without the
    /// `stream.` prefix (`reassembly_seq_gap`, `reassembly_overlap_different_data`, …).
    Stream {
        event: &'static str,
    },
    /// A protocol violation (`anomaly.type: applayer`), by Suricata's event name.
    Anomaly {
        app_proto: AppProto,
        event: &'static str,
    },
}
