//! Signing and verifying bundles as the `islet policy sign/verify/show` commands do: keys read
//! from their files, a validity window from RFC 3339 times or a number of days, a bundle
//! verified as a sensor would load it (every listed file read, hashed and parsed) or, with a
//! policy state, made the active one. Each outcome's `Display` is the line users see.

use crate::bundle::{self, BundleError, BundleInfo, Manifest, VerifyingKey};
use crate::state::{Outcome, State};
use crate::time::{format_rfc3339, parse_rfc3339};
use std::fmt;
use std::path::{Path, PathBuf};

/// Wall-clock now, Unix ns (bundle validity is checked against the real time).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a bundle could not be signed or verified. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum SigningError {
    /// A key file could not be read.
    Key(String),
    /// A validity time is not RFC 3339.
    Time(String),
    /// Signing failed, or the bundle did not verify.
    Bundle(BundleError),
    /// The policy state refused the bundle; the active bundle, if any, stays in force.
    Refused {
        reason: BundleError,
        active: Option<Box<BundleInfo>>,
    },
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::Key(m) | SigningError::Time(m) => f.write_str(m),
            SigningError::Bundle(e) => write!(f, "{e}"),
            SigningError::Refused { reason, active } => {
                write!(f, "policy bundle rejected: {reason}")?;
                match active {
                    Some(i) => write!(
                        f,
                        "; the active bundle (version {}, sha256 {}) stays in force",
                        i.version, i.hash
                    ),
                    None => f.write_str("; no bundle is active"),
                }
            }
        }
    }
}

impl std::error::Error for SigningError {}

/// Read public keys (`policy.pub` files).
pub fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>, SigningError> {
    paths
        .iter()
        .map(|p| bundle::read_public_key(p).map_err(|e| SigningError::Key(e.to_string())))
        .collect()
}

/// A bundle signed: where, and what it now is.
#[derive(Debug, Clone)]
pub struct Signed {
    pub dir: PathBuf,
    pub info: BundleInfo,
    pub not_before_ns: i64,
    pub not_after_ns: i64,
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "signed {}: version {}, valid {} to {}, manifest sha256 {}, key {}",
            self.dir.display(),
            self.info.version,
            format_rfc3339(self.not_before_ns),
            format_rfc3339(self.not_after_ns),
            self.info.hash,
            self.info.key_id
        )
    }
}

/// Sign `dir` with the secret key in `key` as `version`, valid from `not_before` (RFC 3339;
/// default now) to `not_after` (default `valid_days` after the start).
pub fn sign(
    dir: &Path,
    key: &Path,
    version: u64,
    not_before: Option<&str>,
    not_after: Option<&str>,
    valid_days: u32,
) -> Result<Signed, SigningError> {
    let key = bundle::read_signing_key(key).map_err(|e| SigningError::Key(e.to_string()))?;
    let time = |s: Option<&str>, default: i64| match s {
        Some(t) => parse_rfc3339(t).map_err(|e| SigningError::Time(e.to_string())),
        None => Ok(default),
    };
    let nb = time(not_before, now_ns())?;
    let days = i64::from(valid_days).saturating_mul(86_400 * 1_000_000_000);
    let na = time(not_after, nb.saturating_add(days))?;
    let info = bundle::sign(dir, &key, version, nb, na).map_err(SigningError::Bundle)?;
    Ok(Signed {
        dir: dir.to_path_buf(),
        info,
        not_before_ns: nb,
        not_after_ns: na,
    })
}

/// A bundle that verified: valid, or (with a policy state) valid and now the active one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verification {
    Valid(BundleInfo),
    Active(BundleInfo),
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, i) = match self {
            Verification::Valid(i) => ("valid", i),
            Verification::Active(i) => ("valid and now active", i),
        };
        write!(
            f,
            "{what}: version {}, manifest sha256 {}, signed by key {}",
            i.version, i.hash, i.key_id
        )
    }
}

/// Verify `dir` against the keys in `pubkeys`, as it would be loaded (every listed file read,
/// hashed and parsed); with a `state` directory, it must not be older than the active bundle
/// and becomes the active one.
pub fn verify(
    dir: &Path,
    pubkeys: &[PathBuf],
    state: Option<&Path>,
) -> Result<Verification, SigningError> {
    let keys = read_public_keys(pubkeys)?;
    let now = now_ns();
    match state {
        None => {
            let v = bundle::verify_bundle(dir, &keys, now, None).map_err(SigningError::Bundle)?;
            v.policy().map_err(SigningError::Bundle)?;
            Ok(Verification::Valid(v.info))
        }
        Some(st) => match State::new(st).load(dir, &keys, now) {
            Outcome::Accepted(v) => Ok(Verification::Active(v.info)),
            Outcome::Rejected { reason, active } => Err(SigningError::Refused {
                reason,
                active: active.map(|v| Box::new(v.info)),
            }),
        },
    }
}

/// What a bundle's manifest says, not verified (`islet policy show`): `None` for a policy that
/// has no manifest; a manifest that does not parse says nothing.
#[derive(Debug, Clone)]
pub struct Unverified(pub Option<Option<Manifest>>);

impl Unverified {
    pub fn read(dir: &Path) -> Unverified {
        Unverified(
            std::fs::read(dir.join(bundle::MANIFEST))
                .ok()
                .map(|m| serde_json::from_slice::<Manifest>(&m).ok()),
        )
    }
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => writeln!(f, "unsigned policy"),
            Some(None) => Ok(()),
            Some(Some(m)) => writeln!(
                f,
                "bundle version {}, valid {} to {}, {} files (signature not checked here: use `islet policy verify`)",
                m.version,
                m.not_before,
                m.not_after,
                m.files.len()
            ),
        }
    }
}
