//! TheHive and MISP export against a loopback HTTP server started here: every request body is
//! checked against the fields TheHive 5 and MISP take; a server that is down, that fails, that
//! refuses a duplicate or that rejects the request is each handled; and exports queued while
//! the server is down survive a restart of the console.

use islet_testkit::http::{Handler, Req, serve_on};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_islet");

use islet_testkit::console::Console as Serve;

fn serve(data: &Path, cfg: &Path) -> Serve {
    let cfg = cfg.to_str().expect("utf8");
    Serve::start(
        BIN,
        data,
        "127.0.0.1:0",
        &["--config", cfg],
        &[
            ("ISLET_TEST_HIVE_KEY", "hive-k3y"),
            ("ISLET_TEST_MISP_KEY", "misp-k3y"),
        ],
    )
}

fn token(data: &Path) -> String {
    islet_testkit::console::token(BIN, data, "analyst")
}

fn get(s: &Serve, tok: &str, path: &str) -> Value {
    ureq::get(&format!("http://{}{path}", s.http))
        .set("Authorization", &format!("Bearer {tok}"))
        .call()
        .expect("GET")
        .into_json()
        .expect("json")
}

fn post(s: &Serve, tok: &str, path: &str, body: Value) -> Value {
    ureq::post(&format!("http://{}{path}", s.http))
        .set("Authorization", &format!("Bearer {tok}"))
        .send_string(&body.to_string())
        .expect("POST")
        .into_json()
        .expect("json")
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scenarios(dir: &Path, forward: &str) {
    let lateral = dir.join("lateral.pcap");
    let ioc = dir.join("ioc.pcap");
    let event = dir.join("ioc-event.json");
    let ev = event.to_str().expect("utf8");
    for (p, args) in [
        (&lateral, vec!["--profile", "lateral"]),
        (&ioc, vec!["--profile", "ioc", "--misp-event", ev]),
    ] {
        let st = Command::new(BIN)
            .args(["synth", "-o"])
            .arg(p)
            .args(args)
            .output()
            .expect("synth");
        assert!(st.status.success());
    }
    for (p, intel) in [(&lateral, None), (&ioc, Some(&event))] {
        let mut c = Command::new(BIN);
        c.arg("read")
            .arg(p)
            .args(["-o", "/dev/null", "-q", "--forward", forward]);
        if let Some(i) = intel {
            c.arg("--intel").arg(i);
        }
        assert!(c.output().expect("read").status.success());
    }
}

fn exports_in(s: &Serve, tok: &str, state: &str) -> usize {
    get(s, tok, "/api/exports?limit=1000")["items"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|e| e["state"] == state).count())
}

fn check_thehive(r: &Req) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/api/v1/alert");
    assert_eq!(r.header("Authorization"), Some("Bearer hive-k3y"));
    assert_eq!(r.header("X-Organisation"), Some("soc"));
    let b: Value = serde_json::from_str(&r.body).expect("json body");
    for f in ["type", "source", "sourceRef", "title", "description"] {
        assert!(b[f].as_str().is_some_and(|x| !x.is_empty()), "{f}: {b:#}");
    }
    assert!(
        b["severity"].as_u64().is_some_and(|s| (1..=4).contains(&s)),
        "{b:#}"
    );
    assert!(
        b["date"].as_i64().is_some_and(|d| d > 1_700_000_000_000),
        "date in epoch ms: {b:#}"
    );
    assert!(
        b["tags"]
            .as_array()
            .is_some_and(|t| t.iter().all(Value::is_string))
    );
    assert!(b["tlp"].as_u64().is_some_and(|t| t <= 3));
    assert!(b["pap"].as_u64().is_some_and(|t| t <= 3));
    let obs = b["observables"].as_array().expect("observables");
    assert!(!obs.is_empty());
    for o in obs {
        assert!(
            matches!(
                o["dataType"].as_str(),
                Some("ip" | "domain" | "hash" | "other")
            ),
            "{o}"
        );
        assert!(
            o["data"].is_string()
                && o["tlp"].is_u64()
                && o["ioc"].is_boolean()
                && o["sighted"].is_boolean(),
            "{o}"
        );
    }
    for p in b["procedures"].as_array().expect("procedures") {
        assert!(
            p["patternId"].as_str().is_some_and(|x| x.starts_with('T')),
            "{p}"
        );
        assert!(p["occurDate"].is_i64(), "{p}");
    }
}

