//! The Prometheus endpoint and the periodic `stats` record: records written through the output
//! stage are counted by type, the chain head and delivery figures show, and a scrape over HTTP
//! returns them in the text exposition format.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use islet_sink::forward::{ForwardConfig, Forwarder, Receiver, ServerConfig};
use islet_sink::metrics::{Metrics, MetricsServer};
use islet_sink::{FileOut, Output, OutputConfig};

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

#[test]
fn metrics_and_stats_records_show_what_the_output_did() {
    let r = Receiver::start(
        "127.0.0.1:0",
        ServerConfig::default(),
        None,
        Arc::new(|_| true),
    )
    .expect("receiver");
    let metrics = Arc::new(Metrics::default());
    let f = Forwarder::start(
        ForwardConfig {
            servers: vec![r.local_addr().to_string()],
            shutdown_timeout: Duration::from_secs(30),
            ..ForwardConfig::default()
        },
        None,
        "m",
    )
    .expect("forwarder");
    metrics.add_forwarder("collector", f.stats());
    let dir = std::env::temp_dir().join(format!("islet-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("eve.json");
    let file = std::fs::File::create(&path).expect("file");
    let mut out = Output::new(
        OutputConfig {
            stats_interval_ns: 10_000_000_000,
            ..OutputConfig::default()
        },
        FileOut::Stream(Box::new(file)),
        vec![f],
        metrics.clone(),
    )
    .expect("output");
    let server = MetricsServer::start("127.0.0.1:0", metrics.clone()).expect("metrics");
    // 60 s of records, one flow and one dns per second.
    for s in 0..60u64 {
        for kind in ["flow", "dns"] {
            writeln!(
                out,
                r#"{{"timestamp":"2024-01-01T00:{:02}:{:02}.000000+0000","event_type":"{kind}","src_ip":"10.0.0.1","dest_ip":"10.0.0.2"}}"#,
                s / 60,
                s % 60
            )
            .expect("write");
        }
    }
    let fin = out.finish().expect("finish");
    assert_eq!(fin.forward[0].delivered, fin.records);
    let text = scrape(server.local_addr());
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("islet_events_total{type=\"flow\"} 60"),
        "{text}"
    );
    assert!(
        text.contains("islet_events_total{type=\"dns\"} 60"),
        "{text}"
    );
    // Five stats records (at 10, 20, … 50 s), counted like any record.
    assert!(
        text.contains("islet_events_total{type=\"stats\"} 5"),
        "{text}"
    );
    assert!(
        text.contains(&format!("islet_chain_seq {}", fin.records)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "islet_forward_delivered_total{{server=\"collector\"}} {}",
            fin.records
        )),
        "{text}"
    );
    assert!(
        text.contains("islet_drops_total{stage=\"buffer\"} 0"),
        "{text}"
    );
    assert!(
        text.contains(
            "islet_forward_delivery_latency_seconds_bucket{server=\"collector\",le=\"+Inf\"}"
        ),
        "{text}"
    );
    // The stats records in the log carry the same figures.
    let log = std::fs::read_to_string(&path).expect("log");
    let stats: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("\"event_type\":\"stats\""))
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(stats.len(), 5);
    let last = &stats[4]["stats"]["output"];
    assert_eq!(last["events"]["flow"], 51, "{last}");
    assert_eq!(last["forward"][0]["server"], "collector");
    let _ = std::fs::remove_dir_all(&dir);
    drop(server);
    r.stop();
}
