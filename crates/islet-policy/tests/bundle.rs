//! Signed bundles and the policy state under attack (issue 18, findings 1 and 9): a bundle is
//! exactly the files its manifest lists, whatever else is dropped into its directory, and the
//! rollback floor survives the loss of any one state file.

use ed25519_dalek::{SigningKey, VerifyingKey};
use islet_policy::bundle::{self, BundleError, EntryKind};
use islet_policy::state::{Outcome, State};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

const NOW: i64 = 1_800_000_000_000_000_000;
const DAY: i64 = 86_400_000_000_000;

const ALLOW: &str = r#"
tiers = ["app"]
[[rule]]
id = "db-from-web"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "shop", labels = { app = "db" } }
peers = [{ namespace = "shop", labels = { app = "web" } }]
ports = ["tcp/5432"]
"#;

const EVIL: &str = r#"
tiers = ["app"]
[[rule]]
id = "injected"
tier = "app"
action = "allow"
direction = "ingress"
subject = { namespace = "shop" }
"#;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("islet-policy-bundle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn key() -> (SigningKey, VerifyingKey) {
    let sk = SigningKey::from_bytes(&[7u8; 32]);
    let pk = sk.verifying_key();
    (sk, pk)
}

/// A signed bundle of one policy file at `version`.
fn signed(name: &str, version: u64) -> PathBuf {
    let d = tmp(name);
    std::fs::write(d.join("10-app.toml"), ALLOW).expect("write");
    bundle::sign(&d, &key().0, version, NOW - DAY, NOW + DAY).expect("sign");
    d
}

fn verify(d: &Path) -> Result<bundle::Verified, BundleError> {
    bundle::verify_bundle(d, &[key().1], NOW, None)
}

/// The bundle is refused for the entry `escaped`, of `kind`.
fn refused_for(d: &Path, escaped: &str, kind: EntryKind) {
    let e = verify(d).expect_err("an unlisted entry refuses the bundle");
    match &e {
        BundleError::Unlisted { entry, kind: k, .. } => {
            assert_eq!(entry, escaped, "{e}");
            assert_eq!(*k, kind, "{e}");
        }
        other => panic!("{}: want unlisted {escaped}, got {other:?}", d.display()),
    }
    assert!(
        e.to_string().contains("not listed in the signed manifest"),
        "{e}"
    );
}

#[test]
fn finding1_non_utf8_file_in_signed_bundle_is_refused() {
    let d = signed("non-utf8", 3);
    assert!(verify(&d).is_ok());
    let name = OsStr::from_bytes(b"\xfe\x80-injected.yaml");
    std::fs::write(d.join(name), EVIL).expect("write");
    refused_for(&d, "\\xfe\\x80-injected.yaml", EntryKind::File);
    // A valid but non-ASCII name and a terminal escape are shown escaped as well.
    std::fs::remove_file(d.join(name)).expect("rm");
    std::fs::write(d.join("\u{1b}[2K\u{e9}.toml"), EVIL).expect("write");
    refused_for(&d, "\\x1b[2K\\xc3\\xa9.toml", EntryKind::File);
}

#[test]
fn finding1_hidden_file_is_refused() {
    let d = signed("hidden", 3);
    std::fs::write(d.join(".zz-evil.toml"), EVIL).expect("write");
    refused_for(&d, ".zz-evil.toml", EntryKind::File);
}

#[test]
fn finding1_file_of_any_name_is_refused() {
    for (i, name) in [
        "README.md",
        "10-APP.toml",
        "10-app.toml~",
        "islet-bundle.json.bak",
    ]
    .into_iter()
    .enumerate()
    {
        let d = signed(&format!("other-name-{i}"), 3);
        std::fs::write(d.join(name), EVIL).expect("write");
        refused_for(&d, name, EntryKind::File);
    }
}

