//! Where the sensor's intelligence comes from and how it stays fresh: local sources, MISP and
//! TAXII pulls (`[intel]` in the sensor's TOML), compiled into a snapshot that is swapped in
//! atomically. Workers load the current snapshot per lookup (`ArcSwap`: no lock, no waiting);
//! a background thread pulls on a schedule, rebuilds, and swaps.

use crate::import::{Importer, Report};
use crate::remote::{MispClient, MispQuery, RemoteError, TaxiiClient};
use crate::sightings::{SightingConfig, SightingQueue, SightingSender};
use crate::snapshot::Snapshot;
use crate::warninglist::Warninglist;
use arc_swap::ArcSwap;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The snapshot every worker reads; replaced whole, never changed in place.
pub type SharedSnapshot = ArcSwap<Snapshot>;

/// What a sensor matches with: the shared snapshot and, optionally, where sightings go.
#[derive(Debug, Clone)]
pub struct IntelRuntime {
    pub snapshot: Arc<SharedSnapshot>,
    pub sightings: Option<SightingSender>,
}

impl IntelRuntime {
    pub fn fixed(s: Snapshot) -> IntelRuntime {
        IntelRuntime {
            snapshot: Arc::new(ArcSwap::from_pointee(s)),
            sightings: None,
        }
    }
}

/// `[intel]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Files, folders, feeds and snapshots to import.
    pub sources: Vec<PathBuf>,
    /// MISP warninglists (files or folders) applied to everything imported.
    pub warninglists: Vec<PathBuf>,
    pub misp: Option<MispConfig>,
    pub taxii: Option<TaxiiConfig>,
}

/// `[intel.misp]`: pull attributes from a MISP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MispConfig {
    pub url: String,
    /// The API key itself; prefer `key_env` or `key_file`.
    #[serde(default)]
    pub key: Option<String>,
    /// Name of an environment variable holding the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// A file holding the key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Only events published in this window (`30d`); none for all.
    #[serde(default)]
    pub last: Option<String>,
    /// Only attributes flagged `to_ids` (sightings-only attributes are then not pulled).
    #[serde(default)]
    pub to_ids_only: bool,
    /// Seconds between pulls (incremental, by attribute timestamp); 0 pulls once.
    #[serde(default)]
    pub pull_every_s: u64,
    #[serde(default = "default_page")]
    pub page_size: u32,
    /// Send sightings of matched indicators back (`POST /sightings/add`).
    #[serde(default)]
    pub push_sightings: bool,
}

fn default_page() -> u32 {
    10_000
}

/// `[intel.taxii]`: poll a TAXII 2.1 collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiConfig {
    /// `https://host/api-root/collections/<id>/`.
    pub collection_url: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Seconds between polls (by `added_after`); 0 polls once.
    #[serde(default)]
    pub poll_every_s: u64,
}

/// Why intelligence could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError(pub String);

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FeedError {}

impl MispConfig {
    pub fn api_key(&self) -> Result<String, FeedError> {
        if let Some(k) = &self.key {
            return Ok(k.clone());
        }
        if let Some(v) = &self.key_env {
            return std::env::var(v)
                .map_err(|_| FeedError(format!("intel.misp.key_env: ${v} is not set")));
        }
        if let Some(f) = &self.key_file {
            return std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|e| FeedError(format!("intel.misp.key_file: {}: {e}", f.display())));
        }
        Err(FeedError(
            "intel.misp: one of key, key_env or key_file is required".into(),
        ))
    }

    pub fn client(&self) -> Result<MispClient, FeedError> {
        let mut c = MispClient::new(&self.url, &self.api_key()?);
        c.page_size = self.page_size.max(1);
        Ok(c)
    }
}

impl TaxiiConfig {
    pub fn client(&self) -> Result<TaxiiClient, FeedError> {
        let auth = match (&self.username, &self.password_env) {
            (Some(u), Some(p)) => Some((
                u.clone(),
                std::env::var(p)
                    .map_err(|_| FeedError(format!("intel.taxii.password_env: ${p} is not set")))?,
            )),
            (Some(u), None) => Some((u.clone(), String::new())),
            _ => None,
        };
        Ok(TaxiiClient::new(&self.collection_url, auth))
    }
}

/// Loads warninglists from files or folders of `*.json`.
pub fn load_warninglists(paths: &[PathBuf]) -> Result<Vec<Warninglist>, FeedError> {
    let mut out = Vec::new();
    for p in paths {
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| FeedError(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            v.sort();
            v
        } else {
            vec![p.clone()]
        };
        for f in files {
            out.push(Warninglist::load(&f).map_err(|e| FeedError(e.to_string()))?);
        }
    }
    Ok(out)
}

/// What has been pulled so far, and where the next incremental pull starts.
#[derive(Debug, Default)]
pub struct Pulled {
    docs: Vec<(String, Value)>,
    misp_since: Option<u64>,
    taxii_since: Option<String>,
}

