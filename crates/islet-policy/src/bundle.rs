//! Signed policy bundles. A bundle is a directory of policy files plus a manifest
//! (`islet-bundle.json`: format, version, validity window, each file's SHA-256) and an
//! Ed25519 signature over the manifest's exact bytes (`islet-bundle.sig`, base64). Keys are
//! 32-byte Ed25519 seeds and public keys, base64 in `policy.key` / `policy.pub`.
//!
//! Verification is fail-closed: a missing manifest or signature, a signature no pinned key
//! made, a file whose hash differs, a policy file the manifest does not list, a bundle outside
//! its validity window, or a version below the active one is rejected with the reason.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Bundle file names start with this; policy loading skips them.
pub const MANIFEST_PREFIX: &str = "islet-bundle";
pub const MANIFEST: &str = "islet-bundle.json";
pub const SIGNATURE: &str = "islet-bundle.sig";
const FORMAT: &str = "islet-policy-bundle/1";
/// Most files one bundle lists.
pub const MAX_FILES: usize = 10_000;

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

/// A new key pair: `dir/policy.key` (secret, mode 0600) and `dir/policy.pub`.
pub fn keygen(dir: &Path) -> Result<VerifyingKey, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let sk = SigningKey::from_bytes(&seed);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = dir.join("policy.key");
    if key.exists() {
        return Err(format!("{}: exists; not overwriting a key", key.display()));
    }
    write_secret(&key, format!("{}\n", b64().encode(seed)).as_bytes())?;
    let pk = sk.verifying_key();
    std::fs::write(
        dir.join("policy.pub"),
        format!("{}\n", b64().encode(pk.as_bytes())),
    )
    .map_err(|e| format!("{}: {e}", dir.join("policy.pub").display()))?;
    Ok(pk)
}

fn write_secret(p: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn read_32(p: &Path, what: &str) -> Result<[u8; 32], String> {
    let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let b = b64()
        .decode(t.trim())
        .map_err(|e| format!("{}: not a base64 {what}: {e}", p.display()))?;
    b.try_into()
        .map_err(|_| format!("{}: not a 32-byte {what}", p.display()))
}

pub fn read_signing_key(p: &Path) -> Result<SigningKey, String> {
    Ok(SigningKey::from_bytes(&read_32(p, "Ed25519 secret key")?))
}

pub fn read_public_key(p: &Path) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&read_32(p, "Ed25519 public key")?)
        .map_err(|e| format!("{}: not an Ed25519 public key: {e}", p.display()))
}

/// The policy files of a bundle directory, sorted, as (name, path).
fn policy_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<(String, std::path::PathBuf)> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && crate::import::is_policy_file(p))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
        .collect();
    out.sort();
    if out.len() > MAX_FILES {
        return Err(format!(
            "{}: more than {MAX_FILES} policy files",
            dir.display()
        ));
    }
    Ok(out)
}

fn sha256_file(p: &Path) -> Result<String, String> {
    let b = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(hex(&Sha256::digest(&b)))
}

