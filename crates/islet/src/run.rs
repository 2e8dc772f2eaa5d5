//! `islet run`: the live sensor (tap or inline), with signals: SIGHUP reloads policy and
//! intelligence, SIGTERM/SIGINT drain and stop.

use crate::Failure;
use crate::cli::{RunArgs, SensorArgs};
use islet_capture::afpacket::RingConfig;
use islet_capture::privs;
use islet_sensor::SensorConfig;
use islet_sensor::live::{self, Backend, Control, LiveConfig, LiveStats, Mode, OffloadConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How `islet run` loads its policy: with a key pinned, the rollback state is kept even when
/// neither `--policy-state` nor `[policy] state_dir` names it, in
/// [`islet_sensor::config::DEFAULT_POLICY_STATE_DIR`]; `--check-config` changes no state.
fn loading(check_only: bool) -> crate::policy::Loading {
    crate::policy::Loading {
        default_state: Some(islet_sensor::config::DEFAULT_POLICY_STATE_DIR.into()),
        check_only,
    }
}

/// The live settings: the configuration's `[live]`, overridden by the command line.
fn live_config(cfg: &SensorConfig, a: &RunArgs) -> Result<LiveConfig, Failure> {
    let l = &cfg.live;
    let bad = |m: String| Failure::Input(m);
    let mode = if !a.inline.is_empty() {
        if !a.tap.is_empty() {
            return Err(bad("--inline and --tap exclude each other".into()));
        }
        let mut pairs = Vec::new();
        for p in &a.inline {
            pairs.push(live::parse_pair(p).map_err(bad)?);
        }
        Mode::Inline(pairs)
    } else if !a.tap.is_empty() {
        let ifs: Vec<String> = a
            .tap
            .iter()
            .flat_map(|t| t.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Mode::Tap(ifs)
    } else {
        match l.mode.as_str() {
            "inline" if !l.pairs.is_empty() => Mode::Inline(
                l.pairs
                    .iter()
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            ),
            "inline" => return Err(bad("live.pairs: inline mode needs at least one pair".into())),
            "tap" if !l.interfaces.is_empty() => Mode::Tap(l.interfaces.clone()),
            "tap" => {
                return Err(bad(
                    "live.interfaces: tap mode needs at least one interface".into(),
                ));
            }
            _ => {
                return Err(bad(
                    "no interfaces: give --inline IFA,IFB or --tap IF (or live.mode in the config)"
                        .into(),
                ));
            }
        }
    };
    let ifs = mode.interfaces();
    for (i, x) in ifs.iter().enumerate() {
        if ifs[..i].contains(x) {
            return Err(bad(format!("interface {x} is given twice")));
        }
        if x.is_empty() || x.len() > 15 || x.contains(['/', ' ']) {
            return Err(bad(format!("interface {x:?}: not a valid interface name")));
        }
    }
    if ifs.len() > 16 {
        return Err(bad("at most 16 interfaces".into()));
    }
    let backend = match a.backend.as_deref().unwrap_or(l.backend.as_str()) {
        "afpacket" => Backend::AfPacket,
        "afxdp" => Backend::AfXdp,
        other => {
            return Err(bad(format!(
                "--backend {other:?}: expected afpacket or afxdp"
            )));
        }
    };
    let ring = RingConfig {
        block_size: l.ring_block_size,
        block_count: l.ring_blocks,
        block_timeout_ms: l.ring_block_timeout_ms,
    };
    ring.validate().map_err(bad)?;
    Ok(LiveConfig {
        mode,
        backend,
        ring,
        offload: OffloadConfig {
            enabled: l.offload && !a.no_offload,
            max_rules: l.offload_max_rules,
            skip_hw: l.offload_skip_hw,
        },
        bypass: l.bypass,
        kernel_bypass: match l.kernel_bypass.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        stats_interval: Duration::from_secs(a.stats_interval.unwrap_or(l.stats_interval)),
    })
}

pub(crate) fn run(a: &RunArgs) -> Result<(), Failure> {
    let ra = &a.sensor;
    let cfg = crate::read::config(ra)?;
    let live = live_config(&cfg, a)?;
    // Everything that can be checked before a port is touched: interfaces, privilege,
    // policy bundle, intelligence.
    for i in live.mode.interfaces() {
        islet_capture::afpacket::ifindex(&i).map_err(|e| Failure::Input(e.to_string()))?;
    }
    let user = a.user.clone().unwrap_or_else(|| cfg.live.user.clone());
    if !user.is_empty() && !privs::user_exists(&user) {
        return Err(Failure::Input(format!(
            "live.user: user {user:?} does not exist"
        )));
    }
    if !privs::has_cap(privs::CAP_NET_RAW) {
        return Err(Failure::Input(
            "capturing needs root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode and tc)"
                .into(),
        ));
    }
    let intel = crate::intel::for_read(&cfg.intel, &ra.intel, &ra.warninglists, ra.quiet)?;
    let (intel, sightings) = match intel {
        Some((rt, q)) => (Some(rt), q),
        None => (None, None),
    };
    let (mut policy, policy_events) =
        crate::policy::for_read(ra, &cfg.policy, &loading(a.check_config))?;
    if a.check_config {
        println!(
            "islet: configuration OK: {} {}, {} workers, policy {}, intel {}, offload {}",
            live.mode.name(),
            describe(&live.mode),
            cfg.workers(),
            if policy.is_some() { "on" } else { "off" },
            if intel.is_some() { "on" } else { "off" },
            if live.offload.enabled { "on" } else { "off" },
        );
        return Ok(());
    }
    let inline = matches!(live.mode, Mode::Inline(_));
    if let Some(p) = policy.as_mut() {
        p.enforced = inline;
        p.rejudge = true;
    }
    let workers = cfg.workers().max(1);
    let opened = live::open(&live, workers).map_err(Failure::Input)?;
    eprintln!(
        "islet: {} {} over {}; offloads: {}",
        live.mode.name(),
        describe(&live.mode),
        opened.describe,
        match (inline, live.backend) {
            (false, _) => "none needed (tap)",
            (true, Backend::AfPacket) => {
                "checksum and segmentation left to the kernel via virtio_net_hdr on receive and send"
            }
            (true, Backend::AfXdp) => {
                "frames as the wire carries them (XDP turns a veth peer's GSO off); partial checksums completed"
            }
        }
    );
    let crate::read::OpenedOutput {
        mut out,
        destinations,
        metrics,
        _server,
    } = crate::read::open_output(&cfg, &ra.output, &ra.forward, &policy_events)?;
    // The output (files, spool, metrics listener) is opened as started; then root goes.
    if !user.is_empty() {
        let d = privs::drop_to(&user, &[privs::CAP_NET_ADMIN, privs::CAP_NET_RAW])
            .map_err(|e| Failure::Runtime(format!("live.user: {e}")))?;
        eprintln!(
            "islet: now running as {} (uid {}, gid {}), keeping {}",
            d.user,
            d.uid,
            d.gid,
            d.kept.join(" and ")
        );
    }

    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| Failure::Runtime(format!("signal handler: {e}")))?;
    }
    let ctl = Control::default();
    let judges = islet_sensor::Judges {
        intel: intel.clone(),
        policy: policy.clone(),
    };
    let stats_every = a.stats_interval.map(Duration::from_secs);
    let mut last_line = Instant::now();
    let mut prev = LiveStats::default();
    let quiet = ra.quiet;
    let mut tick = |st: &LiveStats, records: &mut Vec<u8>| {
        publish(&metrics, st);
        if term.load(Ordering::Relaxed) {
            ctl.stop.store(true, Ordering::Relaxed);
        }
        if hup.swap(false, Ordering::Relaxed) {
            reload(ra, &cfg, policy.as_ref(), intel.as_ref(), records);
        }
        if let Some(every) = stats_every
            && !every.is_zero()
            && last_line.elapsed() >= every
        {
            last_line = Instant::now();
            if !quiet {
                eprintln!("{}", st.line(&prev));
            }
            prev = st.clone();
        }
    };
    // Scheduled MISP/TAXII pulls swap fresh snapshots in while the sensor runs.
    let every = [
        cfg.intel.misp.as_ref().map_or(0, |m| m.pull_every_s),
        cfg.intel.taxii.as_ref().map_or(0, |t| t.poll_every_s),
    ]
    .into_iter()
    .filter(|s| *s > 0)
    .min();
    let puller = match (&intel, every) {
        (Some(rt), Some(s)) => {
            let mut icfg = cfg.intel.clone();
            icfg.warninglists.extend(ra.warninglists.iter().cloned());
            Some(islet_intel::feed::Puller::start(
                icfg,
                ra.intel.clone(),
                islet_intel::feed::Pulled::default(),
                rt.snapshot.clone(),
                Duration::from_secs(s),
                |e| eprintln!("islet: intel pull: {e}"),
            ))
        }
        _ => None,
    };
    let log = |m: String| eprintln!("islet: {m}");
    let result = live::run(&cfg, &live, opened, judges, &mut out, &ctl, &mut tick, &log);
    if let Some(p) = puller {
        let n = p.stop();
        eprintln!("islet: intel: {n} snapshots pulled and swapped in while running");
    }
    if let Some(q) = sightings {
        let st = q.finish();
        eprintln!(
            "islet: sightings to MISP: {} sent, {} dropped, {} undelivered",
            st.sent, st.dropped, st.undelivered
        );
    }
    let fin = out
        .finish()
        .map_err(|e| Failure::Runtime(format!("{}: {e}", ra.output)))?;
    let (stats, st) = result.map_err(|e| Failure::Runtime(format!("live capture: {e}")))?;
    crate::read::report_delivery(&fin, &destinations)?;
    eprintln!(
        "islet: stopped: {} packets ({} forwarded, {} blocked, {} bypassed), {} flows, {} alerts; kernel drops {}; offload rules {} added, {} removed; {:.2} cpu-s, {:.0} protected pkt per cpu-s, coverage {:.4}",
        st.packets,
        st.forwarded,
        st.blocked,
        st.bypassed,
        stats.flows_total,
        stats.alerts,
        st.kernel_drops,
        st.offload_installed,
        st.offload_removed,
        st.cpu_seconds,
        st.protected_per_cpu_second(),
        st.coverage()
    );
    Ok(())
}

