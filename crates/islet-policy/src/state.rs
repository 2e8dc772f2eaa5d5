//! The active policy of a sensor, kept in a state directory so that a rejected bundle leaves
//! the previous one in force — across reloads and restarts — and a replayed older version is
//! recognised.
//!
//! The directory holds three things, written by islet only:
//!
//! - `active/`: the last bundle accepted, written from the exact bytes that were verified
//!   (manifest, signature, listed files; nothing else);
//! - `active.json`: its version and manifest hash (the commit record);
//! - `highest.json`: the highest version ever accepted, and its hash (the high-water mark).
//!
//! A bundle below the higher of the two records is a replay. The state fails closed: a
//! directory that holds evidence of an earlier bundle (`active/` or `highest.json`) but no
//! readable `active.json`, or a record that does not parse, refuses every bundle rather than
//! starting afresh — deleting one file never lowers the floor. Only removing the whole
//! directory resets it, deliberately. A state written before `highest.json` existed (only
//! `active.json` and `active/`) is read as it is, and gains `highest.json` at the next
//! install.
//!
//! An install writes `active.new/` first, then `active.json`, then `highest.json`, then swaps
//! the directories: a crash at any step leaves records at least as high as the bundle on disk,
//! so the floor never drops; reloading the same bundle completes the install.

use crate::bundle::{self, BundleError, Verified};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The commit record: the version and manifest hash of the active bundle.
pub const ACTIVE_RECORD: &str = "active.json";
/// The high-water mark: the highest version accepted, and its hash.
pub const HIGHEST_RECORD: &str = "highest.json";
/// The active bundle's copy.
pub const ACTIVE_DIR: &str = "active";
/// Largest record read (a version and a hash fit in 100 bytes).
const MAX_RECORD_BYTES: u64 = 4 << 10;

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
    /// The candidate was verified and is now active (or, checked only, would be): its bytes.
    Accepted(Verified),
    /// The candidate was rejected (the reason); the previously active bundle (re-verified,
    /// its bytes) stays in force, if there is one.
    Rejected {
        reason: BundleError,
        active: Option<Verified>,
    },
}

impl State {
    pub fn new(dir: &Path) -> State {
        State {
            dir: dir.to_path_buf(),
        }
    }

    fn active_dir(&self) -> PathBuf {
        self.dir.join(ACTIVE_DIR)
    }

    fn damaged(&self, reason: String) -> BundleError {
        BundleError::State {
            dir: bundle::shown(&self.dir),
            reason,
        }
    }