/// Sign a bundle directory: write its manifest (every policy file's hash, `version`, valid
/// from `not_before_ns` to `not_after_ns`) and the signature.
pub fn sign(
    dir: &Path,
    key: &SigningKey,
    version: u64,
    not_before_ns: i64,
    not_after_ns: i64,
) -> Result<BundleInfo, String> {
    if not_after_ns <= not_before_ns {
        return Err("the validity window ends before it starts".into());
    }
    let files = policy_files(dir)?;
    if files.is_empty() {
        return Err(format!(
            "{}: no policy files (*.toml, *.yaml, *.yml, *.json)",
            dir.display()
        ));
    }
    // Every file must parse: a bundle that cannot load is not signed.
    crate::import::load(dir)?;
    let mut hashes = Vec::new();
    for (name, p) in &files {
        hashes.push(FileHash {
            path: name.clone(),
            sha256: sha256_file(p)?,
        });
    }
    let m = Manifest {
        format: FORMAT.into(),
        version,
        not_before: crate::time::format_rfc3339(not_before_ns),
        not_after: crate::time::format_rfc3339(not_after_ns),
        files: hashes,
    };
    let mut bytes = serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    let sig = key.sign(&bytes);
    std::fs::write(dir.join(MANIFEST), &bytes)
        .map_err(|e| format!("{}: {e}", dir.join(MANIFEST).display()))?;
    std::fs::write(
        dir.join(SIGNATURE),
        format!("{}\n", b64().encode(sig.to_bytes())),
    )
    .map_err(|e| format!("{}: {e}", dir.join(SIGNATURE).display()))?;
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
) -> Result<BundleInfo, String> {
    let d = dir.display();
    let mpath = dir.join(MANIFEST);
    let bytes =
        std::fs::read(&mpath).map_err(|_| format!("{d}: unsigned bundle: no {MANIFEST}"))?;
    let sig_text = std::fs::read_to_string(dir.join(SIGNATURE)).map_err(|_| {
        format!("{d}: signature missing: no {SIGNATURE} (stripped or never signed)")
    })?;
    let sig_bytes: [u8; 64] = b64()
        .decode(sig_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{d}: {SIGNATURE} is not a base64 Ed25519 signature"))?;
    let sig = Signature::from_bytes(&sig_bytes);
    if pinned.is_empty() {
        return Err(format!("{d}: no public key is pinned to verify against"));
    }
    let Some(k) = pinned
        .iter()
        .find(|k| k.verify_strict(&bytes, &sig).is_ok())
    else {
        let ids: Vec<String> = pinned.iter().map(key_id).collect();
        return Err(format!(
            "{d}: bad signature: {MANIFEST} was not signed by any pinned key ({}), or was changed after signing",
            ids.join(", ")
        ));
    };
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{d}: {MANIFEST}: {e}"))?;
    if m.format != FORMAT {
        return Err(format!(
            "{d}: {MANIFEST}: format {:?}, expected {FORMAT:?}",
            m.format
        ));
    }
    let hash = hex(&Sha256::digest(&bytes));
    let listed: std::collections::BTreeMap<&str, &str> = m
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    for f in &m.files {
        if f.path.contains('/') || f.path.contains('\\') || f.path.starts_with('.') {
            return Err(format!(
                "{d}: {MANIFEST} lists {:?}, which is not a file of the bundle",
                f.path
            ));
        }
        let got = sha256_file(&dir.join(&f.path))
            .map_err(|e| format!("{d}: listed file missing: {e}"))?;
        if got != f.sha256 {
            return Err(format!(
                "{d}: hash mismatch: {} has sha256 {got}, the manifest says {}",
                f.path, f.sha256
            ));
        }
    }
    for (name, _) in policy_files(dir)? {
        if !listed.contains_key(name.as_str()) {
            return Err(format!("{d}: {name} is not listed in the signed manifest"));
        }
    }
    let nb =
        crate::time::parse_rfc3339(&m.not_before).map_err(|e| format!("{d}: not_before: {e}"))?;
    let na =
        crate::time::parse_rfc3339(&m.not_after).map_err(|e| format!("{d}: not_after: {e}"))?;
    if now_ns < nb {
        return Err(format!("{d}: not yet valid: valid from {}", m.not_before));
    }
    if now_ns >= na {
        return Err(format!("{d}: expired: valid until {}", m.not_after));
    }
    if let Some((v, h)) = active {
        if m.version < v {
            return Err(format!(
                "{d}: version {} is older than the active version {v} (replay of an old bundle)",
                m.version
            ));
        }
        if m.version == v && hash != h {
            return Err(format!(
                "{d}: version {v} is already active with different content; a changed bundle needs a higher version"
            ));
        }
    }
    Ok(BundleInfo {
        version: m.version,
        hash,
        key_id: key_id(k),
        not_after_ns: na,
    })
}
