//! islet-sink — where events leave the sensor, and the proof that none went missing.
//!
//! - [`chain`]: every record carries `islet.seq` and `islet.prev` (SHA-256 of the record before);
//!   signed checkpoints and gap records; [`verify`] proves a log complete and unmodified.
//! - [`output`]: the output stage the pipeline writes into (format, chain, file, forwarders).
//! - [`file`]: rotating line files; [`ocsf`]: EVE records as OCSF 1.3 events.
//! - [`forward`]: the Fluentd Forward protocol, client with acks, spool and failover, and the
//!   server codec; [`msgpack`]: records between JSON and MessagePack byte-exactly.
//! - [`metrics`]: the Prometheus text endpoint; [`error`]: [`ParseError`], a configured name
//!   that is not one of the choices.
//!
//! It depends on `islet-event` only: for the JSON string escaping every encoder shares, and for
//! `EveRecord`, the typed reading of a record (OCSF, the verifier, the Forward client's gap
//! records and the metrics read records through it, never by member name).
#![forbid(unsafe_code)]

pub mod chain;
pub mod error;
pub mod file;
pub mod forward;
pub mod metrics;
pub mod msgpack;
pub mod ocsf;
pub mod output;
pub mod verify;

pub use error::ParseError;
pub use output::{FileOut, FinishReport, Format, Output, OutputConfig};
