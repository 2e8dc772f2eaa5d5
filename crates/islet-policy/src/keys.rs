//! Ed25519 key files, the one format for every key islet keeps: policy bundles' signing keys
//! and the sensor's evidence-chain keys. A secret key file holds the 32-byte seed, base64, on
//! one line (mode 0600); a public key file the 32-byte key, base64.

use base64::Engine as _;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// The largest key file read (a key file is 45 bytes; anything far larger is not one).
pub const MAX_KEY_FILE: u64 = 4096;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Why a key pair could not be made or a key file not read. The `Display` text names the
/// file.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The system gave no randomness for a new key.
    NoRandomness(getrandom::Error),
    /// A key file or directory could not be created, written or read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `keygen` found a key already there.
    Exists { path: PathBuf },
    /// A key file is not base64.
    NotBase64 {
        path: PathBuf,
        what: &'static str,
        source: base64::DecodeError,
    },
    /// A key file is larger than any key file ([`MAX_KEY_FILE`] bytes).
    TooLarge { path: PathBuf, what: &'static str },
    /// A key file does not hold 32 bytes.
    WrongLength { path: PathBuf, what: &'static str },
    /// The 32 bytes are not an Ed25519 public key.
    NotPublicKey {
        path: PathBuf,
        source: ed25519_dalek::SignatureError,
    },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NoRandomness(e) => write!(f, "no randomness: {e}"),
            KeyError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            KeyError::Exists { path } => {
                write!(f, "{}: exists; not overwriting a key", path.display())
            }
            KeyError::NotBase64 { path, what, source } => {
                write!(f, "{}: not a base64 {what}: {source}", path.display())
            }
            KeyError::TooLarge { path, what } => {
                write!(f, "{}: too large for a {what}", path.display())
            }
            KeyError::WrongLength { path, what } => {
                write!(f, "{}: not a 32-byte {what}", path.display())
            }
            KeyError::NotPublicKey { path, source } => {
                write!(f, "{}: not an Ed25519 public key: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            KeyError::NotBase64 { source, .. } => Some(source),
            KeyError::NotPublicKey { source, .. } => Some(source),
            KeyError::NoRandomness(_)
            | KeyError::Exists { .. }
            | KeyError::TooLarge { .. }
            | KeyError::WrongLength { .. } => None,
        }
    }
}

/// Bridge for callers that still carry errors as text.
impl From<KeyError> for String {
    fn from(e: KeyError) -> String {
        e.to_string()
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new key pair: `dir/<stem>.key` (the secret seed, base64, mode 0600; an existing one is
/// never overwritten) and `dir/<stem>.pub` (the public key, base64).
pub fn keygen(dir: &Path, stem: &str) -> Result<VerifyingKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(KeyError::NoRandomness)?;
    let sk = SigningKey::from_bytes(&seed);
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let key = dir.join(format!("{stem}.key"));
    if key.exists() {
        return Err(KeyError::Exists { path: key });
    }
    write_secret(&key, format!("{}\n", b64().encode(seed)).as_bytes())?;
    let pk = sk.verifying_key();
    let public = dir.join(format!("{stem}.pub"));
    std::fs::write(&public, format!("{}\n", b64().encode(pk.as_bytes())))
        .map_err(io_at(&public))?;
    Ok(pk)
}

fn write_secret(p: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(io_at(p))?;
    f.write_all(bytes).map_err(io_at(p))
}

fn read_32(p: &Path, what: &'static str) -> Result<[u8; 32], KeyError> {
    let meta = std::fs::metadata(p).map_err(io_at(p))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: p.to_path_buf(),
            what,
        });
    }
    let t = std::fs::read_to_string(p).map_err(io_at(p))?;
    let b = b64()
        .decode(t.trim())
        .map_err(|source| KeyError::NotBase64 {
            path: p.to_path_buf(),
            what,
            source,
        })?;
    b.try_into().map_err(|_| KeyError::WrongLength {
        path: p.to_path_buf(),
        what,
    })
}

/// An Ed25519 secret key (its 32-byte seed, base64).
pub fn read_signing_key(p: &Path) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&read_32(p, "Ed25519 secret key")?))
}

/// An Ed25519 public key (32 bytes, base64).
pub fn read_public_key(p: &Path) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&read_32(p, "Ed25519 public key")?).map_err(|source| {
        KeyError::NotPublicKey {
            path: p.to_path_buf(),
            source,
        }
    })
}
