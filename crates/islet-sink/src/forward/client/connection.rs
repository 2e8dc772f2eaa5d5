//! Connections: TLS, the shared-key handshake, sending a chunk until its ack comes back, backoff,
//! failover to the next server and failback to the first, the idle heartbeat.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::sender::{SendError, Sender};
use super::{ForwardError, TlsClient};
use crate::forward::proto::{password_digest, shared_key_digest, value_len};

pub(super) fn tls_config(t: &TlsClient) -> Result<Arc<rustls::ClientConfig>, ForwardError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ForwardError::Pem { path, source }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &t.ca_file {
        for c in CertificateDer::pem_file_iter(ca).map_err(pem(ca))? {
            let c = c.map_err(pem(ca))?;
            roots.add(c).map_err(|source| ForwardError::Ca {
                path: ca.clone(),
                source,
            })?;
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| ForwardError::Tls {
            what: "TLS",
            source,
        })?
        .with_root_certificates(roots);
    let cfg = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => {
            let chain: Result<Vec<_>, _> =
                CertificateDer::pem_file_iter(c).map_err(pem(c))?.collect();
            let chain = chain.map_err(pem(c))?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(pem(k))?;
            b.with_client_auth_cert(chain, key)
                .map_err(|source| ForwardError::Tls {
                    what: "TLS client certificate",
                    source,
                })?
        }
        (None, None) => b.with_no_client_auth(),
        _ => return Err(ForwardError::ClientCertWithoutKey),
    };
    Ok(Arc::new(cfg))
}

pub(super) trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub(super) struct Conn {
    pub(super) s: Box<dyn Stream>,
    pub(super) tcp: TcpStream,
    pub(super) server: usize,
    pub(super) last_used: Instant,
}

impl Sender {
    pub(super) fn send_until_acked(&mut self, chunk: &str) -> Result<(), SendError> {
        loop {
            if self.shared.lock().give_up {
                return Err(SendError::GiveUp);
            }
            match self.try_send(chunk) {
                Ok(()) => {
                    if self.reported {
                        eprintln!("forward: delivering again");
                        self.reported = false;
                    }
                    self.backoff = self.cfg.backoff_initial;
                    return Ok(());
                }
                Err(SendError::GiveUp) => return Err(SendError::GiveUp),
                Err(SendError::Io(e)) => {
                    self.conn = None;
                    if let Ok(mut l) = self.shared.stats.last_error.lock() {
                        *l = Some(e.clone());
                    }
                    self.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if !self.reported {
                        eprintln!(
                            "forward: {e}; retrying (backoff from {:?} to at most {:?})",
                            self.backoff, self.cfg.backoff_max
                        );
                        self.reported = true;
                    }
                    self.sleep_backoff();
                }
            }
        }
    }