    /// A record file: `None` if it is not there, an error if it is there but unreadable.
    fn read_record(&self, name: &str) -> Result<Option<ActiveRecord>, BundleError> {
        match crate::files::read_regular(&self.dir, name, MAX_RECORD_BYTES) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| self.damaged(format!("{name} is corrupt ({e}); refusing to start afresh, which would accept any older version; restore it, or remove the whole directory to reset deliberately"))),
            Err(crate::files::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(self.damaged(format!("{name} cannot be read: {e}"))),
        }
    }

    /// The version and hash no new bundle may go below (or differ from at that version):
    /// the higher of `active.json` and `highest.json`. `None` for a new state; an error for a
    /// state that holds evidence of an earlier bundle without its commit record, or a corrupt
    /// record (fail closed).
    pub fn floor(&self) -> Result<Option<ActiveRecord>, BundleError> {
        let active = self.read_record(ACTIVE_RECORD)?;
        let highest = self.read_record(HIGHEST_RECORD)?;
        let has_copy = std::fs::symlink_metadata(self.active_dir()).is_ok();
        match (active, highest) {
            (None, None) if !has_copy => Ok(None),
            (None, _) => Err(self.damaged(format!(
                "{ACTIVE_RECORD} is missing but the directory holds an earlier bundle ({}); refusing to start afresh, which would accept any older version; restore it, or remove the whole directory to reset deliberately",
                if has_copy { "active/" } else { HIGHEST_RECORD }
            ))),
            (Some(a), None) => Ok(Some(a)),
            (Some(a), Some(h)) => {
                if a.version == h.version && a.hash != h.hash {
                    return Err(self.damaged(format!(
                        "{ACTIVE_RECORD} and {HIGHEST_RECORD} name different bundles of version {}",
                        a.version
                    )));
                }
                Ok(Some(if h.version > a.version { h } else { a }))
            }
        }
    }

    /// The recorded active version and hash, if the state can be trusted.
    pub fn record(&self) -> Option<ActiveRecord> {
        self.floor().ok().flatten()
    }

    /// The active bundle, re-verified: it must be exactly the bundle the records name (a
    /// tampered, damaged or expired state counts as none).
    pub fn active(&self, pinned: &[VerifyingKey], now_ns: i64) -> Option<Verified> {
        let floor = self.floor().ok()??;
        let v = bundle::verify_bundle(
            &self.active_dir(),
            pinned,
            now_ns,
            Some((floor.version, &floor.hash)),
        )
        .ok()?;
        (v.info.version == floor.version && v.info.hash == floor.hash).then_some(v)
    }

    /// Verify `candidate` against the pinned keys and the floor; on success install its
    /// verified bytes as the active bundle.
    pub fn load(&self, candidate: &Path, pinned: &[VerifyingKey], now_ns: i64) -> Outcome {
        self.judge(candidate, pinned, now_ns, true)
    }

    /// [`State::load`] without installing: what loading would decide (`--check-config`).
    pub fn check(&self, candidate: &Path, pinned: &[VerifyingKey], now_ns: i64) -> Outcome {
        self.judge(candidate, pinned, now_ns, false)
    }

    fn judge(
        &self,
        candidate: &Path,
        pinned: &[VerifyingKey],
        now_ns: i64,
        install: bool,
    ) -> Outcome {
        let floor = match self.floor() {
            Ok(f) => f,
            Err(reason) => {
                return Outcome::Rejected {
                    reason,
                    active: None,
                };
            }
        };
        let verified = bundle::verify_bundle(
            candidate,
            pinned,
            now_ns,
            floor.as_ref().map(|r| (r.version, r.hash.as_str())),
        );
        match verified {
            Ok(v) => match if install { self.install(&v) } else { Ok(()) } {
                Ok(()) => Outcome::Accepted(v),
                Err(reason) => Outcome::Rejected {
                    reason,
                    active: self.active(pinned, now_ns),
                },
            },
            Err(reason) => Outcome::Rejected {
                reason,
                active: self.active(pinned, now_ns),
            },
        }
    }

    fn install(&self, v: &Verified) -> Result<(), BundleError> {
        use std::io::Write as _;
        use std::os::unix::fs::DirBuilderExt as _;
        let shown = bundle::shown(&self.dir);
        let io = |what: &str, e: std::io::Error| BundleError::Io {
            what: format!("policy state {shown}/{what}"),
            error: e.to_string(),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| io("", e))?;
        let tmp = self.dir.join("active.new");
        remove_tree(&tmp).map_err(|e| io("active.new", e))?;
        std::fs::create_dir(&tmp).map_err(|e| io("active.new", e))?;
        self.adopt(&tmp);
        let files = [
            (bundle::MANIFEST, &v.manifest),
            (bundle::SIGNATURE, &v.signature),
        ]
        .into_iter()
        .chain(v.files.iter().map(|f| (f.name.as_str(), &f.bytes)));
        for (name, bytes) in files {
            let mut f = std::fs::File::create_new(tmp.join(name)).map_err(|e| io(name, e))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| io(name, e))?;
            self.adopt(&tmp.join(name));
        }
        let rec = ActiveRecord {
            version: v.info.version,
            hash: v.info.hash.clone(),
        };
        // The records first: a crash before the swap leaves them above the copy on disk.
        self.write_record(ACTIVE_RECORD, &rec)?;
        self.write_record(HIGHEST_RECORD, &rec)?;
        let old = self.dir.join("active.old");
        remove_tree(&old).map_err(|e| io("active.old", e))?;
        match std::fs::rename(self.active_dir(), &old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(ACTIVE_DIR, e)),
        }
        std::fs::rename(&tmp, self.active_dir()).map_err(|e| io(ACTIVE_DIR, e))?;
        remove_tree(&old).map_err(|e| io("active.old", e))
    }

    /// Give an entry we created the state directory's owner, so that a sensor started as root
    /// and running as `live.user` (the directory's owner) can replace it at a reload. Best
    /// effort: without the right to, the entry stays ours.
    fn adopt(&self, p: &Path) {
        use std::os::unix::fs::MetadataExt as _;
        let (Ok(d), Ok(m)) = (std::fs::metadata(&self.dir), std::fs::symlink_metadata(p)) else {
            return;
        };
        if (m.uid(), m.gid()) != (d.uid(), d.gid()) {
            let _ = std::os::unix::fs::lchown(p, Some(d.uid()), Some(d.gid()));
        }
    }

    fn write_record(&self, name: &str, rec: &ActiveRecord) -> Result<(), BundleError> {
        use std::io::Write as _;
        let shown = bundle::shown(&self.dir);
        let io = |e: std::io::Error| BundleError::Io {
            what: format!("policy state {shown}/{name}"),
            error: e.to_string(),
        };
        let bytes = serde_json::to_vec(rec).map_err(|e| BundleError::Io {
            what: format!("policy state {shown}/{name}"),
            error: e.to_string(),
        })?;
        let tmp = self.dir.join(format!("{name}.new"));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        self.adopt(&tmp);
        std::fs::rename(&tmp, self.dir.join(name)).map_err(io)
    }
}

/// Remove a directory tree of ours if it is there (a link is removed, not followed).
fn remove_tree(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
    }
}
