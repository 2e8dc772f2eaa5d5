//! Properties of the record codecs and the chain: any string islet's encoder writes survives
//! JSON → MessagePack → JSON byte for byte; the Forward server codec never panics and decodes
//! what the client frames, whatever the split; a sealed log verifies, and any single edit of it
//! is caught.

use std::sync::Arc;

use islet_sink::chain::{ChainConfig, Sealer};
use islet_sink::forward::proto::{Mode, frame, write_event_time};
use islet_sink::forward::{ServerCodec, ServerConfig};
use islet_sink::verify::{Verify, Walker};
use proptest::prelude::*;

fn record(s: &[u8], n: i64, f: f64) -> Vec<u8> {
    let mut j = Vec::new();
    j.extend_from_slice(b"{\"timestamp\":\"2024-01-01T00:00:00.000000+0000\",\"s\":");
    islet_event::json::escape(&mut j, s);
    j.extend_from_slice(format!(",\"n\":{n},\"f\":").as_bytes());
    let f = if f == 0.0 { 0.0 } else { f };
    j.extend_from_slice(f.to_string().as_bytes());
    j.extend_from_slice(b",\"a\":[1,{\"x\":null}]}");
    j
}

proptest! {
    #[test]
    fn records_survive_msgpack_byte_for_byte(s in proptest::collection::vec(any::<u8>(), 0..200), n in any::<i64>(), f in -1e300f64..1e300) {
        let j = record(&s, n, f);
        let mut m = Vec::new();
        islet_sink::msgpack::from_json(&j, &mut m).unwrap();
        let v = rmpv::decode::read_value(&mut &m[..]).unwrap();
        let mut back = Vec::new();
        islet_sink::msgpack::to_json(&v, &mut back).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&back), String::from_utf8_lossy(&j));
    }

    #[test]
    fn server_codec_survives_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000), cut in any::<usize>()) {
        let (mut c, _) = ServerCodec::new(Arc::new(ServerConfig { max_message: 4096, ..ServerConfig::default() }));
        let cut = cut % (data.len() + 1);
        let mut reply = Vec::new();
        let mut keep = |_b: islet_sink::forward::Batch| true;
        if c.input(&data[..cut], &mut reply, &mut keep).is_ok() {
            let _ = c.input(&data[cut..], &mut reply, &mut keep);
        }
    }

    #[test]
    fn framed_entries_decode_whatever_the_split(n in 1usize..50, mode in 0u8..3, cut in any::<usize>()) {
        let mut entries = Vec::new();
        for i in 0..n {
            entries.push(0x92);
            write_event_time(&mut entries, 1_700_000_000_000_000_000 + i as u64);
            islet_sink::msgpack::from_json(&record(format!("r{i}").as_bytes(), i as i64, 0.5), &mut entries).unwrap();
        }
        let mode = [Mode::Forward, Mode::PackedForward, Mode::CompressedPackedForward][mode as usize];
        let mut f = Vec::new();
        frame(mode, "t", &entries, n, "chunk-1", &mut f).unwrap();
        let (mut c, _) = ServerCodec::new(Arc::new(ServerConfig::default()));
        let cut = cut % (f.len() + 1);
        let mut got = Vec::new();
        let mut reply = Vec::new();
        let mut keep = |b: islet_sink::forward::Batch| { got.extend(b.events); true };
        c.input(&f[..cut], &mut reply, &mut keep).unwrap();
        c.input(&f[cut..], &mut reply, &mut keep).unwrap();
        prop_assert_eq!(got.len(), n);
        prop_assert_eq!(got[n - 1].time_ns, 1_700_000_000_000_000_000 + n as u64 - 1);
        let ack = rmpv::decode::read_value(&mut &reply[..]).unwrap();
        prop_assert_eq!(ack.as_map().unwrap()[0].1.as_str(), Some("chunk-1"));
    }

    #[test]
    fn any_single_edit_of_a_sealed_log_is_caught(n in 5usize..60, victim in any::<usize>(), how in 0u8..3) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut s = Sealer::new(ChainConfig { checkpoint_every: 7, ..ChainConfig::default() }, Some(key.clone()));
        let mut out = Vec::new();
        for i in 0..n {
            let mut r = record(format!("v{i}").as_bytes(), i as i64, 1.5);
            r.push(b'\n');
            s.seal_lines(&r, &mut out);
        }
        s.checkpoint(true, &mut out);
        let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
        let opts = Verify { key: key.verifying_key(), partial: false };
        let run = |lines: &[Vec<u8>]| {
            let mut w = Walker::new(opts.clone());
            for (i, l) in lines.iter().enumerate() {
                w.line("p", i as u64 + 1, l)?;
            }
            w.end()
        };
        prop_assert!(run(&lines).is_ok());
        let v = victim % lines.len();
        match how {
            0 => {
                // Change one digit of the record's `n` (or of a checkpoint's first_seq).
                let l = &mut lines[v];
                let at = l.iter().position(u8::is_ascii_digit).unwrap();
                l[at] = if l[at] == b'9' { b'8' } else { l[at] + 1 };
            }
            1 => { lines.remove(v); }
            _ => {
                let w = (v + 1) % lines.len();
                if w == v { lines.remove(v); } else { lines.swap(v, w); }
            }
        }
        prop_assert!(run(&lines).is_err());
    }
}
