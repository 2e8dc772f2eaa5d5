//! `islet read`: capture files → EVE JSON.

use crate::Failure;
use crate::cli::{ReadArgs, SensorArgs};
use indicatif::{ProgressBar, ProgressStyle};
use islet_capture::PcapFiles;
use islet_sensor::output::{FileTarget, build_output};
use islet_sensor::{Progress, RunError, SensorConfig, Summary};
use islet_sink::FinishReport;
use islet_sink::metrics::{Metrics, MetricsServer};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) fn config(a: &SensorArgs) -> Result<SensorConfig, Failure> {
    let mut cfg = match &a.config {
        Some(p) => SensorConfig::load(p).map_err(|e| Failure::Input(e.to_string()))?,
        None => SensorConfig::default(),
    };
    if let Some(s) = a.community_id_seed {
        cfg.output.community_id_seed = s;
    }
    if let Some(w) = a.workers {
        cfg.sensor.workers = w;
    }
    if let Some(m) = a.max_flows {
        cfg.flow.max_flows = m;
    }
    let o = &mut cfg.output;
    if let Some(f) = &a.format {
        o.format = f.clone();
    }
    if let Some(k) = &a.sign_key {
        o.sign_key = Some(k.clone());
    }
    if let Some(d) = &a.state_dir {
        o.state_dir = Some(d.clone());
    }
    if let Some(m) = &a.metrics {
        o.metrics = m.clone();
    }
    let f = &mut cfg.forward;
    if let Some(k) = &a.forward_shared_key {
        f.shared_key = Some(k.clone());
    }
    if a.forward_ca.is_some() {
        f.tls = true;
        f.tls_ca = a.forward_ca.clone();
    }
    if a.forward_cert.is_some() {
        f.tls_cert = a.forward_cert.clone();
        f.tls_key = a.forward_key.clone();
    }
    if let Some(m) = &a.forward_mode {
        f.mode = m.clone();
    }
    if let Some(d) = &a.forward_spool {
        f.spool_dir = Some(d.clone());
    }
    if let Some(m) = a.forward_memory {
        f.memory_bytes = m;
    }
    if let Some(p) = &a.forward_on_full {
        f.on_full = p.clone();
    }
    cfg.validate().map_err(|e| Failure::Input(e.to_string()))?;
    Ok(cfg)
}

