//! The EVE bytes islet writes, pinned: every corpus capture (`corpus/pcap` and the
//! suricata-verify set `corpus/sv`) is read with one worker and the SHA-256 of its output is
//! compared with `tests/golden/eve.sha256`, written from main's output. A refactor that
//! changes one byte of one record fails here and names the captures.
//!
//! A change meant to alter the output (a new field, a fixed value) writes the file again with
//! `ISLET_BLESS=1 cargo test --release -p islet --test eve_golden` and shows the difference in
//! review: the file is one line per capture. `ISLET_GOLDEN_BIN=PATH` blesses with another
//! build of islet (main's, before a refactor).
//!
//! `stats` records are left out of the digest (their `uptime` is wall time), and the sensor is
//! named in a configuration (a checkpoint names the host otherwise).

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const GOLDEN: &str = "tests/golden/eve.sha256";

/// Every capture under `dir`, at any depth, as (path relative to `root`, full path).
fn captures(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(root, &p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        ) {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            out.push((rel, p));
        }
    }
}

/// `<exit status> <sha256 of the output without stats records>` of one capture.
fn digest(pcap: &Path, config: &Path) -> String {
    let bin = std::env::var_os("ISLET_GOLDEN_BIN")
        .filter(|_| std::env::var("ISLET_BLESS").as_deref() == Ok("1"))
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_islet").into());
    let o = Command::new(bin)
        .args(["read", "-q", "-w", "1", "-o", "-", "-c"])
        .arg(config)
        .arg(pcap)
        .output()
        .expect("run islet");
    let mut h = Sha256::new();
    for line in o.stdout.split_inclusive(|b| *b == b'\n') {
        if line.windows(22).any(|w| w == b"\"event_type\":\"stats\"") {
            continue;
        }
        h.update(line);
    }
    format!(
        "{} {}",
        o.status.code().unwrap_or(-1),
        hex::encode(h.finalize())
    )
}

#[test]
fn eve_bytes_match_mains_on_every_corpus_capture() {
    let Some(shared) = islet_testkit::shared_or_skip("eve_golden") else {
        return;
    };
    let root = shared.join("corpus");
    let mut caps = Vec::new();
    captures(&root, &root.join("pcap"), &mut caps);
    captures(&root, &root.join("sv"), &mut caps);
    caps.sort();
    assert!(caps.len() > 300, "{} captures in the corpus", caps.len());
    let config = std::env::temp_dir().join(format!("islet-golden-{}.toml", std::process::id()));
    std::fs::write(&config, "[output]\nsensor_name = \"golden\"\n").expect("config");
    let got: BTreeMap<String, String> = caps
        .iter()
        .map(|(r, p)| (r.clone(), digest(p, &config)))
        .collect();
    let _ = std::fs::remove_file(&config);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var("ISLET_BLESS").as_deref() == Ok("1") {
        let text: String = got.iter().map(|(r, d)| format!("{d} {r}\n")).collect();
        std::fs::write(&file, text).expect("write golden");
        eprintln!("wrote {} digests to {}", got.len(), file.display());
        return;
    }
    let text = std::fs::read_to_string(&file).expect("golden file");
    let want: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let (code, hash, rel) = (it.next()?, it.next()?, it.next()?);
            Some((rel.to_string(), format!("{code} {hash}")))
        })
        .collect();
    let mut differ = Vec::new();
    for (rel, d) in &got {
        match want.get(rel) {
            Some(w) if w == d => {}
            Some(w) => differ.push(format!("{rel}: {w} -> {d}")),
            None => differ.push(format!("{rel}: not in {GOLDEN}")),
        }
    }
    for rel in want.keys() {
        if !got.contains_key(rel) {
            differ.push(format!("{rel}: in {GOLDEN} but not in the corpus"));
        }
    }
    assert!(
        differ.is_empty(),
        "EVE output differs from main's on {} of {} captures (ISLET_BLESS=1 rewrites {GOLDEN} when that is meant):\n{}",
        differ.len(),
        got.len(),
        differ.join("\n")
    );
}
