//! Why `islet serve` (or one of its commands) could not start or do what was asked: the
//! typed errors of the console's public API. Each `Display` is the message users see.

use crate::ingest::IngestError;
use std::path::PathBuf;

/// Why the console could not open its store, read its settings or start serving.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The data directory or the store in it could not be opened.
    Store {
        path: PathBuf,
        source: islet_store::StoreError,
    },
    /// A file, directory, socket or thread could not be made (`what: source`; `what` empty
    /// when the error says it all).
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The inventory file.
    Inventory(islet_policy::identity::InventoryError),
    /// A critical-asset entry that looks like a network is not one.
    Critical(islet_policy::net::CidrError),
    /// A sensor's public key file.
    Key(islet_policy::keys::KeyError),
    /// The ingest writer did not start.
    Ingest(IngestError),
    /// The TLS certificate or key (`what: detail`).
    Tls { what: String, detail: String },
    /// A setting or combination of settings refused, and why.
    Config(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Store { path, source } => write!(f, "{}: {source}", path.display()),
            ServeError::Io { what, source } if what.is_empty() => write!(f, "{source}"),
            ServeError::Io { what, source } => write!(f, "{what}: {source}"),
            ServeError::Inventory(e) => write!(f, "{e}"),
            ServeError::Critical(e) => write!(f, "{e}"),
            ServeError::Key(e) => write!(f, "{e}"),
            ServeError::Ingest(e) => write!(f, "{e}"),
            ServeError::Tls { what, detail } if what.is_empty() => f.write_str(detail),
            ServeError::Tls { what, detail } => write!(f, "{what}: {detail}"),
            ServeError::Config(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Store { source, .. } => Some(source),
            ServeError::Io { source, .. } => Some(source),
            ServeError::Inventory(e) => Some(e),
            ServeError::Critical(e) => Some(e),
            ServeError::Key(e) => Some(e),
            _ => None,
        }
    }
}

impl ServeError {
    /// An I/O error about `what`.
    pub fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ServeError {
        let what = what.to_string();
        move |source| ServeError::Io { what, source }
    }
}

impl From<islet_policy::identity::InventoryError> for ServeError {
    fn from(e: islet_policy::identity::InventoryError) -> Self {
        ServeError::Inventory(e)
    }
}

impl From<islet_policy::net::CidrError> for ServeError {
    fn from(e: islet_policy::net::CidrError) -> Self {
        ServeError::Critical(e)
    }
}

impl From<islet_policy::keys::KeyError> for ServeError {
    fn from(e: islet_policy::keys::KeyError) -> Self {
        ServeError::Key(e)
    }
}

impl From<IngestError> for ServeError {
    fn from(e: IngestError) -> Self {
        ServeError::Ingest(e)
    }
}

/// Why a new API token could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum MintError {
    /// The system gave no randomness.
    Random(getrandom::Error),
    /// The secret could not be hashed.
    Hash(argon2::password_hash::Error),
}

impl std::fmt::Display for MintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MintError::Random(e) => write!(f, "random: {e}"),
            MintError::Hash(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MintError {}
