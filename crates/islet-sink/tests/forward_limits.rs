//! Issue 18, findings 4 and 5, replayed against the Forward receiver: every bound holds and is
//! counted. Too many entries are refused before the handler sees them; a gzip bomb stops at the
//! memory budget; a frame that never completes times out and its memory comes back; a sender
//! trickling bytes costs parsing work linear in what it sent; the per-peer cap refuses the next
//! connection of a busy peer while another peer still gets in, and a silent connection gives way
//! to a new one at the cap.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use islet_sink::forward::{Receiver, ServerCodec, ServerConfig};

/// A receiver counting the events its handler is given.
fn receiver(cfg: ServerConfig) -> (Receiver, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let r = Receiver::start(
        "127.0.0.1:0",
        cfg,
        None,
        Arc::new(move |b| {
            c.fetch_add(b.events.len(), Ordering::SeqCst);
            true
        }),
    )
    .expect("receiver");
    (r, n)
}

fn connect(r: &Receiver) -> TcpStream {
    let s = TcpStream::connect(r.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// `[tag, <entries as bin>, {chunk, compressed?}]`.
fn packed(entries: &[u8], gzip: bool) -> Vec<u8> {
    let mut f = vec![0x93];
    rmp::encode::write_str(&mut f, "t").expect("test setup");
    rmp::encode::write_bin(&mut f, entries).expect("test setup");
    rmp::encode::write_map_len(&mut f, if gzip { 2 } else { 1 }).expect("test setup");
    rmp::encode::write_str(&mut f, "chunk").expect("test setup");
    rmp::encode::write_str(&mut f, "c1").expect("test setup");
    if gzip {
        rmp::encode::write_str(&mut f, "compressed").expect("test setup");
        rmp::encode::write_str(&mut f, "gzip").expect("test setup");
    }
    f
}

/// A Message-mode event asking for an ack of `chunk`.
fn message(chunk: &str) -> Vec<u8> {
    let mut f = vec![0x94];
    rmp::encode::write_str(&mut f, "t").expect("test setup");
    rmp::encode::write_uint(&mut f, 1_700_000_000).expect("test setup");
    f.extend_from_slice(&[0x81, 0xa1, b'k', 0x01]);
    rmp::encode::write_map_len(&mut f, 1).expect("test setup");
    rmp::encode::write_str(&mut f, "chunk").expect("test setup");
    rmp::encode::write_str(&mut f, chunk).expect("test setup");
    f
}

/// Everything the server sends until it closes.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn issue18_finding4_more_entries_than_the_bound_are_refused_unacked_unstored() {
    let cfg = ServerConfig::default();
    let bound = cfg.max_entries;
    let (r, kept) = receiver(cfg);
    for n in [bound + 1, 1_000_003] {
        let entries: Vec<u8> = [0x92, 0x01, 0x80].repeat(n);
        let mut s = connect(&r);
        s.write_all(&packed(&entries, false)).expect("send");
        assert!(
            read_to_close(&mut s).is_empty(),
            "{n} entries were acknowledged"
        );
    }
    wait_for("two refusals", || r.stats.closed("oversized") == 2);
    assert_eq!(kept.load(Ordering::SeqCst), 0, "the handler was called");
    // At the bound: kept and acknowledged.
    let mut s = connect(&r);
    s.write_all(&packed(&[0x92, 0x01, 0x80].repeat(bound), false))
        .expect("send");
    let mut ack = [0u8; 16];
    let n = s.read(&mut ack).expect("ack");
    assert_eq!(&ack[..n], b"\x81\xa3ack\xa2c1");
    assert_eq!(kept.load(Ordering::SeqCst), bound);
}

#[test]
fn issue18_finding4_gzip_bombs_are_refused_with_bounded_memory() {
    // 0.5 GiB of `[1,{}]` entries in about half a megabyte of gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = [0x92, 0x01, 0x80].repeat(1 << 20);
    for _ in 0..170 {
        gz.write_all(&block).expect("test setup");
    }
    let entries = Arc::new(packed(&gz.finish().expect("test setup"), true));
    assert!(entries.len() < 1 << 20, "{}", entries.len());
    // One entry whose record holds 0.5 GiB of strings of 1 MiB (the window must grow to hold
    // the entry, and stops at the bound).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut head = vec![0x92, 0x01, 0xdf];
    head.extend_from_slice(&512u32.to_be_bytes());
    gz.write_all(&head).expect("test setup");
    let value = vec![b'a'; 1 << 20];
    for i in 0..512u32 {
        let mut kv = vec![0xce];
        kv.extend_from_slice(&i.to_be_bytes());
        kv.push(0xdb);
        kv.extend_from_slice(&(1u32 << 20).to_be_bytes());
        gz.write_all(&kv).expect("test setup");
        gz.write_all(&value).expect("test setup");
    }
    let strings = Arc::new(packed(&gz.finish().expect("test setup"), true));
    assert!(strings.len() < 2 << 20, "{}", strings.len());
    let cfg = ServerConfig::default();
    let total = cfg.max_memory as u64;
    let (r, kept) = receiver(cfg);
    let go = Arc::new(Barrier::new(6));
    let senders: Vec<_> = (0..6)
        .map(|i| {
            let bomb = if i % 2 == 0 { &entries } else { &strings };
            let (bomb, go, mut s) = (bomb.clone(), go.clone(), connect(&r));
            std::thread::spawn(move || {
                go.wait();
                let _ = s.write_all(&bomb);
                read_to_close(&mut s)
            })
        })
        .collect();
    for t in senders {
        assert!(
            t.join().expect("sender").is_empty(),
            "a bomb was acknowledged"
        );
    }
    wait_for("six refusals", || {
        r.stats.closed("oversized") + r.stats.closed("budget") == 6
    });
    assert_eq!(kept.load(Ordering::SeqCst), 0);
    let peak = r.stats.memory_peak_bytes.load(Ordering::SeqCst);
    assert!(peak <= total, "peak {peak} over the budget {total}");
    wait_for("memory given back", || {
        r.stats.memory_bytes.load(Ordering::SeqCst) == 0
    });
}

#[test]
fn issue18_finding4_a_frame_that_never_completes_times_out_and_its_memory_comes_back() {
    let (r, kept) = receiver(ServerConfig {
        frame_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    // A 31 MiB bin entry stream, of which 4 MiB arrive.
    let mut s = connect(&r);
    let mut head = vec![0x92, 0xa1, b't', 0xc6];
    head.extend_from_slice(&(31u32 << 20).to_be_bytes());
    s.write_all(&head).expect("send");
    s.write_all(&vec![0x80; 4 << 20]).expect("send");
    wait_for("the partial frame held", || {
        r.stats.memory_bytes.load(Ordering::SeqCst) >= 4 << 20
    });
    let t = Instant::now();
    assert!(read_to_close(&mut s).is_empty());
    assert!(t.elapsed() < Duration::from_secs(5));
    wait_for("the frame timeout", || r.stats.closed("timeout_frame") == 1);
    wait_for("memory given back", || {
        r.stats.memory_bytes.load(Ordering::SeqCst) == 0
    });
    assert_eq!(kept.load(Ordering::SeqCst), 0);
}

#[test]
fn issue18_finding5_a_trickling_sender_costs_linear_parsing() {
    // A frame claiming a huge entries array, then single bytes (each a `nil`).
    let mut head = vec![0x92, 0xa1, b't', 0xdd];
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    let n = 50_000usize;
    let (mut c, _) = ServerCodec::new(Arc::new(ServerConfig::default()));
    let mut reply = Vec::new();
    let mut keep = |_b: islet_sink::forward::Batch| true;
    c.input(&head, &mut reply, &mut keep).expect("head");
    for _ in 0..n {
        c.input(&[0xc0], &mut reply, &mut keep).expect("byte");
    }
    let fed = (head.len() + n) as u64;
    let (scanned, attempts) = c.scanned();
    assert!(
        scanned <= fed,
        "{scanned} header bytes read for {fed} received"
    );
    assert!(attempts <= fed, "{attempts} parse attempts for {fed} bytes");
    assert_eq!(c.stats().bytes_scanned.load(Ordering::SeqCst), scanned);

    // The same over TCP, one small write at a time: the receiver's counters stay linear.
    let (r, _) = receiver(ServerConfig::default());
    let mut s = connect(&r);
    s.set_nodelay(true).expect("nodelay");
    s.write_all(&head).expect("send");
    for _ in 0..3_000 {
        s.write_all(&[0xc0]).expect("send");
    }
    let sent = (head.len() + 3_000) as u64;
    wait_for("every byte sized", || {
        r.stats.bytes_scanned.load(Ordering::SeqCst) >= sent - 3
    });
    assert!(r.stats.bytes_scanned.load(Ordering::SeqCst) <= sent);
    assert!(r.stats.parse_attempts.load(Ordering::SeqCst) <= sent);
}

/// Send `frame` from the source address `src` (a second loopback peer) and return the reply.
fn from_peer(src: &str, port: u16, frame: &[u8]) -> Vec<u8> {
    let script = r#"
import socket, sys
s = socket.socket(); s.settimeout(10)
s.bind((sys.argv[1], 0)); s.connect(('127.0.0.1', int(sys.argv[2])))
s.sendall(bytes.fromhex(sys.argv[3]))
got = b''
try:
    while len(got) < 8:
        b = s.recv(64)
        if not b: break
        got += b
except socket.timeout:
    pass
print(got.hex())
"#;
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let o = Command::new("python3")
        .args(["-c", script, src, &port.to_string(), &hex])
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    (0..out.trim().len() / 2)
        .map(|i| u8::from_str_radix(&out.trim()[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn ack_of(chunk: &str) -> Vec<u8> {
    let mut a = vec![0x81];
    rmp::encode::write_str(&mut a, "ack").expect("test setup");
    rmp::encode::write_str(&mut a, chunk).expect("test setup");
    a
}

#[test]
fn issue18_per_peer_cap_refuses_the_next_connection_while_another_peer_gets_in() {
    let (r, kept) = receiver(ServerConfig {
        max_connections_per_peer: 4,
        evict_after: None,
        ..ServerConfig::default()
    });
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = connect(&r);
        let chunk = format!("c{i}");
        s.write_all(&message(&chunk)).expect("send");
        let mut a = [0u8; 32];
        let n = s.read(&mut a).expect("ack");
        assert_eq!(a[..n], ack_of(&chunk)[..]);
        held.push(s);
    }
    let mut fifth = connect(&r);
    let _ = fifth.write_all(&message("c5"));
    assert!(read_to_close(&mut fifth).is_empty(), "the fifth was served");
    assert_eq!(r.stats.admission.refused_per_peer.load(Ordering::SeqCst), 1);
    // Another peer address is not held back by the first one's cap.
    let got = from_peer("127.0.0.2", r.local_addr().port(), &message("other"));
    assert_eq!(got, ack_of("other"));
    assert_eq!(kept.load(Ordering::SeqCst), 5);
    drop(held);
}

#[test]
fn issue18_silent_connections_give_way_to_a_new_one_at_the_cap() {
    let (r, kept) = receiver(ServerConfig {
        max_connections_per_peer: 8,
        evict_after: Some(Duration::from_millis(50)),
        ..ServerConfig::default()
    });
    let mut silent: Vec<_> = (0..8).map(|_| connect(&r)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let mut s = connect(&r);
    s.write_all(&message("fresh")).expect("send");
    let mut a = [0u8; 32];
    let n = s.read(&mut a).expect("ack");
    assert_eq!(a[..n], ack_of("fresh")[..]);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(r.stats.admission.evicted.load(Ordering::SeqCst), 1);
    // The oldest silent one was closed.
    assert!(read_to_close(&mut silent[0]).is_empty());
    assert_eq!(kept.load(Ordering::SeqCst), 1);
}

#[test]
fn issue18_a_silent_connection_times_out_in_the_handshake() {
    let (r, _) = receiver(ServerConfig {
        shared_key: Some("k".into()),
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    });
    let mut s = connect(&r);
    let t = Instant::now();
    let helo = read_to_close(&mut s);
    assert!(helo.starts_with(&[0x92, 0xa4, b'H', b'E', b'L', b'O']));
    assert!(t.elapsed() < Duration::from_secs(5));
    wait_for("the handshake timeout", || {
        r.stats.closed("timeout_handshake") == 1
    });
    let mut m = String::new();
    r.stats.render("islet_forward_receiver", &mut m);
    assert!(
        m.contains("islet_forward_receiver_closed_total{reason=\"timeout_handshake\"} 1"),
        "{m}"
    );
}
