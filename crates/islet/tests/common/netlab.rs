//! A lab of network namespaces for the live tests: workloads `a` and `b` joined through a
//! sensor namespace's ports `sa` and `sb` (veth pairs), with background processes; all of it
//! removed when the lab drops, whether the test passed or not.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ISLET: &str = env!("CARGO_BIN_EXE_islet");

/// Namespaces and background processes, removed on drop (also when a step panics).
pub struct Lab {
    pub ns: Vec<String>,
    pub children: Vec<Child>,
    pub dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SIGTERM first, so islet removes what it put in place; then SIGKILL what is left.
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5)
            && self
                .children
                .iter_mut()
                .any(|c| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Lab {
    /// `a` and `b` joined through the sensor namespace's ports `sa` and `sb`; `net` picks the
    /// 10.77.net.0/24 subnet so two labs can run at once.
    pub fn new(tag: &str, net: u8) -> Lab {
        Lab::with_prefix(tag, &format!("10.77.{net}"))
    }

    /// The same, with `a` at `prefix`.1 and `b` at `prefix`.2 (a /24).
    pub fn with_prefix(tag: &str, prefix: &str) -> Lab {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("islet-live-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let ns: Vec<String> = ["a", "b", "s"]
            .iter()
            .map(|n| format!("isl{tag}{id}{n}"))
            .collect();
        let lab = Lab {
            ns,
            children: Vec::new(),
            dir,
        };
        for n in &lab.ns {
            ok(&["ip", "netns", "add", n]);
            ok(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let (a, b, s) = (&lab.ns[0], &lab.ns[1], &lab.ns[2]);
        ok(&[
            "ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "sa", "netns",
            s,
        ]);
        ok(&[
            "ip", "link", "add", "eth0", "netns", b, "type", "veth", "peer", "name", "sb", "netns",
            s,
        ]);
        for (n, addr) in [(a, 1), (b, 2)] {
            ok(&[
                "ip",
                "-n",
                n,
                "addr",
                "add",
                &format!("{prefix}.{addr}/24"),
                "dev",
                "eth0",
            ]);
            ok(&["ip", "-n", n, "link", "set", "eth0", "up"]);
        }
        for p in ["sa", "sb"] {
            ok(&["ip", "-n", s, "link", "set", p, "up"]);
        }
        lab
    }

    pub fn a(&self) -> &str {
        &self.ns[0]
    }
    pub fn b(&self) -> &str {
        &self.ns[1]
    }
    pub fn s(&self) -> &str {
        &self.ns[2]
    }

    /// Run `args` in namespace `ns` and wait.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Start `args` in namespace `ns` in the background (killed when the lab drops).
    pub fn spawn(&mut self, ns: &str, args: &[&str], stdout: Stdio) -> usize {
        let c = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        self.children.push(c);
        self.children.len() - 1
    }

    /// Start islet in the sensor namespace; returns its index and its stderr, collected.
    pub fn islet(&mut self, args: &[&str]) -> (usize, Arc<Mutex<String>>) {
        let mut v = vec![ISLET];
        v.extend_from_slice(args);
        let s = self.s().to_owned();
        let i = self.spawn(&s, &v, Stdio::null());
        let err = Arc::new(Mutex::new(String::new()));
        let e = err.clone();
        let pipe = self.children[i].stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut g = e.lock().expect("lock");
                g.push_str(&line);
                g.push('\n');
            }
        });
        (i, err)
    }

    /// Start tcpdump in `ns` and wait until it says it is listening (frames sent before that
    /// would not be in its capture). Immediate mode: libpcap otherwise holds frames in a ring
    /// block for up to a second, and frames still there when tcpdump is stopped are lost.
    pub fn tcpdump(&mut self, ns: &str, args: &[&str]) -> usize {
        let mut v = vec!["tcpdump", "--immediate-mode"];
        v.extend_from_slice(args);
        let i = self.spawn(ns, &v, Stdio::null());
        let pipe = self.children[i].stderr.take().expect("stderr");
        let said = Arc::new(Mutex::new(String::new()));
        let s = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                s.lock().expect("lock").push_str(&line);
            }
        });
        wait_for("tcpdump to listen", Duration::from_secs(20), || {
            said.lock().expect("lock").contains("listening on")
        });
        i
    }

    /// Send `sig` to the child `i` (through `ip netns exec`, which execs the program).
    pub fn signal(&self, i: usize, sig: &str) {
        ok(&["kill", sig, &self.children[i].id().to_string()]);
    }

    /// Wait for child `i` to exit; its status.
    pub fn wait(&mut self, i: usize, within: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(s) = self.children[i].try_wait().expect("wait") {
                return s;
            }
            assert!(
                t.elapsed() < within,
                "process {i} did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `curl` from `a`: (exit status, HTTP code, bytes).
    pub fn curl(&self, url: &str, timeout: &str) -> (i32, String, u64) {
        let o = self.exec(
            self.a(),
            &[
                "curl",
                "-sk",
                "-o",
                "/dev/null",
                "--max-time",
                timeout,
                "-w",
                "%{http_code} %{size_download}",
                url,
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut it = out.split_whitespace();
        let code = it.next().unwrap_or("").to_owned();
        let size = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (o.status.code().unwrap_or(-1), code, size)
    }
}

pub fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("EVE line is JSON"))
        .collect()
}
