//! `islet demo`'s work, without its printing: synthesise the benign scenario, analyse it like
//! any capture into a signed `eve.json` and summarise what the evidence says ([`EveReport`]);
//! verify its chain; then each attack scenario (scan, floods, lateral movement, SLP, an IoC
//! with its MISP event) analysed with the detections it raised; and the captures read again
//! to forward their evidence to a console. The console itself is the binary's to start.

use crate::offline::{ReadError, ReadJob, read};
use crate::pipeline::Summary;
use crate::session::{Observer, Options};
use islet_event::record::EveRecord;
use islet_synth::{SynthOptions, SynthSummary};
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The attack scenarios the demo runs, in order, with the packets each is sized to (0: the
/// scenario's own size).
pub const ATTACKS: [(&str, u64); 6] = [
    ("scan", 0),
    ("syn-flood-spoofed", 50_000),
    ("udp-flood", 0),
    ("lateral", 0),
    ("slp", 0),
    ("ioc", 0),
];

/// The attack scenarios whose evidence is forwarded to the console, after the benign one.
const FORWARDED: [&str; 4] = ["lateral", "slp", "scan", "ioc"];

/// Why the demo stopped. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum DemoError {
    /// A file or folder could not be created, written or read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file could not be read on.
    Lines(std::io::Error),
    /// An unknown scenario profile.
    Profile(String),
    /// The sensor's signing key could not be made or read.
    Key(islet_sink::chain::KeyError),
    /// A capture could not be analysed.
    Read(ReadError),
    /// The evidence chain did not verify.
    Chain(islet_sink::verify::VerifyError),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            DemoError::Lines(e) => write!(f, "{e}"),
            DemoError::Profile(m) => f.write_str(m),
            DemoError::Key(e) => write!(f, "{e}"),
            DemoError::Read(e) => write!(f, "{e}"),
            DemoError::Chain(e) => write!(f, "evidence chain: {e}"),
        }
    }
}

impl std::error::Error for DemoError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |error| DemoError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Write scenario traffic to a pcap file.
pub fn synthesise(o: &SynthOptions, path: &Path) -> Result<SynthSummary, DemoError> {
    let f = std::fs::File::create(path).map_err(io(path))?;
    islet_synth::generate(o, std::io::BufWriter::with_capacity(1 << 20, f)).map_err(io(path))
}

/// Write the `ioc` scenario's MISP event.
pub fn write_ioc_event(path: &Path) -> Result<(), DemoError> {
    std::fs::write(path, islet_synth::ioc_misp_event()).map_err(io(path))
}

/// The demo's folder and what it keeps there.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dir: PathBuf,
}

/// An attack scenario's capture, and the detections its analysis raised.
#[derive(Debug, Clone)]
pub struct AttackRun {
    pub profile: &'static str,
    pub pcap: PathBuf,
    pub eve: PathBuf,
    /// Intelligence it is read with (the `ioc` scenario's MISP event).
    pub intel: Vec<PathBuf>,
}

impl Demo {
    pub fn new(dir: &Path) -> Demo {
        Demo {
            dir: dir.to_path_buf(),
        }
    }

    /// The benign scenario's capture.
    pub fn pcap(&self) -> PathBuf {
        self.dir.join("scenario.pcap")
    }

    /// Its evidence.
    pub fn eve(&self) -> PathBuf {
        self.dir.join("eve.json")
    }

    /// The sensor's key pair (`sensor.key`, `sensor.pub`).
    pub fn keys(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// Make the folder and synthesise the benign scenario of `flows` flows.
    pub fn synthesise(&self, flows: u64) -> Result<SynthSummary, DemoError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let o = SynthOptions {
            flows,
            seed: 7,
            ..SynthOptions::default()
        };
        synthesise(&o, &self.pcap())
    }

    /// Analyse the benign scenario into `eve.json`, its checkpoints signed with the sensor's
    /// key (made on first use).
    pub fn analyse(&self, obs: &dyn Observer) -> Result<Summary, DemoError> {
        let keys = self.keys();
        if !keys.join("sensor.key").exists() {
            islet_sink::chain::keygen(&keys).map_err(DemoError::Key)?;
        }
        let job = ReadJob {
            pcaps: vec![self.pcap()],
            options: Options {
                sign_key: Some(keys.join("sensor.key")),
                output: self.eve().to_string_lossy().into_owned(),
                ..Options::default()
            },
            ..ReadJob::default()
        };
        read(&job, obs).map_err(DemoError::Read)
    }

    /// Verify `eve.json`'s chain with the sensor's public key.
    pub fn verify(&self) -> Result<islet_sink::verify::Report, DemoError> {
        let key = islet_sink::chain::read_public_key(&self.keys().join("sensor.pub"))
            .map_err(DemoError::Key)?;
        let opts = islet_sink::verify::Verify {
            key,
            partial: false,
        };
        islet_sink::verify::verify_files(std::slice::from_ref(&self.eve()), &opts)
            .map_err(DemoError::Chain)
    }

