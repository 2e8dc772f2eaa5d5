//! `islet read`: capture files → EVE JSON.

use crate::Failure;
use crate::cli::ReadArgs;
use indicatif::{ProgressBar, ProgressStyle};
use islet_capture::PcapFiles;
use islet_sensor::{Progress, RunError, SensorConfig, Summary};
use std::io::{BufWriter, IsTerminal, Write};

pub(crate) fn config(a: &ReadArgs) -> Result<SensorConfig, Failure> {
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
    cfg.validate().map_err(|e| Failure::Input(e.to_string()))?;
    Ok(cfg)
}

pub(crate) fn run(a: &ReadArgs) -> Result<Summary, Failure> {
    let cfg = config(a)?;
    let mut source = PcapFiles::open(&a.pcaps).map_err(|e| Failure::Input(e.to_string()))?;
    if a.raw_floor {
        return raw_floor(&mut source);
    }
    let intel = crate::intel::for_read(&cfg.intel, &a.intel, &a.warninglists, a.quiet)?;
    let (intel, sightings) = match intel {
        Some((rt, q)) => (Some(rt), q),
        None => (None, None),
    };
    let (policy, policy_events) = crate::policy::for_read(a, &cfg.policy)?;
    let mut out: Box<dyn Write + Send> = if a.output == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))
    } else {
        let f = std::fs::File::create(&a.output)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", a.output)))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    };
    out.write_all(&policy_events)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", a.output)))?;
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
        if let Some(b) = &bar {
            b.set_length(p.bytes_total);
            b.set_position(p.bytes_done);
            let pps = p.packets as f64 / started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{} pkts, {:.0} pkts/s", p.packets, pps));
        }
    };
    let judges = islet_sensor::Judges { intel, policy };
    let result = islet_sensor::run_judged(&cfg, judges, &mut source, &mut out, &mut on_progress);
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