/// The live figures and the performance-to-protection ratio as Prometheus metrics.
fn publish(m: &islet_sink::metrics::Metrics, st: &LiveStats) {
    m.packets.store(st.packets, Ordering::Relaxed);
    m.bytes.store(st.bytes, Ordering::Relaxed);
    let c = "counter";
    for (name, help, kind, v) in [
        (
            "islet_live_inspected_packets_total",
            "Packets inspected (not bypassed).",
            c,
            st.packets.saturating_sub(st.bypassed) as f64,
        ),
        (
            "islet_live_bypassed_packets_total",
            "Packets of bypassed flows that still reached islet (counted, not parsed).",
            c,
            st.bypassed as f64,
        ),
        (
            "islet_live_kernel_bypassed_packets_total",
            "Packets of flows the XDP program kept in the kernel.",
            c,
            st.kernel_bypassed as f64,
        ),
        (
            "islet_live_forwarded_packets_total",
            "Frames sent on by the inline bridge.",
            c,
            st.forwarded as f64,
        ),
        (
            "islet_live_blocked_packets_total",
            "Frames of denied flows dropped inline.",
            c,
            st.blocked as f64,
        ),
        (
            "islet_live_kernel_drops_total",
            "Frames the kernel dropped before islet (ring full).",
            c,
            st.kernel_drops as f64,
        ),
        (
            "islet_offload_rules",
            "tc rules in place for denied flows.",
            "gauge",
            st.offload_rules as f64,
        ),
        (
            "islet_offload_rules_installed_total",
            "tc rules added.",
            c,
            st.offload_installed as f64,
        ),
        (
            "islet_cpu_seconds_total",
            "CPU time islet used (user + system).",
            c,
            st.cpu_seconds,
        ),
        (
            "islet_protected_packets_per_cpu_second",
            "Covered packets per CPU-second: the performance-to-protection ratio.",
            "gauge",
            st.protected_per_cpu_second(),
        ),
        (
            "islet_coverage_ratio",
            "Share of offered IP packets whose flow had a verdict and metadata.",
            "gauge",
            st.coverage(),
        ),
    ] {
        m.publish(name, help, kind, v);
    }
}

