//! `islet run` refuses what it cannot run with one line naming the field or the interface,
//! and exit status 2, before any port is touched; `--check-config` validates and exits.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_islet"))
        .arg("run")
        .args(args)
        .output()
        .expect("islet");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn bad_invocations_fail_with_one_line_and_status_2() {
    let dir = std::env::temp_dir().join(format!("islet-live-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("path").to_owned()
    };
    let bad_mode = cfg("mode.toml", "[live]\nmode = \"bridge\"\n");
    let bad_ring = cfg("ring.toml", "[live]\nring_block_size = 1000\n");
    let bad_key = cfg("key.toml", "[live]\nrings = 3\n");
    let no_pairs = cfg("pairs.toml", "[live]\nmode = \"inline\"\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "no interfaces"),
        (
            vec!["--inline", "eth0"],
            "--inline \"eth0\": expected two different interfaces",
        ),
        (
            vec!["--inline", "x0,x0"],
            "expected two different interfaces",
        ),
        (
            vec!["--inline", "a0,b0", "--tap", "c0"],
            "--inline and --tap exclude each other",
        ),
        (
            vec!["--inline", "islnone0,islnone1"],
            "interface islnone0: no such device",
        ),
        (
            vec!["--tap", "lo,islnone2"],
            "interface islnone2: no such device",
        ),
        (
            vec!["--tap", "lo", "--backend", "dpdk"],
            "--backend \"dpdk\"",
        ),
        (vec!["-c", &bad_mode], "live.mode"),
        (vec!["-c", &bad_ring, "--tap", "lo"], "live.ring_block_size"),
        (vec!["-c", &bad_key, "--tap", "lo"], "rings"),
        (vec!["-c", &no_pairs], "live.pairs"),
        (
            vec!["--tap", "lo", "--user", "islet-no-such-user"],
            "live.user",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: exit {code}: {err}");
        assert!(
            err.contains(want),
            "{args:?}: {err:?} does not say {want:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err:?}"
        );
    }
}

#[test]
fn check_config_validates_and_exits() {
    let (code, err) = run(&["--tap", "lo", "--check-config"]);
    if is_root() {
        assert_eq!(code, 0, "{err}");
    } else {
        // Without CAP_NET_RAW: refused before anything is opened.
        assert_eq!(code, 2);
        assert!(err.contains("CAP_NET_RAW"), "{err}");
    }
}
