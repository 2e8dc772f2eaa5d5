//! The compiled, immutable indicator set and its lookups: address prefixes by length (IPv4 and
//! IPv6), names by exact label sequence with parent walks for `domain`, fingerprints and
//! user agents by value, URLs by normalised form. Built once by the importer; shared read-only
//! by every worker (an `Arc`), so lookups take no lock.

use crate::model::{Context, Indicator, Kind, Suppressed};
use crate::normalize::{self, Prefix};
use crate::warninglist::suffixes;
use hashbrown::HashMap;
use std::hash::BuildHasher as _;
use std::net::IpAddr;

/// An address indicator's extra condition.
#[derive(Debug, Clone, Copy)]
struct IpEntry {
    idx: u32,
    port: Option<u16>,
}

/// The compiled indicators.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub(crate) indicators: Vec<Indicator>,
    pub(crate) contexts: Vec<Context>,
    pub(crate) suppressed: Vec<Suppressed>,
    /// (prefix length, left-aligned bits) → entries; one map per family.
    v4: HashMap<(u8, u128), Vec<IpEntry>>,
    v6: HashMap<(u8, u128), Vec<IpEntry>>,
    /// Prefix lengths present, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    /// IPv4 pre-filters. For each prefix length L ≤ 24 present, one bit per L-bit prefix
    /// (exact: a set bit means an indicator exists); for lengths above 24, one bit per /24
    /// holding any of them. Most addresses are ruled out without touching the hash tables.
    v4_bits: Vec<Vec<u64>>,
    v4_long: Vec<u64>,
    /// Names: one bit per hash of every stored name (a one-hash Bloom filter, ~8 bits per
    /// name), checked before each hash-table probe of a name or parent.
    name_bits: Vec<u64>,
    name_hasher: hashbrown::DefaultHashBuilder,
    /// `domain` and `hostname` indicators by name.
    names: HashMap<String, Vec<u32>>,
    /// `domain|ip`: name → (address, indicator).
    domain_ip: HashMap<String, Vec<(Prefix, u32)>>,
    urls: HashMap<String, Vec<u32>>,
    uris: HashMap<String, Vec<u32>>,
    /// Fingerprints and user agents: (kind, canonical value).
    values: HashMap<(Kind, String), Vec<u32>>,
}