    /// Synthesise an attack scenario (and, for `ioc`, its MISP event).
    pub fn attack(&self, profile: &'static str, packets: u64) -> Result<AttackRun, DemoError> {
        let pcap = self.dir.join(format!("attack-{profile}.pcap"));
        let eve = self.dir.join(format!("attack-{profile}.json"));
        // The ioc scenario comes with the MISP event that names its indicators.
        let intel = if profile == "ioc" {
            let e = self.dir.join("attack-ioc.misp.json");
            write_ioc_event(&e)?;
            vec![e]
        } else {
            Vec::new()
        };
        let o = SynthOptions {
            profile: profile.parse().map_err(DemoError::Profile)?,
            max_packets: packets,
            seed: 7,
            ..SynthOptions::default()
        };
        synthesise(&o, &pcap)?;
        Ok(AttackRun {
            profile,
            pcap,
            eve,
            intel,
        })
    }

    /// Analyse an attack scenario's capture and return its alerts: the detection's name and
    /// the signature, in the order written.
    pub fn detections(
        &self,
        run: &AttackRun,
        obs: &dyn Observer,
    ) -> Result<Vec<(String, String)>, DemoError> {
        let job = ReadJob {
            pcaps: vec![run.pcap.clone()],
            options: Options {
                output: run.eve.to_string_lossy().into_owned(),
                quiet: true,
                intel: run.intel.clone(),
                ..Options::default()
            },
            ..ReadJob::default()
        };
        read(&job, obs).map_err(DemoError::Read)?;
        let mut out = Vec::new();
        for line in lines(&run.eve)? {
            if let Some(View::Alert {
                detection,
                signature,
            }) = view_of(&line?)
            {
                let s = signature.trim_start_matches("islet detect: ").to_string();
                out.push((detection, s));
            }
        }
        Ok(out)
    }

    /// Read the benign scenario and the forwarded attacks again, sending their evidence to the
    /// Forward receiver at `forward` with the shared `key`: one sensor, one chain.
    pub fn forward(&self, forward: &str, key: &str, obs: &dyn Observer) -> Result<(), DemoError> {
        let mut pcaps = vec![self.pcap()];
        pcaps.extend(
            FORWARDED
                .iter()
                .map(|p| self.dir.join(format!("attack-{p}.pcap"))),
        );
        for pcap in pcaps {
            // The ioc scenario is read with its MISP event, as a sensor with that feed would.
            let intel = if pcap.ends_with("attack-ioc.pcap") {
                vec![self.dir.join("attack-ioc.misp.json")]
            } else {
                Vec::new()
            };
            let job = ReadJob {
                pcaps: vec![pcap],
                options: Options {
                    output: "/dev/null".into(),
                    quiet: true,
                    forward: vec![forward.to_string()],
                    forward_shared_key: Some(key.to_string()),
                    // Each run continues where the last one ended, so the console sees one
                    // linked chain rather than restarts.
                    state_dir: Some(self.dir.join("sensor-state")),
                    intel,
                    ..Options::default()
                },
                ..ReadJob::default()
            };
            read(&job, obs).map_err(DemoError::Read)?;
        }
        Ok(())
    }
}

fn lines(path: &Path) -> Result<impl Iterator<Item = Result<String, DemoError>>, DemoError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    Ok(std::io::BufReader::new(f)
        .lines()
        .map(|l| l.map_err(DemoError::Lines)))
}

/// What the demo reads of a record.
#[derive(Debug)]
enum View {
    Flow {
        bytes: u64,
        proto: String,
        app_proto: String,
        src_ip: String,
    },
    /// A protocol event, with the service name it carries (TLS SNI, HTTP host).
    Metadata {
        kind: String,
        name: Option<String>,
    },
    Anomaly(String),
    Alert {
        detection: String,
        signature: String,
    },
    Other,
}

/// The one place the demo reads its records: `None` for a line that is not a record.
fn view_of(line: &str) -> Option<View> {
    let v = EveRecord::decode(line.as_bytes()).ok()?;
    let text = |x: &Option<String>, or: &str| x.as_deref().unwrap_or(or).to_string();
    Some(match v.event_type.as_str() {
        "flow" => View::Flow {
            bytes: v.flow.as_ref().map_or(0, |f| f.bytes()),
            proto: text(&v.proto, "?"),
            app_proto: text(&v.app_proto, "-"),
            src_ip: text(&v.src_ip, "?"),
        },
        kind @ ("tls" | "quic" | "http" | "dns" | "ssh" | "smb" | "rdp" | "krb5") => {
            View::Metadata {
                kind: kind.to_string(),
                name: match kind {
                    "tls" => v.tls.and_then(|t| t.sni),
                    "http" => v.http.and_then(|h| h.hostname),
                    _ => None,
                },
            }
        }
        "anomaly" => View::Anomaly(text(&v.anomaly.and_then(|a| a.event), "?")),
        "alert" => {
            let a = v.alert.unwrap_or_default();
            View::Alert {
                detection: a.metadata.detection().unwrap_or("?").to_string(),
                signature: a.signature.unwrap_or_default(),
            }
        }
        _ => View::Other,
    })
}

