//! Signed policy bundles. A bundle is a directory of policy files plus a manifest
//! (`islet-bundle.json`: format, version, validity window, each file's SHA-256) and an
//! Ed25519 signature over the manifest's exact bytes (`islet-bundle.sig`, base64). Keys are
//! 32-byte Ed25519 seeds and public keys, base64 in `policy.key` / `policy.pub`.
//!
//! A bundle is exactly the files its manifest lists: any other entry of the directory — any
//! name (not UTF-8, hidden, another case of a listed name), any kind (a sub-directory, a
//! symbolic link, a FIFO) — refuses the whole bundle, named with [`escape_name`]. Links are
//! never followed. Each file is read once ([`verify_bundle`]); the bytes hashed are the bytes
//! parsed ([`Verified::policy`]) and the bytes a policy state keeps, so nothing can change
//! between verification and use.
//!
//! Verification is fail-closed: a missing manifest or signature, a signature no pinned key
//! made, a file whose hash differs, an entry the manifest does not list, a bundle outside its
//! validity window, or a version below the active one is rejected with the reason.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
/// The key types of signing and verification, so that users need not name `ed25519_dalek`.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// Bundle file names start with this; policy loading skips them.
pub const MANIFEST_PREFIX: &str = "islet-bundle";
pub const MANIFEST: &str = "islet-bundle.json";
pub const SIGNATURE: &str = "islet-bundle.sig";
const FORMAT: &str = "islet-policy-bundle/1";
/// Most files one bundle lists.
pub const MAX_FILES: usize = 10_000;
/// Most entries a bundle directory may hold: the listed files, the manifest, the signature.
pub const MAX_ENTRIES: usize = MAX_FILES + 2;
/// Largest manifest read (10,000 entries of a name and a hash fit in well under 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest signature file read (a base64 Ed25519 signature is 88 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 10;
/// Largest sum of a bundle's policy files (each is also bounded by
/// [`crate::import::MAX_POLICY_BYTES`]).
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;
/// Longest listed file name, in bytes (as most file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

pub use crate::files::{EntryKind, escape_name};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u64,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub files: Vec<FileHash>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

/// What a verified bundle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    pub version: u64,
    /// SHA-256 of the manifest bytes, hex: names the bundle's exact content.
    pub hash: String,
    /// The pinned key that verified it (its id), empty when unsigned.
    pub key_id: String,
    pub not_after_ns: i64,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A short id of a public key: the first 8 bytes of its SHA-256, hex.
pub fn key_id(k: &VerifyingKey) -> String {
    hex(&Sha256::digest(k.as_bytes())[..8])
}

pub use crate::keys::{KeyError, read_public_key, read_signing_key};

/// A new policy key pair: `dir/policy.key` (secret, mode 0600) and `dir/policy.pub`.
pub fn keygen(dir: &Path) -> Result<VerifyingKey, KeyError> {
    crate::keys::keygen(dir, "policy")
}

