//! islet-l7 — the application layer: what each flow *is* and what it says about itself.
//!
//! [`detect::probe`] names the protocol of each direction from its first bytes, as Suricata's
//! and nDPI's probing parsers do, whatever the port (DNS on 5353, TLS on 8443, SSH on 2222).
//! One folder (or file) per protocol holds a pure, streaming parser over `&[u8]`, its per-flow
//! state and the logger that turns state into an [`AppEvent`]. [`L7Flow`] is the per-flow glue:
//! TCP bytes go through the flow's stream reassembler (allocated only once a flow carries
//! payload) and reach the parser in order; once a parser has logged what it needs (a TLS
//! handshake, an SSH key exchange), inspection of the flow stops and its buffers are freed.
//! Every attacker-driven loop and buffer has a named bound; violations become `applayer`
//! anomalies named as Suricata names them.
#![forbid(unsafe_code)]

pub mod dcerpc;
pub mod detect;
pub mod dns;
pub mod http;
pub mod krb5;
pub mod quic;
pub mod rdp;
pub mod smb;
pub mod ssh;
pub mod tls;

use detect::{MAX_PROBE_PACKETS, Probe, Transport};
use islet_event::AppProto;
use islet_event::proto::AppEvent;
use islet_flow::stream::{Reassembler, StreamConfig};
use islet_wire::tcp::flags::SYN;

/// Where parsers put what they found.
#[derive(Debug)]
pub struct Sink<'a> {
    pub events: &'a mut Vec<AppEvent>,
}

/// Most bytes kept while a probe says it needs more.
pub const MAX_PROBE_BYTES: usize = 64;

/// The flow-table fields the application layer reads and writes.
#[derive(Debug)]
pub struct FlowView<'a> {
    /// Protocol found per direction (0 = to server).
    pub app: &'a mut [AppProto; 2],
    /// Probing attempts per direction.
    pub probes: &'a mut [u8; 2],
    pub client_port: u16,
    pub server_port: u16,
}

#[derive(Debug, Default)]
enum Parser {
    #[default]
    None,
    Tls(Box<tls::TlsState>),
    Http(Box<http::HttpState>),
    Ssh(Box<ssh::SshState>),
    DnsTcp(Box<dns::DnsTcpState>),
    Rdp(Box<rdp::RdpState>),
    Krb5(Box<krb5::Krb5State>),
    Smb(Box<smb::SmbState>),
    /// A protocol without a parser here (yet): nothing more to read.
    Opaque,
}

/// Application-layer state of one flow.
#[derive(Debug, Default)]
pub struct L7Flow {
    streams: Option<Box<[Reassembler; 2]>>,
    parser: Parser,
    probe_buf: [Vec<u8>; 2],
    dns_tx: u64,
    quic: Option<Box<quic::QuicState>>,
    krb5_udp: Option<Box<krb5::Krb5State>>,
    /// The flow's Community ID, computed for its first event and reused.
    pub community_id: Option<islet_event::CommunityId>,
    /// Inspection is over for this flow.
    done: bool,
}

impl L7Flow {
    /// Inspection of the flow is over: its parsers logged what they need.
    pub fn inspection_done(&self) -> bool {
        self.done
    }

    /// One TCP segment. `flags` are its TCP flags, `seq` its sequence number.
    #[allow(
        clippy::too_many_arguments,
        reason = "a TCP segment's fields as the flow table hands them over, on the per-packet path"
    )]
    pub fn tcp(
        &mut self,
        cfg: &StreamConfig,
        v: FlowView<'_>,
        toserver: bool,
        seq: u32,
        flags: u8,
        payload: &[u8],
        sink: &mut Sink<'_>,
    ) {
        if self.done {
            return;
        }
        let d = usize::from(!toserver);
        if flags & SYN != 0 {
            self.streams.get_or_insert_with(Box::default)[d].set_isn(seq);
        }
        if payload.is_empty() {
            return;
        }
        let L7Flow {
            streams,
            parser,
            probe_buf,
            done,
            ..
        } = self;
        // Reassembly events are collected apart: the sink is lent to the parsers meanwhile.
        let mut stream_events: Vec<AppEvent> = Vec::new();
        let streams = streams.get_or_insert_with(Box::default);
        let mut v = v;
        streams[d].segment(
            cfg,
            seq,
            payload,
            &mut |chunk| {
                if !*done {
                    *done = deliver(parser, &mut probe_buf[d], &mut v, toserver, chunk, sink);
                }
            },
            &mut |e| stream_events.push(AppEvent::Stream { event: e.name() }),
        );
        sink.events.append(&mut stream_events);
        if self.done {
            self.streams = None;
            self.probe_buf = [Vec::new(), Vec::new()];
        }
    }

    /// One UDP datagram. Returns true when the flow should be flipped (a server's answer was
    /// seen before its question).
    pub fn udp(
        &mut self,
        v: FlowView<'_>,
        toserver: bool,
        payload: &[u8],
        sink: &mut Sink<'_>,
    ) -> bool {
        let d = usize::from(!toserver);
        let mut flip = false;
        if v.app[d] == AppProto::Unknown
            && v.app[1 - d] == AppProto::Unknown
            && v.probes[d] < MAX_PROBE_PACKETS
        {
            match detect::probe(
                Transport::Udp,
                payload,
                toserver,
                v.client_port,
                v.server_port,
            ) {
                Probe::Match { proto, reverse } => {
                    v.app[d] = proto;
                    flip = reverse;
                }
                Probe::NoMatch | Probe::NeedMore => {
                    v.probes[d] += 1;
                    if v.probes[d] >= MAX_PROBE_PACKETS {
                        v.app[d] = AppProto::Failed;
                    }
                }
            }
        }
        if v.app.contains(&AppProto::Quic) && toserver && !self.done {
            let q = self.quic.get_or_insert_with(Box::default);
            if q.client_datagram(payload, sink) {
                self.done = true;
                self.quic = None;
            }
        }
        if v.app.contains(&AppProto::Krb5) {
            self.krb5_udp
                .get_or_insert_with(Box::default)
                .message(payload, sink);
        }
        if v.app.contains(&AppProto::Dns)
            && let Some(ev) = dns::parse_message(payload, self.dns_tx, sink)
        {
            self.dns_tx += 1;
            sink.events.push(AppEvent::Dns(Box::new(ev)));
        }
        flip
    }

    /// The flow ended: log what parsers still hold.
    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        if let Some(k) = &mut self.krb5_udp {
            k.finish(sink);
        }
        match &mut self.parser {
            Parser::Tls(t) => t.finish(sink),
            Parser::Http(h) => h.finish(sink),
            Parser::Ssh(s) => s.finish(sink),
            Parser::Krb5(k) => k.finish(sink),
            Parser::Smb(s) => s.finish(sink),
            Parser::DnsTcp(_) | Parser::Rdp(_) | Parser::None | Parser::Opaque => {}
        }
    }
}

