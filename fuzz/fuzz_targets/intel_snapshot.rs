//! A damaged snapshot image: a valid image of every indicator kind with the input's
//! (offset, xor) pairs applied — or the input itself when it starts like an image — loaded
//! without its CRC check (so the structural checks and the lookups are what is exercised),
//! then decoded and searched.
#![no_main]
use islet_intel::{Importer, Snapshot};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const DOC: &str = r#"{"Event": {"uuid": "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "info": "fuzz",
 "threat_level_id": "2", "Tag": [{"name": "tlp:green"}], "Attribute": [
 {"type": "ip-dst", "value": "192.0.2.1", "to_ids": true},
 {"type": "ip-src", "value": "198.51.100.0/24", "to_ids": "1"},
 {"type": "ip-dst|port", "value": "203.0.113.5|443", "to_ids": true},
 {"type": "ip-dst", "value": "2001:db8::/32", "to_ids": true},
 {"type": "domain", "value": "evil.example", "to_ids": true, "Tag": [{"name": "c2"}]},
 {"type": "hostname", "value": "host.evil.example", "to_ids": false},
 {"type": "domain|ip", "value": "dip.example|192.0.2.9", "to_ids": true},
 {"type": "url", "value": "http://evil.example/a?b=c", "to_ids": true},
 {"type": "uri", "value": "/gate.php", "to_ids": true},
 {"type": "ja3-fingerprint-md5", "value": "e7d705a3286e19ea42f587b344ee6865", "to_ids": true},
 {"type": "user-agent", "value": "EvilBot/1.0", "to_ids": true},
 {"type": "x509-fingerprint-sha1", "value": "0123456789abcdef0123456789abcdef01234567", "to_ids": true}
]}}"#;

fn base() -> &'static [u8] {
    static IMG: OnceLock<Vec<u8>> = OnceLock::new();
    IMG.get_or_init(|| {
        let mut imp = Importer::new(Vec::new());
        imp.add_bytes("doc", DOC.as_bytes());
        let mut v = Vec::new();
        let _ = imp.finish().0.write_to(&mut v);
        v
    })
}

fuzz_target!(|data: &[u8]| {
    let img = if Snapshot::is_image(data) {
        data.to_vec()
    } else {
        let mut v = base().to_vec();
        for c in data.chunks_exact(5) {
            let at = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize % v.len();
            v[at] ^= c[4];
        }
        v
    };
    let Ok(s) = Snapshot::from_bytes_unverified(img) else {
        return;
    };
    let values: Vec<String> = s.iter().map(|i| i.value).collect();
    for v in &values {
        let _ = s.check(v);
    }
    for c in 0..s.context_count().min(64) as u32 {
        let _ = s.context_at(c);
    }
    let mut out = Vec::new();
    for a in ["192.0.2.1", "198.51.100.7", "203.0.113.5", "2001:db8::1", "10.0.0.1"] {
        let ip = a.parse().expect("address");
        s.match_flow(ip, 443, ip, 443, &mut out);
        s.match_domain_ip("dip.example", ip, &mut out);
    }
    s.match_name("a.host.evil.example", &mut out);
    s.match_http(Some("Evil.Example"), 80, "/a?b=c", &mut out);
    for i in out {
        let _ = (s.indicator(i), s.context(i));
    }
});
