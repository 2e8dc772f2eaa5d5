//! The console end to end on loopback: sensors (`islet read`) forward synthetic scenarios to
//! `islet serve`; the API shows the cases, the map and the flows; tokens and roles are
//! enforced; a killed console loses no acknowledged record and stores none twice.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_islet");

use islet_testkit::console::Console as Serve;

fn serve(data: &Path, forward: &str, extra: &[&str]) -> Serve {
    Serve::start(BIN, data, forward, extra, &[])
}

fn token(data: &Path, role: &str) -> String {
    islet_testkit::console::token(BIN, data, role)
}

fn get(s: &Serve, tok: &str, path: &str) -> Value {
    ureq::get(&format!("http://{}{path}", s.http))
        .set("Authorization", &format!("Bearer {tok}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .into_json()
        .expect("json")
}

fn status(r: Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    }
}

fn synth(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let p = dir.join(format!("{name}.pcap"));
    let out = Command::new(BIN)
        .args(["synth", "-o"])
        .arg(&p)
        .args(args)
        .output()
        .expect("synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn read_forward(pcap: &Path, forward: &str, extra: &[&str]) {
    let out = Command::new(BIN)
        .arg("read")
        .arg(pcap)
        .args(["-o", "/dev/null", "-q", "--forward", forward])
        .args(extra)
        .output()
        .expect("islet read");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const LATERAL_T: i64 = 1_767_694_200_000; // 2026-01-06T10:10:00Z, the chain's first hop

#[test]
fn sensors_forward_scenarios_and_the_console_shows_cases_and_the_map() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let admin = token(&data, "admin");
    let viewer = token(&data, "viewer");
    let s = serve(&data, "127.0.0.1:0", &[]);

    // The lateral-movement scenario.
    let lateral = synth(dir.path(), "lateral", &["--profile", "lateral"]);
    read_forward(&lateral, &s.forward, &[]);
    // The IoC scenario, read with the MISP event `islet synth` writes beside it.
    let event = dir.path().join("ioc-event.json");
    let ev = event.to_str().expect("utf8");
    let ioc_pcap = synth(dir.path(), "ioc", &["--profile", "ioc", "--misp-event", ev]);
    read_forward(&ioc_pcap, &s.forward, &["--intel", ev]);
    wait_for("both scenarios' cases", || {
        get(&s, &viewer, "/api/alerts?limit=1000")["total"]
            .as_u64()
            .unwrap_or(0)
            >= 6
    });

    let cases = get(&s, &viewer, "/api/cases");
    let items = cases["items"].as_array().expect("items");
    // One case for the chain, with its hosts as observables.
    let chain: Vec<&Value> = items
        .iter()
        .filter(|c| {
            c["techniques"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "T1210"))
        })
        .collect();
    assert_eq!(chain.len(), 1, "one case for the lateral chain: {cases:#}");
    let id = chain[0]["id"].as_i64().expect("id");
    let detail = get(&s, &viewer, &format!("/api/cases/{id}"));
    let data_values: Vec<&str> = detail["observables"]
        .as_array()
        .expect("observables")
        .iter()
        .filter(|o| o["dataType"] == "ip")
        .filter_map(|o| o["data"].as_str())
        .collect();
    for host in ["10.0.2.21", "10.0.3.30", "10.0.3.40", "10.0.3.50"] {
        assert!(
            data_values.contains(&host),
            "{host} missing from {data_values:?}"
        );
    }
    let detections: Vec<&str> = detail["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["detection"].as_str())
        .collect();
    assert!(
        detections.contains(&"lateral_movement_chain"),
        "{detections:?}"
    );
    assert!(detections.contains(&"smb_remote_exec"), "{detections:?}");
    assert_eq!(
        detail["severity"], 3,
        "high: the chain alert is Suricata severity 1"
    );
    // The IoC case carries the MISP context.
    let ioc: Vec<&Value> = items
        .iter()
        .filter(|c| c["title"].as_str().is_some_and(|t| t.contains("islet IoC")))
        .collect();
    assert_eq!(ioc.len(), 1, "one IoC case: {cases:#}");
    let ioc = get(&s, &viewer, &format!("/api/cases/{}", ioc[0]["id"]));
    assert_eq!(
        ioc["misp"][0]["event_uuid"],
        "6a1e0c5e-1b7d-4c2f-9a55-0d15ea5e0001"
    );
    assert_eq!(
        ioc["misp"][0]["event_info"],
        "islet synth: beaconing to update.bad-cdn.example"
    );
    // Both indicators (the name and its address) are in the one case; the three beacons
    // repeat each alert (the name is seen in DNS and in TLS) instead of adding alerts.
    assert_eq!(ioc["misp"].as_array().map(Vec::len), Some(2), "{ioc:#}");
    assert_eq!(ioc["alerts"].as_array().map(Vec::len), Some(2), "{ioc:#}");
    assert!(
        ioc["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .all(|a| a["count"].as_u64() >= Some(3)),
        "{ioc:#}"
    );
    assert!(
        ioc["observables"]
            .as_array()
            .expect("obs")
            .iter()
            .any(|o| o["data"] == "update.bad-cdn.example" && o["ioc"] == true),
        "{ioc:#}"
    );
    // A repeat of the same alert updates it instead of adding one.
    let again = get(&s, &viewer, &format!("/api/alerts?case={id}"));
    assert_eq!(
        again["total"].as_u64(),
        detail["alerts"].as_array().map(|a| a.len() as u64)
    );

    // The map at the scenario's time shows the chain's edges…
    let map = get(
        &s,
        &viewer,
        &format!("/api/map?from={}&to={}", LATERAL_T, LATERAL_T + 180_000),
    );
    let edge = |m: &Value, a: &str, b: &str| {
        m["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["src"] == a && e["dest"] == b)
    };
    assert!(edge(&map, "10.0.2.21", "10.0.3.30"), "{map:#}");
    assert!(edge(&map, "10.0.3.30", "10.0.3.40"), "{map:#}");
    assert!(edge(&map, "10.0.3.40", "10.0.3.50"), "{map:#}");
    assert!(
        map["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["src"] == "10.0.2.21" && e["alerted"] == true),
        "edges carry the alert: {map:#}"
    );
    // …and long after those workloads are gone, the same window still does; the present
    // does not.
    let now = get(&s, &viewer, "/api/map");
    assert!(!edge(&now, "10.0.2.21", "10.0.3.30"));
    let later = get(&s, &viewer, &format!("/api/map?at={}", LATERAL_T + 60_000));
    assert!(edge(&later, "10.0.3.30", "10.0.3.40"), "{later:#}");

    // Flows: who talked to X in a window.
    let flows = get(
        &s,
        &viewer,
        &format!(
            "/api/flows?ip=10.0.3.30&from={}&to={}",
            LATERAL_T,
            LATERAL_T + 3_600_000
        ),
    );
    assert!(flows["total"].as_u64().unwrap_or(0) >= 2, "{flows:#}");
    for f in flows["items"].as_array().expect("items") {
        assert!(f["src_ip"] == "10.0.3.30" || f["dest_ip"] == "10.0.3.30");
    }
    // Who connected to a name.
    let names = get(&s, &viewer, "/api/search?name=update.bad-cdn.example");
    assert!(names["total"].as_u64().unwrap_or(0) >= 1, "{names:#}");

    // Sensor health: the chain of the forwarding sensor is intact.
    let sensors = get(&s, &viewer, "/api/sensors");
    assert!(sensors.as_array().is_some_and(|a| !a.is_empty()));
    for x in sensors.as_array().expect("sensors") {
        assert_ne!(x["chain"], "broken", "{x:#}");
    }

    // Roles: no token, a wrong token, a viewer writing, an analyst minting tokens.
    let url = format!("http://{}/api/cases/{id}", s.http);
    assert_eq!(status(ureq::get(&url).call()), 401);
    assert_eq!(
        status(
            ureq::get(&url)
                .set("Authorization", "Bearer islet_0000000000000000_x")
                .call()
        ),
        401
    );
    assert_eq!(
        status(
            ureq::request("PATCH", &url)
                .set("Authorization", &format!("Bearer {viewer}"))
                .send_string(r#"{"status":"InProgress"}"#)
        ),
        403
    );
    let analyst = token(&data, "analyst");
    assert_eq!(
        status(
            ureq::post(&format!("http://{}/api/tokens", s.http))
                .set("Authorization", &format!("Bearer {analyst}"))
                .send_string(r#"{"role":"admin"}"#)
        ),
        403
    );
    assert_eq!(
        status(ureq::get(&format!("http://{}/healthz", s.http)).call()),
        200
    );
    // Triage: status, note, audit.
    let r: Value = ureq::request("PATCH", &url)
        .set("Authorization", &format!("Bearer {analyst}"))
        .send_string(r#"{"status":"InProgress","assignee":"ana","tlp":3}"#)
        .expect("patch")
        .into_json()
        .expect("json");
    assert_eq!(r["status"], "InProgress");
    assert_eq!(r["tlp"], 3);
    let bad = ureq::request("PATCH", &url)
        .set("Authorization", &format!("Bearer {analyst}"))
        .send_string(r#"{"status":"Bogus"}"#);
    match bad {
        Err(ureq::Error::Status(400, resp)) => {
            let v: Value = resp.into_json().expect("json error");
            assert_eq!(v["field"], "status", "{v}");
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let audit = get(&s, &admin, "/api/audit");
    assert!(
        audit["items"]
            .as_array()
            .expect("audit")
            .iter()
            .any(|a| a["action"] == "status" && a["actor"] == "analyst"),
        "{audit:#}"
    );
    // The OpenAPI document is served and names the routes scripts rely on.
    let doc = get(&s, &viewer, "/api/openapi.json");
    for p in [
        "/api/cases",
        "/api/cases/{id}",
        "/api/alerts",
        "/api/flows",
        "/api/map",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
}

/// Killing the console mid-ingest (SIGKILL) and starting it again on the same port: the
/// sensor resends what was not acknowledged; the store ends with every record once.
#[test]
fn killed_console_loses_no_acknowledged_record_and_stores_none_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let tok = token(&data, "viewer");
    let pcap = synth(dir.path(), "big", &["--flows", "20000", "--hosts", "200"]);
    let first = serve(&data, "127.0.0.1:0", &[]);
    let fwd = first.forward.clone();
    let eve = dir.path().join("eve.json");
    let mut sensor = Command::new(BIN)
        .arg("read")
        .arg(&pcap)
        .args(["-q", "--workers", "1", "--forward", &fwd, "-o"])
        .arg(&eve)
        .spawn()
        .expect("sensor");
    // Kill the console once some records are in.
    wait_for("some records stored", || {
        get(&first, &tok, "/api/sensors")
            .as_array()
            .and_then(|a| a.first())
            .and_then(|s| s["events"].as_u64())
            .unwrap_or(0)
            > 500
    });
    let mut first = first;
    let _ = first.child.kill();
    let _ = first.child.wait();
    let second = serve(&data, &fwd, &[]);
    let st = sensor.wait().expect("sensor exit");
    assert!(st.success());
    let lines = std::fs::read_to_string(&eve)
        .expect("eve")
        .lines()
        .filter(|l| !l.is_empty())
        .count() as u64;
    wait_for("every record stored", || {
        get(&second, &tok, "/api/sensors")
            .as_array()
            .and_then(|a| a.first())
            .and_then(|s| s["events"].as_u64())
            .unwrap_or(0)
            >= lines
    });
    let s = &get(&second, &tok, "/api/sensors")[0];
    assert_eq!(
        s["events"].as_u64(),
        Some(lines),
        "every record once: {s:#}"
    );
    assert_eq!(s["next_seq"].as_u64(), Some(lines + 1), "{s:#}");
    assert_ne!(s["chain"], "broken", "{s:#}");
    assert_ne!(s["chain"], "gap", "{s:#}");
}

/// The console keeps each record as its sensor sealed it: a signed sensor's records, exported
/// from the store after delivery over Forward, are byte for byte the sensor's own log and pass
/// `islet log verify`; after one byte of one stored record is changed, the export fails it and
/// names that record.
#[test]
fn records_exported_from_the_store_verify_and_one_changed_byte_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let data = d.join("data");
    let tok = token(&data, "viewer");
    let keygen = Command::new(BIN)
        .args(["log", "keygen", "--out"])
        .arg(d.join("k"))
        .output()
        .expect("keygen");
    assert!(keygen.status.success());
    let pcap = synth(
        d,
        "mixed",
        &["--flows", "3000", "--hosts", "40", "--seed", "9"],
    );
    let cfg = d.join("sensor.toml");
    std::fs::write(&cfg, "[output]\ncheckpoint_every = 500\n").expect("config");
    let s = serve(&data, "127.0.0.1:0", &[]);
    let eve = d.join("eve.json");
    let fwd = s.forward.clone();
    let out = Command::new(BIN)
        .arg("read")
        .arg(&pcap)
        .args(["-q", "--workers", "2", "-c"])
        .arg(&cfg)
        .arg("--sign-key")
        .arg(d.join("k").join("sensor.key"))
        .args(["--forward", &fwd, "-o"])
        .arg(&eve)
        .output()
        .expect("sensor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&eve).expect("eve");
    let lines = written.lines().count() as u64;
    wait_for("every record stored", || {
        get(&s, &tok, "/api/sensors")
            .as_array()
            .and_then(|a| a.first())
            .and_then(|s| s["events"].as_u64())
            .unwrap_or(0)
            >= lines
    });
    let sensor = get(&s, &tok, "/api/sensors")[0]["name"]
        .as_str()
        .expect("sensor name")
        .to_string();
    let export = |name: &str| {
        let f = d.join(name);
        let o = Command::new(BIN)
            .args(["serve", "records", "--data"])
            .arg(&data)
            .args(["--sensor", &sensor, "-o"])
            .arg(&f)
            .output()
            .expect("serve records");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        f
    };
    let verify = |f: &Path| {
        Command::new(BIN)
            .args(["log", "verify"])
            .arg(f)
            .arg("--key")
            .arg(d.join("k").join("sensor.pub"))
            .output()
            .expect("log verify")
    };
    let clean = export("export.json");
    assert_eq!(
        std::fs::read_to_string(&clean).expect("export"),
        written,
        "the store gives back the sensor's log byte for byte"
    );
    let v = verify(&clean);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    drop(s);
    // One byte of one stored record changed in the database: record 1000's timestamp, in the
    // sealed block that holds it (opened, changed and compressed again as someone with write
    // access to the file would; its line in the export is its seq).
    let seq = 1000;
    let db = rusqlite::Connection::open(data.join("islet.sqlite")).expect("db");
    let (id, stored, codec, raw_len): (i64, Vec<u8>, i64, i64) = db
        .query_row(
            "SELECT id, lines, codec, raw_len FROM sealed WHERE first_seq <= ?1 AND last_seq >= ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("the block holding record 1000");
    assert_eq!(codec, islet_store::sealed::CODEC_LZ4_FRAMED);
    assert!(
        stored.len() * 2 < raw_len as usize,
        "a block is kept compressed: {} of {raw_len} bytes",
        stored.len()
    );
    let mut records: Vec<Vec<u8>> = islet_store::sealed::Block::open(&stored, codec, raw_len)
        .expect("block")
        .records()
        .map(|r| r.expect("record").to_vec())
        .collect();
    let i = records
        .iter()
        .position(|l| {
            serde_json::from_slice::<Value>(l).unwrap_or(Value::Null)["islet"]["seq"] == seq
        })
        .expect("record 1000 in its block");
    let digit = "{\"timestamp\":\"".len();
    assert_eq!(records[i][digit], b'2', "the year's first digit");
    records[i][digit] = b'3';
    let mut raw = Vec::new();
    for r in &records {
        islet_store::sealed::frame(&mut raw, r);
    }
    let mut packed = Vec::new();
    islet_store::sealed::compress(&raw, &mut packed);
    db.execute(
        "UPDATE sealed SET lines = ?2, raw_len = ?3 WHERE id = ?1",
        rusqlite::params![id, packed, raw.len() as i64],
    )
    .expect("update");
    drop(db);
    let tampered = export("tampered.json");
    let v = verify(&tampered);
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert_eq!(v.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(&format!("tampered.json:{seq}")),
        "names record {seq}: {msg}"
    );
}

/// schemathesis (from PyPI) against the served OpenAPI document: no request it makes gets a
/// 500, and the console keeps answering.
#[test]
fn schemathesis_finds_no_server_error() {
    let have = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("ISLET_REQUIRE_TOOLS").is_none(),
            "schemathesis is required here (ISLET_REQUIRE_TOOLS): pip install schemathesis"
        );
        eprintln!("skipping: schemathesis not installed (pip install schemathesis)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let admin = token(&data, "admin");
    let s = serve(&data, "127.0.0.1:0", &[]);
    let lateral = synth(dir.path(), "lateral", &["--profile", "lateral"]);
    read_forward(&lateral, &s.forward, &[]);
    let out = Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://{}/api/openapi.json", s.http))
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "1",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        status(ureq::get(&format!("http://{}/healthz", s.http)).call()),
        200
    );
}

/// `islet demo` runs the whole path: synth → sensor → Forward → console, and prints the URL
/// and a token that the API accepts.
#[test]
fn demo_forwards_to_the_console_and_prints_its_url() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(BIN)
        .args([
            "demo",
            "--exit",
            "--flows",
            "300",
            "--listen",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("islet demo: console at http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim().starts_with("islet_")),
        "{text}"
    );
    // The evidence is in the store the console reopens.
    let data = dir.path().join("console");
    let s = serve(&data, "off", &[]);
    let tok = token(&data, "viewer");
    let cases = get(&s, &tok, "/api/cases");
    assert!(cases["total"].as_u64().unwrap_or(0) >= 2, "{cases:#}");
}

fn sensor_row(s: &Serve, tok: &str, name: &str) -> Value {
    get(s, tok, "/api/sensors")
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// A log altered or cut on its way in: the console says so as alerts, and the sensor's chain
/// status names the first break.
#[test]
fn an_altered_record_and_a_removed_one_become_chain_alerts() {
    let dir = tempfile::tempdir().expect("tmp");
    let pcap = synth(dir.path(), "lateral", &["--profile", "lateral"]);
    let eve = dir.path().join("sensor-a.json");
    let out = Command::new(BIN)
        .arg("read")
        .arg(&pcap)
        .args(["-q", "--workers", "1", "-o"])
        .arg(&eve)
        .output()
        .expect("read");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&eve).expect("eve");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines.len() > 40);
    // Record 10 altered (its successor's prev no longer matches), record 30 removed.
    lines[9] = lines[9].replacen("\"TCP\"", "\"UDP\"", 1);
    lines.remove(29);
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");
    let data = dir.path().join("data");
    let tok = token(&data, "viewer");
    let s = serve(
        &data,
        "off",
        &["--ingest", tampered.to_str().expect("utf8")],
    );
    wait_for("ingest", || {
        sensor_row(&s, &tok, "tampered")["events"]
            .as_u64()
            .unwrap_or(0)
            >= 40
    });
    let alerts = get(&s, &tok, "/api/alerts?detection=chain_broken");
    assert!(
        alerts["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|a| a["signature"]
                .as_str()
                .is_some_and(|x| x.contains("record 11 does not follow record 10"))),
        "{alerts:#}"
    );
    let gaps = get(&s, &tok, "/api/alerts?detection=chain_gap");
    assert!(
        gaps["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|a| a["signature"]
                .as_str()
                .is_some_and(|x| x.contains("records 30..30 never arrived"))),
        "{gaps:#}"
    );
    // The untouched log of the same sensor checks clean.
    let data2 = dir.path().join("data2");
    let tok2 = token(&data2, "viewer");
    let clean = serve(&data2, "off", &["--ingest", eve.to_str().expect("utf8")]);
    wait_for("ingest", || {
        sensor_row(&clean, &tok2, "sensor-a")["events"].as_u64()
            == Some(text.lines().count() as u64)
    });
    assert_eq!(sensor_row(&clean, &tok2, "sensor-a")["chain"], "ok");
    assert_eq!(
        get(&clean, &tok2, "/api/alerts?detection=chain_broken")["total"],
        0
    );
}

/// A followed file: lines appended later (one in two writes) are picked up, and after
/// rotation the new file is read from its start.
#[test]
fn a_followed_file_is_read_as_it_grows_and_across_rotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let pcap = synth(dir.path(), "lateral", &["--profile", "lateral"]);
    let eve = dir.path().join("full.json");
    let out = Command::new(BIN)
        .arg("read")
        .arg(&pcap)
        .args(["-q", "--workers", "1", "-o"])
        .arg(&eve)
        .output()
        .expect("read");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&eve).expect("eve");
    let lines: Vec<&str> = text.lines().collect();
    let live = dir.path().join("live.json");
    std::fs::write(&live, lines[..50].join("\n") + "\n").expect("write");
    let data = dir.path().join("data");
    let tok = token(&data, "viewer");
    let s = serve(
        &data,
        "off",
        &["--follow", "--ingest", live.to_str().expect("utf8")],
    );
    let events = |s: &Serve| sensor_row(s, &tok, "live")["events"].as_u64().unwrap_or(0);
    wait_for("the first 50", || events(&s) == 50);
    // One more record written in two pieces: only counted when whole.
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .expect("open");
    let (a, b) = lines[50].split_at(20);
    f.write_all(a.as_bytes()).expect("w");
    f.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(events(&s), 50, "a partial line is not a record");
    f.write_all(format!("{b}\n").as_bytes()).expect("w");
    wait_for("the completed line", || events(&s) == 51);
    // Rotation: the file is renamed and a new one started.
    drop(f);
    std::fs::rename(&live, dir.path().join("live.json.1")).expect("rotate");
    std::fs::write(&live, lines[51..60].join("\n") + "\n").expect("write");
    wait_for("the rotated file", || events(&s) == 60);
    assert_eq!(sensor_row(&s, &tok, "live")["chain"], "ok");
}

/// The console over TLS (certificate from openssl), CORS closed, bodies bounded, pages bounded.
#[test]
fn tls_cors_and_bounds() {
    let have = |c: &str| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("openssl")
        && !Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        || !have("curl")
    {
        assert!(
            std::env::var_os("ISLET_REQUIRE_TOOLS").is_none(),
            "openssl and curl are required here"
        );
        eprintln!("skipping: openssl or curl missing");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = islet_testkit::console::self_signed(dir.path());
    let data = dir.path().join("data");
    let tok = token(&data, "viewer");
    let analyst = token(&data, "analyst");
    let (c, k) = (cert.to_str().expect("utf8"), key.to_str().expect("utf8"));
    let console = serve(&data, "off", &["--tls-cert", c, "--tls-key", k]);
    let addr = console.http.clone();
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-D", "-", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).to_ascii_lowercase()
    };
    let ok = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-H",
        "Origin: https://evil.example",
        &format!("https://{addr}/api/cases"),
    ]);
    assert!(ok.starts_with("http/1.1 200"), "{ok}");
    assert!(
        !ok.contains("access-control-allow-origin"),
        "CORS is closed: {ok}"
    );
    let pre = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Access-Control-Request-Method: PATCH",
        &format!("https://{addr}/api/cases/1"),
    ]);
    assert!(!pre.contains("access-control-allow"), "{pre}");
    let big_file = dir.path().join("big.json");
    std::fs::write(
        &big_file,
        format!("{{\"text\":\"{}\"}}", "x".repeat(200_000)),
    )
    .expect("write");
    let big_arg = format!("@{}", big_file.display());
    let too_big = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {analyst}"),
        "--data-binary",
        &big_arg,
        &format!("https://{addr}/api/cases/1/notes"),
    ]);
    assert!(too_big.starts_with("http/1.1 413"), "{too_big}");
    let page = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &format!("https://{addr}/api/flows?limit=1001"),
    ]);
    assert!(page.starts_with("http/1.1 400"), "{page}");
    // Plain HTTP to the TLS port is not served.
    let plain = Command::new("curl")
        .args(["-s", "-m", "3", &format!("http://{addr}/healthz")])
        .output()
        .expect("curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("ok"));
}
