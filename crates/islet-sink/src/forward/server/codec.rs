//! The per-connection protocol state: bytes in, replies and batches out, no I/O.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rmpv::Value;

use super::budget::Share;
use super::decode::{as_bytes, decode_frame};
use super::{Batch, Refusal, ServerConfig, ServerStats};
use crate::forward::proto::{self, Sizer, password_digest, shared_key_digest};

/// A connection's receive buffer starts (and is shrunk back to) this size; it grows by
/// doubling, charged to the budget, up to the frame being received.
pub const INITIAL_BUF: usize = 4 << 10;

/// Largest frame accepted before the handshake is done: a PING is a few hundred bytes, and a
/// peer that has not proven the key must not make the receiver buffer `max_message`.
pub const MAX_HANDSHAKE_FRAME: usize = 16 << 10;

#[derive(Debug)]
enum State {
    AwaitPing {
        nonce: Vec<u8>,
        auth_salt: Vec<u8>,
    },
    /// Handshake done (or none needed), with the client's hostname if it sent a PING.
    Ready(Option<String>),
}

/// The per-connection protocol state; bytes in, replies and batches out.
#[derive(Debug)]
pub struct ServerCodec {
    cfg: Arc<ServerConfig>,
    state: State,
    /// Bytes received; those before `start` are decoded and dropped at the end of each input.
    buf: Vec<u8>,
    start: usize,
    /// The walk over the frame at `start`, resumed at each input.
    sizer: Sizer,
    /// The buffer's capacity, charged to `share`.
    charged: usize,
    share: Share,
    stats: Arc<ServerStats>,
    /// Messages completed (the PING included).
    messages: u64,
}

impl ServerCodec {
    /// A codec for a new connection, and the greeting to send first (HELO) if a key is set.
    /// Its memory is counted in a budget of its own (see [`ServerCodec::with_stats`]).
    pub fn new(cfg: Arc<ServerConfig>) -> (ServerCodec, Option<Vec<u8>>) {
        ServerCodec::with_stats(cfg, Arc::default())
    }

    /// As [`ServerCodec::new`], charging memory to the budget counted in `stats` (shared by
    /// every connection of a receiver).
    pub fn with_stats(
        cfg: Arc<ServerConfig>,
        stats: Arc<ServerStats>,
    ) -> (ServerCodec, Option<Vec<u8>>) {
        let mut nonce = vec![0u8; 16];
        let mut auth_salt = vec![0u8; 16];
        let _ = getrandom::getrandom(&mut nonce);
        let _ = getrandom::getrandom(&mut auth_salt);
        ServerCodec::build(cfg, stats, nonce, auth_salt)
    }

    /// As [`ServerCodec::new`] with a given nonce and auth salt (tests).
    pub fn with_nonce(
        cfg: Arc<ServerConfig>,
        nonce: Vec<u8>,
        auth_salt: Vec<u8>,
    ) -> (ServerCodec, Option<Vec<u8>>) {
        ServerCodec::build(cfg, Arc::default(), nonce, auth_salt)
    }

    fn build(
        cfg: Arc<ServerConfig>,
        stats: Arc<ServerStats>,
        nonce: Vec<u8>,
        auth_salt: Vec<u8>,
    ) -> (ServerCodec, Option<Vec<u8>>) {
        let (state, greeting) = if cfg.shared_key.is_some() {
            let mut h = Vec::new();
            h.push(0x92);
            proto::write_str(&mut h, "HELO");
            let _ = rmp::encode::write_map_len(&mut h, 3);
            proto::write_str(&mut h, "nonce");
            proto::write_bin(&mut h, &nonce);
            proto::write_str(&mut h, "auth");
            if cfg.users.is_empty() {
                proto::write_bin(&mut h, b"");
            } else {
                proto::write_bin(&mut h, &auth_salt);
            }
            proto::write_str(&mut h, "keepalive");
            let _ = rmp::encode::write_bool(&mut h, true);
            (State::AwaitPing { nonce, auth_salt }, Some(h))
        } else {
            (State::Ready(None), None)
        };
        let share = Share::new(stats.clone(), cfg.max_connection_memory, cfg.max_memory);
        (
            ServerCodec {
                cfg,
                state,
                buf: Vec::new(),
                start: 0,
                sizer: Sizer::new(),
                charged: 0,
                share,
                stats,
                messages: 0,
            },
            greeting,
        )
    }