    fn sleep_backoff(&mut self) {
        let until = Instant::now() + self.backoff;
        while Instant::now() < until {
            if self.shared.lock().give_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(10).min(self.backoff));
        }
        self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
    }

    fn try_send(&mut self, chunk: &str) -> Result<(), SendError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect_any()?);
            self.rbuf.clear();
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(SendError::Io("not connected".into()));
        };
        let server = &self.cfg.servers[c.server];
        c.s.write_all(&self.frame)
            .and_then(|()| c.s.flush())
            .map_err(|e| SendError::Io(format!("{server}: send: {e}")))?;
        let reply = read_message(&mut *c.s, &mut self.rbuf, 1 << 16)
            .map_err(|e| SendError::Io(format!("{server}: waiting for ack: {e}")))?;
        c.last_used = Instant::now();
        let acked = reply.as_map().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_str() == Some("ack"))
                .map(|(_, v)| v.as_str() == Some(chunk))
        });
        match acked {
            Some(true) => Ok(()),
            _ => Err(SendError::Io(format!(
                "{server}: the reply is not the ack of chunk {chunk}"
            ))),
        }
    }

    /// Connect to the first server that answers, in priority order.
    fn connect_any(&mut self) -> Result<Conn, SendError> {
        let mut errs = Vec::new();
        for i in 0..self.cfg.servers.len() {
            match self.connect(i) {
                Ok(c) => {
                    if i > 0 {
                        self.shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    self.shared.stats.connects.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => errs.push(e),
            }
        }
        Err(SendError::Io(errs.join("; ")))
    }

    fn connect(&self, i: usize) -> Result<Conn, String> {
        let server = &self.cfg.servers[i];
        let addr = server
            .to_socket_addrs()
            .map_err(|e| format!("{server}: {e}"))?
            .next()
            .ok_or_else(|| format!("{server}: no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, self.cfg.connect_timeout)
            .map_err(|e| format!("{server}: connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_read_timeout(Some(self.cfg.ack_timeout));
        let _ = tcp.set_write_timeout(Some(self.cfg.ack_timeout));
        let handle = tcp.try_clone().map_err(|e| format!("{server}: {e}"))?;
        let mut s: Box<dyn Stream> = match &self.tls {
            Some(t) => {
                let host = self
                    .cfg
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.clone())
                    .unwrap_or_else(|| {
                        server
                            .rsplit_once(':')
                            .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                            .unwrap_or_default()
                    });
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|e| format!("{server}: TLS name: {e}"))?;
                let c = rustls::ClientConnection::new(t.clone(), name)
                    .map_err(|e| format!("{server}: TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(c, tcp))
            }
            None => Box::new(tcp),
        };
        if let Some(key) = &self.cfg.shared_key {
            self.handshake(&mut *s, server, key)?;
        }
        Ok(Conn {
            s,
            tcp: handle,
            server: i,
            last_used: Instant::now(),
        })
    }

    /// HELO → PING → PONG.
    fn handshake(&self, s: &mut dyn Stream, server: &str, key: &str) -> Result<(), String> {
        let mut rbuf = Vec::new();
        let helo =
            read_message(s, &mut rbuf, 1 << 16).map_err(|e| format!("{server}: HELO: {e}"))?;
        let a = helo.as_array().map(Vec::as_slice).unwrap_or(&[]);
        if a.len() != 2 || a[0].as_str() != Some("HELO") {
            return Err(format!("{server}: expected HELO, got {helo}"));
        }
        let opt = |k: &str| -> Vec<u8> {
            a[1].as_map()
                .and_then(|m| m.iter().find(|(x, _)| x.as_str() == Some(k)))
                .and_then(|(_, v)| match v {
                    rmpv::Value::Binary(b) => Some(b.clone()),
                    rmpv::Value::String(s) => Some(s.as_bytes().to_vec()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let (nonce, auth) = (opt("nonce"), opt("auth"));
        let mut salt = [0u8; 16];
        let _ = getrandom::getrandom(&mut salt);
        let salt = hex::encode(salt);
        let host = &self.cfg.self_hostname;
        let mut ping = Vec::new();
        ping.push(0x96);
        crate::forward::proto::write_str(&mut ping, "PING");
        crate::forward::proto::write_str(&mut ping, host);
        crate::forward::proto::write_str(&mut ping, &salt);
        crate::forward::proto::write_str(
            &mut ping,
            &shared_key_digest(salt.as_bytes(), host, &nonce, key),
        );
        let (user, pw) = match (&self.cfg.username, &self.cfg.password) {
            (Some(u), Some(p)) if !auth.is_empty() => (u.clone(), password_digest(&auth, u, p)),
            _ => (String::new(), String::new()),
        };
        crate::forward::proto::write_str(&mut ping, &user);
        crate::forward::proto::write_str(&mut ping, &pw);
        s.write_all(&ping)
            .and_then(|()| s.flush())
            .map_err(|e| format!("{server}: PING: {e}"))?;
        let pong =
            read_message(s, &mut rbuf, 1 << 16).map_err(|e| format!("{server}: PONG: {e}"))?;
        let p = pong.as_array().map(Vec::as_slice).unwrap_or(&[]);
        if p.len() != 5 || p[0].as_str() != Some("PONG") {
            return Err(format!("{server}: expected PONG, got {pong}"));
        }
        if p[1].as_bool() != Some(true) {
            return Err(format!(
                "{server}: the server refused the handshake: {}",
                p[2].as_str().unwrap_or("no reason given")
            ));
        }
        let server_host = p[3].as_str().unwrap_or("");
        let want = shared_key_digest(salt.as_bytes(), server_host, &nonce, key);
        if p[4].as_str() != Some(want.as_str()) {
            return Err(format!(
                "{server}: the server does not know the shared key (its PONG digest is wrong): shared_key mismatch"
            ));
        }
        Ok(())
    }

    /// Idle: notice a closed connection before the next send, and fail back to the first server.
    pub(super) fn heartbeat(&mut self) {
        let Some(c) = &self.conn else { return };
        let mut probe = [0u8; 1];
        let _ = c.tcp.set_nonblocking(true);
        let dead = match c.tcp.peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        let _ = c.tcp.set_nonblocking(false);
        let idle_on_backup = c.server > 0 && c.last_used.elapsed() >= self.cfg.heartbeat_interval;
        if dead {
            self.conn = None;
        } else if idle_on_backup && let Ok(first) = self.connect(0) {
            self.conn = Some(first);
        }
    }
}

pub(super) fn chunk_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Read one complete MessagePack value (at most `max` bytes) from a stream.
fn read_message(s: &mut dyn Stream, buf: &mut Vec<u8>, max: usize) -> std::io::Result<rmpv::Value> {
    let mut tmp = [0u8; 4096];
    loop {
        match value_len(buf, 16) {
            Ok(Some(n)) => {
                let v = rmpv::decode::read_value(&mut &buf[..n])
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                buf.drain(..n);
                return Ok(v);
            }
            Ok(None) if buf.len() > max => {
                return Err(std::io::Error::other("reply too large"));
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}
