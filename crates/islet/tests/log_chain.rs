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

    // A checkpoint forged with another key: the same record, its key id k2's, signed whole
    // with k2 as the sensor signs (the signature's value emptied, then filled in).
    let c = checkpoints[1];
    let v: serde_json::Value = serde_json::from_str(&log[c]).unwrap();
    let cp = &v["checkpoint"];
    let k2 = islet_sink::chain::read_signing_key(&d.join("k2").join("sensor.key")).unwrap();
    let mut forged_bytes = log[c]
        .replace(cp["signature"].as_str().unwrap(), "")
        .replace(
            cp["key_id"].as_str().unwrap(),
            &islet_sink::chain::key_id(&k2.verifying_key()),
        )
        .into_bytes();
    islet_sink::chain::sign_record(&k2, &mut forged_bytes, 0);
    let forged_line = String::from_utf8(forged_bytes).unwrap();
    assert_eq!(
        islet_sink::chain::verify_record(forged_line.as_bytes(), &k2.verifying_key()),
        Ok(())
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

/// `islet read` of the shared capture into `name`, signed with `key`, as sensor `sensor` with a
/// checkpoint every `every` records, keeping its chain head in `state` when given.
fn sensor_run(
    d: &Path,
    key: &str,
    sensor: &str,
    every: u32,
    state: Option<&Path>,
    name: &str,
) -> Vec<String> {
    let pcap = d.join("run.pcap");
    if !pcap.exists() {
        let o = islet(&[
            "synth",
            "--flows",
            "90",
            "--hosts",
            "11",
            "--seed",
            "17",
            "-o",
            p(&pcap),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let cfg = d.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!("[output]\ncheckpoint_every = {every}\nsensor_name = \"{sensor}\"\n"),
    )
    .expect("config");
    let out = d.join(name);
    let key = d.join(key).join("sensor.key").display().to_string();
    let mut args = vec!["read", "-q", "-w", "1", "-c", p(&cfg), "--sign-key", &key];
    if let Some(s) = state {
        args.extend(["--state-dir", p(s)]);
    }
    args.extend(["-o", p(&out), p(&pcap)]);
    let o = islet(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(&out)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect()
}

fn verify_with(d: &Path, files: &[&Path], key: &str, extra: &[&str]) -> (i32, String) {
    let pubkey = d.join(key).join("sensor.pub").display().to_string();
    let mut args = vec!["log", "verify"];
    args.extend(files.iter().map(|f| p(f)));
    args.extend(["--key", &pubkey]);
    args.extend(extra);
    let o = islet(&args);
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), msg)
}

fn keys(d: &Path, k: &str) {
    if !d.join(k).join("sensor.key").exists() {
        let o = islet(&["log", "keygen", "--out", p(&d.join(k))]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Issue 18, finding 7: only the signed fields of a checkpoint were covered, so a field added
/// to the final checkpoint, a space, or another value in an unsigned field still verified.
#[test]
fn finding_7_an_edited_final_checkpoint_fails_verification() {
    let d = dir().join("final");
    std::fs::create_dir_all(&d).expect("dir");
    keys(&d, "kf");
    let log = sensor_run(&d, "kf", "edge-04", 17, None, "final.json");
    let last = log.last().expect("records").clone();
    assert!(last.contains("\"final\":true"), "{last}");
    let (code, msg) = verify(&d, &log, "untouched.json", "kf");
    assert_eq!(code, 0, "{msg}");
    let v: serde_json::Value = serde_json::from_str(&last).expect("json");
    let kid = v["checkpoint"]["key_id"]
        .as_str()
        .expect("key id")
        .to_string();
    let edits = [
        // A field added to the checkpoint, and one at the top level.
        last.replacen("\"final\":true", "\"final\":true,\"operator\":\"ok\"", 1),
        last.replacen(",\"islet\":{", ",\"reviewed\":true,\"islet\":{", 1),
        // Whitespace: after a colon, between objects, at the end of the line.
        last.replacen("\"final\":true", "\"final\":  true", 1),
        last.replacen("},\"islet\"", "}, \"islet\"", 1),
        format!("{last}\t"),
        // A value outside the fields v1 signed: the key id.
        last.replacen(&kid, &"0".repeat(kid.len()), 1),
    ];
    for (i, e) in edits.iter().enumerate() {
        assert_ne!(e, &last);
        let mut edited = log.clone();
        *edited.last_mut().expect("last") = e.clone();
        let name = format!("final-edit-{i}.json");
        let (code, msg) = verify(&d, &edited, &name, "kf");
        assert_eq!(code, 2, "edit {i} verified: {e}\n{msg}");
        assert!(
            msg.contains(&format!("{name}:{}", log.len())) && msg.contains("bad signature"),
            "edit {i}: {msg}"
        );
    }
}

/// Issue 18, finding 7: a log cut exactly at a checkpoint verified, as did the first run's file
/// alone when the second run's was deleted. Given the sensor's state directory (or the last
/// sequence number), both are truncated.
#[test]
fn finding_7_a_log_cut_at_a_checkpoint_or_without_its_later_run_is_truncated() {
    let d = dir().join("runs");
    std::fs::create_dir_all(&d).expect("dir");
    keys(&d, "kr");
    let state = d.join("state");
    let a = sensor_run(&d, "kr", "rack-12", 19, Some(&state), "day1.json");
    let b = sensor_run(&d, "kr", "rack-12", 19, Some(&state), "day2.json");
    let c = sensor_run(&d, "kr", "rack-12", 19, Some(&state), "day3.json");
    let (f1, f2, f3) = (
        d.join("day1.json"),
        d.join("day2.json"),
        d.join("day3.json"),
    );
    // The runs are one chain: the second starts after the first's final checkpoint.
    let seq = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l).expect("json")["islet"]["seq"]
            .as_u64()
            .expect("seq")
    };
    assert_eq!(seq(&b[0]), seq(a.last().expect("a")) + 1);
    let last_seq = seq(c.last().expect("c"));
    let st = ["--state", p(&state)];
    let all: [&Path; 3] = [&f1, &f2, &f3];
    let (code, msg) = verify_with(&d, &all, "kr", &st);
    assert_eq!(code, 0, "{msg}");
    assert!(msg.contains("saved head"), "{msg}");
    let n = last_seq.to_string();
    let (code, msg) = verify_with(&d, &all, "kr", &["--expect-seq", &n]);
    assert_eq!(code, 0, "{msg}");

    // Runs deleted from the end: alone each still ends with a final checkpoint...
    let (code, msg) = verify_with(&d, &[&f1, &f2], "kr", &[]);
    assert_eq!(code, 0, "without the saved head this cannot be told: {msg}");
    // ...but not where the sensor's saved head says.
    for files in [&all[..1], &all[..2]] {
        let (code, msg) = verify_with(&d, files, "kr", &st);
        assert_eq!(code, 2, "{msg}");
        assert!(
            msg.contains("truncated") && msg.contains("missing"),
            "{msg}"
        );
        assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
        let (code, msg) = verify_with(&d, files, "kr", &["--expect-seq", &n]);
        assert_eq!(code, 2, "{msg}");
        assert!(msg.contains("truncated"), "{msg}");
    }

    // The last run's file cut right after one of its middle checkpoints.
    let cp = (0..c.len() - 1)
        .rev()
        .find(|&i| c[i].contains("\"event_type\":\"checkpoint\""))
        .expect("a middle checkpoint");
    let cut = d.join("day3-cut.json");
    std::fs::write(&cut, c[..=cp].join("\n") + "\n").expect("write");
    // Resumed runs: the verifier needs the whole chain or --partial.
    let (code, msg) = verify_with(&d, &[&f1, &f2, &cut], "kr", &st);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("day3-cut.json") && msg.contains("truncated"),
        "{msg}"
    );
    let (code, msg) = verify_with(&d, &[&cut], "kr", &["--partial", "--state", p(&state)]);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    // A log going on past the expected end, and a state directory without a head.
    let (code, msg) = verify_with(
        &d,
        &all,
        "kr",
        &["--expect-seq", &(last_seq - 3).to_string()],
    );
    assert_eq!(code, 2, "{msg}");
    let empty = d.join("no-state");
    std::fs::create_dir_all(&empty).expect("dir");
    let (code, msg) = verify_with(&d, &all, "kr", &["--state", p(&empty)]);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("no saved chain head"), "{msg}");
}