#[test]
fn finding1_symlink_is_refused_and_never_followed() {
    let d = signed("symlink", 3);
    let outside = tmp("symlink-target");
    std::fs::write(outside.join("evil.toml"), EVIL).expect("write");
    std::os::unix::fs::symlink(outside.join("evil.toml"), d.join("20-link.toml")).expect("ln");
    refused_for(&d, "20-link.toml", EntryKind::Symlink);

    // A listed file replaced by a link to a copy of itself: same bytes, still refused.
    let d = signed("symlink-listed", 3);
    std::fs::rename(d.join("10-app.toml"), outside.join("10-app.toml")).expect("mv");
    std::os::unix::fs::symlink(outside.join("10-app.toml"), d.join("10-app.toml")).expect("ln");
    match verify(&d) {
        Err(BundleError::NotAFile { kind, .. }) => assert_eq!(kind, EntryKind::Symlink),
        other => panic!("want not-a-file, got {other:?}"),
    }
    // A dangling link is an entry too.
    let d = signed("symlink-dangling", 3);
    std::os::unix::fs::symlink("/nonexistent/x.toml", d.join("x.toml")).expect("ln");
    refused_for(&d, "x.toml", EntryKind::Symlink);
}

#[test]
fn finding1_subdirectory_is_refused() {
    let d = signed("subdir", 3);
    std::fs::create_dir(d.join("policies.toml")).expect("mkdir");
    std::fs::write(d.join("policies.toml").join("evil.toml"), EVIL).expect("write");
    refused_for(&d, "policies.toml", EntryKind::Directory);
    let d = signed("subdir-empty", 3);
    std::fs::create_dir(d.join(".git")).expect("mkdir");
    refused_for(&d, ".git", EntryKind::Directory);
}