/// In-order stream bytes of one direction: probe if the protocol is unknown, then parse.
/// Returns true when inspection of the flow is over.
fn deliver(
    parser: &mut Parser,
    probe_buf: &mut Vec<u8>,
    v: &mut FlowView<'_>,
    toserver: bool,
    chunk: &[u8],
    sink: &mut Sink<'_>,
) -> bool {
    let d = usize::from(!toserver);
    if matches!(parser, Parser::None) {
        if v.app[d] == AppProto::Failed {
            return v.app[1 - d] == AppProto::Failed;
        }
        // Bytes held back by an earlier "need more", completed from this chunk for the probe.
        let held = probe_buf.len();
        if held > 0 {
            let room = MAX_PROBE_BYTES.saturating_sub(held);
            probe_buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let data: &[u8] = if held > 0 { probe_buf } else { chunk };
        match detect::probe(Transport::Tcp, data, toserver, v.client_port, v.server_port) {
            Probe::Match { proto, .. } => {
                v.app[d] = proto;
                *parser = match proto {
                    AppProto::Tls => Parser::Tls(Box::default()),
                    AppProto::Http => Parser::Http(Box::default()),
                    AppProto::Ssh => Parser::Ssh(Box::default()),
                    AppProto::Dns => Parser::DnsTcp(Box::default()),
                    AppProto::Rdp => Parser::Rdp(Box::default()),
                    AppProto::Krb5 => Parser::Krb5(Box::default()),
                    AppProto::Smb => Parser::Smb(Box::default()),
                    _ => Parser::Opaque,
                };
                if held > 0 {
                    let prefix = std::mem::take(probe_buf);
                    if feed(parser, toserver, &prefix[..held], sink) {
                        return true;
                    }
                }
            }
            Probe::NeedMore if data.len() < MAX_PROBE_BYTES && v.probes[d] < MAX_PROBE_PACKETS => {
                if held == 0 {
                    probe_buf.extend_from_slice(chunk);
                }
                v.probes[d] += 1;
                return false;
            }
            Probe::NoMatch | Probe::NeedMore => {
                v.app[d] = AppProto::Failed;
                probe_buf.clear();
                probe_buf.shrink_to_fit();
                return v.app[1 - d] == AppProto::Failed;
            }
        }
    }
    feed(parser, toserver, chunk, sink)
}

/// Hand bytes to the flow's parser. Returns true when it needs no more.
fn feed(parser: &mut Parser, toserver: bool, bytes: &[u8], sink: &mut Sink<'_>) -> bool {
    match parser {
        Parser::Tls(t) => t.input(toserver, bytes, sink),
        Parser::Http(h) => h.input(toserver, bytes, sink),
        Parser::Ssh(s) => s.input(toserver, bytes, sink),
        Parser::DnsTcp(s) => s.input(toserver, bytes, sink),
        Parser::Rdp(s) => s.input(toserver, bytes, sink),
        Parser::Krb5(s) => s.input(toserver, bytes, sink),
        Parser::Smb(s) => s.input(toserver, bytes, sink),
        Parser::Opaque => true,
        Parser::None => false,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn retransmission_with_other_bytes_is_a_stream_anomaly() {
        let mut l7 = L7Flow::default();
        let mut app = [AppProto::Unknown; 2];
        let mut probes = [0u8; 2];
        let mut evs = Vec::new();
        let cfg = StreamConfig::default();
        let seg = |l7: &mut L7Flow,
                   app: &mut [AppProto; 2],
                   probes: &mut [u8; 2],
                   seq,
                   data: &[u8],
                   evs: &mut Vec<AppEvent>| {
            let v = FlowView {
                app,
                probes,
                client_port: 40000,
                server_port: 80,
            };
            l7.tcp(&cfg, v, true, seq, 0x18, data, &mut Sink { events: evs });
        };
        seg(
            &mut l7,
            &mut app,
            &mut probes,
            1000,
            b"GET /a HTTP/1.1\r\n",
            &mut evs,
        );
        seg(
            &mut l7,
            &mut app,
            &mut probes,
            1000,
            b"GET /b HTTP/1.1\r\n",
            &mut evs,
        );
        assert_eq!(app[0], AppProto::Http);
        assert!(
            evs.iter().any(|e| matches!(
                e,
                AppEvent::Stream {
                    event: "reassembly_overlap_different_data"
                }
            )),
            "{evs:?}"
        );
    }
}
