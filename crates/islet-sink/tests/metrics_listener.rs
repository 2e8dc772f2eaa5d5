//! Issue 18, "every listener": the metrics endpoint keeps answering a scraper while silent
//! connections pile up (they were served one at a time, each holding the endpoint for two
//! seconds), refuses or evicts past its caps, times out a request head that never comes, and
//! shows those counts in its own output.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use islet_sink::metrics::{METRICS_REQUEST_TIMEOUT, Metrics, MetricsServer};

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn issue18_silent_connections_do_not_hold_the_metrics_endpoint() {
    let srv = MetricsServer::start("127.0.0.1:0", Arc::new(Metrics::default())).expect("start");
    let addr = srv.local_addr();
    let silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let text = scrape(addr);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let a = &srv.stats.admission;
    assert!(
        a.refused_per_peer.load(Ordering::SeqCst) + a.evicted.load(Ordering::SeqCst) > 0,
        "the caps did nothing"
    );
    assert!(text.contains("islet_metrics_evicted_total"), "{text}");
    // What is still open times out.
    std::thread::sleep(METRICS_REQUEST_TIMEOUT + Duration::from_millis(500));
    assert!(srv.stats.timeouts.load(Ordering::SeqCst) >= 1);
    assert_eq!(a.open.load(Ordering::SeqCst), 0);
    drop(silent);
}
