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
            ("b.example", "dns"),
            ("a.example", "dns"),
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
