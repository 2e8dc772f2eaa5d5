//! islet-flow — flows, the second layer: the flow table, TCP session state, IP
//! defragmentation and TCP stream reassembly.
//!
//! Everything here is sans-IO and reads no clock: callers pass the packet's timestamp
//! (`now_ns`) into every call, so a replayed capture gives the same flows every time, and
//! timeouts follow capture time. Every structure an attacker can grow has a configured bound
//! (flows, fragment trackers and bytes, buffered stream bytes); reaching it is counted and,
//! where a record is lost early, reported (`reason: forced`).
//!
//! The table keeps flows in a slab and threads them on one LRU list per timeout class (protocol
//! × state), so expiry is O(expired) and per-packet work is a hash lookup plus an O(1) relink.
#![forbid(unsafe_code)]

pub mod defrag;
mod key;
pub mod stream;
mod table;
mod tcp;

pub use key::FlowKey;
pub use table::{Dir, Ended, Flow, FlowConfig, FlowId, FlowTable, TableStats, Timeouts, flow_id};
