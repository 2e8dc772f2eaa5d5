//! `islet intel …`: import threat intelligence into a snapshot, describe one, check values
//! against one; and the loader `islet read --intel` shares.

use crate::Failure;
use crate::cli::{IntelCheckArgs, IntelImportArgs, IntelStatsArgs, IntelSynthArgs};
use islet_intel::feed::{IntelConfig, IntelRuntime, Pulled, build, load_warninglists};
use islet_intel::sightings::{SightingConfig, SightingQueue};
use islet_intel::{Importer, Report, Snapshot};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Import `sources` (feeds, files, snapshots) with the given warninglists. A single snapshot
/// with no warninglists is mapped and used as it is.
pub(crate) fn load(sources: &[PathBuf], lists: &[PathBuf]) -> Result<(Snapshot, Report), Failure> {
    if let ([one], []) = (sources, lists)
        && Snapshot::is_file(one)
    {
        let snap =
            Snapshot::open(one).map_err(|e| Failure::Input(format!("{}: {e}", one.display())))?;
        let report = Report {
            suppressed: snap.suppressed().to_vec(),
            sources: vec![one.display().to_string()],
            ..Report::default()
        };
        return Ok((snap, report));
    }
    let mut imp = Importer::new(load_warninglists(lists).map_err(|e| Failure::Input(e.0))?);
    for s in sources {
        if !s.exists() {
            return Err(Failure::Input(format!(
                "{}: no such file or folder",
                s.display()
            )));
        }
        imp.add_path(s);
    }
    Ok(imp.finish())
}

/// What `islet read` matches with: `--intel` sources plus `[intel]` in the config (local
/// sources and one pull of each configured MISP/TAXII server), and the sightings queue when
/// `push_sightings` is set. None when no intelligence is configured.
pub(crate) fn for_read(
    cfg: &IntelConfig,
    sources: &[PathBuf],
    lists: &[PathBuf],
    quiet: bool,
) -> Result<Option<(IntelRuntime, Option<SightingQueue>)>, Failure> {
    if sources.is_empty() && cfg.sources.is_empty() && cfg.misp.is_none() && cfg.taxii.is_none() {
        return Ok(None);
    }
    let mut cfg = cfg.clone();
    cfg.warninglists.extend(lists.iter().cloned());
    let mut pulled = Pulled::default();
    for e in pulled.pull(&cfg) {
        eprintln!("islet: intel: {e}");
    }
    let (snap, report) = build(&cfg, sources, &pulled).map_err(|e| Failure::Input(e.0))?;
    if !quiet {
        eprintln!(
            "islet: intel: {} indicators ({} suppressed by warninglists, {} rejected)",
            snap.len(),
            report.suppressed.len(),
            report.rejected_total
        );
    }
    let queue = match &cfg.misp {
        Some(m) if m.push_sightings => Some(SightingQueue::start(
            m.client().map_err(|e| Failure::Input(e.0))?,
            SightingConfig::default(),
        )),
        _ => None,
    };
    let mut rt = IntelRuntime::fixed(snap);
    rt.sightings = queue.as_ref().and_then(SightingQueue::sender);
    Ok(Some((rt, queue)))
}

fn print_report(r: &Report) {
    println!(
        "imported {} indicators from {} events",
        r.imported_total(),
        r.events
    );
    for (k, n) in &r.imported {
        println!("  {k:<26} {n}");
    }
    if !r.not_observable.is_empty() {
        let n: u64 = r.not_observable.values().sum();
        let types: Vec<String> = r
            .not_observable
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("not observable on the wire: {n} ({})", types.join(", "));
    }
    if r.duplicates > 0 {
        println!("duplicates: {}", r.duplicates);
    }
    let mut by_list: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &r.suppressed {
        by_list.entry(&s.list).or_default().push(&s.value);
    }
    println!("suppressed by warninglists: {}", r.suppressed.len());
    for (list, values) in by_list {
        let shown: Vec<&str> = values.iter().take(5).copied().collect();
        let more = values.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(", … {more} more")
        } else {
            String::new()
        };
        println!("  {list}: {} ({}{tail})", values.len(), shown.join(", "));
    }
    println!("rejected: {}", r.rejected_total);
    for x in &r.rejected {
        println!(
            "  {} at {}: {} — {}",
            x.source, x.position, x.reason, x.detail
        );
    }
}

pub(crate) fn import(a: &IntelImportArgs) -> Result<(), Failure> {
    let (snap, report) = load(&a.sources, &a.warninglists)?;
    print_report(&report);
    if let Some(o) = &a.output {
        snap.save(o)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", o.display())))?;
        println!("snapshot: {} ({} indicators)", o.display(), snap.len());
    }
    Ok(())
}

pub(crate) fn stats(a: &IntelStatsArgs) -> Result<(), Failure> {
    let (snap, report) = load(std::slice::from_ref(&a.snapshot), &[])?;
    if report.rejected_total > 0 {
        return Err(Failure::Input(format!(
            "{}: {} entries could not be read",
            a.snapshot.display(),
            report.rejected_total
        )));
    }
    describe(&a.snapshot, &snap);
    Ok(())
}

