//! `islet demo`: the main job on embedded defaults. Synthesise a scenario, analyse it like any
//! capture, write eve.json, and report what the evidence says; then the attack scenarios
//! (scan, floods, lateral movement, SLP) and the detections they raise.

use crate::Failure;
use crate::cli::{DemoArgs, ReadArgs, SensorArgs};
use islet_synth::SynthOptions;
use std::collections::HashMap;
use std::io::BufRead;

pub(crate) fn run(a: &DemoArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", a.dir.display())))?;
    let pcap = a.dir.join("scenario.pcap");
    let eve = a.dir.join("eve.json");
    let o = SynthOptions {
        flows: a.flows,
        seed: 7,
        ..SynthOptions::default()
    };
    let s = crate::synth::write(&o, &pcap)?;
    println!(
        "islet demo: synthesised {} packets in {} flows -> {}",
        s.packets,
        s.flows,
        pcap.display()
    );
    // The sensor's signing key: checkpoints in eve.json are signed with it.
    let keys = a.dir.join("keys");
    if !keys.join("sensor.key").exists() {
        islet_sink::chain::keygen(&keys).map_err(Failure::Runtime)?;
    }
    let args = ReadArgs {
        pcaps: vec![pcap.clone()],
        sensor: SensorArgs {
            sign_key: Some(keys.join("sensor.key")),
            output: eve.to_string_lossy().into_owned(),
            ..SensorArgs::default()
        },
        ..ReadArgs::default()
    };
    let summary = crate::read::run(&args)?;
    println!(
        "islet demo: analysed in {:.3}s ({:.0} packets/s on {} workers) -> {}",
        summary.wall.as_secs_f64(),
        summary.packets_per_sec(),
        summary.workers,
        eve.display()
    );
    report(&eve)?;
    let key =
        islet_sink::chain::read_public_key(&keys.join("sensor.pub")).map_err(Failure::Runtime)?;
    match islet_sink::verify::verify_files(
        std::slice::from_ref(&eve),
        &islet_sink::verify::Verify {
            key,
            partial: false,
        },
    ) {
        Ok(r) => println!(
            "islet demo: evidence chain verified: {} records, {} signed checkpoints (islet log verify {} --key {})",
            r.records,
            r.checkpoints,
            eve.display(),
            keys.join("sensor.pub").display()
        ),
        Err(e) => return Err(Failure::Runtime(format!("evidence chain: {e}"))),
    }
    attacks(a)
}

/// The attack scenarios, each read like the capture above, with what the detectors said.
fn attacks(a: &DemoArgs) -> Result<(), Failure> {
    println!("islet demo: attack scenarios (islet synth --profile …; docs/DETECTION.md):");
    for (profile, packets) in [
        ("scan", 0),
        ("syn-flood-spoofed", 50_000),
        ("udp-flood", 0),
        ("lateral", 0),
        ("slp", 0),
        ("ioc", 0),
    ] {
        let pcap = a.dir.join(format!("attack-{profile}.pcap"));
        let eve = a.dir.join(format!("attack-{profile}.json"));
        // The ioc scenario comes with the MISP event that names its indicators.
        let intel = if profile == "ioc" {
            let e = a.dir.join("attack-ioc.misp.json");
            crate::synth::write_ioc_event(&e)?;
            vec![e]
        } else {
            Vec::new()
        };
        let o = SynthOptions {
            profile: profile.parse().map_err(Failure::Input)?,
            max_packets: packets,
            seed: 7,
            ..SynthOptions::default()
        };
        crate::synth::write(&o, &pcap)?;
        let args = ReadArgs {
            pcaps: vec![pcap],
            sensor: SensorArgs {
                output: eve.to_string_lossy().into_owned(),
                quiet: true,
                intel,
                ..SensorArgs::default()
            },
            ..ReadArgs::default()
        };
        println!("  {profile}:");
        crate::read::run(&args)?;
        let f = std::fs::File::open(&eve)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", eve.display())))?;
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| Failure::Runtime(e.to_string()))?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event_type"] == "alert" {
                println!(
                    "    {:<24} {}",
                    v["alert"]["metadata"]["detection"][0]
                        .as_str()
                        .unwrap_or("?"),
                    v["alert"]["signature"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("islet detect: ")
                );
            }
        }
    }
    console(a)
}

