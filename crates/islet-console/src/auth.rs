//! API tokens: `islet_<id>_<secret>`. The store keeps the id, the role and an argon2 hash of
//! the secret, never the secret. That a secret matched is remembered (by its SHA-256) for a
//! minute so that argon2's deliberate cost is paid once per token, not per request; whether
//! the token is revoked is read from the store on every request. Failed secrets are throttled
//! per token id and per peer.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use islet_store::{AccessStore, NewToken, Role};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a matched secret is remembered (argon2 is not run again for it).
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most tokens remembered.
pub const CACHE_MAX: usize = 4096;

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

/// A new token: the full secret (shown once) and what the store keeps.
pub fn mint(role: Role, name: &str) -> Result<(String, NewToken), crate::error::MintError> {
    use crate::error::MintError;
    let mut id = [0u8; 8];
    let mut secret = [0u8; 24];
    let mut salt = [0u8; 16];
    for b in [&mut id[..], &mut secret[..], &mut salt[..]] {
        getrandom::getrandom(b).map_err(MintError::Random)?;
    }
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let salt = SaltString::encode_b64(&salt).map_err(MintError::Hash)?;
    let hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(MintError::Hash)?
        .to_string();
    Ok((
        format!("islet_{id}_{secret}"),
        NewToken {
            id,
            hash,
            role,
            name: name.to_string(),
        },
    ))
}

/// Failed secrets allowed per token id, and per peer, within [`STRIKE_WINDOW`]; past that,
/// attempts are refused without running argon2 until the window ends.
pub const STRIKES: u32 = 5;
/// The window failed attempts are counted in.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(60);
/// Most token ids and peers whose failures are remembered, each.
pub const STRIKES_MAX: usize = 65_536;

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Unknown, revoked or malformed, or the secret is wrong.
    Unknown,
    /// Too many failed secrets for this token id or from this peer; retry after this long.
    Throttled(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Strike {
    count: u32,
    since: Instant,
}

/// Failed attempts per key, bounded.
#[derive(Debug)]
struct Strikes<K> {
    map: HashMap<K, Strike>,
}

impl<K> Default for Strikes<K> {
    fn default() -> Self {
        Strikes {
            map: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Strikes<K> {
    fn blocked(&self, k: &K, now: Instant) -> Option<Duration> {
        let s = self.map.get(k)?;
        let age = now.saturating_duration_since(s.since);
        (s.count >= STRIKES && age < STRIKE_WINDOW).then(|| STRIKE_WINDOW - age)
    }

    fn fail(&mut self, k: K, now: Instant) {
        if self.map.len() >= STRIKES_MAX {
            self.map
                .retain(|_, s| now.saturating_duration_since(s.since) < STRIKE_WINDOW);
        }
        if self.map.len() >= STRIKES_MAX {
            // Still full of fresh strikes: the table is under attack from more keys than it
            // holds; the oldest half goes.
            let mut ages: Vec<Instant> = self.map.values().map(|s| s.since).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.map.retain(|_, s| s.since > cut);
        }
        let e = self.map.entry(k).or_insert(Strike {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(e.since) >= STRIKE_WINDOW {
            *e = Strike {
                count: 0,
                since: now,
            };
        }
        e.count = e.count.saturating_add(1);
    }
}

/// The throttling key of a peer: the address, or its /64 for IPv6 (one host holds a /64).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
    }
}

#[derive(Debug, Default)]
struct Throttle {
    ids: Strikes<String>,
    peers: Strikes<IpAddr>,
    refused: u64,
}

/// Checks tokens against the store.
///
/// Every request reads the token's row (one indexed look-up), so a revocation holds from the
/// next request, whichever process wrote it. What is remembered, for [`CACHE_TTL`], is only
/// that a secret matched its argon2 hash, so that the deliberate cost of argon2 is paid once
/// per token and not per request. Failed secrets are counted per token id and per peer
/// ([`STRIKES`] per [`STRIKE_WINDOW`]); past that, attempts are refused before argon2 runs.
#[derive(Debug, Default)]
pub struct Verifier {
    cache: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    throttle: Mutex<Throttle>,
}

impl Verifier {
    /// The principal of a presented token, or None (unknown, revoked, malformed, throttled).
    pub fn check(&self, token: &str, store: &dyn AccessStore) -> Option<Principal> {
        self.check_from(token, store, None).ok()
    }

    /// As [`Verifier::check`], counting failures against `peer` too, and saying why not.
    pub fn check_from(
        &self,
        token: &str,
        store: &dyn AccessStore,
        peer: Option<IpAddr>,
    ) -> Result<Principal, Denied> {
        let now = Instant::now();
        let rest = token.strip_prefix("islet_").ok_or(Denied::Unknown)?;
        let (id, secret) = rest.split_once('_').ok_or(Denied::Unknown)?;
        if id.len() != 16 || secret.len() > 64 {
            return Err(Denied::Unknown);
        }
        let peer = peer.map(peer_key);
        if let Ok(mut t) = self.throttle.lock() {
            let wait = t
                .ids
                .blocked(&id.to_string(), now)
                .into_iter()
                .chain(peer.and_then(|p| t.peers.blocked(&p, now)))
                .max();
            if let Some(w) = wait {
                t.refused += 1;
                return Err(Denied::Throttled(w));
            }
        }
        let fail = |known_id: bool| {
            if let Ok(mut t) = self.throttle.lock() {
                if known_id {
                    t.ids.fail(id.to_string(), now);
                }
                if let Some(p) = peer {
                    t.peers.fail(p, now);
                }
            }
            Denied::Unknown
        };
        let Some(row) = store.token(id).ok().flatten() else {
            return Err(fail(false));
        };
        if row.revoked.is_some() {
            return Err(Denied::Unknown);
        }
        let principal = Principal {
            token_id: row.id.clone(),
            name: if row.name.is_empty() {
                format!("token:{id}")
            } else {
                row.name.clone()
            },
            role: row.role,
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(c) = self.cache.lock()
            && let Some((hash, at)) = c.get(&key)
            && *hash == row.hash
            && at.elapsed() < CACHE_TTL
        {
            return Ok(principal);
        }
        let hash = PasswordHash::new(&row.hash).map_err(|_| Denied::Unknown)?;
        if Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_err()
        {
            return Err(fail(true));
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(key, (row.hash.clone(), now));
        }
        Ok(principal)
    }

    /// Attempts refused by the throttle so far.
    pub fn throttled(&self) -> u64 {
        self.throttle.lock().map(|t| t.refused).unwrap_or(0)
    }

    /// Forget every remembered token (after a revocation).
    pub fn forget(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }
}