impl Snapshot {
    pub(crate) fn compile(
        indicators: Vec<Indicator>,
        contexts: Vec<Context>,
        suppressed: Vec<Suppressed>,
    ) -> Snapshot {
        // Size every table once: growing them by doubling re-allocates and re-faults
        // gigabytes at ten million indicators (measured: most of the load time).
        let mut n = [0usize; 6];
        for i in &indicators {
            let slot = match i.kind {
                k if k.is_ip() => usize::from(i.value.contains(':') && !i.value.contains('.')),
                Kind::Domain | Kind::Hostname => 2,
                Kind::DomainIp => 3,
                Kind::Url | Kind::Uri => 4,
                _ => 5,
            };
            n[slot] += 1;
        }
        let mut s = Snapshot {
            indicators,
            contexts,
            suppressed,
            v4: HashMap::with_capacity(n[0]),
            v6: HashMap::with_capacity(n[1]),
            names: HashMap::with_capacity(n[2]),
            domain_ip: HashMap::with_capacity(n[3]),
            urls: HashMap::with_capacity(n[4]),
            values: HashMap::with_capacity(n[5]),
            ..Snapshot::default()
        };
        for i in 0..s.indicators.len() {
            let idx = i as u32;
            let ind = &s.indicators[i];
            let v = ind.value.as_str();
            match ind.kind {
                k if k.is_ip() => {
                    let (addr, port) = match k {
                        Kind::IpSrcPort | Kind::IpDstPort => match v.rsplit_once('|') {
                            Some((a, p)) => (a, p.trim().parse().ok()),
                            None => (v, None),
                        },
                        _ => (v, None),
                    };
                    if let Some(p) = Prefix::parse(addr) {
                        let (map, lens) = if p.v6 {
                            (&mut s.v6, &mut s.v6_lens)
                        } else {
                            (&mut s.v4, &mut s.v4_lens)
                        };
                        map.entry((p.len, p.bits))
                            .or_default()
                            .push(IpEntry { idx, port });
                        if !lens.contains(&p.len) {
                            lens.push(p.len);
                        }
                    }
                }
                Kind::Domain | Kind::Hostname => {
                    if let Some(n) = normalize::name(v) {
                        s.names.entry(n).or_default().push(idx);
                    }
                }
                Kind::DomainIp => {
                    if let Some((d, a)) = v.split_once('|')
                        && let (Some(n), Some(p)) = (normalize::name(d), Prefix::parse(a))
                    {
                        s.domain_ip.entry(n).or_default().push((p, idx));
                    }
                }
                Kind::Url => {
                    if let Some(u) = normalize::url(v) {
                        s.urls.entry(u).or_default().push(idx);
                    }
                }
                Kind::Uri => {
                    s.uris.entry(v.trim().to_string()).or_default().push(idx);
                }
                k => {
                    if let Some(c) = canonical(k, v) {
                        s.values.entry((k, c)).or_default().push(idx);
                    }
                }
            }
        }
        s.v4_lens.sort_unstable_by(|a, b| b.cmp(a));
        if !s.v4.is_empty() {
            s.v4_bits = vec![Vec::new(); 25];
            for &(len, bits) in s.v4.keys() {
                let a = (bits >> 96) as u32;
                if len == 0 {
                    continue;
                }
                let (set_in, l) = if len <= 24 {
                    (&mut s.v4_bits[usize::from(len)], len)
                } else {
                    (&mut s.v4_long, 24)
                };
                if set_in.is_empty() {
                    *set_in = vec![0; ((1usize << l) / 64).max(1)];
                }
                set(set_in, a >> (32 - u32::from(l)));
            }
        }
        if !s.names.is_empty() {
            let n = (s.names.len() * 8).next_power_of_two().max(64);
            s.name_bits = vec![0; n / 64];
            let keys: Vec<u64> = s
                .names
                .keys()
                .map(|k| s.name_hasher.hash_one(k.as_str()))
                .collect();
            for h in keys {
                let i = (h as usize) & (n - 1);
                s.name_bits[i / 64] |= 1 << (i % 64);
            }
        }
        s
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn indicator(&self, i: u32) -> &Indicator {
        &self.indicators[i as usize]
    }

    pub fn context(&self, i: u32) -> &Context {
        &self.contexts[self.indicators[i as usize].context as usize]
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    pub fn contexts(&self) -> &[Context] {
        &self.contexts
    }

    pub fn suppressed(&self) -> &[Suppressed] {
        &self.suppressed
    }

    /// Indicators naming one endpoint of a flow. `src` is the client, `dst` the server.
    pub fn match_flow(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, out: &mut Vec<u32>) {
        self.match_addr(src, sport, true, out);
        self.match_addr(dst, dport, false, out);
    }

    /// Indicators naming one endpoint: the client (`is_src`) or the server.
    pub fn match_addr(&self, addr: IpAddr, port: u16, is_src: bool, out: &mut Vec<u32>) {
        self.match_addr_port(addr, Some(port), is_src, out);
    }

    /// As [`Snapshot::match_addr`]; with no port, `…|port` indicators match any port.
    pub fn match_addr_port(
        &self,
        addr: IpAddr,
        port: Option<u16>,
        is_src: bool,
        out: &mut Vec<u32>,
    ) {
        let a = Prefix::of(addr);
        let (map, lens) = if a.v6 {
            (&self.v6, &self.v6_lens)
        } else {
            (&self.v4, &self.v4_lens)
        };
        let a4 = (a.bits >> 96) as u32;
        for &len in lens {
            if !a.v6 && len > 0 {
                let (bits, l) = if len <= 24 {
                    (&self.v4_bits[usize::from(len)], len)
                } else {
                    (&self.v4_long, 24)
                };
                if !get(bits, a4 >> (32 - u32::from(l))) {
                    continue;
                }
            }
            let p = a.truncate(len);
            let Some(entries) = map.get(&(len, p.bits)) else {
                continue;
            };
            for e in entries {
                let kind = self.indicators[e.idx as usize].kind;
                let side_ok = match kind {
                    Kind::Ip => true,
                    Kind::IpSrc | Kind::IpSrcPort => is_src,
                    _ => !is_src,
                };
                let port_ok = match (e.port, port) {
                    (Some(want), Some(seen)) => want == seen,
                    _ => true,
                };
                if side_ok && port_ok && !out.contains(&e.idx) {
                    out.push(e.idx);
                }
            }
        }
    }

    /// `domain` indicators for the name or any parent; `hostname` ones for the name only.
    pub fn match_name(&self, name: &str, out: &mut Vec<u32>) {
        if self.names.is_empty() {
            return;
        }
        let n: std::borrow::Cow<'_, str> = if is_normal_name(name) {
            std::borrow::Cow::Borrowed(name)
        } else {
            match normalize::name(name) {
                Some(n) => std::borrow::Cow::Owned(n),
                None => return,
            }
        };
        let n_bits = self.name_bits.len() * 64;
        for (i, s) in suffixes(&n).enumerate() {
            let h = self.name_hasher.hash_one(s) as usize & (n_bits - 1);
            if self.name_bits[h / 64] & (1 << (h % 64)) == 0 {
                continue;
            }
            if let Some(v) = self.names.get(s) {
                for &idx in v {
                    let exact_only = self.indicators[idx as usize].kind == Kind::Hostname;
                    if (i == 0 || !exact_only) && !out.contains(&idx) {
                        out.push(idx);
                    }
                }
            }
        }
    }

    /// `domain|ip`: the name seen together with the address (a DNS answer, or a TLS/HTTP name
    /// on a flow to that server).
    pub fn match_domain_ip(&self, name: &str, ip: IpAddr, out: &mut Vec<u32>) {
        if self.domain_ip.is_empty() {
            return;
        }
        let Some(n) = normalize::name(name) else {
            return;
        };
        if let Some(v) = self.domain_ip.get(&n) {
            let a = Prefix::of(ip);
            for &(p, idx) in v {
                if p.contains(a) && !out.contains(&idx) {
                    out.push(idx);
                }
            }
        }
    }

    /// `url` (scheme `http`, the request's host and port, and target) and `uri` (the target).
    pub fn match_http(&self, host: Option<&str>, port: u16, target: &str, out: &mut Vec<u32>) {
        if !self.urls.is_empty()
            && let Some(h) = host
        {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            let (h, p) = match h.rsplit_once(':') {
                Some((x, p)) if !x.contains(':') => (x.to_string(), p.parse().unwrap_or(port)),
                _ => (h, port),
            };
            let url = if p == 80 {
                format!("http://{h}{target}")
            } else {
                format!("http://{h}:{p}{target}")
            };
            if let Some(u) = normalize::url(&url)
                && let Some(v) = self.urls.get(&u)
            {
                push_all(v, out);
            }
        }
        if let Some(v) = self.uris.get(target) {
            push_all(v, out);
        }
    }

    /// Fingerprints (JA3, JA4, HASSH, x509 hashes) and user agents.
    pub fn match_value(&self, kind: Kind, value: &str, out: &mut Vec<u32>) {
        if self.values.is_empty() {
            return;
        }
        // Fingerprints from the wire are already lower-case hex: look them up as they are.
        let direct = matches!(
            kind,
            Kind::Ja3 | Kind::Hassh | Kind::HasshServer | Kind::Ja4
        ) && value.bytes().all(|b| !b.is_ascii_uppercase());
        if direct {
            if let Some(v) = self.values.get(&ValueKey(kind, value)) {
                push_all(v, out);
            }
            return;
        }
        if let Some(c) = canonical(kind, value)
            && let Some(v) = self.values.get(&(kind, c))
        {
            push_all(v, out);
        }
    }
}

/// A borrowed `(kind, value)` that hashes and compares like the stored `(Kind, String)`.
#[derive(Hash)]
struct ValueKey<'a>(Kind, &'a str);

