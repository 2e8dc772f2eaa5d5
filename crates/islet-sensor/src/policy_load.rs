//! Loading the policy a sensor judges with, fail-closed. With keys pinned, a bundle must
//! verify; with a policy state, a bundle it refuses leaves the active one in force, and the
//! refusal becomes a `policy` `bundle_rejected` record written before the flows; with no key
//! pinned, an unsigned policy is used with a warning. The policy is parsed from the bytes that
//! were verified. A SIGHUP reload ([`reload`]) goes the same way and swaps the new engine in.
//!
//! Messages for the operator (warnings, what was loaded) go to a `note` callback, one line
//! each, in the order they arise; the caller decides where they are shown.

use crate::config::PolicySection;
use crate::policy::PolicyRuntime;
use islet_policy::bundle::{self, BundleError, VerifyingKey};
use islet_policy::signing::now_ns;
use islet_policy::state::{Outcome, State};
use islet_policy::{Engine, Inventory, import};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Read the pinned public keys (`policy.pub` files).
pub fn pinned_keys(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>, PolicyLoadError> {
    paths
        .iter()
        .map(|p| bundle::read_public_key(p).map_err(|e| PolicyLoadError::Key(e.to_string())))
        .collect()
}

/// Where the policy comes from on the command line; each overrides or adds to `[policy]`.
#[derive(Debug, Clone, Default)]
pub struct PolicyArgs {
    /// A bundle directory or one policy file (`--policy`).
    pub bundle: Option<PathBuf>,
    /// Pinned public keys (`--pubkey`), added to `policy.pubkeys`.
    pub pubkeys: Vec<PathBuf>,
    /// The workload inventory (`--inventory`).
    pub inventory: Option<PathBuf>,
    /// The policy state directory (`--policy-state`).
    pub state: Option<PathBuf>,
    /// No note of what was loaded (warnings are still noted).
    pub quiet: bool,
}

/// How a command loads its policy: `islet read` keeps no state unless told to; `islet run`
/// keeps one by default ([`Loading::live`]), so that rollback protection does not depend on a
/// flag.
#[derive(Debug, Default, Clone)]
pub struct Loading {
    /// The state directory used when a key is pinned and none is given.
    pub default_state: Option<PathBuf>,
    /// Decide, but change no state (`islet run --check-config`).
    pub check_only: bool,
}

impl Loading {
    /// The live sensor's: with a key pinned, the rollback state is kept even when neither
    /// `--policy-state` nor `[policy] state_dir` names it, in
    /// [`crate::config::DEFAULT_POLICY_STATE_DIR`].
    pub fn live(check_only: bool) -> Loading {
        Loading {
            default_state: Some(crate::config::DEFAULT_POLICY_STATE_DIR.into()),
            check_only,
        }
    }
}

/// What a sensor judges with, and the records to write before its flows.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `None` when no policy is configured.
    pub runtime: Option<PolicyRuntime>,
    /// The `policy` `bundle_rejected` record (EVE) when the state refused the candidate and
    /// its active bundle is used instead; empty otherwise.
    pub rejected: Vec<u8>,
}

/// Why no policy could be loaded. The `Display` text is the message users see.
#[derive(Debug)]
#[non_exhaustive]
pub enum PolicyLoadError {
    /// `--inventory`, `--pubkey` or `--policy-state` was given without a policy.
    NoPolicy,
    /// A pinned key could not be read.
    Key(String),
    /// The (unsigned) policy could not be read or parsed.
    Policy(String),
    /// The bundle failed verification, or its verified bytes did not parse.
    Rejected(BundleError),
    /// The state refused the bundle and holds no active one to fall back on.
    NoneActive(BundleError),
    /// The inventory could not be read or parsed.
    Inventory(String),
}

