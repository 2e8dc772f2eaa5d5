//! The console in a real browser: Playwright (playwright-core from npm, installed by .ci/run)
//! drives Debian's Chromium headless through `crates/islet-console/tests/browser/console.mjs`:
//! it signs in with a token, opens the lateral-movement case, changes its status, adds a note
//! and moves the map's time slider. Screenshots are kept in `target/browser-artifacts/`. What
//! the browser did is then checked through the API.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_islet");

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../islet-console/tests/browser")
}

fn tools_or_skip() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let pw = browser_dir().join("node_modules/playwright-core").is_dir();
    let chromium =
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some();
    if node && pw && chromium {
        return true;
    }
    let why = format!(
        "node {node}, playwright-core {pw} (npm install --prefix {}), chromium {chromium} (apt install chromium)",
        browser_dir().display()
    );
    assert!(
        std::env::var_os("ISLET_REQUIRE_TOOLS").is_none(),
        "the browser test needs: {why}"
    );
    eprintln!("skipping the browser test: {why}");
    false
}

#[test]
fn analyst_triages_a_case_and_travels_the_map_in_chromium() {
    if !tools_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args([
            "serve", "token", "create", "--role", "analyst", "--name", "ana", "--data",
        ])
        .arg(&data)
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let console = islet_testkit::console::Console::start(BIN, &data, "127.0.0.1:0", &[], &[]);
    let (http, fwd) = (console.http.clone(), console.forward.clone());
    let pcap = dir.path().join("lateral.pcap");
    assert!(
        Command::new(BIN)
            .args(["synth", "--profile", "lateral", "-o"])
            .arg(&pcap)
            .output()
            .expect("synth")
            .status
            .success()
    );
    assert!(
        Command::new(BIN)
            .arg("read")
            .arg(&pcap)
            .args(["-o", "/dev/null", "-q", "--forward", &fwd])
            .output()
            .expect("read")
            .status
            .success()
    );
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    let run = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .arg(format!("http://{http}"))
        .arg(&token)
        .arg(&artifacts)
        .output()
        .expect("node");
    drop(console);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "browser test failed:\n{text}");
    for shot in [
        "1-cases",
        "2-case",
        "3-map-end",
        "4-map-start",
        "5-map-flows",
    ] {
        let p = artifacts.join(format!("{shot}.png"));
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000),
            "screenshot {}",
            p.display()
        );
    }
    let store = islet_store::SqliteStore::open_reader(&data.join("islet.sqlite")).expect("store");
    use islet_store::CaseStore as _;
    let cases = store
        .cases(&islet_store::CaseQuery::default())
        .expect("cases");
    let case = cases
        .items
        .iter()
        .find(|c| c.title.contains("remote execution over SMB"))
        .expect("the case");
    let d = store.case(case.id).expect("detail");
    assert_eq!(d.summary.status, islet_store::Status::InProgress);
    assert!(
        d.notes
            .iter()
            .any(|n| n.author == "ana" && n.text.contains("isolating")),
        "{:?}",
        d.notes
    );
}
