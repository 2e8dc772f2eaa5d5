//! Running `islet serve` in tests: start it on loopback ports chosen by the kernel, read the
//! addresses it prints, mint tokens, and kill it when the handle drops (also on a failed
//! assertion, so no console outlives its test).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running console.
#[derive(Debug)]
pub struct Console {
    pub child: Child,
    /// `host:port` of the API and UI (`https` when started with TLS).
    pub http: String,
    /// `host:port` of the Forward receiver (empty when off).
    pub forward: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Console {
    /// `islet serve --data DATA --listen 127.0.0.1:0 --forward-listen FORWARD EXTRA…` (and
    /// `--forward-unauthenticated` when FORWARD is on and EXTRA gives no key), with
    /// `env` set; returns once it printed its addresses. Its later output goes to stderr.
    pub fn start(
        bin: &str,
        data: &Path,
        forward: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Console {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward-listen",
            forward,
            "--data",
        ])
        .arg(data)
        .args(extra)
        .stderr(Stdio::piped());
        // The Forward port needs a key unless explicitly served without one on loopback; the
        // tests that do not test the key take the latter.
        let keyed = extra
            .iter()
            .any(|a| *a == "--forward-shared-key" || *a == "--forward-key-file");
        if forward != "off" && !keyed {
            cmd.arg("--forward-unauthenticated");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start islet serve");
        let err = child.stderr.take().expect("stderr");
        let mut console = Console {
            child,
            http: String::new(),
            forward: String::new(),
        };
        let mut lines = BufReader::new(err).lines();
        while console.http.is_empty() || (console.forward.is_empty() && forward != "off") {
            let l = lines
                .next()
                .expect("serve printed its addresses")
                .expect("line");
            if let Some(a) = l
                .strip_prefix("islet serve: console on http://")
                .or_else(|| l.strip_prefix("islet serve: console on https://"))
            {
                console.http = a.trim_end_matches('/').to_string();
            }
            if let Some(a) = l.strip_prefix("islet serve: Forward receiver on ") {
                console.forward = a.to_string();
            }
        }
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                eprintln!("[serve] {l}");
            }
        });
        console
    }
}

/// `islet serve token create --role ROLE --name ROLE --data DATA`: the token it prints.
pub fn token(bin: &str, data: &Path, role: &str) -> String {
    let out = Command::new(bin)
        .args([
            "serve", "token", "create", "--role", role, "--name", role, "--data",
        ])
        .arg(data)
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A self-signed P-256 certificate for `127.0.0.1` and its key, made by `openssl` in `dir`:
/// `(cert.pem, key.pem)`.
pub fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}
