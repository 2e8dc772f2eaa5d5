//! islet-policy: zero-trust micro-segmentation. Workload identities from an inventory (islet's
//! TOML or a Kubernetes pod list), time-aware, with derived identities for unknown addresses;
//! a policy IR of tiers and rules (subject selectors, peers, ports, L7 conditions, actions) in
//! islet's own format or imported from Kubernetes `NetworkPolicy` and Cilium policies; the
//! engine that gives every flow a verdict with its provenance; and signed, fail-closed policy
//! bundles (Ed25519 over a manifest of SHA-256 file hashes). Policies render as text for
//! people (`render`: rule listings, and what a check warns about); `signing` signs and verifies
//! bundles as the `islet policy` commands do.

pub mod bundle;
pub mod engine;
mod files;
pub mod identity;
pub mod import;
mod index;
pub mod ir;
pub mod keys;
pub mod net;
pub mod packs;
pub mod render;
pub mod signing;
pub mod state;
pub mod time;

pub use engine::{Engine, FlowFacts, Verdict};
pub use identity::{Identity, Inventory, Workload};
pub use ir::{Action, Policy, Rule};
