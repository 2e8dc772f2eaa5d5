use super::*;

/// A flow as islet's writer emits it reads back member by member.
#[test]
fn a_written_flow_reads_back() {
    let line = br#"{"timestamp":"2026-01-06T10:10:00.004000+0000","flow_id":1234,"event_type":"flow","src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","dest_port":443,"proto":"TCP","app_proto":"tls","community_id":"1:abc=","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":300,"bytes_toclient":200,"start":"2026-01-06T10:10:00.004000+0000","end":"2026-01-06T10:10:01.000000+0000","age":1,"state":"closed","reason":"timeout","alerted":true},"tcp":{"tcp_flags":"1b","syn":true,"rst":true,"state":"closed"},"islet":{"policy":{"verdict":"deny","action":"drop","src_identity":"prod/web","dest_identity":"world","bundle_version":3},"seq":7,"prev":"00000000000000000000000000000000000000000000000000000000000000ff"}}"#;
    let r = EveRecord::decode(line).expect("decodes");
    assert_eq!(r.event_type, "flow");
    assert_eq!(r.flow_id, Some(1234));
    assert_eq!(r.dest_port, Some(443));
    let f = r.flow.as_ref().expect("flow");
    assert_eq!((f.pkts(), f.bytes(), f.alerted), (5, 500, true));
    assert!(r.tcp.as_ref().expect("tcp").rst);
    assert_eq!(r.verdict().and_then(|p| p.verdict.as_deref()), Some("deny"));
    assert_eq!(r.seq(), Some(7));
    assert_eq!(r.prev().expect("prev")[31], 0xff);
    assert_eq!(r.ts_ms(), Some(1_767_694_200_004));
}

/// A member of an unexpected type reads as absent; the rest of the record still reads.
#[test]
fn a_member_of_another_type_is_absent_not_fatal() {
    let line = br#"{"event_type":"alert","flow_id":"12","src_ip":5,"dest_port":-1,"dns":"x","alert":{"signature_id":"9","signature":"s","metadata":{"detection":"syn_flood","path":["a",1,"b"],"odd":{"x":1}}},"islet":{"intel":{"threat_level_id":"2","tags":["t1",{"x":[1,2]}],"value":"evil.example"}},"tls":{"sni":"a.example","ja3":"not-an-object"}}"#;
    let r = EveRecord::decode(line).expect("decodes");
    assert_eq!(r.flow_id, None);
    assert_eq!(r.src_ip, None);
    assert_eq!(r.dest_port, None);
    assert!(r.dns.is_none());
    let a = r.alert.as_ref().expect("alert");
    assert_eq!(a.signature_id, None);
    assert_eq!(a.metadata.detection(), Some("syn_flood"));
    assert_eq!(a.metadata.path(), ["a", "b"]);
    assert!(a.metadata.get("odd").is_empty());
    let i = r.intel().expect("intel");
    assert_eq!(i.threat_level_id, None);
    assert_eq!(i.tags, ["t1"]);
    assert_eq!(i.value.as_deref(), Some("evil.example"));
    let t = r.tls.as_ref().expect("tls");
    assert_eq!(t.sni.as_deref(), Some("a.example"));
    assert!(t.ja3.is_none());
}

/// Only a line that is not a JSON object is refused.
#[test]
fn only_non_objects_are_refused() {
    for bad in [&b"[1,2]"[..], b"\"x\"", b"{\"a\":", b"", b"null"] {
        assert!(EveRecord::decode(bad).is_err(), "{:?}", bad);
    }
    assert!(EveRecord::decode(b"{}").is_ok());
    // Invalid UTF-8 in a member no consumer reads (serde_json would skip it unchecked).
    assert!(matches!(
        EveRecord::decode(b"{\"ssh\":{\"v\":\"Open\x97SSH\"}}"),
        Err(DecodeError::NotUtf8)
    ));
}

/// A stats record's body is kept as written and its counters read from it.
#[test]
fn stats_are_kept_as_written_and_summed() {
    let line = br#"{"event_type":"stats","stats":{"uptime":10,"capture":{"kernel_drops":2},"output":{"events":{"flow":90,"dns":10},"drops":{"decode":1,"sink":3}},"protection":{"protected_pkts_per_cpu_second":5.5}}}"#;
    let r = EveRecord::decode(line).expect("decodes");
    let body = r.stats.as_ref().expect("stats").get();
    assert!(body.starts_with("{\"uptime\":10,"));
    let s = r.stats_summary().expect("summary");
    assert_eq!((s.drops, s.events), (6, 100));
    assert_eq!(s.uptime_s, Some(10.0));
    assert_eq!(s.protected_pkts_per_cpu_second, Some(5.5));
}

/// Names on a record: DNS queries and the record's own name, SNI, Host.
#[test]
fn names_are_taken_from_dns_tls_and_http() {
    let r = EveRecord::decode(
        br#"{"event_type":"dns","dns":{"type":"query","rrname":"a.example","queries":[{"rrname":"b.example"}]},"http":{"hostname":"c.example"},"quic":{"sni":"d.example"}}"#,
    )
    .expect("decodes");
    let n = r.names();
    assert_eq!(
        n,
        [
            ("a.example", "dns"),
            ("b.example", "dns"),
            ("d.example", "tls"),
            ("c.example", "http")
        ]
    );
}

