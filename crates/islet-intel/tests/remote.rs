//! The MISP REST client, TAXII polling and sightings, against HTTP servers on loopback that
//! this test starts and that answer with the corpus's real documents: paging, auth headers,
//! incremental pulls, errors with the server's message, retries, and a collector that is down
//! and comes back.

use islet_intel::remote::{MispClient, MispQuery, RemoteError, Retry, TaxiiClient};
use islet_intel::sightings::{SightingConfig, SightingQueue};
use islet_intel::{Importer, Kind};
use islet_testkit::http::{Handler, Req, serve, serve_on};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fast() -> Retry {
    Retry {
        attempts: 3,
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
    }
}

fn no_sleep(_: Duration) {}

/// The Sednit event's attributes as MISP's attribute restSearch returns them: each carries
/// its event's uuid and info, and a timestamp.
fn sednit_attributes(shared: &std::path::Path) -> Vec<Value> {
    let path = shared.join("corpus/intel/misp-events/pymisp_osint-sednit-fancybear.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    let e = v.get("Event").unwrap_or(&v);
    let mut out = Vec::new();
    let objects = e["Object"].as_array().cloned().unwrap_or_default();
    let flat = e["Attribute"].as_array().into_iter().flatten().chain(
        objects
            .iter()
            .flat_map(|o| o["Attribute"].as_array().into_iter().flatten()),
    );
    for (i, a) in flat.enumerate() {
        let mut a = a.clone();
        a["timestamp"] = json!((1_600_000_000 + i).to_string());
        a["Event"] = json!({"uuid": e["uuid"], "info": e["info"], "id": "1"});
        out.push(a);
    }
    out
}

const KEY: &str = "tN3cPZ1T2mMQhc5DJkyvb4pDYHfV6XxSgtQ0YGDU";

fn misp_handler(attrs: Vec<Value>, fail_first: usize) -> Arc<Handler> {
    let calls = AtomicUsize::new(0);
    Arc::new(move |r: &Req| {
        if calls.fetch_add(1, Ordering::SeqCst) < fail_first {
            return (503, vec![], "upstream busy".into());
        }
        if r.header("Authorization") != Some(KEY) {
            let body = json!({"name": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
                              "message": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
                              "url": "/attributes/restSearch"});
            return (403, vec![], body.to_string());
        }
        if r.method != "POST" || r.target != "/attributes/restSearch" {
            return (404, vec![], json!({"message": "not found"}).to_string());
        }
        let q: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let page = q["page"].as_u64().unwrap_or(1) as usize;
        let limit = q["limit"].as_u64().unwrap_or(1000) as usize;
        let since = q["timestamp"].as_u64().unwrap_or(0);
        let only_ids = q["to_ids"] == 1;
        let selected: Vec<&Value> = attrs
            .iter()
            .filter(|a| !only_ids || a["to_ids"] == true)
            .filter(|a| {
                a["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0)
                    >= since
            })
            .collect();
        let chunk: Vec<&Value> = selected
            .iter()
            .skip((page - 1) * limit)
            .take(limit)
            .copied()
            .collect();
        (
            200,
            vec![],
            json!({"response": {"Attribute": chunk}}).to_string(),
        )
    })
}

#[test]
fn misp_rest_search_pages_authenticates_and_pulls_incrementally() {
    let Some(shared) = islet_testkit::shared_or_skip("misp_rest_search") else {
        return;
    };
    let attrs = sednit_attributes(&shared);
    let want_ids = attrs.iter().filter(|a| a["to_ids"] == true).count();
    assert!(want_ids > 10);
    let server = serve(misp_handler(attrs.clone(), 0));
    let mut c = MispClient::new(&format!("http://127.0.0.1:{}/", server.port), KEY);
    c.page_size = 4;
    c.retry = fast();
    let q = MispQuery {
        to_ids: Some(true),
        ..MispQuery::default()
    };
    let (doc, newest) = c.pull(&q, &no_sleep).expect("pull");
    let got = doc["response"]["Attribute"]
        .as_array()
        .expect("attrs")
        .len();
    assert_eq!(got, want_ids);
    let pages = server.seen.lock().expect("seen").len();
    assert_eq!(
        pages,
        want_ids / 4 + 1,
        "every page, and one short page to stop"
    );
    for r in server.seen.lock().expect("seen").iter() {
        // The raw key, no "Bearer"; JSON both ways.
        assert_eq!(r.header("Authorization"), Some(KEY));
        assert_eq!(r.header("Accept"), Some("application/json"));
        let b: Value = serde_json::from_str(&r.body).expect("json body");
        assert_eq!(b["to_ids"], 1);
        assert_eq!(b["returnFormat"], "json");
    }
    // What came back imports with the event's context.
    let mut imp = Importer::new(Vec::new());
    imp.add_bytes("misp", doc.to_string().as_bytes());
    let (snap, report) = imp.finish();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let d = snap
        .iter()
        .position(|i| i.kind == Kind::Domain)
        .expect("a domain");
    assert!(snap.context(d as u32).event_info.contains("Sednit"));
    // Incremental: nothing newer than the newest timestamp seen.
    let since = MispQuery {
        timestamp: newest.map(|t| t + 1),
        ..q.clone()
    };
    let (doc, _) = c.pull(&since, &no_sleep).expect("pull");
    assert_eq!(
        doc["response"]["Attribute"].as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn misp_errors_carry_status_and_message_and_5xx_is_retried() {
    let server = serve(misp_handler(
        vec![json!({"type": "ip-dst", "value": "192.0.2.1", "to_ids": true, "timestamp": "1"})],
        2,
    ));
    let base = format!("http://127.0.0.1:{}", server.port);
    let mut c = MispClient::new(&base, KEY);
    c.retry = fast();
    // Two 503s, then the answer.
    let (doc, _) = c.pull(&MispQuery::default(), &no_sleep).expect("retried");
    assert_eq!(
        doc["response"]["Attribute"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(server.seen.lock().expect("seen").len(), 3);
    // A wrong key: 403 with MISP's message, not retried.
    let mut bad = MispClient::new(&base, "wrong");
    bad.retry = fast();
    let before = server.seen.lock().expect("seen").len();
    match bad.pull(&MispQuery::default(), &no_sleep) {
        Err(RemoteError::Http { status, message }) => {
            assert_eq!(status, 403);
            assert!(message.contains("Authentication failed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.seen.lock().expect("seen").len(), before + 1);
    // Nobody listening: a transport error after the retries.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut gone = MispClient::new(&format!("http://127.0.0.1:{port}"), KEY);
    gone.retry = fast();
    assert!(matches!(
        gone.pull(&MispQuery::default(), &no_sleep),
        Err(RemoteError::Transport(_))
    ));
}

#[test]
fn taxii_collection_is_polled_page_by_page_with_added_after() {
    let Some(shared) = islet_testkit::shared_or_skip("taxii_collection_is_polled") else {
        return;
    };
    let path = shared.join("corpus/intel/stix/oasis_threat-report-poisonivy.json");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let objects = bundle["objects"].as_array().expect("objects").clone();
    let total = objects.len();
    let handler: Arc<Handler> = Arc::new(move |r: &Req| {
        if r.header("Authorization") != Some("Basic dGF4aWk6c2VjcmV0") {
            return (
                401,
                vec![],
                json!({"title": "Unauthorized", "description": "bad credentials"}).to_string(),
            );
        }
        if r.header("Accept") != Some("application/taxii+json;version=2.1") {
            return (406, vec![], json!({"title": "Not Acceptable"}).to_string());
        }
        let limit: usize = r.query("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let start: usize = r.query("next").and_then(|n| n.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = objects.iter().skip(start).take(limit).cloned().collect();
        let more = start + limit < objects.len();
        let mut env = json!({"more": more, "objects": page});
        if more {
            env["next"] = json!((start + limit).to_string());
        }
        let added = if r.query("added_after").is_some() {
            "2016-04-06T20:07:09.000Z"
        } else {
            "2016-04-06T20:06:37.000Z"
        };
        (
            200,
            vec![
                ("X-TAXII-Date-Added-Last".into(), added.into()),
                (
                    "Content-Type".into(),
                    "application/taxii+json;version=2.1".into(),
                ),
            ],
            env.to_string(),
        )
    });
    let server = serve(handler);
    let url = format!(
        "http://127.0.0.1:{}/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/",
        server.port
    );
    let mut t = TaxiiClient::new(&url, Some(("taxii".into(), "secret".into())));
    t.page_size = 10;
    t.retry = fast();
    let (polled, resume) = t.poll(None, &no_sleep).expect("poll");
    assert_eq!(polled["objects"].as_array().map(Vec::len), Some(total));
    assert_eq!(server.seen.lock().expect("seen").len(), total.div_ceil(10));
    assert_eq!(resume.as_deref(), Some("2016-04-06T20:06:37.000Z"));
    // Polled objects import exactly as the bundle file does.
    let count = |doc: &[u8]| {
        let mut imp = Importer::new(Vec::new());
        imp.add_bytes("x", doc);
        let (_, r) = imp.finish();
        (r.imported.clone(), r.rejected_total)
    };
    assert_eq!(
        count(polled.to_string().as_bytes()),
        count(&std::fs::read(&path).expect("read"))
    );
    // Resuming sends added_after.
    let (_, resume2) = t.poll(resume.as_deref(), &no_sleep).expect("poll again");
    assert_eq!(resume2.as_deref(), Some("2016-04-06T20:07:09.000Z"));
    let last = server
        .seen
        .lock()
        .expect("seen")
        .last()
        .cloned()
        .expect("req");
    assert_eq!(
        last.query("added_after").as_deref(),
        Some("2016-04-06T20:06:37.000Z")
    );
    // Bad credentials: the server's title and description.
    let mut bad = TaxiiClient::new(&url, Some(("taxii".into(), "nope".into())));
    bad.retry = fast();
    match bad.poll(None, &no_sleep) {
        Err(RemoteError::Http {
            status: 401,
            message,
        }) => {
            assert_eq!(message, "Unauthorized: bad credentials");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sightings_survive_a_collector_outage_and_never_block() {
    // Reserve a port, close it: the collector is down.
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let mut client = MispClient::new(&format!("http://127.0.0.1:{port}"), KEY);
    client.retry = Retry {
        attempts: 1,
        ..fast()
    };
    let cfg = SightingConfig {
        capacity: 20,
        batch: 7,
        flush_every: Duration::from_millis(20),
        retry_every: Duration::from_millis(50),
        source: "islet-test".into(),
    };
    let q = SightingQueue::start(client, cfg);
    let tx = q.sender().expect("sender");
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..100 {
        if tx.offer(&format!("198.51.100.{i}"), 1_700_000_000 + i) {
            accepted += 1;
        }
    }
    // Offering never waits on the network.
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!((20..100).contains(&accepted), "{accepted}");
    std::thread::sleep(Duration::from_millis(200));
    // The collector comes back on the same port.
    let got: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let handler: Arc<Handler> = Arc::new(move |r: &Req| {
        assert_eq!(r.target, "/sightings/add");
        assert_eq!(r.header("Authorization"), Some(KEY));
        g.lock()
            .expect("got")
            .push(serde_json::from_str(&r.body).expect("json"));
        (
            200,
            vec![],
            json!({"saved": true, "success": "Sightings added"}).to_string(),
        )
    });
    let _server = serve_on(
        TcpListener::bind(("127.0.0.1", port)).expect("rebind"),
        handler,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n: usize = got
            .lock()
            .expect("got")
            .iter()
            .map(|b| b["values"].as_array().map_or(0, Vec::len))
            .sum();
        if n >= accepted.min(40) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = q.finish();
    assert!(stats.failed_attempts >= 1, "{stats:?}");
    assert_eq!(stats.undelivered, 0, "{stats:?}");
    assert_eq!(stats.sent + stats.dropped, 100, "{stats:?}");
    let bodies = got.lock().expect("got");
    assert!(bodies.iter().all(|b| b["source"] == "islet-test"));
    assert!(
        bodies
            .iter()
            .all(|b| b["values"].as_array().is_some_and(|v| v.len() <= 7))
    );
    let delivered: usize = bodies
        .iter()
        .map(|b| b["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(delivered as u64, stats.sent);
}

#[test]
fn scheduled_pulls_swap_snapshots_while_lookups_continue() {
    use islet_intel::Snapshot;
    use islet_intel::feed::{IntelConfig, MispConfig, Pulled, Puller, SharedSnapshot};
    // The server learns a new indicator after the first pull.
    let round = Arc::new(AtomicUsize::new(0));
    let r2 = round.clone();
    let handler: Arc<Handler> = Arc::new(move |r: &Req| {
        let q: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        let n = r2.fetch_add(1, Ordering::SeqCst);
        let attrs = if n == 0 || q["page"] != 1 {
            json!([])
        } else {
            json!([{"type": "domain", "value": "late.example", "to_ids": true, "uuid": "u1",
                    "timestamp": "1700000000", "Event": {"uuid": "e1", "info": "arrived later"}}])
        };
        (
            200,
            vec![],
            json!({"response": {"Attribute": attrs}}).to_string(),
        )
    });
    let server = serve(handler);
    let cfg = IntelConfig {
        misp: Some(MispConfig {
            url: format!("http://127.0.0.1:{}", server.port),
            key: Some(KEY.into()),
            key_env: None,
            key_file: None,
            last: None,
            to_ids_only: true,
            pull_every_s: 0,
            page_size: 100,
            push_sightings: false,
        }),
        ..IntelConfig::default()
    };
    let mut pulled = Pulled::default();
    assert!(pulled.pull(&cfg).is_empty());
    let shared: Arc<SharedSnapshot> =
        Arc::new(arc_swap::ArcSwap::from_pointee(Snapshot::default()));
    let puller = Puller::start(
        cfg,
        Vec::new(),
        pulled,
        shared.clone(),
        Duration::from_millis(30),
        |e| panic!("{e}"),
    );
    // A reader keeps looking up while snapshots are swapped underneath it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lookups = 0u64;
    let mut seen = false;
    while Instant::now() < deadline {
        let snap = shared.load();
        let mut hits = Vec::new();
        snap.match_name("www.late.example", &mut hits);
        lookups += 1;
        if !hits.is_empty() {
            assert_eq!(snap.context(hits[0]).event_info, "arrived later");
            seen = true;
            break;
        }
    }
    let swaps = puller.stop();
    assert!(
        seen,
        "the pulled indicator never arrived ({lookups} lookups)"
    );
    assert!(swaps >= 1);
    // The second and later pulls were incremental from the first's newest timestamp: the
    // first pull saw none, so no timestamp was sent until an attribute was seen.
    let reqs = server.seen.lock().expect("seen");
    let last: Value = serde_json::from_str(&reqs.last().expect("req").body).expect("json");
    assert!(reqs.len() >= 2);
    assert!(last["to_ids"] == 1);
}