#[test]
fn finding1_fifo_is_refused_without_blocking() {
    let d = signed("fifo", 3);
    let ok = std::process::Command::new("mkfifo")
        .arg(d.join("pipe.toml"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("no mkfifo: skipped");
        return;
    }
    refused_for(&d, "pipe.toml", EntryKind::Special);
}

#[test]
fn finding1_verified_bytes_are_the_bytes_parsed() {
    let d = signed("toctou", 3);
    let v = verify(&d).expect("valid");
    // The file changes after verification: what is parsed is what was verified.
    std::fs::write(d.join("10-app.toml"), EVIL).expect("write");
    let p = v.policy().expect("policy");
    assert!(p.rules.iter().any(|r| r.id == "db-from-web"));
    assert!(!p.rules.iter().any(|r| r.id == "injected"));
    assert!(matches!(verify(&d), Err(BundleError::HashMismatch { .. })));
}

#[test]
fn sign_refuses_what_would_not_verify() {
    let d = tmp("sign-extra");
    std::fs::write(d.join("10-app.toml"), ALLOW).expect("write");
    std::fs::write(d.join(OsStr::from_bytes(b"\xff.toml")), EVIL).expect("write");
    let e = bundle::sign(&d, &key().0, 1, NOW - DAY, NOW + DAY).expect_err("refused");
    assert!(
        e.to_string()
            .contains("\\xff.toml (file) is not a policy file"),
        "{e}"
    );
    let d = tmp("sign-link");
    std::fs::write(d.join("10-app.toml"), ALLOW).expect("write");
    std::os::unix::fs::symlink(d.join("10-app.toml"), d.join("20-app.toml")).expect("ln");
    let e = bundle::sign(&d, &key().0, 1, NOW - DAY, NOW + DAY).expect_err("refused");
    assert!(
        matches!(
            e,
            BundleError::NotPolicyFile {
                kind: EntryKind::Symlink,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn manifest_names_are_checked_even_when_signed() {
    // A manifest signed by the pinned key that lists a path outside the bundle.
    let d = tmp("manifest-path");
    std::fs::write(d.join("10-app.toml"), ALLOW).expect("write");
    bundle::sign(&d, &key().0, 1, NOW - DAY, NOW + DAY).expect("sign");
    let m = std::fs::read_to_string(d.join(bundle::MANIFEST)).expect("read");
    let m = m.replace("\"10-app.toml\"", "\"../10-app.toml\"");
    std::fs::write(d.join(bundle::MANIFEST), &m).expect("write");
    use ed25519_dalek::Signer as _;
    let sig = key().0.sign(m.as_bytes());
    use base64::Engine as _;
    std::fs::write(
        d.join(bundle::SIGNATURE),
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    )
    .expect("write");
    let e = verify(&d).expect_err("refused");
    assert!(matches!(e, BundleError::Manifest { .. }), "{e}");
}

fn accepted(o: Outcome) -> bundle::Verified {
    match o {
        Outcome::Accepted(v) => v,
        Outcome::Rejected { reason, .. } => panic!("rejected: {reason}"),
    }
}

fn rejected(o: Outcome) -> (BundleError, Option<bundle::Verified>) {
    match o {
        Outcome::Accepted(v) => panic!("accepted version {}", v.info.version),
        Outcome::Rejected { reason, active } => (reason, active),
    }
}

#[test]
fn state_keeps_exactly_the_verified_bytes() {
    let st = tmp("state-copy");
    let v2 = signed("state-copy-v2", 2);
    let s = State::new(&st);
    accepted(s.load(&v2, &[key().1], NOW));
    let mut names: Vec<String> = std::fs::read_dir(st.join("active"))
        .expect("active")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["10-app.toml", "islet-bundle.json", "islet-bundle.sig"]
    );
    // A bundle with an injected file is refused and nothing of it reaches the state.
    let v3 = signed("state-copy-v3", 3);
    std::fs::write(v3.join(OsStr::from_bytes(b"\xff-evil.toml")), EVIL).expect("write");
    let (reason, active) = rejected(s.load(&v3, &[key().1], NOW));
    assert!(reason.to_string().contains("\\xff-evil.toml"), "{reason}");
    assert_eq!(active.expect("active").info.version, 2);
    assert!(
        !std::fs::read_dir(st.join("active"))
            .expect("active")
            .any(|e| e
                .expect("entry")
                .file_name()
                .as_bytes()
                .starts_with(b"\xff"))
    );
}

/// A state at version 2, and the version 1 and 3 bundles.
fn state_at_2(name: &str) -> (State, PathBuf, PathBuf) {
    let st = tmp(&format!("{name}-state"));
    let s = State::new(&st);
    accepted(s.load(&signed(&format!("{name}-v2"), 2), &[key().1], NOW));
    (
        s,
        signed(&format!("{name}-v1"), 1),
        signed(&format!("{name}-v3"), 3),
    )
}

#[test]
fn finding9_deleted_active_record_fails_closed() {
    let (s, v1, v3) = state_at_2("no-active-json");
    std::fs::remove_file(s.dir.join("active.json")).expect("rm");
    for b in [&v1, &v3] {
        let (reason, active) = rejected(s.load(b, &[key().1], NOW));
        assert!(matches!(reason, BundleError::State { .. }), "{reason}");
        assert!(
            reason.to_string().contains("refusing to start afresh"),
            "{reason}"
        );
        assert!(active.is_none());
    }
    // Also with only the active copy left.
    std::fs::remove_file(s.dir.join("highest.json")).expect("rm");
    let (reason, _) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(matches!(reason, BundleError::State { .. }), "{reason}");
    // Removing the whole directory is the deliberate reset.
    std::fs::remove_dir_all(&s.dir).expect("rm");
    accepted(s.load(&v1, &[key().1], NOW));
}

#[test]
fn finding9_corrupt_record_fails_closed() {
    for (file, text) in [
        ("active.json", "{\"version\":"),
        ("highest.json", "garbage"),
    ] {
        let (s, v1, v3) = state_at_2(&format!("corrupt-{file}"));
        std::fs::write(s.dir.join(file), text).expect("write");
        for b in [&v1, &v3] {
            let (reason, _) = rejected(s.load(b, &[key().1], NOW));
            assert!(
                reason.to_string().contains(&format!("{file} is corrupt")),
                "{reason}"
            );
        }
    }
}

#[test]
fn finding9_deleting_one_file_never_lowers_the_floor() {
    // highest.json gone: active.json holds the floor.
    let (s, v1, v3) = state_at_2("no-highest");
    std::fs::remove_file(s.dir.join("highest.json")).expect("rm");
    let (reason, active) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(
        matches!(
            reason,
            BundleError::Replay {
                version: 1,
                active: 2,
                ..
            }
        ),
        "{reason}"
    );
    assert_eq!(active.expect("active").info.version, 2);
    accepted(s.load(&v3, &[key().1], NOW));
    assert!(s.dir.join("highest.json").exists());

    // active/ gone: the records hold the floor; a newer bundle is still accepted.
    let (s, v1, v3) = state_at_2("no-copy");
    std::fs::remove_dir_all(s.dir.join("active")).expect("rm");
    let (reason, active) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(matches!(reason, BundleError::Replay { .. }), "{reason}");
    assert!(active.is_none());
    accepted(s.load(&v3, &[key().1], NOW));

    // active.json rewritten to an older version: highest.json still says 2.
    let (s, v1, _) = state_at_2("older-record");
    let h = std::fs::read_to_string(s.dir.join("highest.json")).expect("read");
    std::fs::write(
        s.dir.join("active.json"),
        h.replace("\"version\":2", "\"version\":1"),
    )
    .expect("write");
    let (reason, _) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(
        matches!(reason, BundleError::Replay { active: 2, .. }),
        "{reason}"
    );
}

#[test]
fn an_interrupted_install_completes_on_the_next_load() {
    // The records say 3 but the copy is still 2 (a crash before the swap).
    let (s, v1, v3) = state_at_2("interrupted");
    let copy2 = tmp("interrupted-copy2");
    for e in std::fs::read_dir(s.dir.join("active")).expect("active") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), copy2.join(e.file_name())).expect("cp");
    }
    accepted(s.load(&v3, &[key().1], NOW));
    std::fs::remove_dir_all(s.dir.join("active")).expect("rm");
    std::fs::rename(&copy2, s.dir.join("active")).expect("mv");
    // The stale copy is not used as the active bundle, version 1 is still a replay, and
    // version 3 loads again.
    let (reason, active) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(
        matches!(reason, BundleError::Replay { active: 3, .. }),
        "{reason}"
    );
    assert!(active.is_none());
    accepted(s.load(&v3, &[key().1], NOW));
    assert_eq!(s.active(&[key().1], NOW).expect("active").info.version, 3);
}

#[test]
fn a_state_from_before_the_high_water_mark_is_read() {
    let (s, v1, _) = state_at_2("legacy");
    std::fs::remove_file(s.dir.join("highest.json")).expect("rm");
    assert_eq!(s.active(&[key().1], NOW).expect("active").info.version, 2);
    let (reason, _) = rejected(s.load(&v1, &[key().1], NOW));
    assert!(matches!(reason, BundleError::Replay { .. }), "{reason}");
}

#[test]
fn check_changes_no_state() {
    let st = tmp("check-only");
    let s = State::new(&st);
    accepted(s.check(&signed("check-only-v1", 1), &[key().1], NOW));
    assert!(!st.join("active.json").exists());
}

#[test]
fn entries_written_as_root_take_the_state_directory_owner() {
    use std::os::unix::fs::MetadataExt as _;
    let st = tmp("owner");
    let nobody = 65_534;
    // Only root can give a file away; elsewhere there is nothing to check.
    if std::os::unix::fs::chown(&st, Some(nobody), Some(nobody)).is_err() {
        eprintln!("not root: skipped");
        return;
    }
    let s = State::new(&st);
    accepted(s.load(&signed("owner-v1", 1), &[key().1], NOW));
    for p in [
        st.join("active"),
        st.join("active").join("10-app.toml"),
        st.join("active.json"),
        st.join("highest.json"),
    ] {
        let m = std::fs::symlink_metadata(&p).expect("meta");
        assert_eq!((m.uid(), m.gid()), (nobody, nobody), "{}", p.display());
    }
}
