//! The tamper-evident event chain as an operator meets it: `islet log keygen`, `islet read
//! --sign-key`, and `islet log verify` naming the first record that was edited, deleted,
//! swapped, cut off or forged, on a log islet wrote itself from a synthetic capture.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn islet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-log-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn p(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A signed log of a small synthetic capture, with a checkpoint every 25 records.
fn signed_log(d: &Path, key: &str, name: &str) -> Vec<String> {
    let pcap = d.join("mixed.pcap");
    if !pcap.exists() {
        let o = islet(&[
            "synth",
            "--flows",
            "120",
            "--hosts",
            "16",
            "--seed",
            "5",
            "-o",
            p(&pcap),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let cfg = d.join("chain.toml");
    std::fs::write(
        &cfg,
        "[output]\ncheckpoint_every = 25\nsensor_name = \"test-sensor\"\n",
    )
    .expect("config");
    let out = d.join(name);
    let o = islet(&[
        "read",
        "-q",
        "-w",
        "1",
        "-c",
        p(&cfg),
        "--sign-key",
        &d.join(key).join("sensor.key").display().to_string(),
        "-o",
        p(&out),
        p(&pcap),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(&out)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect()
}

fn verify(d: &Path, lines: &[String], name: &str, key: &str) -> (i32, String) {
    let f = d.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&f, text).expect("write");
    verify_file(d, &f, key)
}

fn verify_file(d: &Path, f: &Path, key: &str) -> (i32, String) {
    let o = islet(&[
        "log",
        "verify",
        p(f),
        "--key",
        &d.join(key).join("sensor.pub").display().to_string(),
    ]);
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), msg)
}

#[test]
fn verify_names_the_first_tampered_record() {
    let d = dir();
    for k in ["k1", "k2"] {
        let o = islet(&["log", "keygen", "--out", p(&d.join(k))]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(d.join(k).join("sensor.key").exists() && d.join(k).join("sensor.pub").exists());
    }
    let log = signed_log(&d, "k1", "eve.json");
    assert!(log.len() > 100, "{} records", log.len());
    let checkpoints: Vec<usize> = (0..log.len())
        .filter(|&i| log[i].contains("\"event_type\":\"checkpoint\""))
        .collect();
    assert!(checkpoints.len() >= 4, "{checkpoints:?}");
    assert!(log.last().unwrap().contains("\"final\":true"));

    // Untouched: passes, with the counts.
    let (code, msg) = verify(&d, &log, "ok.json", "k1");
    assert_eq!(code, 0, "{msg}");
    assert!(msg.contains(&format!("ok: {} records", log.len())), "{msg}");

    // The wrong key: the first checkpoint fails.
    let (code, msg) = verify(&d, &log, "ok.json", "k2");
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains(&format!(":{}", checkpoints[0] + 1)) && msg.contains("bad signature"),
        "{msg}"
    );

    // Editing a field of the record at line 40 or just after: named as altered.
    let mut edited = log.clone();
    let i = (39..).find(|&i| log[i].contains("\"dest_port\":")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&edited[i]).unwrap();
    let port = v["dest_port"].as_u64().unwrap();
    edited[i] = edited[i].replacen(
        &format!("\"dest_port\":{port}"),
        &format!("\"dest_port\":{}", port + 1),
        1,
    );
    let (code, msg) = verify(&d, &edited, "edited.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains(&format!("edited.json:{0} (seq {0}): altered", i + 1)),
        "{msg}"
    );

    // Deleting line 60: the record after the hole is named, and how many are missing.
    let mut deleted = log.clone();
    deleted.remove(59);
    let (code, msg) = verify(&d, &deleted, "deleted.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("deleted.json:60 (seq 61): removed"), "{msg}");
    assert!(msg.contains("1 record removed"), "{msg}");

    // Swapping lines 70 and 71.
    let mut swapped = log.clone();
    swapped.swap(69, 70);
    let (code, msg) = verify(&d, &swapped, "swapped.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("swapped.json:70 (seq 71): reordered"), "{msg}");

    // Truncating: whole records cut from the end, and a record cut in the middle.
    let cut = &log[..log.len() - 10];
    let (code, msg) = verify(&d, cut, "cut.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains(&format!("cut.json:{}", cut.len())) && msg.contains("truncated"),
        "{msg}"
    );
    let mut text = log.join("\n");
    text.truncate(text.len() - 50);
    let f = d.join("cut-mid.json");
    std::fs::write(&f, &text).unwrap();
    let (code, msg) = verify_file(&d, &f, "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    // A checkpoint forged with another key: the same checkpoint, signed with k2 over exactly
    // what k1 signed.
    let c = checkpoints[1];
    let v: serde_json::Value = serde_json::from_str(&log[c]).unwrap();
    let cp = &v["checkpoint"];
    let msg = islet_sink::chain::checkpoint_message(
        cp["sensor"].as_str().unwrap(),
        v["islet"]["seq"].as_u64().unwrap(),
        v["islet"]["prev"].as_str().unwrap(),
        cp["first_seq"].as_u64().unwrap(),
        cp["last_seq"].as_u64().unwrap(),
        cp["final"].as_bool().unwrap(),
        v["timestamp"].as_str().unwrap(),
    );
    let k2 = islet_sink::chain::read_signing_key(&d.join("k2").join("sensor.key")).unwrap();
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let sig = base64::engine::general_purpose::STANDARD.encode(k2.sign(msg.as_bytes()).to_bytes());
    let forged_line = log[c]
        .replace(cp["signature"].as_str().unwrap(), &sig)
        .replace(
            cp["key_id"].as_str().unwrap(),
            &islet_sink::chain::key_id(&k2.verifying_key()),
        );
    assert_ne!(forged_line, log[c]);
    let mut forged = log.clone();
    forged[c] = forged_line;
    let (code, msg) = verify(&d, &forged, "forged.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains(&format!("forged.json:{}", c + 1)) && msg.contains("signed by key"),
        "{msg}"
    );
    // ... and the log signed by k2 from the start verifies only with k2.
    let other = signed_log(&d, "k2", "eve2.json");
    assert_eq!(verify(&d, &other, "other.json", "k2").0, 0);
    assert_eq!(verify(&d, &other, "other.json", "k1").0, 2);

    // An inserted record without a sequence number, and a duplicated record.
    let mut inserted = log.clone();
    inserted.insert(
        30,
        r#"{"timestamp":"2020-01-01T00:00:00.000000+0000","event_type":"flow"}"#.into(),
    );
    let (code, msg) = verify(&d, &inserted, "inserted.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("inserted.json:31: inserted"), "{msg}");
    let mut dup = log.clone();
    dup.insert(30, log[29].clone());
    let (code, msg) = verify(&d, &dup, "dup.json", "k1");
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("dup.json:31 (seq 30): reordered"), "{msg}");
}
