//! The Forward server codec against an independent client: Python's `fluent-logger` (Message
//! mode, EventTime and integer times) and frames built with Python's `msgpack` for the other
//! modes (Forward; PackedForward with entries as bin and as str; CompressedPackedForward with
//! two gzip members; `compressed: "text"`), each asking for an ack that must come back equal,
//! and a malformed frame that closes only its own connection.

use std::process::Command;
use std::sync::{Arc, Mutex};

use islet_sink::forward::{Event, Receiver, ServerConfig};

const SCRIPT: &str = r#"
import gzip, socket, sys, time
import msgpack
from fluent import sender

port = int(sys.argv[1])
# Fail, never hang, if the receiver does not answer.
socket.setdefaulttimeout(10)
def step(s):
    print(s, file=sys.stderr, flush=True)
step('fluent-logger')
# 1. The real client, Message mode, nanosecond EventTime and integer seconds.
s = sender.FluentSender('py', host='127.0.0.1', port=port, nanosecond_precision=True)
assert s.emit_with_time('ns', 1700000000.123456789, {'n': 1, 'who': 'caf\u00e9'}), s.last_error
s.close()
s = sender.FluentSender('py', host='127.0.0.1', port=port)
assert s.emit_with_time('int', 1700000001, {'n': 2}), s.last_error
s.close()

def et(sec, nsec):
    return msgpack.ExtType(0, sec.to_bytes(4, 'big') + nsec.to_bytes(4, 'big'))

def send(frame, chunk):
    c = socket.create_connection(('127.0.0.1', port))
    c.sendall(msgpack.packb(frame, use_bin_type=True))
    u = msgpack.Unpacker(raw=False)
    while True:
        b = c.recv(4096)
        assert b, 'closed without ack'
        u.feed(b)
        for m in u:
            assert m == {'ack': chunk}, m
            c.close()
            return

entries = lambda k: b''.join(msgpack.packb([et(1700000002, i), {'n': k + i}], use_bin_type=True) for i in range(3))
step('forward')
# 2. Forward mode.
send(['fw', [[et(1700000002, 0), {'n': 10}], [1700000002, {'n': 11}]], {'chunk': 'c-forward'}], 'c-forward')
step('packed')
# 3. PackedForward, entries as bin, then as str (old clients), then compressed: text.
send(['pk', entries(20), {'chunk': 'c-bin', 'size': 3}], 'c-bin')
packed_str = msgpack.packb(['pk', 0, {'chunk': 'c-str'}], use_bin_type=True)
c = socket.create_connection(('127.0.0.1', port))
# Hand-build [tag, str(entries), option]: msgpack-python would write bin for bytes.
e = entries(30)
frame = b'\x93' + msgpack.packb('pks') + b'\xdb' + len(e).to_bytes(4, 'big') + e + msgpack.packb({'chunk': 'c-str'})
c.sendall(frame)
assert msgpack.unpackb(c.recv(4096), raw=False) == {'ack': 'c-str'}
c.close()
send(['pkt', entries(40), {'chunk': 'c-text', 'compressed': 'text'}], 'c-text')
step('gzip')
# 4. CompressedPackedForward with two gzip members.
gz = gzip.compress(entries(50)) + gzip.compress(entries(60))
send(['gz', gz, {'chunk': 'c-gzip', 'size': 6, 'compressed': 'gzip'}], 'c-gzip')
step('malformed')
# 5. A malformed frame: the connection is closed, nothing acknowledged.
c = socket.create_connection(('127.0.0.1', port))
c.sendall(b'\x93\xa2xx\xc1')
assert c.recv(4096) == b''
c.close()
step('after')
# 6. ... and the next connection works.
send(['after', [[1700000003, {'n': 99}]], {'chunk': b'bin-chunk'}], b'bin-chunk')
print('ok')
"#;

#[test]
fn server_codec_takes_what_python_fluent_logger_and_msgpack_send() {
    if !islet_testkit::tool_or_skip("fluent_logger", "python3") {
        return;
    }
    let probe = Command::new("python3")
        .args(["-c", "import fluent.sender, msgpack"])
        .status()
        .expect("python3");
    if !probe.success() {
        if std::env::var("ISLET_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("python3-fluent-logger is required (ISLET_REQUIRE_TOOLS=1)");
        }
        eprintln!("SKIP fluent_logger: python3 fluent-logger/msgpack not installed");
        return;
    }
    let got: Arc<Mutex<Vec<Event>>> = Arc::default();
    let g = got.clone();
    let r = Receiver::start(
        "127.0.0.1:0",
        ServerConfig::default(),
        None,
        Arc::new(move |b| {
            g.lock().unwrap().extend(b.events.iter().cloned());
            true
        }),
    )
    .unwrap();
    let port = r.local_addr().port().to_string();
    let o = Command::new("python3")
        .args(["-c", SCRIPT, &port])
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(r.stats.closed("malformed"), 1);
    r.stop();
    let got = got.lock().unwrap();
    let find = |tag: &str| -> Vec<&Event> { got.iter().filter(|e| e.tag == tag).collect() };
    let ns = find("py.ns");
    assert_eq!(ns.len(), 1);
    // The client takes a float; its EventTime is within a microsecond of it.
    assert!(
        ns[0].time_ns.abs_diff(1_700_000_000_123_456_789) < 1_000,
        "{}",
        ns[0].time_ns
    );
    let mut json = Vec::new();
    islet_sink::msgpack::to_json(&ns[0].record, &mut json).unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"n":1,"who":"caf\u00e9"}"#
    );
    assert_eq!(find("py.int")[0].time_ns, 1_700_000_001_000_000_000);
    assert_eq!(find("fw").len(), 2);
    assert_eq!(find("pk").len(), 3);
    assert_eq!(find("pks").len(), 3);
    assert_eq!(find("pkt").len(), 3);
    let gz = find("gz");
    assert_eq!(gz.len(), 6);
    assert_eq!(gz[5].record.as_map().unwrap()[0].1.as_u64(), Some(62));
    assert_eq!(gz[2].time_ns, 1_700_000_002_000_000_002);
    assert_eq!(find("after").len(), 1);
}
