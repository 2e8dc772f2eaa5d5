//! islet-intel: threat intelligence as MISP holds it. Importers for MISP events, MISP feed
//! directories, STIX 2.x bundles and plain lists; MISP warninglists that suppress known-benign
//! values; a compiled, immutable [`Snapshot`] whose lookups answer which indicators a flow
//! endpoint, DNS/TLS/HTTP name, URL, fingerprint or user agent matches; and the EVE alert a
//! match becomes; `describe` renders reports, snapshots and matches as text, and `synth` writes
//! synthetic feeds for benchmarks.

pub mod alert;
mod compile;
pub mod describe;
pub mod feed;
mod image;
pub mod import;
pub mod misp;
pub mod model;
pub mod normalize;
pub mod remote;
pub mod sightings;
pub mod snapshot;
pub mod stix;
pub mod synth;
pub mod text;
pub mod warninglist;

pub use import::{Importer, Report};
pub use model::{Context, Indicator, Kind, Rejected, Suppressed};
pub use snapshot::Snapshot;
pub use warninglist::Warninglist;