pub(crate) fn run(r: &ReadArgs) -> Result<Summary, Failure> {
    let a = &r.sensor;
    let cfg = config(a)?;
    let mut source = PcapFiles::open(&r.pcaps).map_err(|e| Failure::Input(e.to_string()))?;
    source.set_keep_going(r.keep_going);
    if r.raw_floor {
        return raw_floor(&mut source);
    }
    let intel = crate::intel::for_read(&cfg.intel, &a.intel, &a.warninglists, a.quiet)?;
    let (intel, sightings) = match intel {
        Some((rt, q)) => (Some(rt), q),
        None => (None, None),
    };
    let (policy, policy_events) = crate::policy::for_read(a, &cfg.policy, &Default::default())?;
    let OpenedOutput {
        mut out,
        destinations,
        metrics,
        _server,
    } = open_output(&cfg, &a.output, &a.forward, &policy_events)?;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let started = std::time::Instant::now();
    let mut on_progress = |p: Progress| {
        metrics.packets.store(p.packets, Ordering::Relaxed);
        if let Some(b) = &bar {
            b.set_length(p.bytes_total);
            b.set_position(p.bytes_done);
            let pps = p.packets as f64 / started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{} pkts, {:.0} pkts/s", p.packets, pps));
        }
    };
    let judges = islet_sensor::Judges { intel, policy };
    let result = islet_sensor::Reader::new(&cfg)
        .judges(judges)
        .progress(&mut on_progress)
        .run(&mut source, &mut out);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    for w in source.take_warnings() {
        eprintln!("islet: warning: {w}");
    }
    if let Some(q) = sightings {
        let st = q.finish();
        eprintln!(
            "islet: sightings to MISP: {} sent in {} batches, {} dropped, {} undelivered{}",
            st.sent,
            st.batches,
            st.dropped,
            st.undelivered,
            st.last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
    match &result {
        Ok(s) => note_totals(&metrics, s),
        Err(RunError::Capture(_, s)) => note_totals(&metrics, s),
        Err(_) => {}
    }
    let fin = out
        .finish()
        .map_err(|e| match islet_sink::output::PathError::of(&e) {
            // The error names its own file (the chain state in the state or spool directory).
            Some(p) => Failure::Runtime(p.to_string()),
            None => Failure::Runtime(format!("{}: {e}", a.output)),
        })?;
    report_delivery(&fin, &destinations)?;
    match result {
        Ok(s) => {
            print_summary(&s);
            Ok(s)
        }
        Err(RunError::Capture(e, s)) => {
            print_summary(&s);
            Err(Failure::Input(e.to_string()))
        }
        Err(e @ RunError::Output(_)) => Err(Failure::Runtime(e.to_string())),
    }
}

/// Where records go, opened: the output stage, its Forward destinations (each a failover
/// list), the metrics registry and its endpoint (kept alive by holding it).
pub(crate) struct OpenedOutput {
    pub out: islet_sink::Output,
    pub destinations: Vec<Vec<String>>,
    pub metrics: Arc<Metrics>,
    pub _server: Option<MetricsServer>,
}

/// Open the output stage for `output` (`-`: stdout) and the `--forward` destinations (else
/// `forward.servers`), start the metrics endpoint, and write `first` (records that precede
/// the run's, such as a rejected policy bundle's).
pub(crate) fn open_output(
    cfg: &SensorConfig,
    output: &str,
    forward: &[String],
    first: &[u8],
) -> Result<OpenedOutput, Failure> {
    let mut destinations: Vec<Vec<String>> = forward
        .iter()
        .map(|d| d.split(',').map(str::to_string).collect())
        .collect();
    if destinations.is_empty() && !cfg.forward.servers.is_empty() {
        destinations.push(cfg.forward.servers.clone());
    }
    let target = if output == "-" {
        FileTarget::Stdout
    } else {
        FileTarget::Path(output.into())
    };
    let metrics = Arc::new(Metrics::default());
    let server = match cfg.output.metrics.as_str() {
        "" => None,
        addr => Some(
            MetricsServer::start(addr, metrics.clone())
                .map_err(|e| Failure::Runtime(format!("metrics on {addr}: {e}")))?,
        ),
    };
    let mut out = build_output(
        &cfg.output,
        &cfg.forward,
        &destinations,
        target,
        metrics.clone(),
    )
    .map_err(Failure::Input)?;
    out.write_all(first)
        .map_err(|e| Failure::Runtime(format!("{output}: {e}")))?;
    Ok(OpenedOutput {
        out,
        destinations,
        metrics,
        _server: server,
    })
}

/// The pipeline's totals into the metrics registry.
fn note_totals(m: &Metrics, s: &Summary) {
    m.packets.store(s.packets, Ordering::Relaxed);
    m.bytes.store(s.bytes, Ordering::Relaxed);
    m.flows.store(s.flows, Ordering::Relaxed);
    m.drop_decode.store(
        s.decode_events.iter().map(|(_, n)| n).sum(),
        Ordering::Relaxed,
    );
    m.drop_flow_table
        .store(s.stats.flows_forced, Ordering::Relaxed);
}

/// Say what the forwarders delivered; records neither delivered nor kept are a failure.
pub(crate) fn report_delivery(
    fin: &FinishReport,
    destinations: &[Vec<String>],
) -> Result<(), Failure> {
    let mut lost = 0;
    for (r, d) in fin.forward.iter().zip(destinations) {
        eprintln!(
            "islet: forward to {}: {} records acknowledged, {} spooled for the next run, {} dropped (buffer full), {} lost",
            d.join(","),
            r.delivered,
            r.spooled,
            r.dropped,
            r.lost
        );
        lost += r.lost;
    }
    if lost > 0 {
        return Err(Failure::Runtime(format!(
            "{lost} records could not be delivered or spooled (set forward.spool_dir to keep them)"
        )));
    }
    Ok(())
}

/// Read every packet and touch its first byte, nothing more.
fn raw_floor(source: &mut PcapFiles) -> Result<Summary, Failure> {
    use islet_capture::PacketSource;
    let started = std::time::Instant::now();
    let (mut packets, mut bytes, mut touch) = (0u64, 0u64, 0u8);
    loop {
        let n = source
            .read_batch(1024, &mut |p| {
                packets += 1;
                bytes += p.data.len() as u64;
                touch ^= p.data.first().copied().unwrap_or(0);
            })
            .map_err(|e| Failure::Input(e.to_string()))?;
        if n == 0 {
            break;
        }
    }
    let s = Summary {
        packets,
        bytes,
        wall: started.elapsed(),
        workers: 1,
        ..Summary::default()
    };
    eprintln!(
        "islet: raw read floor: {} packets, {} bytes in {:.3}s ({:.0} pkts/s, {:.2} Gbit/s) [{touch}]",
        s.packets,
        s.bytes,
        s.wall.as_secs_f64(),
        s.packets_per_sec(),
        s.gbits_per_sec()
    );
    Ok(s)
}

pub(crate) fn print_summary(s: &Summary) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "islet: {} packets, {} bytes, {} flows, {} anomalies in {:.3}s ({:.0} pkts/s, {:.2} Gbit/s, {} worker{})",
        s.packets,
        s.bytes,
        s.flows,
        s.anomalies,
        s.wall.as_secs_f64(),
        s.packets_per_sec(),
        s.gbits_per_sec(),
        s.workers,
        if s.workers == 1 { "" } else { "s" }
    );
    if !s.decode_events.is_empty() {
        let list: Vec<String> = s
            .decode_events
            .iter()
            .map(|(ev, n)| format!("{ev}={n}"))
            .collect();
        let _ = writeln!(e, "islet: decode failures: {}", list.join(", "));
    }
}
