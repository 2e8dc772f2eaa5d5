//! The importer: reads every supported source into indicators, checks each value, applies the
//! warninglists, and names every entry it rejects with its file and position. A bad entry, a
//! malformed file or a missing feed event never stops the import of the rest.

use crate::misp::{self, RawAttribute, RawEvent};
use crate::model::{Context, Indicator, Kind, Rejected, Suppressed};
use crate::normalize::{self, Prefix};
use crate::snapshot::{Snapshot, canonical};
use crate::stix;
use crate::text::{self, Guess, TextFeed};
use crate::warninglist::{Warninglist, pcre_like};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Largest source file read.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Most rejections kept with their detail (all are counted).
pub const MAX_REJECTIONS_KEPT: usize = 10_000;
/// The first line of the text snapshots of earlier islet versions (no longer read).
const SNAPSHOT_TEXT: &str = "islet-intel-snapshot\t";
const OLD_SNAPSHOT: &str =
    "a text snapshot of an earlier islet; import its sources again to make a snapshot image";

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Indicators kept, by MISP type.
    pub imported: BTreeMap<&'static str, u64>,
    /// Attributes of types islet cannot see on the wire (file hashes, filenames, links, …),
    /// by type: not errors.
    pub not_observable: BTreeMap<String, u64>,
    pub suppressed: Vec<Suppressed>,
    pub rejected: Vec<Rejected>,
    pub rejected_total: u64,
    /// Same kind, value and event seen twice.
    pub duplicates: u64,
    pub events: u64,
    pub sources: Vec<String>,
}

impl Report {
    pub fn imported_total(&self) -> u64 {
        self.imported.values().sum()
    }

    /// Rejections by reason.
    pub fn rejected_by_reason(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rejected {
            *m.entry(r.reason).or_default() += 1;
        }
        m
    }
}

/// Builds a [`Snapshot`].
#[derive(Debug, Default)]
pub struct Importer {
    lists: Vec<Warninglist>,
    indicators: Vec<Indicator>,
    contexts: Vec<Context>,
    /// (kind, value, event) already kept, as a 128-bit digest (two independently keyed
    /// 64-bit hashes) rather than a second copy of every value: a false duplicate needs a
    /// 128-bit collision.
    seen: hashbrown::HashSet<u128>,
    seen_keys: (std::hash::RandomState, std::hash::RandomState),
    /// Set while reading a snapshot, whose entries are already distinct: no duplicate check.
    trust_distinct: bool,
    /// Folder of the file being read, for feed definitions that name local files.
    base_dir: Option<std::path::PathBuf>,
    pub report: Report,
}

impl Importer {
    pub fn new(lists: Vec<Warninglist>) -> Importer {
        Importer {
            lists,
            ..Importer::default()
        }
    }

    fn reject(&mut self, source: &str, position: &str, reason: &'static str, detail: String) {
        self.report.rejected_total += 1;
        if self.report.rejected.len() < MAX_REJECTIONS_KEPT {
            self.report.rejected.push(Rejected {
                source: source.to_string(),
                position: position.to_string(),
                reason,
                detail,
            });
        }
    }

    /// The context of a list-like source (a feed or a plain list): named after it, no event.
    fn list_context(&mut self, origin: &'static str, name: &str) -> u32 {
        self.context(Context {
            origin,
            feed: name.to_string(),
            event_info: name.to_string(),
            threat_level: 4,
            ..Context::default()
        })
    }

    fn context(&mut self, c: Context) -> u32 {
        self.report.events += 1;
        self.contexts.push(c);
        (self.contexts.len() - 1) as u32
    }

    /// Import a file or directory: a MISP feed directory (`manifest.json`), a directory of
    /// files, MISP JSON, a STIX bundle, a warninglist (added to the lists), a snapshot, or a
    /// plain list (one IP, CIDR or domain per line).
    pub fn add_path(&mut self, path: &Path) {
        let name = path.display().to_string();
        if path.is_dir() {
            if path.join("manifest.json").is_file() {
                self.add_feed_dir(path);
            } else {
                let mut files: Vec<_> = std::fs::read_dir(path)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                files.sort();
                for f in files.iter().filter(|f| f.is_file()) {
                    self.add_path(f);
                }
            }
            return;
        }
        // A snapshot image is mapped, not read: its indicators are merged from the mapping.
        if Snapshot::is_file(path) {
            self.report.sources.push(name.clone());
            match Snapshot::open(path) {
                Ok(snap) => self.add_snapshot(&name, &snap),
                Err(e) => self.reject(&name, "file", "bad_snapshot", e.to_string()),
            }
            return;
        }
        if std::fs::File::open(path).is_ok_and(|mut f| {
            let mut head = [0u8; SNAPSHOT_TEXT.len()];
            std::io::Read::read_exact(&mut f, &mut head).is_ok()
                && head == *SNAPSHOT_TEXT.as_bytes()
        }) {
            self.report.sources.push(name.clone());
            return self.reject(
                &name,
                "line 1",
                "unsupported_snapshot_version",
                OLD_SNAPSHOT.into(),
            );
        }
        let bytes = match read_bounded(path) {
            Ok(b) => b,
            Err(e) => return self.reject(&name, "file", "unreadable", e),
        };
        self.base_dir = path.parent().map(Path::to_path_buf);
        self.add_bytes(&name, &bytes);
        self.base_dir = None;
    }

