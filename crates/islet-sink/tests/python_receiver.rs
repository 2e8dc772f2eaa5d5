//! The Forward client against an independent decoder: a receiver written with Python's
//! `msgpack` (the library fluent-logger uses) does the shared-key handshake from the protocol
//! description, decodes islet's frames in each mode (Forward, PackedForward, gzip
//! CompressedPackedForward), reads the EventTime extension and answers acks; every record
//! arrives with its fields and time.

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use islet_sink::forward::{ForwardConfig, Forwarder, Mode};

const SERVER: &str = r#"
import gzip, hashlib, json, os, socket, sys
import msgpack

KEY = 'py-key'
socket.setdefaulttimeout(20)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(8)
print(srv.getsockname()[1], flush=True)
out = []
def ext_hook(code, data):
    assert code == 0 and len(data) == 8, (code, data)
    return int.from_bytes(data[:4], 'big') * 10**9 + int.from_bytes(data[4:], 'big')
want = int(sys.argv[1])
while len(out) < want:
    c, _ = srv.accept()
    nonce = os.urandom(16)
    c.sendall(msgpack.packb(['HELO', {'nonce': nonce, 'auth': b'', 'keepalive': True}], use_bin_type=True))
    u = msgpack.Unpacker(raw=False, ext_hook=ext_hook, max_buffer_size=64 << 20)
    authed = False
    while len(out) < want:
        b = c.recv(1 << 20)
        if not b:
            break
        u.feed(b)
        for m in u:
            if not authed:
                assert m[0] == 'PING', m
                _, host, salt, digest, _, _ = m
                salt = salt.encode() if isinstance(salt, str) else salt
                ok = hashlib.sha512(salt + host.encode() + nonce + KEY.encode()).hexdigest() == digest
                mine = hashlib.sha512(salt + b'pyserver' + nonce + KEY.encode()).hexdigest()
                c.sendall(msgpack.packb(['PONG', ok, '' if ok else 'shared_key mismatch', 'pyserver', mine], use_bin_type=True))
                assert ok
                authed = True
                continue
            tag, entries, opt = m
            if isinstance(entries, (bytes, str)):
                data = entries.encode() if isinstance(entries, str) else entries
                if opt.get('compressed') == 'gzip':
                    data = gzip.decompress(data)
                uu = msgpack.Unpacker(raw=False, ext_hook=ext_hook); uu.feed(data); entries = list(uu)
            assert opt['size'] == len(entries), (opt, len(entries))
            for t, rec in entries:
                out.append({'tag': tag, 'time': t, 'rec': rec})
            c.sendall(msgpack.packb({'ack': opt['chunk']}, use_bin_type=True))
    c.close()
json.dump(out, sys.stdout)
"#;

fn records(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        writeln!(
            b,
            r#"{{"timestamp":"2024-03-01T10:00:{:02}.250000+0000","event_type":"dns","n":{i},"f":0.5,"name":"caf\u00e9","islet":{{"seq":{},"prev":"{}"}}}}"#,
            i % 60,
            i + 1,
            "00".repeat(32)
        )
        .expect("write");
    }
    b
}

#[test]
fn a_python_msgpack_receiver_decodes_every_mode() {
    if !islet_testkit::tool_or_skip("python_receiver", "python3") {
        return;
    }
    if !Command::new("python3")
        .args(["-c", "import msgpack"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert_ne!(
            std::env::var("ISLET_REQUIRE_TOOLS").as_deref(),
            Ok("1"),
            "python3-msgpack is required"
        );
        eprintln!("SKIP python_receiver: python3 msgpack not installed");
        return;
    }
    for mode in [
        Mode::Forward,
        Mode::PackedForward,
        Mode::CompressedPackedForward,
    ] {
        const N: usize = 2500;
        let mut py = Command::new("python3")
            .args(["-c", SERVER, &N.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut stdout = std::io::BufReader::new(py.stdout.take().expect("stdout"));
        let mut port = String::new();
        stdout.read_line(&mut port).expect("port");
        let f = Forwarder::start(
            ForwardConfig {
                servers: vec![format!("127.0.0.1:{}", port.trim())],
                mode,
                shared_key: Some("py-key".into()),
                self_hostname: "sensor".into(),
                batch_events: 1000,
                shutdown_timeout: Duration::from_secs(30),
                ..ForwardConfig::default()
            },
            None,
            "s",
        )
        .expect("forwarder");
        f.offer(&records(N));
        let rep = f.close();
        assert_eq!(rep.delivered, N as u64, "{mode:?}");
        let mut json = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut json).expect("output");
        assert!(py.wait().expect("wait").success());
        let got: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
        assert_eq!(got.len(), N, "{mode:?}");
        let r = &got[61];
        assert_eq!(r["tag"], "islet.eve");
        assert_eq!(r["time"], 1_709_287_201_250_000_000u64, "{mode:?}");
        assert_eq!(r["rec"]["n"], 61);
        assert_eq!(r["rec"]["f"], 0.5);
        assert_eq!(r["rec"]["name"], "caf\u{e9}");
        assert_eq!(r["rec"]["islet"]["seq"], 62);
    }
}