impl fmt::Display for PolicyLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyLoadError::NoPolicy => f.write_str(
                "--inventory, --pubkey and --policy-state need --policy (or [policy] bundle)",
            ),
            PolicyLoadError::Key(m)
            | PolicyLoadError::Policy(m)
            | PolicyLoadError::Inventory(m) => f.write_str(m),
            PolicyLoadError::Rejected(e) => write!(f, "policy bundle rejected: {e}"),
            PolicyLoadError::NoneActive(e) => {
                write!(f, "policy bundle rejected: {e}; no bundle is active")
            }
        }
    }
}

impl std::error::Error for PolicyLoadError {}

/// Load the policy of `args` over `cfg` as `how` says (see the module's documentation).
pub fn load(
    args: &PolicyArgs,
    cfg: &PolicySection,
    how: &Loading,
    note: &mut dyn FnMut(&str),
) -> Result<Loaded, PolicyLoadError> {
    // The command line overrides `[policy]`; pinned keys add up.
    let policy_state = args
        .state
        .clone()
        .or_else(|| cfg.state_dir.clone())
        .or_else(|| how.default_state.clone());
    let inventory = args.inventory.clone().or_else(|| cfg.inventory.clone());
    let pubkeys: Vec<PathBuf> = cfg.pubkeys.iter().chain(&args.pubkeys).cloned().collect();
    let Some(candidate) = args.bundle.as_ref().or(cfg.bundle.as_ref()) else {
        if args.inventory.is_some() || !args.pubkeys.is_empty() || args.state.is_some() {
            return Err(PolicyLoadError::NoPolicy);
        }
        return Ok(Loaded::default());
    };
    let mut rejected = Vec::new();
    let keys = pinned_keys(&pubkeys)?;
    let now = now_ns();
    let (policy, info) = if keys.is_empty() {
        note(&format!(
            "warning: policy: no public key is pinned; {} is used unverified (pin keys with --pubkey)",
            candidate.display()
        ));
        (
            import::load(candidate).map_err(|e| PolicyLoadError::Policy(e.to_string()))?,
            None,
        )
    } else {
        let v = match &policy_state {
            None => {
                note(
                    "warning: policy: no --policy-state: the bundle's version is not compared with one accepted before, so an older signed bundle (a rollback) cannot be refused; give --policy-state DIR (or [policy] state_dir)",
                );
                bundle::verify_bundle(candidate, &keys, now, None)
                    .map_err(PolicyLoadError::Rejected)?
            }
            Some(st) => {
                let state = State::new(st);
                let outcome = if how.check_only {
                    state.check(candidate, &keys, now)
                } else {
                    state.load(candidate, &keys, now)
                };
                match outcome {
                    Outcome::Accepted(v) => v,
                    Outcome::Rejected {
                        reason,
                        active: Some(v),
                    } => {
                        note(&format!(
                            "policy bundle rejected: {reason}; the active bundle (version {}, sha256 {}) stays in force",
                            v.info.version, v.info.hash
                        ));
                        islet_event::alert::write_policy_rejected(
                            &mut rejected,
                            &islet_event::PolicyRejected {
                                ts_ns: u64::try_from(now).unwrap_or(0),
                                bundle: &candidate.display().to_string(),
                                reason: &reason.to_string(),
                                active_version: v.info.version,
                                active_hash: &v.info.hash,
                            },
                        );
                        v
                    }
                    Outcome::Rejected {
                        reason,
                        active: None,
                    } => return Err(PolicyLoadError::NoneActive(reason)),
                }
            }
        };
        // The bytes that were verified are the bytes parsed: the directory is not read again.
        (v.policy().map_err(PolicyLoadError::Rejected)?, Some(v.info))
    };
    for u in &policy.unsupported {
        note(&format!("warning: policy: {u}"));
    }
    let inventory = match &inventory {
        Some(p) => {
            Inventory::from_path(p).map_err(|e| PolicyLoadError::Inventory(e.to_string()))?
        }
        None => {
            note("warning: policy: no --inventory: every address is `world`");
            Inventory::default()
        }
    };
    let mut engine = Engine::new(policy, Arc::new(inventory));
    if let Some(i) = info {
        engine.bundle_version = i.version;
        engine.bundle_hash = i.hash;
    }
    if !args.quiet {
        note(&format!(
            "policy: {} rules in {} tiers, {} workloads{}{}",
            engine.policy.rules.len(),
            engine.policy.tiers.len(),
            engine.inventory.workloads.len(),
            if engine.bundle_version > 0 {
                format!(", bundle version {}", engine.bundle_version)
            } else {
                String::new()
            },
            match (&policy_state, keys.is_empty()) {
                (Some(st), false) => format!(", rollback state {}", st.display()),
                _ => String::new(),
            }
        ));
    }
    let mut rt = PolicyRuntime::fixed(engine);
    rt.names_max = cfg.names_max;
    rt.dns_min_ttl = cfg.dns_min_ttl;
    Ok(Loaded {
        runtime: Some(rt),
        rejected,
    })
}

