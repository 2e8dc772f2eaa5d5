//! Property: every parser takes random bytes, and valid messages with bytes flipped or cut, in
//! any segmentation, without a panic; buffers stay within their bounds.

use islet_l7::Sink;
use islet_l7::dns::{DnsTcpState, parse_message};
use islet_l7::http::HttpState;
use islet_l7::quic::QuicState;
use islet_l7::smb::SmbState;
use islet_l7::ssh::SshState;
use islet_l7::tls::TlsState;
use proptest::prelude::*;

/// A TLS 1.2 record carrying a ClientHello with SNI, ALPN, groups and signature algorithms.
fn client_hello() -> Vec<u8> {
    let mut ext = Vec::new();
    let sni = b"example.com";
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((sni.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(sni);
    ext.extend_from_slice(&[0, 10, 0, 4, 0, 2, 0, 29]);
    ext.extend_from_slice(&[0, 13, 0, 4, 0, 2, 4, 3]);
    ext.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(&[
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0, 1, 0, 1,
    ]);
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 16]);
    m.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
    m
}

const HTTP: &[u8] = b"POST /a?b=c HTTP/1.1\r\nHost: h:81\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.1\r\nHost: x\r\n\r\n";
const HTTP_RESP: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No\r\n\r\n";
const SSH: &[u8] = b"SSH-2.0-OpenSSH_9.6\r\n\x00\x00\x00\x2c\x04\x14AAAAAAAAAAAAAAAA\x00\x00\x00\x04kexa\x00\x00\x00\x01b\x00\x00\x00\x01c\x00\x00\x00\x01d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

fn mutate(mut v: Vec<u8>, flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for &(at, x) in flips {
        if !v.is_empty() {
            let n = at % v.len();
            v[n] ^= x;
        }
    }
    v.truncate(cut.min(v.len()));
    v
}

fn run_all(bytes: &[u8], step: usize) {
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    let mut tls = TlsState::default();
    let mut http = HttpState::default();
    let mut ssh = SshState::default();
    let mut dtcp = DnsTcpState::default();
    let mut smb = SmbState::default();
    for (i, c) in bytes.chunks(step.max(1)).enumerate() {
        let ts = i % 2 == 0;
        tls.input(ts, c, &mut sink);
        http.input(ts, c, &mut sink);
        ssh.input(ts, c, &mut sink);
        dtcp.input(ts, c, &mut sink);
        smb.input(ts, c, &mut sink);
    }
    tls.finish(&mut sink);
    http.finish(&mut sink);
    ssh.finish(&mut sink);
    let _ = parse_message(bytes, 0, &mut sink);
    QuicState::default().client_datagram(bytes, &mut sink);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..200) {
        run_all(&bytes, step);
    }

    #[test]
    fn mutated_valid_messages(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..6),
        cut in 0usize..400,
        step in 1usize..64,
    ) {
        let base = match which {
            0 => client_hello(),
            1 => dns_response(),
            2 => HTTP.to_vec(),
            3 => HTTP_RESP.to_vec(),
            _ => SSH.to_vec(),
        };
        run_all(&mutate(base, &flips, cut), step);
    }
}

#[test]
fn valid_messages_parse() {
    let mut ev = Vec::new();
    let mut sink = Sink { events: &mut ev };
    let mut tls = TlsState::default();
    tls.input(true, &client_hello(), &mut sink);
    tls.finish(&mut sink);
    let ev_dns = parse_message(&dns_response(), 0, &mut sink).expect("dns");
    assert_eq!(ev_dns.answers.len(), 2);
    assert_eq!(ev_dns.answers[0].rdata, "example.com");
    let tls_ev = ev.iter().find_map(|e| match e {
        islet_event::proto::AppEvent::Tls(t) => Some(t.clone()),
        _ => None,
    });
    let t = tls_ev.expect("tls event");
    assert_eq!(t.sni.as_deref(), Some("example.com"));
    assert_eq!(t.client_alpns, vec!["h2".to_string()]);
    assert!(
        t.ja4
            .as_deref()
            .is_some_and(|j| j.starts_with("t12d0204h2_")),
        "{:?}",
        t.ja4
    );
}

/// Random messages built of labels and backward pointers.
fn dns_names_message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0u8..4, any::<u8>(), any::<u16>()), 1..200).prop_map(|parts| {
        let mut m = vec![0u8; 12];
        for (kind, b, target) in parts {
            match kind {
                0 => m.extend_from_slice(&[1, b'a' + b % 26]),
                1 => m.push(0),
                2 => {
                    let t = usize::from(target) % m.len().max(1);
                    m.extend_from_slice(&[0xC0 | (t >> 8) as u8, t as u8]);
                }
                _ => m.extend_from_slice(&[2, b, b'z']),
            }
        }
        m
    })
}

proptest! {
    /// The memoised name decoder gives exactly what a fresh walk gives — the same name, end or
    /// error — at every offset, read in order as the record parser reads them.
    #[test]
    fn dns_memoised_names_equal_fresh_walks(m in dns_names_message(), step in 1usize..7) {
        let mut names = islet_l7::dns::Names::new(&m);
        let mut at = 12;
        while at < m.len() {
            prop_assert_eq!(names.read(at), islet_l7::dns::read_name(&m, at), "offset {}", at);
            at += step;
        }
    }
}
