//! External acceptance: suricata-verify's own `filter` checks, run by ../shared/tools/sv-check
//! against islet's EVE output. Every check must pass except those listed, with a reason, in
//! docs/COMPATIBILITY.md.

use std::collections::BTreeSet;
use std::process::Command;

fn documented_differences() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/COMPATIBILITY.md"
    ))
    .expect("docs/COMPATIBILITY.md");
    // Rows of the table: | `sv_name#index` | ... |
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|id| id.contains('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn suricata_verify_flow_and_anomaly_checks() {
    let Some(shared) = islet_testkit::shared_or_skip("sv_check") else {
        return;
    };
    if !islet_testkit::tool_or_skip("sv_check", "python3") {
        return;
    }
    let islet = env!("CARGO_BIN_EXE_islet");
    let out = Command::new("python3")
        .arg(shared.join("tools/sv-check"))
        .arg("--suite")
        .arg(shared.join("corpus/pcap"))
        .arg("--cmd")
        .arg(format!(
            "{islet} read {{pcap}} -o {{eve}} --community-id-seed {{cid_seed}} -q"
        ))
        .arg("--event-types")
        .arg("flow,tls,dns,http,ssh,quic,anomaly,smb,rdp,krb5")
        .output()
        .expect("run sv-check");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let failed: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split(':').next().unwrap_or("").to_string())
        .collect();
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("sv-check:"))
        .expect("sv-check summary");
    let passed: u32 = last
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("passed count");
    let allowed = documented_differences();
    let undocumented: Vec<_> = failed.difference(&allowed).collect();
    assert!(
        undocumented.is_empty(),
        "failing checks not in docs/COMPATIBILITY.md: {undocumented:?}"
    );
    let stale: Vec<_> = allowed.difference(&failed).collect();
    assert!(
        stale.is_empty(),
        "docs/COMPATIBILITY.md lists checks that now pass: {stale:?}"
    );
    assert!(passed >= 42, "only {passed} checks passed");
}
