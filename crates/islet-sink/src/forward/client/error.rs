//! Why a forwarder did not start.

use std::path::PathBuf;

/// Why [`super::Forwarder::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardError {
    /// No server to forward to.
    NoServer,
    /// A server that is not `host:port`.
    NotHostPort(String),
    /// A PEM file (CA, client certificate or key) that cannot be read.
    Pem {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    /// A CA certificate rustls does not take.
    Ca {
        path: PathBuf,
        source: rustls::Error,
    },
    /// The TLS configuration rustls does not take (`what`: the protocol versions, or the
    /// client certificate and key).
    Tls {
        what: &'static str,
        source: rustls::Error,
    },
    /// A client certificate without its key, or a key without its certificate.
    ClientCertWithoutKey,
    /// The spool directory cannot be made or read.
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The sending thread did not start.
    Thread(std::io::Error),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::NoServer => f.write_str("forward: no server"),
            ForwardError::NotHostPort(s) => write!(f, "forward: {s:?} is not host:port"),
            ForwardError::Pem { path, source } => write!(f, "{}: {source}", path.display()),
            ForwardError::Ca { path, source } => write!(f, "{}: {source}", path.display()),
            ForwardError::Tls { what, source } => write!(f, "{what}: {source}"),
            ForwardError::ClientCertWithoutKey => {
                f.write_str("TLS: a client certificate needs both cert and key")
            }
            ForwardError::Spool { path, source } => write!(f, "{}: {source}", path.display()),
            ForwardError::Thread(e) => write!(f, "forward: {e}"),
        }
    }
}

impl std::error::Error for ForwardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForwardError::Pem { source, .. } => Some(source),
            ForwardError::Ca { source, .. } | ForwardError::Tls { source, .. } => Some(source),
            ForwardError::Spool { source, .. } | ForwardError::Thread(source) => Some(source),
            ForwardError::NoServer
            | ForwardError::NotHostPort(_)
            | ForwardError::ClientCertWithoutKey => None,
        }
    }
}

/// For callers that still carry errors as text (`?` into a `Result<_, String>`).
impl From<ForwardError> for String {
    fn from(e: ForwardError) -> String {
        e.to_string()
    }
}