    /// The handshake is done (or none is needed).
    pub fn ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// Bytes of an unfinished frame held.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Messages completed so far (a PING counts).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes this connection holds against the budget now.
    pub fn memory(&self) -> usize {
        self.share.held()
    }

    /// Frame header bytes read and parse attempts made on this connection (linear in the
    /// bytes received, however they are split).
    pub fn scanned(&self) -> (u64, u64) {
        (self.sizer.scanned(), self.sizer.attempts())
    }

    /// The counters this codec adds to (its receiver's, or its own).
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Take bytes from the peer. Complete messages are decoded; each batch goes to `keep`, and
    /// when it returns true the ack is appended to `reply`. An error means: send `reply` (it may
    /// hold a refusing PONG) and close.
    pub fn input(
        &mut self,
        data: &[u8],
        reply: &mut Vec<u8>,
        keep: &mut dyn FnMut(Batch) -> bool,
    ) -> Result<(), Refusal> {
        self.grow(data.len())?;
        self.buf.extend_from_slice(data);
        let r = self.frames(reply, keep);
        self.compact();
        r
    }

    /// Make room for `extra` more bytes, charging the growth first.
    fn grow(&mut self, extra: usize) -> Result<(), Refusal> {
        let want = self.buf.len() + extra;
        if want <= self.charged {
            return Ok(());
        }
        // Doubling, but never past what the frame is known to need (its sizer knows the
        // length of the payload it waits for) nor past the bound.
        let need = self.sizer.need();
        let ceiling = if need > want {
            need.min(self.frame_bound())
        } else {
            self.frame_bound()
        }
        .max(want);
        let cap = want
            .max(self.charged.saturating_mul(2))
            .max(INITIAL_BUF)
            .min(ceiling);
        self.share.take(cap - self.charged)?;
        self.buf.reserve_exact(cap - self.buf.len());
        self.charged = cap;
        Ok(())
    }

    /// Largest frame allowed now.
    fn frame_bound(&self) -> usize {
        match self.state {
            State::AwaitPing { .. } => MAX_HANDSHAKE_FRAME.min(self.cfg.max_message),
            State::Ready(_) => self.cfg.max_message,
        }
    }

