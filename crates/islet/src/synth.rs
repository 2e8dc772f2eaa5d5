//! `islet synth`: scenario traffic to a pcap file.

use crate::Failure;
use crate::cli::SynthArgs;
use islet_synth::{Profile, SynthOptions, SynthSummary};
use std::io::BufWriter;
use std::path::Path;

pub(crate) fn options(a: &SynthArgs) -> Result<SynthOptions, Failure> {
    let profile: Profile = a.profile.parse().map_err(Failure::Input)?;
    if a.hosts < 2 {
        return Err(Failure::Input("--hosts must be at least 2".into()));
    }
    Ok(SynthOptions {
        profile,
        hosts: a.hosts,
        flows: a.flows,
        max_packets: a.packets,
        duration_s: a.duration.max(1),
        seed: a.seed,
        ..SynthOptions::default()
    })
}

pub(crate) fn write(o: &SynthOptions, path: &Path) -> Result<SynthSummary, Failure> {
    let f = std::fs::File::create(path)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))?;
    islet_synth::generate(o, BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))
}

/// Write the `ioc` scenario's MISP event.
pub(crate) fn write_ioc_event(path: &Path) -> Result<(), Failure> {
    std::fs::write(path, islet_synth::ioc_misp_event())
        .map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))
}

pub(crate) fn run(a: &SynthArgs) -> Result<(), Failure> {
    let o = options(a)?;
    if let Some(p) = &a.misp_event {
        if a.profile != "ioc" {
            return Err(Failure::Input(
                "--misp-event goes with --profile ioc".into(),
            ));
        }
        write_ioc_event(p)?;
    }
    let s = write(&o, &a.output)?;
    eprintln!(
        "islet: wrote {} packets ({} bytes, {:.0} bytes/packet) in {} flows to {}",
        s.packets,
        s.bytes,
        s.bytes as f64 / s.packets.max(1) as f64,
        s.flows,
        a.output.display()
    );
    Ok(())
}