impl hashbrown::Equivalent<(Kind, String)> for ValueKey<'_> {
    fn equivalent(&self, k: &(Kind, String)) -> bool {
        self.0 == k.0 && self.1 == k.1
    }
}

fn set(bits: &mut [u64], i: u32) {
    bits[(i / 64) as usize] |= 1 << (i % 64);
}

fn get(bits: &[u64], i: u32) -> bool {
    bits.get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn push_all(v: &[u32], out: &mut Vec<u32>) {
    for &i in v {
        if !out.contains(&i) {
            out.push(i);
        }
    }
}

/// Already lower-case, no surrounding space, no trailing dot: looked up as it is.
fn is_normal_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= normalize::MAX_NAME
        && !n.ends_with('.')
        && n.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// The canonical stored form of a fingerprint or user agent; `None` if it is not valid.
pub(crate) fn canonical(kind: Kind, v: &str) -> Option<String> {
    match kind {
        Kind::Ja3 | Kind::Hassh | Kind::HasshServer | Kind::X509Md5 => {
            normalize::hex_fingerprint(v, 32)
        }
        Kind::X509Sha1 => normalize::hex_fingerprint(v, 40),
        Kind::X509Sha256 => normalize::hex_fingerprint(v, 64),
        Kind::Ja4 => normalize::ja4(v),
        Kind::UserAgent => {
            let t = v.trim();
            (!t.is_empty() && t.len() <= 4096).then(|| t.to_string())
        }
        _ => None,
    }
}

impl Snapshot {
    /// `islet intel check`: which indicators a value matches, and how. The value may be an
    /// address (`ip`, `ip:port`, `ip|port`), a URL or request target, a fingerprint, a JA4, a
    /// name, or a user agent.
    pub fn check(&self, value: &str) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = Vec::new();
        let mut found = Vec::new();
        let take = |found: &mut Vec<u32>, why: &str, out: &mut Vec<(u32, String)>| {
            for i in found.drain(..) {
                if !out.iter().any(|(j, _)| *j == i) {
                    out.push((i, why.to_string()));
                }
            }
        };
        let v = value.trim();
        let (addr, port) = match v.rsplit_once(['|', ':']) {
            Some((a, p)) if a.parse::<IpAddr>().is_ok() => (a, p.parse::<u16>().ok()),
            _ => (v, None),
        };
        if let Ok(ip) = addr.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.match_addr_port(ip, port, true, &mut found);
            take(&mut found, "as the flow's source (client)", &mut out);
            self.match_addr_port(ip, port, false, &mut found);
            take(&mut found, "as the flow's destination (server)", &mut out);
            return out;
        }
        if v.starts_with('/') {
            if let Some(x) = self.uris.get(v) {
                found.extend_from_slice(x);
            }
            take(&mut found, "as an HTTP request target", &mut out);
        }
        if v.contains("://")
            && let Some(u) = normalize::url(v)
        {
            if let Some(x) = self.urls.get(&u) {
                found.extend_from_slice(x);
            }
            take(&mut found, &format!("as the URL {u}"), &mut out);
        }
        for k in [
            Kind::Ja3,
            Kind::Ja4,
            Kind::Hassh,
            Kind::HasshServer,
            Kind::X509Sha1,
            Kind::X509Sha256,
            Kind::X509Md5,
            Kind::UserAgent,
        ] {
            self.match_value(k, v, &mut found);
            take(&mut found, &format!("as a {k}"), &mut out);
        }
        if normalize::name(v).is_some() && !v.contains("://") {
            let n = normalize::name(v).unwrap_or_default();
            for (i, s) in suffixes(&n).enumerate() {
                if let Some(x) = self.names.get(s) {
                    for &idx in x {
                        let exact_only = self.indicators[idx as usize].kind == Kind::Hostname;
                        if i == 0 {
                            found.push(idx);
                            take(&mut found, "as the name itself", &mut out);
                        } else if !exact_only {
                            found.push(idx);
                            take(&mut found, &format!("as a subdomain of {s}"), &mut out);
                        }
                    }
                }
            }
        }
        out
    }
}
