//! Signed policy bundles through the command line: keygen, sign, verify, and every kind of
//! tampering rejected with its reason while the previously active bundle stays in force.

use std::path::{Path, PathBuf};
use std::process::Command;

fn islet(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_islet"))
        .args(args)
        .output()
        .expect("run islet");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-policy-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

const POLICY: &str = r#"
tiers = ["platform", "app"]
[[rule]]
id = "db-from-web"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "shop", labels = { app = "db" } }
peers = [{ namespace = "shop", labels = { app = "web" } }]
ports = ["tcp/5432"]
"#;

const NETPOL: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-all\n  namespace: shop\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n";

fn bundle(name: &str) -> PathBuf {
    let b = dir(name);
    std::fs::write(b.join("10-app.toml"), POLICY).expect("write");
    std::fs::write(b.join("20-netpol.yaml"), NETPOL).expect("write");
    b
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn tampering_is_rejected_and_the_active_bundle_stays() {
    let keys = dir("keys");
    let other = dir("other-keys");
    let state = dir("state");
    let (code, out) = islet(&["policy", "keygen", "--out", s(&keys)]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(islet(&["policy", "keygen", "--out", s(&other)]).0, 0);
    let key = keys.join("policy.key");
    let pubkey = keys.join("policy.pub");
    assert!(
        islet(&["policy", "keygen", "--out", s(&keys)])
            .1
            .contains("not overwriting")
    );

    // Version 2, valid: verifies, and becomes active.
    let v2 = bundle("v2");
    let (code, out) = islet(&["policy", "sign", "--key", s(&key), "--version", "2", s(&v2)]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = islet(&[
        "policy",
        "verify",
        "--pubkey",
        s(&pubkey),
        "--state",
        s(&state),
        s(&v2),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("now active: version 2"), "{out}");
    let keep = "the active bundle (version 2";

    let reject = |b: &Path, want: &str, invalid_alone: bool| {
        let (code, out) = islet(&[
            "policy",
            "verify",
            "--pubkey",
            s(&pubkey),
            "--state",
            s(&state),
            s(b),
        ]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains(want), "want {want:?} in {out}");
        assert!(out.contains(keep), "{out}");
        // Without state, the bundle is just as invalid (but for a replay, which only the
        // state's version tells).
        let alone = islet(&["policy", "verify", "--pubkey", s(&pubkey), s(b)]).0;
        assert_eq!(alone, if invalid_alone { 2 } else { 0 });
    };

    // One byte of a policy file flipped.
    let flipped = bundle("flipped");
    islet(&[
        "policy",
        "sign",
        "--key",
        s(&key),
        "--version",
        "3",
        s(&flipped),
    ]);
    let f = flipped.join("10-app.toml");
    let mut b = std::fs::read(&f).expect("read");
    let i = b.iter().position(|&c| c == b'5').expect("a digit");
    b[i] = b'6';
    std::fs::write(&f, b).expect("write");
    reject(&flipped, "hash mismatch: 10-app.toml", true);

    // The signature stripped.
    let stripped = bundle("stripped");
    islet(&[
        "policy",
        "sign",
        "--key",
        s(&key),
        "--version",
        "3",
        s(&stripped),
    ]);
    std::fs::remove_file(stripped.join("islet-bundle.sig")).expect("strip");
    reject(&stripped, "signature missing", true);

    // Never signed.
    reject(&bundle("unsigned"), "unsigned bundle", true);

    // Re-signed with a key that is not pinned.
    let resigned = bundle("resigned");
    islet(&[
        "policy",
        "sign",
        "--key",
        s(&other.join("policy.key")),
        "--version",
        "3",
        s(&resigned),
    ]);
    reject(&resigned, "bad signature", true);

    // The manifest edited after signing (a file added to it).
    let extra = bundle("extra");
    islet(&[
        "policy",
        "sign",
        "--key",
        s(&key),
        "--version",
        "3",
        s(&extra),
    ]);
    std::fs::write(extra.join("30-more.toml"), "").expect("write");
    reject(
        &extra,
        "30-more.toml is not listed in the signed manifest",
        true,
    );

    // An older version replayed.
    let old = bundle("old");
    islet(&[
        "policy",
        "sign",
        "--key",
        s(&key),
        "--version",
        "1",
        s(&old),
    ]);
    reject(&old, "version 1 is older than the active version 2", false);

    // Expired.
    let expired = bundle("expired");
    let (code, out) = islet(&[
        "policy",
        "sign",
        "--key",
        s(&key),
        "--version",
        "3",
        "--not-before",
        "2020-01-01T00:00:00Z",
        "--not-after",
        "2021-01-01T00:00:00Z",
        s(&expired),
    ]);
    assert_eq!(code, 0, "{out}");
    reject(&expired, "expired: valid until 2021-01-01T00:00:00Z", true);

    // A valid newer version is accepted.
    let v3 = bundle("v3");
    islet(&["policy", "sign", "--key", s(&key), "--version", "3", s(&v3)]);
    let (code, out) = islet(&[
        "policy",
        "verify",
        "--pubkey",
        s(&pubkey),
        "--state",
        s(&state),
        s(&v3),
    ]);
    assert_eq!(code, 0, "{out}");
    for d in [
        keys, other, state, v2, flipped, stripped, resigned, extra, old, expired, v3,
    ] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn check_warns_and_show_lists() {
    let b = bundle("check");
    let inv = b.join("inventory.toml.txt");
    std::fs::write(&inv, "[[workload]]\nname = \"db-0\"\nkind = \"pod\"\nnamespace = \"other\"\nlabels = { app = \"db\" }\naddresses = [\"10.0.0.1\"]\n").expect("inv");
    std::fs::write(b.join("30-bad.yaml"), "kind: NetworkPolicy\nmetadata:\n  name: x\n  namespace: shop\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n").expect("w");
    let (code, out) = islet(&["policy", "check", s(&b), "--inventory", s(&inv)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rule db-from-web") && out.contains("selects no workload"),
        "{out}"
    );
    assert!(out.contains("named ports"), "{out}");
    let (code, out) = islet(&["policy", "show", s(&b)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("db-from-web") && out.contains("shop/deny-all#ingress"),
        "{out}"
    );
    std::fs::write(b.join("40-broken.toml"), "[[rule]]\nid = 1\n").expect("w");
    let (code, out) = islet(&["policy", "check", s(&b)]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("40-broken.toml: line 2"), "{out}");
    let _ = std::fs::remove_dir_all(b);
}