/// The investigation side: start the console, have a sensor forward the scenario and the
/// attacks to it over the Forward protocol, and serve it (until Ctrl-C, or exit with --exit).
fn console(a: &DemoArgs) -> Result<(), Failure> {
    let data = a.dir.join("console");
    let mut cfg = islet_console::serve::ServeConfig::new(data.clone());
    cfg.listen.clone_from(&a.listen);
    cfg.forward_listen = Some("127.0.0.1:0".into());
    // The Forward port takes a shared key even here: one made for this run.
    let mut key = [0u8; 24];
    getrandom::getrandom(&mut key).map_err(|e| Failure::Runtime(format!("random: {e}")))?;
    let key = hex::encode(key);
    cfg.forward_shared_key = Some(key.clone());
    let running = islet_console::serve::start(cfg).map_err(Failure::Runtime)?;
    let forward = running
        .forward
        .map(|f| f.to_string())
        .ok_or_else(|| Failure::Runtime("the console has no Forward receiver".into()))?;
    let mut pcaps = vec![a.dir.join("scenario.pcap")];
    pcaps.extend(
        ["lateral", "slp", "scan", "ioc"]
            .iter()
            .map(|p| a.dir.join(format!("attack-{p}.pcap"))),
    );
    for pcap in pcaps {
        // The ioc scenario is read with its MISP event, as a sensor with that feed would.
        let intel = if pcap.ends_with("attack-ioc.pcap") {
            vec![a.dir.join("attack-ioc.misp.json")]
        } else {
            Vec::new()
        };
        let args = ReadArgs {
            pcaps: vec![pcap],
            sensor: SensorArgs {
                output: "/dev/null".into(),
                quiet: true,
                forward: vec![forward.clone()],
                forward_shared_key: Some(key.clone()),
                // One sensor, one chain: each run continues where the last one ended, so the
                // console sees one linked chain rather than restarts.
                state_dir: Some(a.dir.join("sensor-state")),
                intel,
                ..SensorArgs::default()
            },
            ..ReadArgs::default()
        };
        crate::read::run(&args)?;
    }
    let token = crate::serve::create_token(&data, islet_store::Role::Analyst, "demo")?;
    println!();
    println!(
        "islet demo: the sensor forwarded its evidence to the console (Forward protocol, acked after commit)."
    );
    println!(
        "islet demo: console at http://{}/ — sign in with this analyst token:",
        running.http
    );
    println!("  {token}");
    println!(
        "  (API: curl -H 'Authorization: Bearer {token}' http://{}/api/cases)",
        running.http
    );
    if a.exit {
        running.stop();
        return Ok(());
    }
    println!(
        "islet demo: serving until Ctrl-C. Next: `islet serve --data {}` to reopen it; `islet read PCAP -o -` on your own captures.",
        data.display()
    );
    let term = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
    }
    while !term.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.stop();
    Ok(())
}

#[derive(Default)]
struct Talker {
    bytes: u64,
    flows: u64,
}

fn report(eve: &std::path::Path) -> Result<(), Failure> {
    let f = std::fs::File::open(eve)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", eve.display())))?;
    let mut protos: HashMap<String, u64> = HashMap::new();
    let mut apps: HashMap<String, u64> = HashMap::new();
    let mut talkers: HashMap<String, Talker> = HashMap::new();
    let mut anomalies: HashMap<String, u64> = HashMap::new();
    let mut metadata: HashMap<String, u64> = HashMap::new();
    let mut names: HashMap<String, u64> = HashMap::new();
    let (mut flows, mut bytes) = (0u64, 0u64);
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| Failure::Runtime(e.to_string()))?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match v["event_type"].as_str() {
            Some("flow") => {
                flows += 1;
                let b = v["flow"]["bytes_toserver"].as_u64().unwrap_or(0)
                    + v["flow"]["bytes_toclient"].as_u64().unwrap_or(0);
                bytes += b;
                *protos
                    .entry(v["proto"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
                let app = v["app_proto"].as_str().unwrap_or("-").to_string();
                *apps.entry(app).or_default() += 1;
                let t = talkers
                    .entry(v["src_ip"].as_str().unwrap_or("?").to_string())
                    .or_default();
                t.bytes += b;
                t.flows += 1;
            }
            Some(kind @ ("tls" | "quic" | "http" | "dns" | "ssh" | "smb" | "rdp" | "krb5")) => {
                *metadata.entry(kind.to_string()).or_default() += 1;
                let name = match kind {
                    "tls" => v["tls"]["sni"].as_str(),
                    "http" => v["http"]["hostname"].as_str(),
                    _ => None,
                };
                if let Some(n) = name {
                    *names.entry(n.to_string()).or_default() += 1;
                }
            }
            Some("anomaly") => {
                let ev = v["anomaly"]["event"].as_str().unwrap_or("?").to_string();
                *anomalies.entry(ev).or_default() += 1;
            }
            _ => {}
        }
    }
    println!();
    println!("  flows        {flows}  ({:.1} MB)", bytes as f64 / 1e6);
    println!("  protocols    {}", top(&protos, 6));
    println!("  app_proto    {}", top(&apps, 8));
    println!("  metadata     {}", top(&metadata, 8));
    println!("  top services {}", top(&names, 4));
    let mut tk: Vec<_> = talkers.into_iter().collect();
    tk.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    println!("  top talkers (client, by bytes):");
    for (ip, t) in tk.iter().take(5) {
        println!(
            "    {ip:<40} {:>10.1} KB in {} flows",
            t.bytes as f64 / 1e3,
            t.flows
        );
    }
    if anomalies.is_empty() {
        println!("  anomalies    none");
    } else {
        println!("  anomalies    {}", top(&anomalies, 8));
    }
    println!();
    Ok(())
}

fn top(m: &HashMap<String, u64>, n: usize) -> String {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(n)
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(" ")
}