fn describe(path: &Path, s: &Snapshot) {
    // From the records' kind, flag and context fields: nothing is decoded per indicator.
    let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut per_ctx = vec![0u64; s.context_count()];
    for i in 0..s.len() as u32 {
        if let Some(k) = s.kind(i) {
            let e = by_kind.entry(k.name()).or_default();
            e.0 += 1;
            e.1 += u64::from(s.to_ids(i));
        }
        if let Some(n) = per_ctx.get_mut(s.context_index(i) as usize) {
            *n += 1;
        }
    }
    println!(
        "{}: {} indicators, {} events, {} bytes{}",
        path.display(),
        s.len(),
        s.context_count(),
        s.image_len(),
        if s.is_mapped() { " (mapped)" } else { "" }
    );
    println!("  {:<26} {:>10} {:>10}", "type", "total", "to_ids");
    for (k, (n, ids)) in by_kind {
        println!("  {k:<26} {n:>10} {ids:>10}");
    }
    let mut feeds: BTreeMap<String, u64> = BTreeMap::new();
    for (c, n) in per_ctx.iter().enumerate().filter(|(_, n)| **n > 0) {
        *feeds.entry(s.context_at(c as u32).feed).or_default() += n;
    }
    println!("feeds:");
    for (f, n) in feeds {
        println!("  {f}: {n}");
    }
    let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for x in s.suppressed() {
        lists
            .entry(&x.list)
            .or_default()
            .push(format!("{} {}", x.kind, x.value));
    }
    println!("suppressed by warninglists: {}", s.suppressed().len());
    for (l, v) in lists {
        println!("  {l}: {}", v.join(", "));
    }
}

pub(crate) fn check(a: &IntelCheckArgs) -> Result<(), Failure> {
    let (snap, _) = load(&a.intel, &a.warninglists)?;
    for v in &a.values {
        let hits = snap.check(v);
        let suppressed: Vec<&str> = snap
            .suppressed()
            .iter()
            .filter(|s| s.value.eq_ignore_ascii_case(v))
            .map(|s| s.list.as_str())
            .collect();
        if hits.is_empty() {
            if suppressed.is_empty() {
                println!("{v}: no match");
            } else {
                println!(
                    "{v}: no match (an indicator with this value was suppressed by {})",
                    suppressed.join(", ")
                );
            }
            continue;
        }
        for (i, why) in hits {
            let ind = snap.indicator(i);
            let ctx = snap.context(i);
            println!(
                "{v}: matches {} {:?} {why}{} — {} {} '{}'",
                ind.kind,
                ind.value,
                if ind.to_ids {
                    ", alerts (to_ids)"
                } else {
                    ", sighting only"
                },
                if ctx.origin.is_empty() {
                    "MISP event"
                } else {
                    ctx.origin
                },
                ctx.event_uuid,
                ctx.event_info
            );
        }
    }
    Ok(())
}

/// `islet intel synth`: a MISP CSV export of `count` indicators.
pub(crate) fn synth(a: &IntelSynthArgs) -> Result<(), Failure> {
    use std::io::Write;
    let f = std::fs::File::create(&a.output)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", a.output.display())))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut r = islet_synth::SplitMix64::new(a.seed);
    const TLDS: [&str; 8] = ["com", "net", "org", "ru", "top", "xyz", "info", "io"];
    let hex = |r: &mut islet_synth::SplitMix64, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[r.below(16) as usize]))
            .collect()
    };
    let label = |r: &mut islet_synth::SplitMix64| -> String {
        let n = 5 + r.below(8) as usize;
        (0..n)
            .map(|_| char::from(b'a' + r.below(26) as u8))
            .collect()
    };
    let io = |e: std::io::Error| Failure::Runtime(e.to_string());
    writeln!(w, "uuid,event_id,category,type,value,comment,to_ids,date").map_err(io)?;
    for i in 0..a.count {
        let p = r.below(100);
        let (t, v) = match p {
            0..30 => ("ip-dst", public_v4(&mut r).to_string()),
            30..40 => {
                // Narrow networks, as blocklists carry them: /24 to /28.
                let len = 24 + r.below(5) as u32;
                let x = u32::from(public_v4(&mut r)) & (u32::MAX << (32 - len));
                ("ip-dst", format!("{}/{len}", std::net::Ipv4Addr::from(x)))
            }
            40..75 => (
                "domain",
                format!("{}.{}", label(&mut r), TLDS[r.below(8) as usize]),
            ),
            75..80 => (
                "hostname",
                format!(
                    "{}.{}.{}",
                    label(&mut r),
                    label(&mut r),
                    TLDS[r.below(8) as usize]
                ),
            ),
            80..90 => (
                "url",
                format!(
                    "http://{}.{}/{}/{}.php",
                    label(&mut r),
                    TLDS[r.below(8) as usize],
                    label(&mut r),
                    label(&mut r)
                ),
            ),
            90..95 => ("ja3-fingerprint-md5", hex(&mut r, 32)),
            95..98 => ("hassh-md5", hex(&mut r, 32)),
            _ => ("x509-fingerprint-sha1", hex(&mut r, 40)),
        };
        writeln!(
            w,
            "{:08x}-0000-4000-8000-{:012x},{},Network activity,{t},{v},,1,20240101",
            i as u32,
            r.next_u64() & 0xffff_ffff_ffff,
            1 + i / 10_000
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    println!("wrote {} indicators to {}", a.count, a.output.display());
    Ok(())
}

/// A random public IPv4 address: not private, loopback, link-local, shared or multicast space,
/// as published indicators are.
fn public_v4(r: &mut islet_synth::SplitMix64) -> std::net::Ipv4Addr {
    loop {
        let a = std::net::Ipv4Addr::from(r.next_u64() as u32);
        let o = a.octets();
        let special = a.is_private()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_broadcast()
            || a.is_unspecified()
            || o[0] == 0
            || o[0] >= 240
            || (o[0] == 100 && (64..128).contains(&o[1]));
        if !special {
            return a;
        }
    }
}