/// Why a bundle was refused (signing, verification, or a policy state). The `Display` text is
/// the message users see; `dir` and names in it are escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleError {
    /// A file or directory could not be read or written (`what: error`).
    Io {
        what: String,
        error: String,
    },
    /// No manifest: the bundle was never signed.
    Unsigned {
        dir: String,
    },
    /// A manifest without its signature.
    SignatureMissing {
        dir: String,
    },
    /// The signature file is not a base64 Ed25519 signature.
    SignatureEncoding {
        dir: String,
    },
    /// No key was pinned to verify against.
    NoPinnedKey {
        dir: String,
    },
    /// No pinned key made the signature over these manifest bytes.
    BadSignature {
        dir: String,
        key_ids: Vec<String>,
    },
    /// The manifest does not parse, has another format, or lists a name no bundle file can
    /// have.
    Manifest {
        dir: String,
        reason: String,
    },
    /// A listed file is not there.
    ListedMissing {
        dir: String,
        file: String,
    },
    /// A listed name is not a regular file (a link, a directory, a FIFO…).
    NotAFile {
        dir: String,
        file: String,
        kind: EntryKind,
    },
    /// A file was replaced while it was being opened.
    Replaced {
        dir: String,
        file: String,
    },
    /// A file, or the bundle, is larger than its bound.
    TooLarge {
        dir: String,
        file: String,
        size: u64,
        max: u64,
    },
    /// A listed file's bytes do not have the manifest's hash.
    HashMismatch {
        dir: String,
        file: String,
        got: String,
        want: String,
    },
    /// An entry of the directory that the manifest does not list (its name escaped), and how
    /// many more there are.
    Unlisted {
        dir: String,
        entry: String,
        kind: EntryKind,
        more: usize,
    },
    /// What a directory to be signed holds besides policy files.
    NotPolicyFile {
        dir: String,
        entry: String,
        kind: EntryKind,
    },
    /// Nothing to sign.
    NoPolicyFiles {
        dir: String,
    },
    /// The validity window ends before it starts.
    Window,
    NotYetValid {
        dir: String,
        from: String,
    },
    Expired {
        dir: String,
        until: String,
    },
    /// A version below the active one: a replay.
    Replay {
        dir: String,
        version: u64,
        active: u64,
    },
    /// The active version again, with other content.
    SameVersionChanged {
        dir: String,
        version: u64,
    },
    /// A listed file is not a policy islet can load.
    Policy {
        reason: String,
    },
    /// A policy state directory that cannot be trusted: refused rather than started afresh.
    State {
        dir: String,
        reason: String,
    },
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use BundleError as E;
        match self {
            E::Io { what, error } => write!(f, "{what}: {error}"),
            E::Unsigned { dir } => write!(f, "{dir}: unsigned bundle: no {MANIFEST}"),
            E::SignatureMissing { dir } => write!(
                f,
                "{dir}: signature missing: no {SIGNATURE} (stripped or never signed)"
            ),
            E::SignatureEncoding { dir } => {
                write!(f, "{dir}: {SIGNATURE} is not a base64 Ed25519 signature")
            }
            E::NoPinnedKey { dir } => {
                write!(f, "{dir}: no public key is pinned to verify against")
            }
            E::BadSignature { dir, key_ids } => write!(
                f,
                "{dir}: bad signature: {MANIFEST} was not signed by any pinned key ({}), or was changed after signing",
                key_ids.join(", ")
            ),
            E::Manifest { dir, reason } => write!(f, "{dir}: {MANIFEST}: {reason}"),
            E::ListedMissing { dir, file } => {
                write!(f, "{dir}: listed file missing: {file}")
            }
            E::NotAFile { dir, file, kind } => write!(
                f,
                "{dir}: {file} is a {}, not a regular file (links are not followed)",
                kind.name()
            ),
            E::Replaced { dir, file } => {
                write!(f, "{dir}: {file} was replaced while it was being read")
            }
            E::TooLarge {
                dir,
                file,
                size,
                max,
            } => write!(f, "{dir}: {file}: {size} bytes, above the {max}-byte bound"),
            E::HashMismatch {
                dir,
                file,
                got,
                want,
            } => write!(
                f,
                "{dir}: hash mismatch: {file} has sha256 {got}, the manifest says {want}"
            ),
            E::Unlisted {
                dir,
                entry,
                kind,
                more,
            } => {
                write!(
                    f,
                    "{dir}: {entry} is not listed in the signed manifest (a {}); a bundle is exactly the files its manifest lists",
                    kind.name()
                )?;
                if *more > 0 {
                    write!(f, " ({more} more unlisted entries)")?;
                }
                Ok(())
            }
            E::NotPolicyFile { dir, entry, kind } => write!(
                f,
                "{dir}: {entry} ({}) is not a policy file (*.toml, *.yaml, *.yml, *.json, not hidden); a bundle is exactly the files its manifest lists: move it out before signing",
                kind.name()
            ),
            E::NoPolicyFiles { dir } => {
                write!(f, "{dir}: no policy files (*.toml, *.yaml, *.yml, *.json)")
            }
            E::Window => write!(f, "the validity window ends before it starts"),
            E::NotYetValid { dir, from } => write!(f, "{dir}: not yet valid: valid from {from}"),
            E::Expired { dir, until } => write!(f, "{dir}: expired: valid until {until}"),
            E::Replay {
                dir,
                version,
                active,
            } => write!(
                f,
                "{dir}: version {version} is older than the active version {active} (replay of an old bundle)"
            ),
            E::SameVersionChanged { dir, version } => write!(
                f,
                "{dir}: version {version} is already active with different content; a changed bundle needs a higher version"
            ),
            E::Policy { reason } => write!(f, "{reason}"),
            E::State { dir, reason } => write!(f, "policy state {dir}: {reason}"),
        }
    }
}

