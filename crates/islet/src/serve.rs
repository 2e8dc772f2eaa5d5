//! `islet serve`: the investigation console, and `islet serve token …`.

use crate::Failure;
use crate::cli::{ServeArgs, ServeCommand, TokenCommand};
use islet_console::export::{MispConfig, TheHiveConfig};
use islet_console::serve::ServeConfig;
use islet_store::{AccessStore as _, CaseStore as _, Role};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `[console]` of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleFile {
    #[serde(default)]
    console: ConsoleSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleSection {
    thehive: Option<TheHiveConfig>,
    misp: Option<MispConfig>,
    #[serde(default)]
    retention: RetentionSection,
    /// Seconds between retention passes.
    prune_interval: Option<u64>,
    /// Most attempts per export before it is given up (kept as `failed`).
    export_max_attempts: Option<u32>,
    /// First retry delay, ms (doubles per attempt, capped at 5 minutes).
    export_backoff_ms: Option<i64>,
    /// `source` of TheHive alerts and MISP sightings.
    source: Option<String>,
    case_window: Option<u64>,
    #[serde(default)]
    critical: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionSection {
    flows_days: Option<f64>,
    flows_rows: Option<u64>,
    events_days: Option<f64>,
    events_rows: Option<u64>,
    edges_days: Option<f64>,
    alerts_days: Option<f64>,
    /// Duplicate keys kept per sensor (records behind its chain head).
    dedupe_records: Option<u64>,
}

fn days(d: Option<f64>, name: &str) -> Result<Option<i64>, Failure> {
    match d {
        None => Ok(None),
        Some(x) if x.is_finite() && x >= 0.0 => Ok(Some((x * 86_400_000.0) as i64)),
        Some(_) => Err(Failure::Input(format!(
            "console.retention.{name} is a number of days ≥ 0"
        ))),
    }
}

pub(crate) fn config(a: &ServeArgs) -> Result<ServeConfig, Failure> {
    let mut c = ServeConfig::new(a.data.clone());
    c.listen.clone_from(&a.listen);
    c.forward_listen = (a.forward_listen != "off").then(|| a.forward_listen.clone());
    c.forward_shared_key.clone_from(&a.forward_shared_key);
    if let Some(p) = &a.forward_key_file {
        c.forward_shared_key = Some(read_key_file(p)?);
    }
    c.forward_unauthenticated = a.forward_unauthenticated;
    c.tls_cert.clone_from(&a.tls_cert);
    c.tls_key.clone_from(&a.tls_key);
    c.ingest.clone_from(&a.ingest);
    c.follow = a.follow && !a.once;
    c.inventory.clone_from(&a.inventory);
    c.critical.clone_from(&a.critical);
    c.case_window_s = a.case_window;
    for k in &a.sensor_keys {
        let (n, p) = k
            .split_once('=')
            .ok_or_else(|| Failure::Input(format!("--sensor-key {k:?}: expected NAME=PATH")))?;
        c.sensor_keys.push((n.to_string(), p.into()));
    }
    if let Some(p) = &a.config {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Failure::Input(format!("{}: {e}", p.display())))?;
        let f: ConsoleFile = toml::from_str(&text).map_err(|e| {
            Failure::Input(format!(
                "{}: {}",
                p.display(),
                e.to_string().lines().collect::<Vec<_>>().join(" ")
            ))
        })?;
        let s = f.console;
        c.export.thehive = s.thehive;
        c.export.misp = s.misp;
        if let Some(n) = s.export_max_attempts {
            c.export.retry.max_attempts = n.max(1);
        }
        if let Some(b) = s.export_backoff_ms {
            c.export.retry.base_ms = b.max(1);
        }
        if let Some(src) = s.source {
            c.export.source = src;
        }
        if let Some(w) = s.case_window {
            c.case_window_s = w;
        }
        c.critical.extend(s.critical);
        if let Some(i) = s.prune_interval {
            c.prune_interval_s = i;
        }
        let r = &s.retention;
        if let Some(v) = days(r.flows_days, "flows_days")? {
            c.retention.flows_age_ms = v;
        }
        if let Some(v) = days(r.events_days, "events_days")? {
            c.retention.events_age_ms = v;
        }
        if let Some(v) = days(r.edges_days, "edges_days")? {
            c.retention.edges_age_ms = v;
        }
        if let Some(v) = days(r.alerts_days, "alerts_days")? {
            c.retention.alerts_age_ms = v;
        }
        if let Some(v) = r.flows_rows {
            c.retention.flows_rows = v;
        }
        if let Some(v) = r.events_rows {
            c.retention.events_rows = v;
        }
        if let Some(v) = r.dedupe_records {
            c.retention.dedupe_window = v;
        }
    }
    if let Some(addr) = &c.forward_listen {
        islet_console::serve::forward_auth_allowed(
            addr,
            c.forward_shared_key.is_some(),
            c.forward_unauthenticated,
        )
        .map_err(|e| Failure::Input(e.to_string()))?;
    }
    if c.tls_cert.is_some() != c.tls_key.is_some() {
        return Err(Failure::Input(
            "--tls-cert and --tls-key go together".into(),
        ));
    }
    for f in &c.ingest {
        if !f.is_file() {
            return Err(Failure::Input(format!(
                "--ingest {}: no such file",
                f.display()
            )));
        }
    }
    Ok(c)
}

/// The first line of a key file, which must not be empty.
fn read_key_file(p: &std::path::Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Failure::Input(format!("--forward-key-file {}: {e}", p.display())))?;
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(Failure::Input(format!(
            "--forward-key-file {}: the file's first line is empty",
            p.display()
        )));
    }
    Ok(key.to_string())
}

