//! islet-event — the event model every layer above the decoder speaks, and its encoders.
//!
//! Events are plain data ([`FlowRecord`], [`Anomaly`], [`Stats`], [`Alert`]) and the EVE encoder writes
//! them as one JSON object per line with Suricata 8's field names and value formats, straight
//! into a caller's byte buffer: no per-event allocation, no serde on the hot path. Community ID
//! lives here because every event that names a flow carries it.
//!
//! It depends only on `islet-wire`, for the one definition of a packet tuple.
#![forbid(unsafe_code)]

pub mod alert;
mod app;
mod community_id;
pub mod eve;
pub mod eve_proto;
pub mod json;
mod model;
pub mod proto;
pub mod record;
pub mod time;

pub use alert::{Alert, AlertEvidence, IntelMatch, PolicyNote, PolicyRejected};
pub use app::AppProto;
pub use community_id::CommunityId;
pub use json::Json;
pub use model::{
    Anomaly, AnomalyKind, Bypass, DefragDrops, EndReason, FlowRecord, FlowState, IcmpSummary,
    Stats, TcpState, TcpSummary,
};