impl Pulled {
    /// One pull of each configured server; documents are kept for the next rebuild. Errors
    /// are returned with the server named; what was pulled before stays.
    pub fn pull(&mut self, cfg: &IntelConfig) -> Vec<String> {
        let mut errors = Vec::new();
        let sleep = |d: Duration| std::thread::sleep(d);
        if let Some(m) = &cfg.misp {
            let q = MispQuery {
                timestamp: self.misp_since.map(|t| t + 1),
                last: if self.misp_since.is_none() {
                    m.last.clone()
                } else {
                    None
                },
                to_ids: m.to_ids_only.then_some(true),
                types: Vec::new(),
            };
            match m
                .client()
                .map_err(|e| e.0)
                .and_then(|c| c.pull(&q, &sleep).map_err(|e: RemoteError| e.to_string()))
            {
                Ok((doc, newest)) => {
                    if newest.is_some() {
                        self.misp_since = newest.max(self.misp_since);
                    }
                    self.docs.push((format!("misp:{}", m.url), doc));
                }
                Err(e) => errors.push(format!("MISP {}: {e}", m.url)),
            }
        }
        if let Some(t) = &cfg.taxii {
            match t.client().map_err(|e| e.0).and_then(|c| {
                c.poll(self.taxii_since.as_deref(), &sleep)
                    .map_err(|e| e.to_string())
            }) {
                Ok((bundle, resume)) => {
                    if resume.is_some() {
                        self.taxii_since = resume;
                    }
                    self.docs
                        .push((format!("taxii:{}", t.collection_url), bundle));
                }
                Err(e) => errors.push(format!("TAXII {}: {e}", t.collection_url)),
            }
        }
        errors
    }
}

/// Compile the configured local sources plus everything pulled. A lone snapshot file with no
/// warninglists and nothing pulled is mapped and used as it is.
pub fn build(
    cfg: &IntelConfig,
    extra_sources: &[PathBuf],
    pulled: &Pulled,
) -> Result<(Snapshot, Report), FeedError> {
    let all: Vec<&PathBuf> = cfg.sources.iter().chain(extra_sources).collect();
    if let [one] = all[..]
        && cfg.warninglists.is_empty()
        && pulled.docs.is_empty()
        && Snapshot::is_file(one)
    {
        let snap = Snapshot::open(one).map_err(|e| FeedError(format!("{}: {e}", one.display())))?;
        let report = Report {
            suppressed: snap.suppressed().to_vec(),
            sources: vec![one.display().to_string()],
            ..Report::default()
        };
        return Ok((snap, report));
    }
    let mut imp = Importer::new(load_warninglists(&cfg.warninglists)?);
    for s in cfg.sources.iter().chain(extra_sources) {
        if !s.exists() {
            return Err(FeedError(format!(
                "{}: no such file or folder",
                s.display()
            )));
        }
        imp.add_path(s);
    }
    for (name, doc) in &pulled.docs {
        imp.add_bytes(name, doc.to_string().as_bytes());
    }
    Ok(imp.finish())
}

/// Pulls on a schedule and swaps fresh snapshots in, off the data path.
#[derive(Debug)]
pub struct Puller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Puller {
    /// Start pulling every `every`; `on_error` hears each failed pull or rebuild.
    pub fn start(
        cfg: IntelConfig,
        extra_sources: Vec<PathBuf>,
        mut pulled: Pulled,
        shared: Arc<SharedSnapshot>,
        every: Duration,
        on_error: impl Fn(&str) + Send + 'static,
    ) -> Puller {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("islet-intel-pull".into())
            .spawn(move || {
                let mut swaps = 0u64;
                let tick = Duration::from_millis(50).min(every);
                let mut waited = Duration::ZERO;
                while !s.load(Ordering::Acquire) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited < every {
                        continue;
                    }
                    waited = Duration::ZERO;
                    for e in pulled.pull(&cfg) {
                        on_error(&e);
                    }
                    match build(&cfg, &extra_sources, &pulled) {
                        Ok((snap, _)) => {
                            shared.store(Arc::new(snap));
                            swaps += 1;
                        }
                        Err(e) => on_error(&e.0),
                    }
                }
                swaps
            })
            .ok();
        Puller { stop, thread }
    }

    /// Stop; returns how many snapshots were swapped in.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// Import `sources` (files, folders, feeds, snapshots) with the `lists` warninglists
/// (`islet intel import/stats/check`). A lone snapshot with no warninglists is mapped and used
/// as it is.
pub fn import_paths(
    sources: &[PathBuf],
    lists: &[PathBuf],
) -> Result<(Snapshot, Report), FeedError> {
    let cfg = IntelConfig {
        warninglists: lists.to_vec(),
        ..IntelConfig::default()
    };
    build(&cfg, sources, &Pulled::default())
}

/// What a sensor matches with: the `sources` and `lists` of its command line plus `[intel]`
/// (local sources and one pull of each configured MISP/TAXII server, whose failures go to
/// `note` and leave what was imported), and the sightings queue when `push_sightings` is set.
/// `None` when no intelligence is configured. Unless `quiet`, the snapshot's size goes to
/// `note`.
pub fn runtime_for(
    cfg: &IntelConfig,
    sources: &[PathBuf],
    lists: &[PathBuf],
    quiet: bool,
    note: &mut dyn FnMut(&str),
) -> Result<Option<(IntelRuntime, Option<SightingQueue>)>, FeedError> {
    if sources.is_empty() && cfg.sources.is_empty() && cfg.misp.is_none() && cfg.taxii.is_none() {
        return Ok(None);
    }
    let mut cfg = cfg.clone();
    cfg.warninglists.extend(lists.iter().cloned());
    let mut pulled = Pulled::default();
    for e in pulled.pull(&cfg) {
        note(&format!("intel: {e}"));
    }
    let (snap, report) = build(&cfg, sources, &pulled)?;
    if !quiet {
        note(&format!(
            "intel: {} indicators ({} suppressed by warninglists, {} rejected)",
            snap.len(),
            report.suppressed.len(),
            report.rejected_total
        ));
    }
    let queue = match &cfg.misp {
        Some(m) if m.push_sightings => {
            Some(SightingQueue::start(m.client()?, SightingConfig::default()))
        }
        _ => None,
    };
    let mut rt = IntelRuntime::fixed(snap);
    rt.sightings = queue.as_ref().and_then(SightingQueue::sender);
    Ok(Some((rt, queue)))
}