/// Create a token in the store at `data`; returns the token text.
pub(crate) fn create_token(
    data: &std::path::Path,
    role: Role,
    name: &str,
) -> Result<String, Failure> {
    let mut store = islet_console::open_store(data).map_err(|e| Failure::Runtime(e.to_string()))?;
    let (secret, t) =
        islet_console::auth::mint(role, name).map_err(|e| Failure::Runtime(e.to_string()))?;
    let now = islet_console::ingest::now_ms();
    store
        .create_token(&t, now)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    store
        .record_audit(
            "cli",
            "token",
            None,
            &format!("token {} created ({})", t.id, role.name()),
            now,
        )
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    Ok(secret)
}

pub(crate) fn run(a: &ServeArgs) -> Result<(), Failure> {
    match &a.command {
        Some(ServeCommand::Token(TokenCommand::Create(t))) => {
            let role = Role::parse(&t.role).ok_or_else(|| {
                Failure::Input(format!("--role {:?}: viewer, analyst or admin", t.role))
            })?;
            println!("{}", create_token(&t.data, role, &t.name)?);
            return Ok(());
        }
        Some(ServeCommand::Token(TokenCommand::List(t))) => {
            let store =
                islet_console::open_store(&t.data).map_err(|e| Failure::Runtime(e.to_string()))?;
            for r in store
                .tokens()
                .map_err(|e| Failure::Runtime(e.to_string()))?
            {
                println!(
                    "{}\t{}\t{}\tcreated {}\t{}",
                    r.id,
                    r.role.name(),
                    r.name,
                    islet_console::ui::fmt_ts(r.created),
                    r.revoked.map_or("active".into(), |x| format!(
                        "revoked {}",
                        islet_console::ui::fmt_ts(x)
                    ))
                );
            }
            return Ok(());
        }
        Some(ServeCommand::Token(TokenCommand::Revoke(t))) => {
            let mut store =
                islet_console::open_store(&t.data).map_err(|e| Failure::Runtime(e.to_string()))?;
            store
                .revoke_token(&t.id, islet_console::ingest::now_ms())
                .map_err(|e| Failure::Input(e.to_string()))?;
            return Ok(());
        }
        Some(ServeCommand::Records(r)) => {
            let store =
                islet_console::open_store(&r.data).map_err(|e| Failure::Runtime(e.to_string()))?;
            let out: Box<dyn std::io::Write> = match r.output.as_str() {
                "-" => Box::new(std::io::stdout().lock()),
                p => Box::new(
                    std::fs::File::create(p).map_err(|e| Failure::Input(format!("{p}: {e}")))?,
                ),
            };
            let mut out = std::io::BufWriter::new(out);
            let n = islet_console::sealed::write(&store, &r.sensor, r.after_seq, &mut out)
                .map_err(|e| Failure::Runtime(e.to_string()))?;
            eprintln!("islet serve records: {n} records of sensor {}", r.sensor);
            return Ok(());
        }
        None => {}
    }
    let cfg = config(a)?;
    let once = a.once;
    let running = islet_console::serve::start(cfg).map_err(|e| Failure::Runtime(e.to_string()))?;
    let scheme = if running.tls { "https" } else { "http" };
    eprintln!("islet serve: console on {scheme}://{}/", running.http);
    if let Some(f) = running.forward {
        eprintln!("islet serve: Forward receiver on {f}");
    }
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
    }
    while !term.load(Ordering::SeqCst) {
        if once && running.files_done() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.stop();
    Ok(())
}
