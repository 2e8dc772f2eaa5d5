//! Per-protocol benchmarks: ClientHello → JA3 + JA4, DNS response → event, HTTP transaction →
//! event. Run with `cargo bench -p islet-l7`.

use divan::{Bencher, black_box};
use islet_l7::Sink;
use islet_l7::dns::parse_message;
use islet_l7::http::HttpState;
use islet_l7::tls::{ja3, ja4, parse_client_hello};

fn main() {
    divan::main();
}

/// A Chrome-like ClientHello body (handshake header stripped): 16 ciphers, 16 extensions.
fn client_hello_body() -> Vec<u8> {
    let mut exts = Vec::new();
    let mut ext = |ty: u16, data: &[u8]| {
        exts.extend_from_slice(&ty.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    };
    ext(0x0a0a, &[]);
    let sni = b"www.example.com";
    let mut s = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
    s.push(0);
    s.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    s.extend_from_slice(sni);
    ext(0, &s);
    ext(23, &[]);
    ext(65281, &[0]);
    ext(10, &[0, 8, 0x0a, 0x0a, 0, 29, 0, 23, 0, 24]);
    ext(11, &[1, 0]);
    ext(35, &[]);
    ext(
        16,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    ext(5, &[1, 0, 0, 0, 0]);
    ext(13, &[0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1]);
    ext(18, &[]);
    let mut ks = vec![0, 43, 0x0a, 0x0a, 0, 1, 0, 0, 29, 0, 32];
    ks.extend_from_slice(&[7; 32]);
    ext(51, &ks);
    ext(45, &[1, 1]);
    ext(43, &[6, 0x0a, 0x0a, 3, 4, 3, 3]);
    ext(27, &[2, 0, 2]);
    ext(17513, &[0, 3, 2, b'h', b'2']);
    let mut b = vec![3, 3];
    b.extend_from_slice(&[1; 32]);
    b.push(32);
    b.extend_from_slice(&[2; 32]);
    let ciphers: [u16; 16] = [
        0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    b.extend_from_slice(&32u16.to_be_bytes());
    for c in ciphers {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    b
}

#[divan::bench]
fn client_hello_to_ja3_and_ja4(b: Bencher<'_, '_>) {
    let body = client_hello_body();
    b.bench(|| {
        let ch = parse_client_hello(black_box(&body)).expect("client hello");
        (ja3(&ch).hash, ja4(&ch, 't'))
    });
}

fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
    m.extend_from_slice(&[
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0, 1, 0, 1,
    ]);
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 16]);
    m.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
    m.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 35]);
    m
}

#[divan::bench]
fn dns_response_to_event(b: Bencher<'_, '_>) {
    let m = dns_response();
    let mut evs = Vec::new();
    b.bench_local(|| {
        evs.clear();
        parse_message(black_box(&m), 0, &mut Sink { events: &mut evs })
    });
}

#[divan::bench]
fn http_transaction_to_event(b: Bencher<'_, '_>) {
    let req: &[u8] = b"GET /api/v1/items/7?page=2 HTTP/1.1\r\nHost: svc-3.prod.cluster.local\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    let resp: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nServer: envoy\r\n\r\n{}";
    let mut evs = Vec::new();
    b.bench_local(|| {
        evs.clear();
        let mut h = HttpState::default();
        let mut sink = Sink { events: &mut evs };
        h.input(true, black_box(req), &mut sink);
        h.input(false, black_box(resp), &mut sink);
        evs.len()
    });
}
