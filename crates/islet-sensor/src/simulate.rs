//! `islet policy simulate`: replay captures through the sensor with a candidate policy and
//! with a baseline (or none), and compare flow verdicts edge by edge (source, destination,
//! protocol, destination port), from the EVE flow records exactly as `islet read --policy`
//! writes them.

use crate::policy::PolicyRuntime;
use crate::{Judges, Reader, RunError, SensorConfig};
use islet_capture::{CaptureError, PcapFiles};
use islet_event::record::{EveRecord, Policy};
use islet_policy::{Engine, Inventory, import};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a simulation could not run. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimulateError {
    /// A policy could not be read or parsed.
    Policy(String),
    /// The inventory could not be read or parsed.
    Inventory(String),
    /// A capture could not be opened.
    Capture(CaptureError),
    /// The replay failed part-way.
    Run(RunError),
}

impl fmt::Display for SimulateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimulateError::Policy(m) | SimulateError::Inventory(m) => f.write_str(m),
            SimulateError::Capture(e) => write!(f, "{e}"),
            SimulateError::Run(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SimulateError {}

/// An edge by address: source, destination, protocol (lower case), destination port.
type EdgeKey = (String, String, String, u64);

/// What a replay saw on an edge: the identities the policy gave its ends, and flows by
/// verdict with one reason each.
#[derive(Debug, Default)]
struct EdgeSeen {
    src: String,
    dst: String,
    verdicts: BTreeMap<String, (u64, String)>,
}

impl EdgeSeen {
    /// The strictest verdict seen.
    fn worst(&self) -> &str {
        ["deny", "audit"]
            .into_iter()
            .find(|v| self.verdicts.contains_key(*v))
            .unwrap_or("allow")
    }
}

/// Verdicts by edge under a candidate policy and under the baseline. Its `Display` is the
/// table `islet policy simulate` prints: the edges whose verdict changes (every edge with
/// [`Simulation::all`]), and a count.
#[derive(Debug)]
pub struct Simulation {
    candidate: BTreeMap<EdgeKey, EdgeSeen>,
    baseline: BTreeMap<EdgeKey, EdgeSeen>,
    /// Show every edge, not only those whose verdict changes.
    pub all: bool,
}

/// Replay `pcaps` with `policy`, then with `baseline` (none: everything allowed), both with
/// `inventory` (none: every address is `world`).
pub fn simulate(
    pcaps: &[PathBuf],
    policy: &Path,
    baseline: Option<&Path>,
    inventory: Option<&Path>,
) -> Result<Simulation, SimulateError> {
    Ok(Simulation {
        candidate: replay(pcaps, Some(policy), inventory)?,
        baseline: replay(pcaps, baseline, inventory)?,
        all: false,
    })
}

/// A flow record's edge and verdict, as far as a replay needs them.
#[derive(Debug)]
struct FlowView {
    key: EdgeKey,
    src_identity: Option<String>,
    dest_identity: Option<String>,
    verdict: String,
    reason: String,
}

/// The one place a replay reads its records: a flow record's fields, `None` for any other
/// line.
fn flow_of(line: &[u8]) -> Option<FlowView> {
    let e = EveRecord::decode(line).ok()?;
    if e.event_type != "flow" {
        return None;
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let p = e.verdict();
    let text = |f: fn(&Policy) -> &Option<String>| p.and_then(|p| f(p).clone());
    Some(FlowView {
        key: (
            s(&e.src_ip),
            s(&e.dest_ip),
            s(&e.proto).to_ascii_lowercase(),
            e.dest_port.unwrap_or(0),
        ),
        src_identity: text(|p| &p.src_identity),
        dest_identity: text(|p| &p.dest_identity),
        verdict: text(|p| &p.verdict).unwrap_or_else(|| "allow".into()),
        reason: text(|p| &p.reason).unwrap_or_else(|| "no policy".into()),
    })
}

/// Run the captures through the sensor with `policy` (or none) and gather flow verdicts by
/// edge.
fn replay(
    pcaps: &[PathBuf],
    policy: Option<&Path>,
    inventory: Option<&Path>,
) -> Result<BTreeMap<EdgeKey, EdgeSeen>, SimulateError> {
    let runtime = match policy {
        Some(p) => {
            let pol = import::load(p).map_err(|e| SimulateError::Policy(e.to_string()))?;
            let inv = match inventory {
                Some(i) => {
                    Inventory::from_path(i).map_err(|e| SimulateError::Inventory(e.to_string()))?
                }
                None => Inventory::default(),
            };
            Some(PolicyRuntime::fixed(Engine::new(pol, Arc::new(inv))))
        }
        None => None,
    };
    let mut cfg = SensorConfig::default();
    cfg.sensor.workers = 1;
    let mut source = PcapFiles::open(pcaps).map_err(SimulateError::Capture)?;
    let mut out: Vec<u8> = Vec::new();
    let judges = Judges {
        intel: None,
        policy: runtime,
    };
    Reader::new(&cfg)
        .judges(judges)
        .run(&mut source, &mut out)
        .map_err(SimulateError::Run)?;
    let mut edges: BTreeMap<EdgeKey, EdgeSeen> = BTreeMap::new();
    for f in out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(flow_of)
    {
        let seen = edges.entry(f.key.clone()).or_default();
        seen.src = f.src_identity.unwrap_or_else(|| f.key.0.clone());
        seen.dst = f.dest_identity.unwrap_or_else(|| f.key.1.clone());
        seen.verdicts.entry(f.verdict).or_insert((0, f.reason)).0 += 1;
    }
    Ok(edges)
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:<30} {:<30} {:<10} {:<18} reason",
            "change", "source", "destination", "port", "flows"
        )?;
        let (mut denied, mut allowed) = (0u64, 0u64);
        for (key, seen) in &self.candidate {
            let now = seen.worst();
            let before = self.baseline.get(key).map_or("allow", EdgeSeen::worst);
            let change = match (before, now) {
                ("deny", "deny") => "unchanged",
                (_, "deny") => {
                    denied += 1;
                    "newly denied"
                }
                ("deny", _) => {
                    allowed += 1;
                    "newly allowed"
                }
                _ => "unchanged",
            };
            if change != "unchanged" || self.all {
                let flows: Vec<String> = seen
                    .verdicts
                    .iter()
                    .map(|(v, (n, _))| format!("{v} {n}"))
                    .collect();
                let reason = seen.verdicts.get(now).map_or("", |x| x.1.as_str());
                writeln!(
                    f,
                    "{change:<14} {:<30} {:<30} {:<10} {:<18} {reason}",
                    seen.src,
                    seen.dst,
                    format!("{}/{}", key.2, key.3),
                    flows.join(", ")
                )?;
            }
        }
        writeln!(
            f,
            "{denied} edges newly denied, {allowed} newly allowed, {} edges in all",
            self.candidate.len()
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_flow_record_gives_its_edge_and_verdict() {
        let line = br#"{"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","proto":"TCP","dest_port":443,"islet":{"policy":{"verdict":"deny","reason":"rule r","src_identity":"a/b"}}}"#;
        let f = flow_of(line).expect("flow");
        assert_eq!(
            f.key,
            ("10.0.0.1".into(), "10.0.0.2".into(), "tcp".into(), 443)
        );
        assert_eq!(f.src_identity.as_deref(), Some("a/b"));
        assert_eq!(f.dest_identity, None);
        assert_eq!((f.verdict.as_str(), f.reason.as_str()), ("deny", "rule r"));
        let bare = flow_of(br#"{"event_type":"flow"}"#).expect("flow");
        assert_eq!(
            (bare.verdict.as_str(), bare.reason.as_str()),
            ("allow", "no policy")
        );
        assert!(flow_of(br#"{"event_type":"dns"}"#).is_none());
        assert!(flow_of(b"[1]").is_none());
    }
}