    /// Import one document held in memory; `name` names it in the report.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) {
        self.report.sources.push(name.to_string());
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => self.add_json(name, &v),
                Err(e) => self.reject(
                    name,
                    &format!("line {} column {}", e.line(), e.column()),
                    "bad_json",
                    e.to_string(),
                ),
            }
        } else if Snapshot::is_image(bytes) {
            match Snapshot::from_bytes(bytes.to_vec()) {
                Ok(snap) => self.add_snapshot(name, &snap),
                Err(e) => self.reject(name, "file", "bad_snapshot", e.to_string()),
            }
        } else if trimmed.starts_with(SNAPSHOT_TEXT.as_bytes()) {
            self.reject(
                name,
                "line 1",
                "unsupported_snapshot_version",
                OLD_SNAPSHOT.into(),
            );
        } else if trimmed.starts_with(b"uuid,event_id,category,type,value") {
            self.add_misp_csv(name, &String::from_utf8_lossy(bytes));
        } else {
            self.add_plain(name, &String::from_utf8_lossy(bytes));
        }
    }

    /// MISP's CSV export (`restSearch` with `returnFormat: csv`): a header naming the
    /// columns (`uuid,event_id,category,type,value,comment,to_ids,…`), one typed attribute per
    /// line. Quoted fields may hold the delimiter.
    pub fn add_misp_csv(&mut self, name: &str, text: &str) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = |n: &str| header.iter().position(|h| h.trim() == n);
        let (Some(c_uuid), Some(c_event), Some(c_cat), Some(c_type), Some(c_value), Some(c_ids)) = (
            col("uuid"),
            col("event_id"),
            col("category"),
            col("type"),
            col("value"),
            col("to_ids"),
        ) else {
            return self.reject(name, "line 1", "bad_csv_header", header.join(","));
        };
        let mut events: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
        let mut fields: Vec<String> = Vec::new();
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            split_csv(line, &mut fields);
            let pos = format!("line {}", n + 2);
            let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
            let Some(kind) = Kind::from_misp(get(c_type)) else {
                *self
                    .report
                    .not_observable
                    .entry(get(c_type).to_string())
                    .or_default() += 1;
                continue;
            };
            let event = get(c_event).to_string();
            let ctx = match events.get(&event) {
                Some(&c) => c,
                None => {
                    let c = self.context(Context {
                        origin: "MISP event",
                        feed: name.to_string(),
                        event_uuid: String::new(),
                        event_info: format!("MISP event {event}"),
                        threat_level: 4,
                        tags: Vec::new(),
                    });
                    events.insert(event, c);
                    c
                }
            };
            let to_ids = matches!(get(c_ids), "1" | "true" | "True");
            let (uuid, category, value) = (
                get(c_uuid).to_string(),
                get(c_cat).to_string(),
                get(c_value).to_string(),
            );
            self.add(
                name,
                &pos,
                ctx,
                kind,
                value,
                to_ids,
                uuid,
                category,
                Vec::new(),
            );
        }
    }

    fn add_json(&mut self, name: &str, v: &Value) {
        if Warninglist::looks_like(v) {
            match Warninglist::from_json(v) {
                Ok(l) => self.lists.push(l),
                Err(e) => self.reject(name, "$", "bad_warninglist", e.to_string()),
            }
        } else if v.get("Feed").is_some()
            || v.as_array()
                .is_some_and(|a| a.first().is_some_and(|f| f.get("Feed").is_some()))
        {
            self.add_feed_definitions(name, v);
        } else if v["type"] == "bundle" {
            self.add_stix(name, v);
        } else if misp::looks_like(v) {
            for ev in misp::events(v, name) {
                self.add_event(name, ev);
            }
        } else {
            self.reject(
                name,
                "$",
                "unknown_format",
                "not MISP, STIX, a warninglist or a snapshot".into(),
            );
        }
    }

    /// A MISP feed: `manifest.json` lists the events; each is `<uuid>.json` beside it.
    pub fn add_feed_dir(&mut self, dir: &Path) {
        let feed = dir.display().to_string();
        let manifest = match read_bounded(&dir.join("manifest.json"))
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return self.reject(&feed, "manifest.json", "bad_manifest", e),
        };
        let Some(entries) = manifest.as_object() else {
            return self.reject(
                &feed,
                "manifest.json",
                "bad_manifest",
                "not an object".into(),
            );
        };
        self.report.sources.push(feed.clone());
        let mut uuids: Vec<&String> = entries.keys().collect();
        uuids.sort();
        for uuid in uuids {
            let file = dir.join(format!("{uuid}.json"));
            let pos = format!("{uuid}.json");
            let bytes = match read_bounded(&file) {
                Ok(b) => b,
                Err(e) => {
                    self.reject(
                        &feed,
                        &pos,
                        "missing_event_file",
                        format!("event {uuid}: {e}"),
                    );
                    continue;
                }
            };
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => {
                    for ev in misp::events(&v, &feed) {
                        self.add_event(&format!("{feed}/{pos}"), ev);
                    }
                }
                Err(e) => self.reject(&feed, &pos, "bad_json", e.to_string()),
            }
        }
    }

    fn add_event(&mut self, source: &str, ev: RawEvent) {
        let ctx = self.context(ev.context);
        for a in ev.attributes {
            self.add_attribute(source, ctx, a);
        }
    }

    fn add_attribute(&mut self, source: &str, ctx: u32, a: RawAttribute) {
        let kind = match Kind::from_misp(&a.misp_type) {
            Some(k) => k,
            // JA4 has no MISP type of its own: a `text` attribute, or an object attribute whose
            // relation names it, holding a JA4 string.
            None if (a.misp_type == "text"
                || a.object.as_deref().is_some_and(|o| o.contains("ja4")))
                && normalize::ja4(&a.value).is_some() =>
            {
                Kind::Ja4
            }
            None => {
                *self.report.not_observable.entry(a.misp_type).or_default() += 1;
                return;
            }
        };
        self.add(
            source,
            &a.position,
            ctx,
            kind,
            a.value,
            a.to_ids,
            a.uuid,
            a.category,
            a.tags,
        );
    }

    /// An indicator meant for detection from a source without attribute metadata (STIX, a
    /// feed, a list): `to_ids`, category `Network activity`, no tags.
    fn add_detect(
        &mut self,
        source: &str,
        position: &str,
        ctx: u32,
        kind: Kind,
        value: String,
        uuid: String,
    ) {
        let category = "Network activity".to_string();
        self.add(
            source,
            position,
            ctx,
            kind,
            value,
            true,
            uuid,
            category,
            Vec::new(),
        );
    }

    /// Check one indicator, apply the warninglists, keep it.
    #[allow(
        clippy::too_many_arguments,
        reason = "an indicator's fields as each importer reads them, before one is built"
    )]
    pub(crate) fn add(
        &mut self,
        source: &str,
        position: &str,
        ctx: u32,
        kind: Kind,
        value: String,
        to_ids: bool,
        uuid: String,
        category: String,
        tags: Vec<String>,
    ) {
        if let Err(reason) = check(kind, &value) {
            return self.reject(source, position, reason, format!("{kind} {value:?}"));
        }
        if let Some(l) = self
            .lists
            .iter()
            .find(|l| l.applies_to(kind) && l.matches(kind, &value))
        {
            self.report.suppressed.push(Suppressed {
                kind,
                value,
                list: l.name.clone(),
            });
            return;
        }
        let duplicate = !self.trust_distinct && {
            use std::hash::BuildHasher as _;
            let key = (kind, value.as_str(), ctx);
            let digest = (u128::from(self.seen_keys.0.hash_one(key)) << 64)
                | u128::from(self.seen_keys.1.hash_one(key));
            !self.seen.insert(digest)
        };
        if duplicate {
            self.report.duplicates += 1;
            return;
        }
        *self.report.imported.entry(kind.name()).or_default() += 1;
        self.indicators.push(Indicator {
            kind,
            value,
            to_ids,
            uuid,
            category,
            tags,
            context: ctx,
        });
    }

    /// STIX 2.x: each `indicator` with a STIX pattern.
    fn add_stix(&mut self, name: &str, v: &Value) {
        for (i, o) in v["objects"].as_array().into_iter().flatten().enumerate() {
            if o["type"] != "indicator" {
                continue;
            }
            let pos = format!("$.objects[{i}]");
            let pattern_type = o["pattern_type"].as_str().unwrap_or("stix");
            let Some(pattern) = o["pattern"].as_str().filter(|_| pattern_type == "stix") else {
                self.reject(
                    name,
                    &pos,
                    "unsupported_pattern_type",
                    pattern_type.to_string(),
                );
                continue;
            };
            let found = match stix::indicators(pattern) {
                Ok(f) => f,
                Err(reason) => {
                    let r = stix_reason(&reason);
                    self.reject(name, &pos, r, format!("{reason}: {pattern}"));
                    continue;
                }
            };
            let mut tags: Vec<String> = ["labels", "indicator_types"]
                .iter()
                .flat_map(|k| o[*k].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            tags.dedup();
            let id = o["id"].as_str().unwrap_or("").to_string();
            let ctx = self.context(Context {
                origin: "STIX indicator",
                feed: name.to_string(),
                event_uuid: id.strip_prefix("indicator--").unwrap_or(&id).to_string(),
                event_info: o["name"]
                    .as_str()
                    .or(o["description"].as_str())
                    .unwrap_or(pattern)
                    .to_string(),
                threat_level: 4,
                tags,
            });
            for (kind, value) in found {
                self.add_detect(name, &pos, ctx, kind, value, id.clone());
            }
        }
    }

    /// MISP feed definitions (`{"Feed": {…}}`, or a list, as MISP exports them) whose `url` is
    /// a local file: `source_format` `csv` or `freetext` with MISP's `settings` (value columns,
    /// delimiter, exclude regex), or `misp`/`1` for a feed folder.
    fn add_feed_definitions(&mut self, name: &str, v: &Value) {
        let defs: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for (i, d) in defs.into_iter().enumerate() {
            let f = &d["Feed"];
            let pos = format!("$[{i}].Feed");
            let feed_name = f["name"].as_str().unwrap_or(name).to_string();
            let Some(url) = f["url"].as_str() else {
                self.reject(name, &pos, "bad_feed_definition", "no url".into());
                continue;
            };
            if url.starts_with("http://") || url.starts_with("https://") {
                self.reject(
                    name,
                    &pos,
                    "remote_feed_not_fetched",
                    format!("{feed_name}: {url} (use [intel.misp] or a local copy)"),
                );
                continue;
            }
            let path = match &self.base_dir {
                Some(b) if Path::new(url).is_relative() => b.join(url),
                _ => Path::new(url).to_path_buf(),
            };
            // MISP stores settings as a JSON string.
            let settings: Value = match &f["settings"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            let exclude = settings["common"]["excluderegex"]
                .as_str()
                .filter(|r| !r.is_empty());
            let exclude = match exclude.map(pcre_like) {
                Some(Some(r)) => Some(r),
                Some(None) => {
                    self.reject(
                        name,
                        &pos,
                        "bad_exclude_regex",
                        exclude.unwrap_or("").into(),
                    );
                    continue;
                }
                None => None,
            };
            let format = f["source_format"].as_str().unwrap_or("misp");
            match format {
                "csv" | "freetext" => {
                    let value_columns = if format == "csv" {
                        settings["csv"]["value"]
                            .as_str()
                            .map(|c| c.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                            .unwrap_or_else(|| vec![1])
                    } else {
                        Vec::new()
                    };
                    let delimiter = settings["csv"]["delimiter"]
                        .as_str()
                        .and_then(|d| d.chars().next())
                        .unwrap_or(',');
                    let spec = TextFeed {
                        value_columns,
                        delimiter,
                        exclude,
                    };
                    match read_bounded(&path) {
                        Ok(b) => {
                            self.add_text_feed(&feed_name, &String::from_utf8_lossy(&b), &spec)
                        }
                        Err(e) => self.reject(
                            name,
                            &pos,
                            "unreadable",
                            format!("{}: {e}", path.display()),
                        ),
                    }
                }
                "misp" | "1" => self.add_path(&path),
                other => self.reject(name, &pos, "unsupported_feed_format", other.to_string()),
            }
        }
    }

    /// A CSV or freetext feed's text, with its settings.
    pub fn add_text_feed(&mut self, name: &str, text: &str, spec: &TextFeed) {
        self.report.sources.push(name.to_string());
        let ctx = self.list_context("MISP feed", name);
        for (n, line) in text.lines().enumerate() {
            let pos = format!("line {}", n + 1);
            for v in spec.values(line) {
                match text::guess(v) {
                    Guess::Indicator(t, value) => {
                        if let Some(kind) = Kind::from_misp(t) {
                            self.add_detect(name, &pos, ctx, kind, value, String::new());
                        }
                    }
                    Guess::NotObservable(t) => {
                        *self.report.not_observable.entry(t.to_string()).or_default() += 1;
                    }
                    Guess::Nothing if !spec.value_columns.is_empty() => {
                        self.reject(name, &pos, "unrecognised_value", v.to_string());
                    }
                    Guess::Nothing => {}
                }
            }
        }
    }

    /// One IP, CIDR, domain or URL per line; `#` starts a comment.
    pub fn add_plain(&mut self, name: &str, text: &str) {
        let ctx = self.list_context("list", name);
        for (n, line) in text.lines().enumerate() {
            let v = line.split('#').next().unwrap_or("").trim();
            if v.is_empty() {
                continue;
            }
            let pos = format!("line {}", n + 1);
            let kind = if Prefix::parse(v).is_some() {
                Kind::Ip
            } else if v.contains("://") || v.contains('/') {
                Kind::Url
            } else {
                Kind::Domain
            };
            self.add_detect(name, &pos, ctx, kind, v.to_string(), String::new());
        }
    }

    /// Merge a snapshot: its contexts, suppressions and indicators, re-checked against this
    /// importer's warninglists. Its entries are already distinct: no duplicate check.
    fn add_snapshot(&mut self, name: &str, snap: &Snapshot) {
        let trusted = std::mem::replace(&mut self.trust_distinct, true);
        let base = self.contexts.len() as u32;
        for c in 0..snap.context_count() {
            self.context(snap.context_at(c as u32));
        }
        self.report.suppressed.extend_from_slice(snap.suppressed());
        self.indicators.reserve(snap.len());
        let mut pos = String::new();
        for (i, ind) in snap.iter().enumerate() {
            pos.clear();
            use std::fmt::Write as _;
            let _ = write!(pos, "indicator {i}");
            if ind.context as usize >= snap.context_count() {
                self.reject(
                    name,
                    &pos,
                    "bad_snapshot_entry",
                    "context out of range".into(),
                );
                continue;
            }
            self.add(
                name,
                &pos,
                base + ind.context,
                ind.kind,
                ind.value,
                ind.to_ids,
                ind.uuid,
                ind.category,
                ind.tags,
            );
        }
        self.trust_distinct = trusted;
    }

    /// Compile what was imported.
    pub fn finish(self) -> (Snapshot, Report) {
        let mut report = self.report;
        match Snapshot::compile(self.indicators, self.contexts, report.suppressed.clone()) {
            Ok(snap) => (snap, report),
            Err(e) => {
                report.rejected_total += 1;
                report.rejected.push(Rejected {
                    source: report.sources.join(", "),
                    position: "snapshot".into(),
                    reason: "snapshot_too_large",
                    detail: e,
                });
                (Snapshot::default(), report)
            }
        }
    }
}

/// One CSV line into fields (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn split_csv(line: &str, out: &mut Vec<String>) {
    out.clear();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
}

fn stix_reason(e: &stix::PatternError) -> &'static str {
    use stix::PatternError as P;
    match e {
        P::UnsupportedPattern { .. } => "unsupported_pattern",
        P::UnsupportedAnd(_) | P::ObservationsJoinedByAnd => "unsupported_and",
        P::Negated => "unsupported_negation",
        _ => "bad_pattern",
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes, above the {MAX_FILE_BYTES}-byte bound",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Is this a value of this kind islet can match?
fn check(kind: Kind, v: &str) -> Result<(), &'static str> {
    let ok = match kind {
        Kind::IpSrc | Kind::IpDst | Kind::Ip => Prefix::parse(v).is_some(),
        Kind::IpSrcPort | Kind::IpDstPort => v
            .rsplit_once('|')
            .is_some_and(|(a, p)| Prefix::parse(a).is_some() && p.trim().parse::<u16>().is_ok()),
        Kind::Domain | Kind::Hostname => return name_ok(v),
        Kind::DomainIp => v
            .split_once('|')
            .is_some_and(|(d, a)| name_ok(d).is_ok() && Prefix::parse(a).is_some()),
        Kind::Url => normalize::url(v).is_some(),
        Kind::Uri => !v.trim().is_empty() && v.len() <= normalize::MAX_URL,
        k => canonical(k, v).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(match kind {
            k if k.is_ip() => "bad_ip",
            Kind::DomainIp => "bad_domain_ip",
            Kind::Url | Kind::Uri => "bad_url",
            _ => "bad_fingerprint",
        })
    }
}

fn name_ok(v: &str) -> Result<(), &'static str> {
    let n = normalize::name(v).ok_or("bad_name")?;
    let labels_ok = n.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*'))
    });
    if labels_ok { Ok(()) } else { Err("bad_name") }
}
