//! The Fluentd Forward protocol v1: client ([`Forwarder`]) and server codec ([`ServerCodec`],
//! [`Receiver`]).

mod client;
pub mod proto;
pub mod server;

pub use crate::chain::seq_prev;
pub use client::{
    CloseReport, ForwardConfig, ForwardError, ForwardStats, Forwarder, LATENCY_BUCKETS, OnFull,
    RecordShape, TlsClient, hostname,
};
pub use proto::Mode;
pub use proto::{SizeError, Sizer};
pub use server::{
    Batch, Deadline, Event, Receiver, Refusal, ServerCodec, ServerConfig, ServerStats,
};