/// SIGHUP: load the policy again as the live sensor does and swap it into `rt`. A bundle that
/// fails verification leaves the one in force (fail closed): the note says which version that
/// is, and the `policy` rejection record goes into `records`.
pub fn reload(
    args: &PolicyArgs,
    cfg: &PolicySection,
    rt: &PolicyRuntime,
    records: &mut Vec<u8>,
    note: &mut dyn FnMut(&str),
) {
    match load(args, cfg, &Loading::live(false), note) {
        Ok(Loaded {
            runtime: Some(_),
            rejected,
        }) if !rejected.is_empty() => {
            // The state refused the candidate and handed back its active bundle: the one in
            // force stays (it is that bundle, or was loaded before the state had one).
            let e = rt.engine.load();
            note(&format!(
                "SIGHUP: policy not reloaded: the bundle was rejected (written as a policy record); bundle version {} stays in force",
                e.bundle_version
            ));
            records.extend_from_slice(&rejected);
        }
        Ok(Loaded {
            runtime: Some(new), ..
        }) => {
            let e = new.engine.load_full();
            note(&format!(
                "SIGHUP: policy reloaded ({} rules, bundle version {}); new flows are judged by it",
                e.policy.rules.len(),
                e.bundle_version
            ));
            rt.engine.store(e);
        }
        Ok(Loaded { runtime: None, .. }) => {
            note("SIGHUP: no policy configured now; the one in force stays")
        }
        Err(m) => note(&format!(
            "SIGHUP: policy not reloaded, the one in force stays: {m}"
        )),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn keys_inventory_or_state_without_a_policy_are_refused() {
        let args = PolicyArgs {
            inventory: Some("inv.toml".into()),
            ..PolicyArgs::default()
        };
        let e = load(
            &args,
            &PolicySection::default(),
            &Loading::default(),
            &mut |_| {},
        )
        .expect_err("no policy");
        assert!(matches!(e, PolicyLoadError::NoPolicy));
        let none = load(
            &PolicyArgs::default(),
            &PolicySection::default(),
            &Loading::default(),
            &mut |_| {},
        )
        .expect("nothing configured");
        assert!(none.runtime.is_none() && none.rejected.is_empty());
    }

    #[test]
    fn an_unsigned_policy_is_used_with_warnings_in_order() {
        let dir = std::env::temp_dir().join(format!("islet-policy-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("p.toml");
        std::fs::write(
            &p,
            "[[rule]]\nid = \"r\"\naction = \"deny\"\ndirection = \"ingress\"\nsubject = {}\n",
        )
        .expect("write");
        let mut notes = Vec::new();
        let args = PolicyArgs {
            bundle: Some(p.clone()),
            ..PolicyArgs::default()
        };
        let loaded = load(
            &args,
            &PolicySection::default(),
            &Loading::default(),
            &mut |m| notes.push(m.to_string()),
        )
        .expect("loaded");
        assert!(loaded.runtime.is_some());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("warning: policy: no public key is pinned"));
        assert_eq!(
            notes[1],
            "warning: policy: no --inventory: every address is `world`"
        );
        assert_eq!(notes[2], "policy: 1 rules in 1 tiers, 0 workloads");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