impl std::error::Error for BundleError {}

/// A path for messages, escaped like entry names.
pub(crate) fn shown(p: &Path) -> String {
    escape_name(p.as_os_str())
}

/// One file of a bundle: its name and the bytes that were hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A verified bundle: what it is, and exactly the bytes that were verified (manifest,
/// signature, the listed files sorted by name). Parse and keep these, never the directory
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The directory it was read from (for messages).
    pub dir: PathBuf,
    pub info: BundleInfo,
    pub manifest: Vec<u8>,
    pub signature: Vec<u8>,
    pub files: Vec<BundleFile>,
}

impl Verified {
    /// The policy these exact bytes hold.
    pub fn policy(&self) -> Result<crate::Policy, BundleError> {
        policy_of(&self.dir, &self.files)
    }
}

/// Parse files already read (sorted by name, as [`crate::import::load`] orders a directory).
fn policy_of(dir: &Path, files: &[BundleFile]) -> Result<crate::Policy, BundleError> {
    let mut policy = crate::Policy::default();
    for f in files {
        let name = dir.join(&f.name).display().to_string();
        let text = std::str::from_utf8(&f.bytes).map_err(|e| BundleError::Policy {
            reason: format!("{name}: not UTF-8 text: {e}"),
        })?;
        policy.merge(
            crate::import::parse(&name, text).map_err(|e| BundleError::Policy {
                reason: e.to_string(),
            })?,
        );
        if policy.rules.len() > crate::import::MAX_RULES {
            return Err(BundleError::Policy {
                reason: format!("{name}: more than {} rules", crate::import::MAX_RULES),
            });
        }
    }
    crate::packs::apply(policy).map_err(|e| BundleError::Policy {
        reason: e.to_string(),
    })
}

/// A name the manifest may list: a policy file directly in the bundle (not hidden, not the
/// manifest's or signature's prefix, no separator or control byte, at most
/// [`MAX_NAME_BYTES`]).
fn listable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f)
        && crate::import::is_policy_file(Path::new(name))
}

/// Read one entry's bytes once, mapping refusals to their reason.
fn read_entry(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, BundleError> {
    use crate::files::ReadError;
    let d = shown(dir);
    let file = escape_name(std::ffi::OsStr::new(name));
    crate::files::read_regular(dir, name, max).map_err(|e| match e {
        ReadError::NotAFile(kind) => BundleError::NotAFile { dir: d, file, kind },
        ReadError::TooLarge(size) => BundleError::TooLarge {
            dir: d,
            file,
            size,
            max,
        },
        ReadError::Replaced => BundleError::Replaced { dir: d, file },
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            BundleError::ListedMissing { dir: d, file }
        }
        ReadError::Io(e) => BundleError::Io {
            what: format!("{d}/{file}"),
            error: e.to_string(),
        },
    })
}

/// Read one policy file of a bundle, adding its size to the bundle's `total` (at most
/// [`MAX_BUNDLE_BYTES`]).
fn read_policy_file(dir: &Path, name: &str, total: &mut u64) -> Result<Vec<u8>, BundleError> {
    let bytes = read_entry(dir, name, crate::import::MAX_POLICY_BYTES)?;
    *total += bytes.len() as u64;
    if *total > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            dir: shown(dir),
            file: "the bundle".into(),
            size: *total,
            max: MAX_BUNDLE_BYTES,
        });
    }
    Ok(bytes)
}

fn list(dir: &Path) -> Result<Vec<(std::ffi::OsString, EntryKind)>, BundleError> {
    crate::files::list_dir(dir, MAX_ENTRIES).map_err(|error| BundleError::Io {
        what: "bundle".into(),
        error,
    })
}

