//! islet-synth — scenario traffic written to pcap, for demos, tests and benchmarks.
//!
//! A scenario is a set of flow generators started at random times over the capture's
//! duration. Each generator is a small state machine (TCP handshake → request/response rounds
//! cut into MSS-sized segments with delayed ACKs → FIN or RST teardown; UDP request/response;
//! ICMP echo) that yields one packet at a time, and a heap interleaves the live ones by
//! timestamp, so memory is bounded by the number of concurrent flows, not by the file.
//! Frames are complete and checksummed (Ethernet, optional 802.1Q, IPv4/IPv6, TCP/UDP/ICMP).
//!
//! Output is a pure function of the options: the same seed gives the same bytes. The random
//! generator is SplitMix64, written here rather than taken from a crate so that the byte stream
//! can never change under a dependency upgrade.
//!
//! Profiles: `mixed` (data-centre east-west mix: many small flows, a few elephants) is the
//! default; `scan`, `syn-flood`, `syn-flood-spoofed`, `udp-flood`, `frag-flood`, `lateral`,
//! `slp` and `ioc` are attack scenarios (`attack.rs`) for the detectors' tests, the demo and
//! the hostile-input benchmarks.
#![forbid(unsafe_code)]

mod attack;
mod frame;
mod pcap;
mod proto;
mod rng;
mod scenario;

pub use attack::{Attack, FRAG_FLOOD_LAG, IOC_ADDR, IOC_DOMAIN, IOC_EVENT_UUID, ioc_misp_event};
pub use pcap::PcapWriter;
pub use rng::SplitMix64;
pub use scenario::{Profile, SynthOptions, SynthSummary, generate};