#[derive(Debug, Default)]
struct Talker {
    bytes: u64,
    flows: u64,
}

/// What an EVE file says, in brief: flows and bytes, protocols, application protocols,
/// metadata events, the most named services, the top talkers, and anomalies. Its `Display`
/// is the block `islet demo` prints (a blank line before and after).
#[derive(Debug, Default)]
pub struct EveReport {
    flows: u64,
    bytes: u64,
    protos: HashMap<String, u64>,
    apps: HashMap<String, u64>,
    talkers: HashMap<String, Talker>,
    anomalies: HashMap<String, u64>,
    metadata: HashMap<String, u64>,
    names: HashMap<String, u64>,
}

impl EveReport {
    /// Read and summarise an EVE file.
    pub fn read(eve: &Path) -> Result<EveReport, DemoError> {
        let mut r = EveReport::default();
        for line in lines(eve)? {
            match view_of(&line?) {
                Some(View::Flow {
                    bytes,
                    proto,
                    app_proto,
                    src_ip,
                }) => {
                    r.flows += 1;
                    r.bytes += bytes;
                    *r.protos.entry(proto).or_default() += 1;
                    *r.apps.entry(app_proto).or_default() += 1;
                    let t = r.talkers.entry(src_ip).or_default();
                    t.bytes += bytes;
                    t.flows += 1;
                }
                Some(View::Metadata { kind, name }) => {
                    *r.metadata.entry(kind).or_default() += 1;
                    if let Some(n) = name {
                        *r.names.entry(n).or_default() += 1;
                    }
                }
                Some(View::Anomaly(ev)) => *r.anomalies.entry(ev).or_default() += 1,
                _ => {}
            }
        }
        Ok(r)
    }
}

impl fmt::Display for EveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "  flows        {}  ({:.1} MB)",
            self.flows,
            self.bytes as f64 / 1e6
        )?;
        writeln!(f, "  protocols    {}", top(&self.protos, 6))?;
        writeln!(f, "  app_proto    {}", top(&self.apps, 8))?;
        writeln!(f, "  metadata     {}", top(&self.metadata, 8))?;
        writeln!(f, "  top services {}", top(&self.names, 4))?;
        let mut tk: Vec<_> = self.talkers.iter().collect();
        tk.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
        writeln!(f, "  top talkers (client, by bytes):")?;
        for (ip, t) in tk.iter().take(5) {
            writeln!(
                f,
                "    {ip:<40} {:>10.1} KB in {} flows",
                t.bytes as f64 / 1e3,
                t.flows
            )?;
        }
        if self.anomalies.is_empty() {
            writeln!(f, "  anomalies    none")?;
        } else {
            writeln!(f, "  anomalies    {}", top(&self.anomalies, 8))?;
        }
        writeln!(f)
    }
}

/// The `n` largest counts as `key=count`, ties by key.
fn top(m: &HashMap<String, u64>, n: usize) -> String {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(n)
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_report_counts_flows_metadata_talkers_and_anomalies() {
        let dir = std::env::temp_dir().join(format!("islet-demo-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let eve = dir.join("eve.json");
        let lines = [
            r#"{"event_type":"flow","src_ip":"10.0.0.1","proto":"TCP","app_proto":"tls","flow":{"bytes_toserver":1500,"bytes_toclient":500}}"#,
            r#"{"event_type":"flow","src_ip":"10.0.0.2","proto":"UDP","flow":{"bytes_toserver":100,"bytes_toclient":0}}"#,
            r#"{"event_type":"tls","tls":{"sni":"a.example"}}"#,
            r#"{"event_type":"anomaly","anomaly":{"event":"pkt_too_small"}}"#,
            r#"{"event_type":"alert","alert":{"signature":"islet detect: scan","metadata":{"detection":["port_scan"]}}}"#,
            "not json",
        ];
        std::fs::write(&eve, lines.join("\n")).expect("write");
        let text = EveReport::read(&eve).expect("report").to_string();
        assert!(text.starts_with("\n  flows        2  (0.0 MB)\n"), "{text}");
        assert!(text.contains("  protocols    TCP=1 UDP=1\n"), "{text}");
        assert!(text.contains("  app_proto    -=1 tls=1\n"), "{text}");
        assert!(text.contains("  top services a.example=1\n"), "{text}");
        assert!(text.contains("    10.0.0.1  "), "{text}");
        assert!(
            text.ends_with("  anomalies    pkt_too_small=1\n\n"),
            "{text}"
        );
        assert!(matches!(
            view_of(lines[4]),
            Some(View::Alert { detection, .. }) if detection == "port_scan"
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
