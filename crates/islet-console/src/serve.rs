//! Running the console: the ingest writer, the Forward receiver, file ingest, the exporter,
//! background retention, and the HTTP server (plain or TLS) on a tokio runtime of its own.

use crate::error::ServeError;
use crate::export::{ExportConfig, Exporter};
use crate::identify::Identify;
use crate::ingest::{Ingest, IngestConfig};
use islet_store::{EvidenceStore as _, Retention};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What `islet serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data: PathBuf,
    /// The console (HTTP API and UI).
    pub listen: String,
    /// The Forward receiver; none: no network ingest.
    pub forward_listen: Option<String>,
    /// Require the Forward shared-key handshake with this key.
    pub forward_shared_key: Option<String>,
    /// PEM certificate chain and key: the console and the Forward receiver speak TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// EVE files to ingest, and whether to follow them as they grow.
    pub ingest: Vec<PathBuf>,
    pub follow: bool,
    /// Workload inventory (islet TOML or a Kubernetes pod list).
    pub inventory: Option<PathBuf>,
    /// Critical assets: CIDRs, addresses, `namespace/name`, `label=value`.
    pub critical: Vec<String>,
    /// Sensors' public keys (`name` → `sensor.pub`): their checkpoints are verified.
    pub sensor_keys: Vec<(String, PathBuf)>,
    /// Alerts sharing an observable within this many seconds share a case.
    pub case_window_s: u64,
    pub retention: Retention,
    /// Seconds between retention passes.
    pub prune_interval_s: u64,
    pub export: ExportConfig,
    /// Bounds of the HTTP(S) listener.
    pub http_limits: crate::listen::Limits,
    /// Serve the Forward port without a shared key (refused unless it listens on loopback).
    pub forward_unauthenticated: bool,
}

impl ServeConfig {
    pub fn new(data: PathBuf) -> ServeConfig {
        ServeConfig {
            data,
            listen: "127.0.0.1:8080".into(),
            forward_listen: Some("127.0.0.1:24224".into()),
            forward_shared_key: None,
            tls_cert: None,
            tls_key: None,
            ingest: Vec::new(),
            follow: false,
            inventory: None,
            critical: Vec::new(),
            sensor_keys: Vec::new(),
            case_window_s: 3600,
            retention: crate::default_retention(),
            prune_interval_s: 300,
            export: ExportConfig {
                source: "islet".into(),
                ..ExportConfig::default()
            },
            http_limits: crate::listen::Limits::default(),
            forward_unauthenticated: false,
        }
    }
}

/// A running console.
pub struct Running {
    pub http: SocketAddr,
    pub forward: Option<SocketAddr>,
    pub tls: bool,
    stop: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    http_thread: Option<std::thread::JoinHandle<()>>,
    receiver: Option<islet_sink::forward::Receiver>,
    files: Vec<std::thread::JoinHandle<()>>,
    pruner: Option<std::thread::JoinHandle<()>>,
    ingest: Ingest,
    exporter: Exporter,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(ServeError::io(p.display()));
    let tls = |what: &str, detail: String| ServeError::Tls {
        what: what.to_string(),
        detail,
    };
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&cert.display().to_string(), e.to_string()))?;
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| tls(&key.display().to_string(), e.to_string()))?
        .ok_or_else(|| tls(&key.display().to_string(), "no private key".into()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls("", e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| tls("TLS", e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// The Forward port takes records that open cases and extend sensors' chains: it is served
/// only with a shared key, or without one when asked explicitly and on loopback alone.
pub fn forward_auth_allowed(
    addr: &str,
    keyed: bool,
    unauthenticated: bool,
) -> Result<(), ServeError> {
    use std::net::ToSocketAddrs as _;
    if keyed {
        return Ok(());
    }
    if !unauthenticated {
        return Err(ServeError::Config(format!(
            "the Forward receiver on {addr} needs a shared key (--forward-key-file FILE); \
             --forward-unauthenticated serves it without one on a loopback address only, and \
             --forward-listen off serves the console without it"
        )));
    }
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(ServeError::io(format!("forward listen {addr}")))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(ServeError::Config(format!(
            "--forward-unauthenticated: {addr} is not a loopback address; \
             give the Forward receiver a shared key to listen beyond this host"
        )));
    }
    Ok(())
}

/// Start everything; returns once the listeners are bound.
pub fn start(cfg: ServeConfig) -> Result<Running, ServeError> {
    let store = crate::open_store(&cfg.data)?;
    let inventory = match &cfg.inventory {
        Some(p) => Some(islet_policy::identity::Inventory::from_path(p)?),
        None => None,
    };
    let mut keys = HashMap::new();
    for (name, p) in &cfg.sensor_keys {
        keys.insert(name.clone(), islet_sink::chain::read_public_key(p)?);
    }
    let ingest = Ingest::start(
        store,
        IngestConfig {
            case_window_ms: (cfg.case_window_s as i64).saturating_mul(1000),
            identify: Identify::new(inventory, &cfg.critical)?,
            keys,
            clock: crate::ingest::now_ms,
        },
    )?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        (None, None) => None,
        _ => {
            return Err(ServeError::Config(
                "TLS needs both a certificate and a key".into(),
            ));
        }
    };
    if let Some(addr) = &cfg.forward_listen {
        forward_auth_allowed(
            addr,
            cfg.forward_shared_key.is_some(),
            cfg.forward_unauthenticated,
        )?;
    }
    let receiver = match &cfg.forward_listen {
        Some(addr) => Some(
            islet_sink::forward::Receiver::start(
                addr,
                islet_sink::forward::ServerConfig {
                    shared_key: cfg.forward_shared_key.clone(),
                    self_hostname: "islet-console".into(),
                    ..islet_sink::forward::ServerConfig::default()
                },
                tls.clone(),
                crate::ingest::forward_handler(ingest.submitter()),
            )
            .map_err(ServeError::io(format!("forward listen {addr}")))?,
        ),
        None => None,
    };
    let exporter = Exporter::start(
        crate::open_store(&cfg.data)?,
        cfg.export.clone(),
        crate::ingest::now_ms,
    );
    let app = crate::app(
        &cfg.data,
        ingest.stats.clone(),
        exporter.stats.clone(),
        cfg.export.clone(),
        Some(exporter.waker()),
        tls.is_some(),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut files = Vec::new();
    for p in &cfg.ingest {
        let (p, sub, follow, stop) = (p.clone(), ingest.submitter(), cfg.follow, stop.clone());
        let sensor = crate::follow::sensor_of(&p);
        files.push(
            std::thread::Builder::new()
                .name("console-file".into())
                .spawn(
                    move || match crate::follow::ingest_file(&p, &sensor, &sub, follow, &stop) {
                        Ok(n) => eprintln!("islet serve: {}: {n} records ingested", p.display()),
                        Err(e) => eprintln!("islet serve: {}: {e}", p.display()),
                    },
                )
                .map_err(ServeError::io(""))?,
        );
    }
    let pruner = {
        let (stop, data, r, every) = (
            stop.clone(),
            cfg.data.clone(),
            cfg.retention.clone(),
            cfg.prune_interval_s.max(1),
        );
        std::thread::Builder::new()
            .name("console-retention".into())
            .spawn(move || {
                let Ok(mut s) = crate::open_store(&data) else {
                    return;
                };
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    if last.elapsed() >= Duration::from_secs(every) {
                        last = std::time::Instant::now();
                        if let Err(e) = s.prune(&r, crate::ingest::now_ms()) {
                            eprintln!("islet serve: retention: {e}");
                        }
                    }
                }
            })
            .ok()
    };
    let std_listener = std::net::TcpListener::bind(&cfg.listen)
        .map_err(ServeError::io(format!("listen {}", cfg.listen)))?;
    std_listener
        .set_nonblocking(true)
        .map_err(ServeError::io(""))?;
    let http = std_listener.local_addr().map_err(ServeError::io(""))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    if let Some(r) = &receiver {
        let _ = app.forward.set(r.stats.clone());
    }
    let listen_stats = app.listen.clone();
    let limits = cfg.http_limits;
    let router = crate::router(app);
    let tls_http = tls.clone();
    let http_thread = std::thread::Builder::new()
        .name("console-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(16)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("islet serve: runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(tcp) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                let shutdown = async {
                    let _ = rx.await;
                };
                let acceptor = tls_http.map(tokio_rustls::TlsAcceptor::from);
                crate::listen::serve(tcp, acceptor, router, limits, listen_stats, shutdown).await;
            });
        })
        .map_err(ServeError::io(""))?;
    Ok(Running {
        http,
        forward: receiver
            .as_ref()
            .map(islet_sink::forward::Receiver::local_addr),
        tls: tls.is_some(),
        stop,
        shutdown: Some(tx),
        http_thread: Some(http_thread),
        receiver,
        files,
        pruner,
        ingest,
        exporter,
    })
}

impl Running {
    /// The file ingest threads are done (they never are when following).
    pub fn files_done(&self) -> bool {
        self.files.iter().all(std::thread::JoinHandle::is_finished)
    }

    /// Stop: no new connections; what was committed stays, what was not is not acknowledged.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.receiver.take() {
            r.stop();
        }
        for f in self.files.drain(..) {
            let _ = f.join();
        }
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.http_thread.take() {
            let _ = t.join();
        }
        self.ingest.stop();
        self.exporter.stop();
        if let Some(p) = self.pruner.take() {
            let _ = p.join();
        }
    }
}