    /// Drop decoded bytes; give back a buffer much larger than what it holds.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        if len == 0 && self.charged > 0 {
            self.buf = Vec::new();
            self.share.give(self.charged);
            self.charged = 0;
        } else if self.charged > INITIAL_BUF && len < self.charged / 4 {
            let keep = (len * 2).max(INITIAL_BUF);
            self.buf.shrink_to(keep);
            self.share.give(self.charged - keep);
            self.charged = keep;
        }
    }

    fn frames(
        &mut self,
        reply: &mut Vec<u8>,
        keep: &mut dyn FnMut(Batch) -> bool,
    ) -> Result<(), Refusal> {
        loop {
            let avail = &self.buf[self.start..];
            if avail.is_empty() {
                return Ok(());
            }
            let bound = self.frame_bound();
            let (s0, a0) = (self.sizer.scanned(), self.sizer.attempts());
            let sized = self.sizer.advance(avail, self.cfg.max_depth);
            self.stats
                .bytes_scanned
                .fetch_add(self.sizer.scanned() - s0, Ordering::Relaxed);
            self.stats
                .parse_attempts
                .fetch_add(self.sizer.attempts() - a0, Ordering::Relaxed);
            let len = match sized {
                Ok(Some(n)) => n,
                Ok(None) => {
                    let need = self.sizer.need().max(avail.len());
                    if need > bound {
                        return Err(self.too_large(need, bound));
                    }
                    return Ok(());
                }
                Err(e) => return Err(Refusal::Malformed(e.to_string())),
            };
            if len > bound {
                return Err(self.too_large(len, bound));
            }
            let (values, payload) = (self.sizer.values(), self.sizer.payload());
            let frame = self.start..self.start + len;
            self.sizer.reset();
            self.start += len;
            self.messages += 1;
            match &self.state {
                State::AwaitPing { nonce, auth_salt } => {
                    let msg = rmpv::decode::read_value_with_max_depth(
                        &mut &self.buf[frame],
                        self.cfg.max_depth,
                    )
                    .map_err(|e| Refusal::Malformed(e.to_string()))?;
                    let host = ping(&self.cfg, nonce, auth_salt, &msg, reply)?;
                    self.state = State::Ready(Some(host));
                }
                State::Ready(client) => {
                    let held = self.share.held();
                    let r = decode_frame(
                        &self.cfg,
                        &self.buf[frame],
                        values,
                        payload,
                        &mut self.share,
                    );
                    let mut batch = match r {
                        Ok(b) => b,
                        Err(e) => {
                            let extra = self.share.held() - held;
                            self.share.give(extra);
                            return Err(e);
                        }
                    };
                    batch.client.clone_from(client);
                    let chunk = batch.chunk.clone();
                    let kept = keep(batch);
                    let extra = self.share.held() - held;
                    self.share.give(extra);
                    if !kept {
                        return Err(Refusal::NotKept);
                    }
                    if let Some(c) = chunk {
                        reply.push(0x81);
                        proto::write_str(reply, "ack");
                        let _ = rmpv::encode::write_value(reply, &c);
                    }
                }
            }
        }
    }

    fn too_large(&self, n: usize, bound: usize) -> Refusal {
        if self.ready() {
            Refusal::Oversized(format!(
                "a frame of at least {n} bytes, the bound is {bound}"
            ))
        } else {
            Refusal::Handshake(format!(
                "a frame of at least {n} bytes before the handshake, the bound is {bound}"
            ))
        }
    }
}

/// Check a PING and write the PONG.
fn ping(
    cfg: &ServerConfig,
    nonce: &[u8],
    auth_salt: &[u8],
    msg: &Value,
    reply: &mut Vec<u8>,
) -> Result<String, Refusal> {
    let key = cfg.shared_key.as_deref().unwrap_or("");
    let a = msg.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if a.len() != 6 || as_bytes(&a[0]) != Some(b"PING") {
        return Err(Refusal::Handshake(
            "expected PING [\"PING\", hostname, salt, digest, user, password digest]".into(),
        ));
    }
    let hostname = as_bytes(&a[1])
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let salt = as_bytes(&a[2]).unwrap_or(b"");
    let digest = as_bytes(&a[3]).unwrap_or(b"");
    let mut fail = |why: &str| {
        pong(reply, false, why, &cfg.self_hostname, "");
        Err(Refusal::Handshake(format!("{why} (client {hostname:?})")))
    };
    if hostname == cfg.self_hostname {
        return fail("same hostname as the server");
    }
    if digest != shared_key_digest(salt, &hostname, nonce, key).as_bytes() {
        return fail("shared_key mismatch");
    }
    if !cfg.users.is_empty() {
        let user = as_bytes(&a[4])
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let pw = as_bytes(&a[5]).unwrap_or(b"");
        let ok = cfg
            .users
            .iter()
            .any(|(u, p)| *u == user && password_digest(auth_salt, u, p).as_bytes() == pw);
        if !ok {
            return fail("username/password mismatch");
        }
    }
    let mine = shared_key_digest(salt, &cfg.self_hostname, nonce, key);
    pong(reply, true, "", &cfg.self_hostname, &mine);
    Ok(hostname.into_owned())
}

fn pong(reply: &mut Vec<u8>, ok: bool, reason: &str, hostname: &str, digest: &str) {
    reply.push(0x95);
    proto::write_str(reply, "PONG");
    let _ = rmp::encode::write_bool(reply, ok);
    proto::write_str(reply, reason);
    proto::write_str(reply, hostname);
    proto::write_str(reply, digest);
}
