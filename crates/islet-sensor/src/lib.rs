//! islet-sensor — the pipeline that joins the layers: a packet source feeds the decoder, IP
//! fragments are reassembled, packets are sharded over workers by the symmetric flow hash, each
//! worker owns its flow table outright (no lock on the hot path), probes the application
//! protocol, and encodes EVE events into its own buffer, which a writer thread drains in
//! batches. With one worker everything runs inline on the calling thread with no copies.
//!
//! Time comes from packets only; the set of events is the same whatever the worker count.
//!
//! The commands are library calls here, so the binary keeps only arguments, printing and exit
//! statuses: `offline` (`islet read`), `live_session` (`islet run`), `policy_load`, `simulate`,
//! `suggest` and `demo`, over `session` (options, output, the `Observer` of a run's messages).
#![forbid(unsafe_code)]

pub mod config;
pub mod demo;
mod detect;
#[cfg(target_os = "linux")]
pub mod live;
#[cfg(target_os = "linux")]
pub mod live_session;
mod mitigate;
pub mod names;
pub mod offline;
pub mod output;
mod pipeline;
pub mod policy;
pub mod policy_load;
pub mod session;
pub mod simulate;
pub mod suggest;
mod worker;

pub use config::{ConfigError, SensorConfig};
pub use pipeline::{Judges, Progress, Reader, RunError, Summary, run};