#[test]
fn exports_reach_thehive_and_misp_through_outages_duplicates_and_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    // A port for the fake TheHive/MISP, closed for now: the server is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cfg = dir.path().join("console.toml");
    std::fs::write(
        &cfg,
        format!(
            "[console]\nexport_backoff_ms = 100\nexport_max_attempts = 1000\nsource = \"islet-test\"\n\
             [console.thehive]\nurl = \"http://127.0.0.1:{port}\"\napi_key_env = \"ISLET_TEST_HIVE_KEY\"\norganisation = \"soc\"\n\
             [console.misp]\nurl = \"http://127.0.0.1:{port}/\"\napi_key_env = \"ISLET_TEST_MISP_KEY\"\n"
        ),
    )
    .expect("cfg");
    let tok = token(&data);
    let s = serve(&data, &cfg);
    scenarios(dir.path(), &s.forward);
    wait_for("cases", || {
        get(&s, &tok, "/api/cases")["total"].as_u64().unwrap_or(0) >= 2
    });
    let cases = get(&s, &tok, "/api/cases");
    let items = cases["items"].as_array().expect("items");
    let chain = items
        .iter()
        .find(|c| {
            c["techniques"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "T1210"))
        })
        .expect("chain case");
    let ioc = items
        .iter()
        .find(|c| c["title"].as_str().is_some_and(|t| t.contains("islet IoC")))
        .expect("ioc case");
    let (chain, ioc) = (
        chain["id"].as_i64().expect("id"),
        ioc["id"].as_i64().expect("id"),
    );

    // Server down: both exports are queued and retried, none lost.
    post(
        &s,
        &tok,
        &format!("/api/cases/{chain}/export"),
        json!({"target": "thehive"}),
    );
    post(
        &s,
        &tok,
        &format!("/api/cases/{ioc}/export"),
        json!({"target": "misp"}),
    );
    wait_for("retries while down", || {
        get(&s, &tok, "/api/exports")["items"]
            .as_array()
            .is_some_and(|a| {
                a.len() == 3
                    && a.iter()
                        .all(|e| e["attempts"].as_u64().unwrap_or(0) >= 1 && e["state"] == "queued")
            })
    });
    // The console restarts while the server is still down: the queue is on disk.
    drop(s);
    let s = serve(&data, &cfg);
    assert_eq!(exports_in(&s, &tok, "queued"), 3);

    // The server comes up; TheHive fails once with a 500, then takes the alert.
    let hive_calls = Arc::new(AtomicU32::new(0));
    let mode = Arc::new(Mutex::new("normal"));
    let (hc, m2) = (hive_calls.clone(), mode.clone());
    let handler: Arc<Handler> = Arc::new(move |r: &Req| match r.target.as_str() {
        "/api/v1/alert" => {
            let n = hc.fetch_add(1, Ordering::SeqCst);
            match *m2.lock().expect("mode") {
                _ if n == 0 => (500, vec![], "{\"type\":\"InternalError\"}".into()),
                "duplicate" => (
                    400,
                    vec![],
                    json!({"type": "CreateError", "message": "Alert already exists"}).to_string(),
                ),
                "reject" => (
                    400,
                    vec![],
                    json!({"type": "BadRequest", "message": "invalid tlp"}).to_string(),
                ),
                _ => (
                    201,
                    vec![],
                    json!({"_id": "~4096", "_type": "Alert"}).to_string(),
                ),
            }
        }
        "/events/add" if r.header("Authorization") == Some("misp-k3y") => (
            200,
            vec![],
            json!({"Event": {"id": "12", "uuid": "x"}}).to_string(),
        ),
        "/sightings/add" if r.header("Authorization") == Some("misp-k3y") => {
            (200, vec![], "{}".into())
        }
        _ => (403, vec![], "{}".into()),
    });
    let server = serve_on(
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind"),
        handler,
    );
    wait_for("delivery", || exports_in(&s, &tok, "sent") == 3);
    let seen = server.seen.lock().expect("seen").clone();
    let hive: Vec<&Req> = seen
        .iter()
        .filter(|r| r.target == "/api/v1/alert")
        .collect();
    assert_eq!(hive.len(), 2, "one 500, one success");
    for r in &hive {
        check_thehive(r);
    }
    let b: Value = serde_json::from_str(&hive[1].body).expect("json");
    assert_eq!(b["source"], "islet-test");
    assert!(
        b["procedures"]
            .as_array()
            .expect("p")
            .iter()
            .any(|p| p["patternId"] == "T1210")
    );
    for ip in ["10.0.2.21", "10.0.3.30", "10.0.3.40", "10.0.3.50"] {
        assert!(
            b["observables"]
                .as_array()
                .expect("o")
                .iter()
                .any(|o| o["data"] == ip),
            "{ip}"
        );
    }
    let ev = seen
        .iter()
        .find(|r| r.target == "/events/add")
        .expect("MISP event");
    let e: Value = serde_json::from_str(&ev.body).expect("json");
    let attrs = e["Event"]["Attribute"].as_array().expect("attributes");
    let dom = attrs
        .iter()
        .find(|a| a["value"] == "update.bad-cdn.example")
        .expect("the indicator");
    assert_eq!(dom["type"], "domain");
    assert_eq!(dom["to_ids"], true);
    let ids = |v: &str| {
        attrs
            .iter()
            .find(|a| a["value"] == v)
            .map(|a| a["to_ids"].clone())
    };
    assert_eq!(
        ids("198.51.100.23"),
        Some(json!(true)),
        "an indicator's address is for IDS"
    );
    assert!(
        ids("10.0.4.17") == Some(json!(false)),
        "the victim's address is context"
    );
    assert!(
        e["Event"]["info"]
            .as_str()
            .is_some_and(|i| i.contains("islet case"))
    );
    let sg = seen
        .iter()
        .find(|r| r.target == "/sightings/add")
        .expect("sighting");
    let sg: Value = serde_json::from_str(&sg.body).expect("json");
    assert_eq!(
        sg["values"],
        json!(["198.51.100.23", "update.bad-cdn.example"])
    );

    // A duplicate sourceRef is TheHive's dedup: delivered.
    *mode.lock().expect("mode") = "duplicate";
    post(
        &s,
        &tok,
        &format!("/api/cases/{chain}/export"),
        json!({"target": "thehive"}),
    );
    wait_for("duplicate counted as delivered", || {
        exports_in(&s, &tok, "sent") == 4
    });
    let dup: Vec<Req> = server
        .seen
        .lock()
        .expect("seen")
        .iter()
        .filter(|r| r.target == "/api/v1/alert")
        .cloned()
        .collect();
    let (a, b): (Value, Value) = (
        serde_json::from_str(&dup[1].body).expect("json"),
        serde_json::from_str(&dup[2].body).expect("json"),
    );
    assert_eq!(
        a["sourceRef"], b["sourceRef"],
        "sourceRef is stable per case"
    );
    assert_eq!(get(&s, &tok, "/api/metrics")["export"]["duplicates"], 1);

    // A request TheHive rejects is not retried forever: failed, with its reason.
    *mode.lock().expect("mode") = "reject";
    post(
        &s,
        &tok,
        &format!("/api/cases/{ioc}/export"),
        json!({"target": "thehive"}),
    );
    wait_for("rejected export given up", || {
        exports_in(&s, &tok, "failed") == 1
    });
    let failed = get(&s, &tok, "/api/exports")["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["state"] == "failed")
        .cloned()
        .expect("failed row");
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 400")),
        "{failed:#}"
    );
    // The audit log names who asked for each export.
    let audit = get(
        &s,
        &tok,
        "/api/cases/{chain}"
            .replace("{chain}", &chain.to_string())
            .as_str(),
    );
    assert!(
        audit["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|t| t["kind"] == "export")
    );
}