/// Sign a bundle directory: write its manifest (every policy file's hash, `version`, valid
/// from `not_before_ns` to `not_after_ns`) and the signature. The directory may hold nothing
/// but regular policy files (and an earlier manifest and signature, replaced): anything else
/// would make the signed bundle fail to verify, so it is refused here, by name.
pub fn sign(
    dir: &Path,
    key: &SigningKey,
    version: u64,
    not_before_ns: i64,
    not_after_ns: i64,
) -> Result<BundleInfo, BundleError> {
    if not_after_ns <= not_before_ns {
        return Err(BundleError::Window);
    }
    let d = shown(dir);
    let mut files = Vec::new();
    let mut total = 0u64;
    for (name, kind) in list(dir)? {
        let utf8 = name.to_str();
        if utf8 == Some(MANIFEST) || utf8 == Some(SIGNATURE) {
            if kind != EntryKind::File {
                return Err(BundleError::NotAFile {
                    dir: d,
                    file: escape_name(&name),
                    kind,
                });
            }
            continue;
        }
        let Some(n) = utf8.filter(|n| listable(n) && kind == EntryKind::File) else {
            return Err(BundleError::NotPolicyFile {
                dir: d,
                entry: escape_name(&name),
                kind,
            });
        };
        let bytes = read_policy_file(dir, n, &mut total)?;
        files.push(BundleFile {
            name: n.to_string(),
            bytes,
        });
    }
    if files.is_empty() {
        return Err(BundleError::NoPolicyFiles { dir: d });
    }
    if files.len() > MAX_FILES {
        return Err(BundleError::Manifest {
            dir: d,
            reason: format!("more than {MAX_FILES} policy files"),
        });
    }
    // Every file must parse: a bundle that cannot load is not signed.
    policy_of(dir, &files)?;
    let m = Manifest {
        format: FORMAT.into(),
        version,
        not_before: crate::time::format_rfc3339(not_before_ns),
        not_after: crate::time::format_rfc3339(not_after_ns),
        files: files
            .iter()
            .map(|f| FileHash {
                path: f.name.clone(),
                sha256: hex(&Sha256::digest(&f.bytes)),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&m).map_err(|e| BundleError::Manifest {
        dir: d.clone(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    let sig = key.sign(&bytes);
    let write = |name: &str, b: &[u8]| {
        std::fs::write(dir.join(name), b).map_err(|e| BundleError::Io {
            what: format!("{d}/{name}"),
            error: e.to_string(),
        })
    };
    write(MANIFEST, &bytes)?;
    write(
        SIGNATURE,
        format!("{}\n", b64().encode(sig.to_bytes())).as_bytes(),
    )?;
    Ok(BundleInfo {
        version,
        hash: hex(&Sha256::digest(&bytes)),
        key_id: key_id(&key.verifying_key()),
        not_after_ns,
    })
}

/// Verify a bundle directory against the pinned keys at time `now_ns`; `active` is the
/// version and hash of the bundle in force, which a new one may not go below (or, at the same
/// version, differ from).
pub fn verify(
    dir: &Path,
    pinned: &[VerifyingKey],
    now_ns: i64,
    active: Option<(u64, &str)>,
) -> Result<BundleInfo, BundleError> {
    verify_bundle(dir, pinned, now_ns, active).map(|v| v.info)
}

/// [`verify`], keeping the bytes verified: the manifest and signature, and each listed file,
/// each read once. Every entry of the directory must be the manifest, the signature or a
/// listed file, and each of those a regular file (no link is followed).
pub fn verify_bundle(
    dir: &Path,
    pinned: &[VerifyingKey],
    now_ns: i64,
    active: Option<(u64, &str)>,
) -> Result<Verified, BundleError> {
    let d = shown(dir);
    let entries = list(dir)?;
    let kind_of = |n: &str| {
        entries
            .iter()
            .find(|(e, _)| e.to_str() == Some(n))
            .map(|(_, k)| *k)
    };
    if kind_of(MANIFEST).is_none() {
        return Err(BundleError::Unsigned { dir: d });
    }
    let manifest = read_entry(dir, MANIFEST, MAX_MANIFEST_BYTES)?;
    if kind_of(SIGNATURE).is_none() {
        return Err(BundleError::SignatureMissing { dir: d });
    }
    let signature = read_entry(dir, SIGNATURE, MAX_SIGNATURE_BYTES)?;
    let sig_bytes: [u8; 64] = std::str::from_utf8(&signature)
        .ok()
        .and_then(|t| b64().decode(t.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BundleError::SignatureEncoding { dir: d.clone() })?;
    let sig = Signature::from_bytes(&sig_bytes);
    if pinned.is_empty() {
        return Err(BundleError::NoPinnedKey { dir: d });
    }
    let Some(k) = pinned
        .iter()
        .find(|k| k.verify_strict(&manifest, &sig).is_ok())
    else {
        return Err(BundleError::BadSignature {
            dir: d,
            key_ids: pinned.iter().map(key_id).collect(),
        });
    };
    let bad = |reason: String| BundleError::Manifest {
        dir: d.clone(),
        reason,
    };
    let m: Manifest = serde_json::from_slice(&manifest).map_err(|e| bad(e.to_string()))?;
    if m.format != FORMAT {
        return Err(bad(format!("format {:?}, expected {FORMAT:?}", m.format)));
    }
    if m.files.len() > MAX_FILES {
        return Err(bad(format!("lists more than {MAX_FILES} files")));
    }
    let mut listed: std::collections::BTreeMap<&str, &str> = Default::default();
    for f in &m.files {
        if !listable(&f.path) {
            return Err(bad(format!(
                "lists {}, which is not a policy file of the bundle",
                escape_name(std::ffi::OsStr::new(&f.path))
            )));
        }
        if listed.insert(f.path.as_str(), f.sha256.as_str()).is_some() {
            return Err(bad(format!("lists {} twice", f.path)));
        }
    }
    // Exactly the listed files: anything else, whatever its name or kind, refuses the bundle.
    let unlisted: Vec<&(std::ffi::OsString, EntryKind)> = entries
        .iter()
        .filter(|(name, _)| match name.to_str() {
            Some(n) => n != MANIFEST && n != SIGNATURE && !listed.contains_key(n),
            None => true,
        })
        .collect();
    if let Some((name, kind)) = unlisted.first() {
        return Err(BundleError::Unlisted {
            dir: d,
            entry: escape_name(name),
            kind: *kind,
            more: unlisted.len() - 1,
        });
    }
    let mut files = Vec::with_capacity(listed.len());
    let mut total = 0u64;
    for (name, want) in &listed {
        if kind_of(name).is_none() {
            return Err(BundleError::ListedMissing {
                dir: d,
                file: (*name).to_string(),
            });
        }
        let bytes = read_policy_file(dir, name, &mut total)?;
        let got = hex(&Sha256::digest(&bytes));
        if got != *want {
            return Err(BundleError::HashMismatch {
                dir: d,
                file: (*name).to_string(),
                got,
                want: (*want).to_string(),
            });
        }
        files.push(BundleFile {
            name: (*name).to_string(),
            bytes,
        });
    }
    let at = |t: &str, what: &str| {
        crate::time::parse_rfc3339(t).map_err(|e| bad(format!("{what}: {e}")))
    };
    let nb = at(&m.not_before, "not_before")?;
    let na = at(&m.not_after, "not_after")?;
    if now_ns < nb {
        return Err(BundleError::NotYetValid {
            dir: d,
            from: m.not_before,
        });
    }
    if now_ns >= na {
        return Err(BundleError::Expired {
            dir: d,
            until: m.not_after,
        });
    }
    let hash = hex(&Sha256::digest(&manifest));
    if let Some((v, h)) = active {
        if m.version < v {
            return Err(BundleError::Replay {
                dir: d,
                version: m.version,
                active: v,
            });
        }
        if m.version == v && hash != h {
            return Err(BundleError::SameVersionChanged { dir: d, version: v });
        }
    }
    Ok(Verified {
        dir: dir.to_path_buf(),
        info: BundleInfo {
            version: m.version,
            hash,
            key_id: key_id(k),
            not_after_ns: na,
        },
        manifest,
        signature,
        files,
    })
}