#[test]
fn hex32_takes_exactly_64_hex_digits() {
    assert_eq!(hex32(&"ab".repeat(32)), Some([0xab; 32]));
    assert_eq!(hex32(&"ab".repeat(31)), None);
    assert_eq!(hex32(&"zz".repeat(32)), None);
}

/// The signed chain records carry the signing key's id; HTTP its referrer.
#[test]
fn gap_checkpoint_key_id_and_http_referrer_read() {
    let gap = EveRecord::decode(
        br#"{"event_type":"gap","gap":{"sensor":"s","first_seq":3,"last_seq":5,"count":3,"reason":"r","resume_prev":"ab","key_id":"0011","signature":""}}"#,
    )
    .expect("decodes");
    let g = gap.gap.as_ref().expect("gap");
    assert_eq!(
        (g.first_seq, g.last_seq, g.count),
        (Some(3), Some(5), Some(3))
    );
    assert_eq!(g.key_id.as_deref(), Some("0011"));
    let cp = EveRecord::decode(
        br#"{"event_type":"checkpoint","checkpoint":{"first_seq":1,"last_seq":9,"final":true,"key_id":"22"}}"#,
    )
    .expect("decodes");
    let c = cp.checkpoint.as_ref().expect("checkpoint");
    assert_eq!((c.is_final, c.key_id.as_deref()), (Some(true), Some("22")));
    let h = EveRecord::decode(br#"{"http":{"http_refer":"http://a.example/"}}"#).expect("decodes");
    assert_eq!(
        h.http.and_then(|h| h.http_refer).as_deref(),
        Some("http://a.example/")
    );
}

/// The members as written beside the typed reading: `islet` apart, the place members the
/// typed reading took left out, one of another type kept.
#[test]
fn members_as_written_leave_out_only_what_was_read() {
    let line = br#"{"timestamp":"2026-01-06T10:10:00.004000+0000","flow_id":7,"event_type":"tls","src_ip":"10.0.0.1","src_port":"40000","dest_ip":"10.0.0.2","dest_port":443,"proto":"TCP","tls":{"sni":"a.example"},"islet":5,"n":1.5}"#;
    let (r, m) = EveRecord::decode_with_members(line).expect("decodes");
    let plain = EveRecord::decode(line).expect("decodes");
    assert_eq!(r.event_type, plain.event_type);
    assert_eq!((r.flow_id, r.src_port), (Some(7), None));
    assert_eq!(r.tls.and_then(|t| t.sni).as_deref(), Some("a.example"));
    assert_eq!(m.islet, Some(Value::from(5)));
    let names: Vec<&str> = m.rest.keys().map(String::as_str).collect();
    assert_eq!(names, ["n", "src_port", "tls"]);
    let (st, _) = EveRecord::decode_with_members(
        br#"{"event_type":"stats","stats":{"output":{"events":{"flow":4}}}}"#,
    )
    .expect("decodes");
    assert_eq!(st.stats_summary().map(|s| s.events), Some(4));
    assert!(EveRecord::decode_with_members(b"[1]").is_err());
    assert!(EveRecord::decode_with_members(b"{\"a\":").is_err());
}

/// The peeked type is the top-level member's, as the decoded record has it.
#[test]
fn peek_event_type_reads_the_top_level_member() {
    for (line, want) in [
        (
            &br#"{"timestamp":"t","event_type":"flow","flow":{}}"#[..],
            Some("flow"),
        ),
        (
            br#"{"x":{"event_type":"dns"},"s":"\"event_type\":\"a\"","event_type" : "http"}"#,
            Some("http"),
        ),
        (br#"{"x":["{\"event_type\":\"dns\"}"]}"#, None),
        (br#"{"event_type":5}"#, None),
        (br#"{"event_type":"a\"b"}"#, None),
        (br#"{"y":"event_type","event_type":"alert"}"#, Some("alert")),
    ] {
        assert_eq!(
            EveRecord::peek_event_type(line),
            want,
            "{}",
            String::from_utf8_lossy(line)
        );
        if let (Some(w), Ok(r)) = (want, EveRecord::decode(line)) {
            assert_eq!(r.event_type, w);
        }
    }
}

#[test]
fn peek_timestamp_reads_a_leading_timestamp() {
    assert_eq!(
        EveRecord::peek_timestamp(br#"{"timestamp":"2026-01-06T10:10:00.004000+0000","a":1}"#),
        Some(&b"2026-01-06T10:10:00.004000+0000"[..])
    );
    assert_eq!(
        EveRecord::peek_timestamp(br#"{"a":1,"timestamp":"x"}"#),
        None
    );
    assert_eq!(EveRecord::peek_timestamp(br#"{"timestamp":"x"#), None);
}