/// Without being asked: settled cases at or above the threshold go to TheHive, and every
/// indicator hit becomes a MISP sighting.
#[test]
fn settled_cases_and_indicator_hits_are_exported_automatically() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let handler: Arc<Handler> = Arc::new(|r: &Req| match r.target.as_str() {
        "/api/v1/alert" => (201, vec![], "{}".into()),
        "/sightings/add" => (200, vec![], "{}".into()),
        _ => (404, vec![], "{}".into()),
    });
    let server = islet_testkit::http::serve(handler);
    let cfg = dir.path().join("console.toml");
    std::fs::write(
        &cfg,
        format!(
            "[console.thehive]\nurl = \"http://127.0.0.1:{p}\"\napi_key = \"k\"\nauto_min_severity = 3\nauto_settle_s = 0\n\
             [console.misp]\nurl = \"http://127.0.0.1:{p}\"\napi_key = \"k\"\nsightings = true\n",
            p = server.port
        ),
    )
    .expect("cfg");
    let tok = token(&data);
    let s = serve(&data, &cfg);
    scenarios(dir.path(), &s.forward);
    wait_for("automatic exports", || {
        let seen = server.seen.lock().expect("seen");
        seen.iter().any(|r| r.target == "/api/v1/alert")
            && seen.iter().any(|r| r.target == "/sightings/add")
    });
    wait_for("all sent", || exports_in(&s, &tok, "queued") == 0);
    let seen = server.seen.lock().expect("seen").clone();
    let hive: Vec<Value> = seen
        .iter()
        .filter(|r| r.target == "/api/v1/alert")
        .map(|r| serde_json::from_str(&r.body).expect("json"))
        .collect();
    // Only high cases (the chain, the IoC hit with threat level 1) went; each once.
    assert!(
        hive.iter().all(|b| b["severity"].as_u64() >= Some(3)),
        "{hive:#?}"
    );
    let mut refs: Vec<&str> = hive
        .iter()
        .filter_map(|b| b["sourceRef"].as_str())
        .collect();
    let n = refs.len();
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(refs.len(), n, "each case once");
    assert!(hive.iter().any(|b| {
        b["procedures"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["patternId"] == "T1210"))
    }));
    let sightings: Vec<Value> = seen
        .iter()
        .filter(|r| r.target == "/sightings/add")
        .map(|r| serde_json::from_str(&r.body).expect("json"))
        .collect();
    assert!(
        sightings.iter().all(
            |b| b["values"] == serde_json::json!(["update.bad-cdn.example"])
                || b["values"] == serde_json::json!(["198.51.100.23"])
        ),
        "{sightings:#?}"
    );
}
