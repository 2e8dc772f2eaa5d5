//! islet-testkit — the one helper through which tests find the shared corpus.
//!
//! The corpus lives beside the repository, at `../shared/corpus` (or where `ISLET_SHARED`
//! points). When it is absent, tests that need it print why and skip; when
//! `ISLET_REQUIRE_CORPUS=1` (set by `.ci/run`), its absence is a failure, so CI can never pass
//! by skipping.
#![forbid(unsafe_code)]

pub mod console;
pub mod frames;
pub mod http;

use std::path::{Path, PathBuf};

/// The `shared` folder, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ISLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = dir.canonicalize().ok()?;
    dir.join("corpus").is_dir().then_some(dir)
}

/// The shared folder, or `None` after printing why the calling test skips. Panics when the
/// corpus is required (`ISLET_REQUIRE_CORPUS=1`) and missing.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    match shared_dir() {
        Some(d) => Some(d),
        None => {
            let why = "../shared/corpus not found (set ISLET_SHARED to the shared folder)";
            if std::env::var("ISLET_REQUIRE_CORPUS").as_deref() == Ok("1") {
                panic!("{test}: {why}, and ISLET_REQUIRE_CORPUS=1");
            }
            eprintln!("SKIP {test}: {why}");
            None
        }
    }
}

/// The corpus capture folder.
pub fn pcap_dir(test: &str) -> Option<PathBuf> {
    shared_or_skip(test).map(|d| d.join("corpus/pcap"))
}

/// Every capture in the corpus, sorted.
pub fn corpus_pcaps(test: &str) -> Vec<PathBuf> {
    let Some(dir) = pcap_dir(test) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|x| x.to_str()),
                        Some("pcap" | "pcapng")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether an external tool is on PATH; prints a skip reason when it is not. Panics when
/// `ISLET_REQUIRE_TOOLS=1` (set by `.ci/run`, which installs them).
pub fn tool_or_skip(test: &str, tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("ISLET_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{test}: {tool} is not installed, and ISLET_REQUIRE_TOOLS=1");
        }
        eprintln!("SKIP {test}: {tool} not installed");
    }
    found
}

/// Whether this test may build network namespaces (root, with `ip` from iproute2); prints a
/// skip reason when it may not. Panics when `ISLET_REQUIRE_NETNS=1` (set by `.ci/run`, which
/// runs as root).
pub fn netns_or_skip(test: &str) -> bool {
    let why = if !tool_or_skip(test, "ip") {
        return false;
    } else {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if uid.as_deref() != Some("0") {
            Some("not running as root (network namespaces need it)")
        } else {
            let tag: u32 = test
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31) ^ b as u32);
            let probe = format!("islet-probe-{}-{tag:x}", std::process::id());
            let ok = std::process::Command::new("ip")
                .args(["netns", "add", &probe])
                .status()
                .is_ok_and(|s| s.success());
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &probe])
                .status();
            (!ok).then_some("`ip netns add` failed")
        }
    };
    match why {
        None => true,
        Some(why) => {
            if std::env::var("ISLET_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("{test}: {why}, and ISLET_REQUIRE_NETNS=1");
            }
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}