fn describe(m: &Mode) -> String {
    match m {
        Mode::Tap(v) => v.join(","),
        Mode::Inline(p) => p
            .iter()
            .map(|(a, b)| format!("{a}<->{b}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// SIGHUP: load the policy and intelligence again and swap them in. A bundle that fails
/// verification leaves the one in force (fail closed), says which version that is and
/// writes the `policy` rejection record into `records`; unreadable intelligence leaves the
/// snapshot in force.
fn reload(
    ra: &SensorArgs,
    cfg: &SensorConfig,
    policy: Option<&islet_sensor::policy::PolicyRuntime>,
    intel: Option<&islet_intel::feed::IntelRuntime>,
    records: &mut Vec<u8>,
) {
    if let Some(rt) = policy {
        match crate::policy::for_read(ra, &cfg.policy, &loading(false)) {
            Ok((Some(_), rejected)) if !rejected.is_empty() => {
                // The state refused the candidate and handed back its active bundle: the one
                // in force stays (it is that bundle, or was loaded before the state had one).
                let e = rt.engine.load();
                eprintln!(
                    "islet: SIGHUP: policy not reloaded: the bundle was rejected (written as a policy record); bundle version {} stays in force",
                    e.bundle_version
                );
                records.extend_from_slice(&rejected);
            }
            Ok((Some(new), _)) => {
                let e = new.engine.load_full();
                eprintln!(
                    "islet: SIGHUP: policy reloaded ({} rules, bundle version {}); new flows are judged by it",
                    e.policy.rules.len(),
                    e.bundle_version
                );
                rt.engine.store(e);
            }
            Ok((None, _)) => {
                eprintln!("islet: SIGHUP: no policy configured now; the one in force stays")
            }
            Err(Failure::Input(m) | Failure::Runtime(m)) => {
                eprintln!("islet: SIGHUP: policy not reloaded, the one in force stays: {m}")
            }
        }
    }
    if let Some(rt) = intel {
        match crate::intel::for_read(&cfg.intel, &ra.intel, &ra.warninglists, true) {
            Ok(Some((new, _))) => {
                let s = new.snapshot.load_full();
                eprintln!("islet: SIGHUP: intel reloaded ({} indicators)", s.len());
                rt.snapshot.store(s);
            }
            Ok(None) => {}
            Err(Failure::Input(m) | Failure::Runtime(m)) => {
                eprintln!("islet: SIGHUP: intel not reloaded, the snapshot in force stays: {m}")
            }
        }
    }
}
