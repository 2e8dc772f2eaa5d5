//! API tokens: `islet_<id>_<secret>`. The store keeps the id, the role and an argon2 hash of
//! the secret, never the secret. A verified token is remembered (by its SHA-256) for a minute so
//! that argon2's deliberate cost is paid once per token, not per request.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use islet_store::{NewToken, Role, Store};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified token is trusted without asking the store again.
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
pub fn mint(role: Role, name: &str) -> Result<(String, NewToken), String> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 24];
    let mut salt = [0u8; 16];
    for b in [&mut id[..], &mut secret[..], &mut salt[..]] {
        getrandom::getrandom(b).map_err(|e| format!("random: {e}"))?;
    }
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
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

/// Checks tokens against the store.
#[derive(Debug, Default)]
pub struct Verifier {
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl Verifier {
    /// The principal of a presented token, or None (unknown, revoked, malformed).
    pub fn check(&self, token: &str, store: &dyn Store) -> Option<Principal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(c) = self.cache.lock()
            && let Some((p, at)) = c.get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Some(p.clone());
        }
        let rest = token.strip_prefix("islet_")?;
        let (id, secret) = rest.split_once('_')?;
        if id.len() != 16 || secret.len() > 64 {
            return None;
        }
        let row = store.token(id).ok()??;
        if row.revoked.is_some() {
            return None;
        }
        let hash = PasswordHash::new(&row.hash).ok()?;
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .ok()?;
        let p = Principal {
            token_id: row.id,
            name: if row.name.is_empty() {
                format!("token:{id}")
            } else {
                row.name
            },
            role: row.role,
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(key, (p.clone(), Instant::now()));
        }
        Some(p)
    }

    /// Forget every remembered token (after a revocation).
    pub fn forget(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }
}
