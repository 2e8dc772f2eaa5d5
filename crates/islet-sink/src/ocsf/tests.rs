//! OCSF output pinned byte for byte, one record of each class (issue 20: the converter reads
//! records through `EveRecord`; these bytes are what the converter that read `serde_json::Value`
//! wrote).
use super::*;

/// (what, EVE line, OCSF line with `{VERSION}` for the crate version).
const CASES: [(&str, &str, &str); 7] = [
    (
        "a closed flow",
        r#"{"timestamp":"2026-01-05T09:00:01.059836+0000","flow_id":182054415075055,"event_type":"flow","src_ip":"10.0.6.66","src_port":40427,"dest_ip":"10.0.0.10","dest_port":443,"proto":"TCP","app_proto":"tls","flow":{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":1828,"bytes_toclient":9259,"start":"2026-01-05T09:00:01.059836+0000","end":"2026-01-05T09:00:02.328230+0000","age":1,"state":"closed","reason":"timeout","alerted":false},"community_id":"1:F8G7aaVlB5/MgsrnWyLJJliCXwI=","tcp":{"tcp_flags":"1b","syn":true,"fin":true,"state":"closed"},"islet":{"policy":{"verdict":"allow","src_identity":"prod/web"}}}"#,
        r#"{"activity_id":2,"activity_name":"Close","app_name":"tls","category_name":"Network Activity","category_uid":4,"class_name":"Network Activity","class_uid":4001,"connection_info":{"community_uid":"1:F8G7aaVlB5/MgsrnWyLJJliCXwI=","protocol_name":"tcp","protocol_num":6,"protocol_ver_id":4,"uid":"182054415075055"},"dst_endpoint":{"ip":"10.0.0.10","port":443},"end_time":1767603602328,"metadata":{"correlation_uid":"1:F8G7aaVlB5/MgsrnWyLJJliCXwI=","log_name":"flow","original_time":"2026-01-05T09:00:01.059836+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Informational","severity_id":1,"src_endpoint":{"ip":"10.0.6.66","port":40427},"start_time":1767603601059,"time":1767603601059,"traffic":{"bytes":11087,"bytes_in":9259,"bytes_out":1828,"packets":22,"packets_in":10,"packets_out":12},"type_name":"Network Activity: Close","type_uid":400102,"unmapped":{"app_proto":"tls","islet":{"policy":{"src_identity":"prod/web","verdict":"allow"}},"tcp":{"fin":true,"state":"closed","syn":true,"tcp_flags":"1b"}}}"#,
    ),
    (
        "an HTTP POST",
        r#"{"timestamp":"2020-08-10T20:18:42.073442+0000","flow_id":813554688471196,"event_type":"http","src_ip":"172.16.10.101","src_port":56413,"dest_ip":"74.120.55.163","dest_port":80,"proto":"TCP","http":{"hostname":"74.120.55.163","url":"/a/b","http_user_agent":"Mozilla/4.0","http_content_type":"text/html","http_refer":"http://74.120.55.163/","http_method":"POST","protocol":"HTTP/1.1","status":200,"length":1176},"islet":{"request_header_names":["Host"]}}"#,
        r#"{"activity_id":6,"activity_name":"Post","category_name":"Network Activity","category_uid":4,"class_name":"HTTP Activity","class_uid":4002,"connection_info":{"protocol_name":"tcp","protocol_num":6,"protocol_ver_id":4,"uid":"813554688471196"},"dst_endpoint":{"ip":"74.120.55.163","port":80},"http_request":{"http_method":"POST","referrer":"http://74.120.55.163/","url":{"hostname":"74.120.55.163","path":"/a/b","url_string":"http://74.120.55.163/a/b"},"user_agent":"Mozilla/4.0","version":"HTTP/1.1"},"http_response":{"code":200,"content_type":"text/html","length":1176},"http_status":200,"metadata":{"log_name":"http","original_time":"2020-08-10T20:18:42.073442+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Informational","severity_id":1,"src_endpoint":{"ip":"172.16.10.101","port":56413},"time":1597090722073,"type_name":"HTTP Activity: Post","type_uid":400206,"unmapped":{"islet":{"request_header_names":["Host"]}}}"#,
    ),
    (
        "a DNS response over IPv6",
        r#"{"timestamp":"2016-05-24T23:27:01.960780+0000","flow_id":465769910969953,"event_type":"dns","src_ip":"fe80::1","src_port":53,"dest_ip":"fe80::2","dest_port":53679,"proto":"UDP","dns":{"version":3,"type":"response","id":39339,"flags":"8180","rcode":"NOERROR","queries":[{"rrname":"client-cf.dropbox.com","rrtype":"A"}],"answers":[{"rrname":"client-cf.dropbox.com","rrtype":"CNAME","ttl":300,"rdata":"client.dropbox.com"}]}}"#,
        r#"{"activity_id":2,"activity_name":"Response","answers":[{"class":"IN","rdata":"client.dropbox.com","ttl":300,"type":"CNAME"}],"category_name":"Network Activity","category_uid":4,"class_name":"DNS Activity","class_uid":4003,"connection_info":{"protocol_name":"udp","protocol_num":17,"protocol_ver_id":6,"uid":"465769910969953"},"dst_endpoint":{"ip":"fe80::2","port":53679},"metadata":{"log_name":"dns","original_time":"2016-05-24T23:27:01.960780+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"query":{"class":"IN","hostname":"client-cf.dropbox.com","packet_uid":39339,"type":"A"},"rcode":"NoError","rcode_id":0,"severity":"Informational","severity_id":1,"src_endpoint":{"ip":"fe80::1","port":53},"time":1464132421960,"type_name":"DNS Activity: Response","type_uid":400302,"unmapped":{"islet":{}}}"#,
    ),
    (
        "a blocked alert with ATT&CK techniques and intel",
        r#"{"timestamp":"2026-01-06T10:00:00.000000+0000","flow_id":7,"event_type":"alert","src_ip":"10.0.0.5","src_port":445,"dest_ip":"10.0.0.9","dest_port":50000,"proto":"TCP","alert":{"action":"blocked","gid":1,"signature_id":9300004,"rev":1,"signature":"islet detect: lateral \"chain\"","category":"Potentially Bad Traffic","severity":2,"metadata":{"detection":["lateral_movement_chain"],"mitre_technique_id":["T1021","T1570"],"mitre_technique_name":["Remote Services"]}},"islet":{"intel":{"feed":"f","value":"x"}}}"#,
        r#"{"action":"Denied","action_id":2,"activity_id":1,"activity_name":"Create","category_name":"Findings","category_uid":2,"class_name":"Detection Finding","class_uid":2004,"confidence":"High","confidence_id":3,"evidences":[{"connection_info":{"protocol_name":"tcp","protocol_num":6,"protocol_ver_id":4,"uid":"7"},"dst_endpoint":{"ip":"10.0.0.9","port":50000},"src_endpoint":{"ip":"10.0.0.5","port":445}}],"finding_info":{"analytic":{"name":"islet detect: lateral \"chain\"","type":"Rule","type_id":1,"uid":"9300004"},"attacks":[{"technique":{"name":"Remote Services","uid":"T1021"},"version":"15"},{"technique":{"name":null,"uid":"T1570"},"version":"15"}],"created_time":1767693600000,"desc":"islet detect: lateral \"chain\"","title":"islet detect: lateral \"chain\"","types":["Potentially Bad Traffic"],"uid":"1:9300004:7:1767693600000"},"metadata":{"log_name":"alert","original_time":"2026-01-06T10:00:00.000000+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Medium","severity_id":3,"status":"New","status_id":1,"time":1767693600000,"type_name":"Detection Finding: Create","type_uid":200401,"unmapped":{"islet":{"intel":{"feed":"f","value":"x"}}}}"#,
    ),
    (
        "TLS with JA3 and JA3S",
        r#"{"timestamp":"2026-01-06T10:00:00.000000+0000","event_type":"tls","src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":443,"proto":"TCP","tls":{"sni":"a.example","version":"TLS 1.3","ja3":{"hash":"abc","string":"x"},"ja3s":{"hash":"def"}},"community_id":"1:x="}"#,
        r#"{"activity_id":6,"activity_name":"Traffic","category_name":"Network Activity","category_uid":4,"class_name":"Network Activity","class_uid":4001,"connection_info":{"community_uid":"1:x=","protocol_name":"tcp","protocol_num":6,"protocol_ver_id":4},"dst_endpoint":{"ip":"10.0.0.2","port":443},"metadata":{"correlation_uid":"1:x=","log_name":"tls","original_time":"2026-01-06T10:00:00.000000+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Informational","severity_id":1,"src_endpoint":{"ip":"10.0.0.1","port":1},"time":1767693600000,"tls":{"ja3_hash":{"algorithm":"MD5","algorithm_id":1,"value":"abc"},"ja3s_hash":{"algorithm":"MD5","algorithm_id":1,"value":"def"},"sni":"a.example","version":"TLS 1.3"},"type_name":"Network Activity: Traffic","type_uid":400106,"unmapped":{"islet":{},"tls":{"ja3":{"hash":"abc","string":"x"},"ja3s":{"hash":"def"},"sni":"a.example","version":"TLS 1.3"}}}"#,
    ),
    (
        "a stats record (no flow)",
        r#"{"timestamp":"2026-01-06T10:00:00.000000+0000","event_type":"stats","stats":{"uptime":1.5}}"#,
        r#"{"activity_id":0,"activity_name":"Unknown","category_name":"Uncategorized","category_uid":0,"class_name":"Base Event","class_uid":0,"metadata":{"log_name":"stats","original_time":"2026-01-06T10:00:00.000000+0000","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Informational","severity_id":1,"time":1767693600000,"type_name":"Base Event: Unknown","type_uid":0,"unmapped":{"islet":{},"stats":{"uptime":1.5}}}"#,
    ),
    (
        "a line that is not JSON",
        r#"not json"#,
        r#"{"activity_id":0,"activity_name":"Unknown","category_name":"Uncategorized","category_uid":0,"class_name":"Base Event","class_uid":0,"metadata":{"log_name":"","product":{"name":"islet","vendor_name":"islet","version":"{VERSION}"},"version":"1.3.0"},"severity":"Informational","severity_id":1,"time":0,"type_name":"Base Event: Unknown","type_uid":0,"unmapped":{"islet":{},"raw":"not json"}}"#,
    ),
];

#[test]
fn issue_20_each_class_converts_to_the_bytes_it_did() {
    for (what, eve, want) in CASES {
        let mut out = Vec::new();
        convert_line(eve.as_bytes(), &mut out);
        let want = want.replace("{VERSION}", env!("CARGO_PKG_VERSION"));
        assert_eq!(String::from_utf8_lossy(&out), want, "{what}");
    }
}

/// A place member of another JSON type is not lost: it stays under `unmapped`.
#[test]
fn a_place_member_of_another_type_stays_unmapped() {
    let mut out = Vec::new();
    convert_line(
        br#"{"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","src_port":"80","flow":{}}"#,
        &mut out,
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains(r#""src_endpoint":{"ip":"10.0.0.1"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""unmapped":{"islet":{},"src_port":"80"}"#),
        "{text}"
    );
}
