//! The active policy of a sensor, kept in a state directory so that a rejected bundle leaves
//! the previous one in force — across reloads and restarts — and a replayed older version is
//! recognised: `STATE/active/` is a copy of the last bundle accepted, `STATE/active.json` its
//! version and manifest hash.

use crate::bundle::{self, BundleInfo};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActiveRecord {
    pub version: u64,
    pub hash: String,
}

/// A sensor's policy state directory.
#[derive(Debug, Clone)]
pub struct State {
    pub dir: PathBuf,
}

/// What loading a candidate bundle did.
#[derive(Debug)]
pub enum Outcome {
    /// The candidate was verified and is now active.
    Accepted(BundleInfo),
    /// The candidate was rejected (the reason); the previously active bundle (re-verified)
    /// stays in force, if there is one.
    Rejected {
        reason: String,
        active: Option<(PathBuf, BundleInfo)>,
    },
}

impl State {
    pub fn new(dir: &Path) -> State {
        State {
            dir: dir.to_path_buf(),
        }
    }

    fn active_dir(&self) -> PathBuf {
        self.dir.join("active")
    }

    /// The recorded active version and hash.
    pub fn record(&self) -> Option<ActiveRecord> {
        let b = std::fs::read(self.dir.join("active.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// The active bundle, re-verified (a tampered state directory counts as none).
    pub fn active(&self, pinned: &[VerifyingKey], now_ns: i64) -> Option<(PathBuf, BundleInfo)> {
        let rec = self.record()?;
        let d = self.active_dir();
        let info = bundle::verify(&d, pinned, now_ns, Some((rec.version, &rec.hash))).ok()?;
        Some((d, info))
    }

    /// Verify `candidate` against the pinned keys and the active version; on success copy it
    /// in as the active bundle.
    pub fn load(&self, candidate: &Path, pinned: &[VerifyingKey], now_ns: i64) -> Outcome {
        let rec = self.record();
        match bundle::verify(
            candidate,
            pinned,
            now_ns,
            rec.as_ref().map(|r| (r.version, r.hash.as_str())),
        ) {
            Ok(info) => match self.install(candidate, &info) {
                Ok(()) => Outcome::Accepted(info),
                Err(e) => Outcome::Rejected {
                    reason: e,
                    active: self.active(pinned, now_ns),
                },
            },
            Err(reason) => Outcome::Rejected {
                reason,
                active: self.active(pinned, now_ns),
            },
        }
    }

    fn install(&self, candidate: &Path, info: &BundleInfo) -> Result<(), String> {
        let io = |e: std::io::Error| format!("policy state {}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let same =
            std::fs::canonicalize(candidate).ok() == std::fs::canonicalize(self.active_dir()).ok();
        if !same {
            let tmp = self.dir.join("active.new");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(io)?;
            for e in std::fs::read_dir(candidate).map_err(io)?.flatten() {
                let p = e.path();
                let name = e.file_name();
                let keep = p.is_file()
                    && (crate::import::is_policy_file(&p)
                        || name == bundle::MANIFEST
                        || name == bundle::SIGNATURE);
                if keep {
                    std::fs::copy(&p, tmp.join(&name)).map_err(io)?;
                }
            }
            let _ = std::fs::remove_dir_all(self.active_dir());
            std::fs::rename(&tmp, self.active_dir()).map_err(io)?;
        }
        let rec = ActiveRecord {
            version: info.version,
            hash: info.hash.clone(),
        };
        let tmp = self.dir.join("active.json.new");
        std::fs::write(&tmp, serde_json::to_vec(&rec).map_err(|e| e.to_string())?).map_err(io)?;
        std::fs::rename(&tmp, self.dir.join("active.json")).map_err(io)
    }
}
