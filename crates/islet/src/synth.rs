//! `islet synth`: scenario traffic to a pcap file.

use crate::Failure;
use crate::cli::SynthArgs;
use islet_sensor::demo::{synthesise, write_ioc_event};
use islet_synth::{Profile, SynthOptions};

pub(crate) fn run(a: &SynthArgs) -> Result<(), Failure> {
    let profile: Profile = a.profile.parse().map_err(Failure::Input)?;
    if a.hosts < 2 {
        return Err(Failure::Input("--hosts must be at least 2".into()));
    }
    let o = SynthOptions {
        profile,
        hosts: a.hosts,
        flows: a.flows,
        max_packets: a.packets,
        duration_s: a.duration.max(1),
        seed: a.seed,
        ..SynthOptions::default()
    };
    if let Some(p) = &a.misp_event {
        if a.profile != "ioc" {
            return Err(Failure::Input(
                "--misp-event goes with --profile ioc".into(),
            ));
        }
        write_ioc_event(p)?;
    }
    let s = synthesise(&o, &a.output)?;
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
