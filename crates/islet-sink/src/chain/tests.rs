//! Unit tests of the chain: splicing, times, whole-record signatures.
use super::*;

#[test]
fn splice_adds_to_the_last_islet_object_or_a_new_one() {
    let p = [0xab; 32];
    let h = "ab".repeat(32);
    let mut o = Vec::new();
    splice(br#"{"a":1,"islet":{"x":2}}"#, 7, &p, &mut o);
    assert_eq!(
        String::from_utf8(o).unwrap(),
        format!(r#"{{"a":1,"islet":{{"x":2,"seq":7,"prev":"{h}"}}}}"#)
    );
    let mut o = Vec::new();
    splice(br#"{"a":{"b":1}}"#, 1, &p, &mut o);
    assert_eq!(
        String::from_utf8(o).unwrap(),
        format!(r#"{{"a":{{"b":1}},"islet":{{"seq":1,"prev":"{h}"}}}}"#)
    );
    let mut o = Vec::new();
    splice(br#"{"a":1,"unmapped":{"islet":{},"z":[1]}}"#, 3, &p, &mut o);
    assert_eq!(
        String::from_utf8(o).unwrap(),
        format!(r#"{{"a":1,"unmapped":{{"islet":{{"seq":3,"prev":"{h}"}},"z":[1]}}}}"#)
    );
    let mut o = Vec::new();
    splice(b"{\t}", 4, &p, &mut o);
    assert_eq!(seq(&o), Some(4));
    let mut o = Vec::new();
    splice(b"{ \"islet\" :{ } }", 5, &p, &mut o);
    assert_eq!(seq(&o), Some(5));
    let mut o = Vec::new();
    splice(br#"{"s":"\",\"islet\":{x"}"#, 2, &p, &mut o);
    assert_eq!(seq(&o), Some(2));
}

/// A spliced record's `islet.seq` (a record may now hold two `islet` members: the last counts).
fn seq(line: &[u8]) -> Option<u64> {
    Sealed::read(line).ok()?.seq
}

fn sealed_log(key: &SigningKey, n: usize) -> Vec<Vec<u8>> {
    let cfg = ChainConfig {
        sensor: "unit-7".into(),
        checkpoint_every: 4,
        checkpoint_interval_ns: 0,
    };
    let mut s = Sealer::new(cfg, Some(key.clone()));
    let mut out = Vec::new();
    for i in 0..n {
        let line = format!(
            r#"{{"timestamp":"2024-03-01T10:00:0{}.000000+0000","event_type":"flow","n":{i}}}"#,
            i % 10
        );
        s.seal(line.as_bytes(), &mut out);
    }
    s.checkpoint(true, &mut out);
    out.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Issue 18, finding 7: only the signed fields of a checkpoint were covered, so a field
/// added to the final checkpoint, or a space, still verified.
#[test]
fn finding_7_a_checkpoint_signature_covers_every_byte_of_the_record() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let pk = key.verifying_key();
    let log = sealed_log(&key, 9);
    let last = log.last().cloned().unwrap_or_default();
    let text = String::from_utf8(last.clone()).unwrap_or_default();
    assert!(text.contains("\"final\":true"), "{text}");
    assert_eq!(verify_record(&last, &pk), Ok(()));
    let edits = [
        text.replacen("\"final\":true", "\"final\":true,\"note\":\"x\"", 1),
        text.replacen("\"final\":true", "\"final\": true", 1),
        text.replacen("{\"timestamp\"", "{ \"timestamp\"", 1),
        format!("{text} "),
        text.replacen("\"unit-7\"", "\"unit-8\"", 1),
        text.replacen(",\"islet\":{", ",\"extra\":1,\"islet\":{", 1),
    ];
    for e in &edits {
        assert_ne!(e, &text);
        assert_eq!(
            verify_record(e.as_bytes(), &pk),
            Err(SigError::Mismatch),
            "{e}"
        );
    }
    // Every single byte outside the signature's value matters.
    let sig_at = memchr::memmem::find(&last, SIGNATURE_KEY).unwrap_or(0) + SIGNATURE_KEY.len();
    let sig_end = sig_at + memchr::memchr(b'"', &last[sig_at..]).unwrap_or(0);
    for i in (0..last.len()).filter(|&i| i < sig_at || i >= sig_end) {
        let mut b = last.clone();
        b[i] ^= 0x01;
        assert!(
            verify_record(&b, &pk).is_err(),
            "byte {i} changed and still verifies"
        );
    }
    // A second signature field is refused, as is a record without one.
    let two = text.replacen("\"final\":true", "\"final\":true,\"signature\":\"AAAA\"", 1);
    assert_eq!(verify_record(two.as_bytes(), &pk), Err(SigError::Ambiguous));
    assert_eq!(verify_record(&log[0], &pk), Err(SigError::NotSigned));
    // Another key does not verify it.
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(verify_record(&last, &other), Err(SigError::Mismatch));
}

#[test]
fn finding_7_a_gap_record_is_signed_whole_too() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut out = Vec::new();
    gap_record(
        "unit-7",
        Some(&key),
        b"2024-03-01T10:00:00.000000+0000",
        11,
        13,
        &[1; 32],
        &[2; 32],
        "buffer full",
        &mut out,
    );
    assert_eq!(out.last(), Some(&b'\n'));
    let line = &out[..out.len() - 1];
    let r = EveRecord::decode(line).unwrap_or_default();
    assert_eq!(r.gap.and_then(|g| g.count), Some(3));
    assert_eq!(r.islet.and_then(|i| i.seq), Some(11));
    assert_eq!(verify_record(line, &key.verifying_key()), Ok(()));
    let text = String::from_utf8_lossy(line).replacen("\"count\":3", "\"count\":2", 1);
    assert_eq!(
        verify_record(text.as_bytes(), &key.verifying_key()),
        Err(SigError::Mismatch)
    );
}

/// Every record of a sealed log links to the one before; its checkpoints verify.
#[test]
fn sealed_checkpoints_link_and_verify() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let log = sealed_log(&key, 10);
    let mut prev = GENESIS;
    for (i, l) in log.iter().enumerate() {
        let r = EveRecord::decode(l).unwrap_or_default();
        assert_eq!(r.seq(), Some(i as u64 + 1));
        assert_eq!(r.prev(), Some(prev));
        if r.event_type == "checkpoint" {
            assert_eq!(verify_record(l, &key.verifying_key()), Ok(()));
        }
        prev = Sha256::digest(l).into();
    }
}

#[test]
fn hex64_is_lowercase_hex() {
    let h: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
    assert_eq!(hex64(&h).to_vec(), hex::encode(h).into_bytes());
}

#[test]
fn ocsf_time_is_found() {
    assert_eq!(
        record_time_ns(br#"{"activity_id":1,"time":1700000000123,"type_uid":5}"#),
        Some(1_700_000_000_123_000_000)
    );
}

#[test]
fn iso_times_parse() {
    assert_eq!(
        parse_iso_ns(b"1970-01-01T00:00:01.500000+0000"),
        Some(1_500_000_000)
    );
    assert_eq!(
        parse_iso_ns(b"2020-02-29T12:00:00.000000+0100"),
        Some(1_582_974_000_000_000_000)
    );
}
