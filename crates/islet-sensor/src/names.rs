//! Names learned from DNS answers on the wire, for `fqdn` policy peers and for naming
//! addresses the inventory does not know.
//!
//! The reader thread takes the A and AAAA records out of every DNS response (UDP, source port
//! 53) as it decodes, and hands each learned name to every worker in capture order, in the
//! same batches as the packets. Each worker keeps its own [`NameCache`], so a worker reads
//! names without a lock, and a flow sees exactly the answers that came before it in the
//! capture whatever the number of workers or how fast each runs.
//!
//! Bounds, all attacker-controlled input: [`MAX_ANSWERS`] records per message, names of at
//! most 255 bytes (the DNS parser's), [`MAX_NAMES_PER_ADDR`] names per address, and
//! `policy.names_max` addresses per worker (oldest learned first out).

use std::collections::VecDeque;
use std::net::IpAddr;

/// A/AAAA records read from one DNS message.
pub const MAX_ANSWERS: usize = 32;
/// Names kept per address (a CDN address serves many names; the most recent are kept).
pub const MAX_NAMES_PER_ADDR: usize = 4;

/// One learned binding: `name` resolved to `addr` with `ttl` seconds to live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    pub addr: IpAddr,
    pub name: String,
    pub ttl: u32,
}

/// Read the A/AAAA answers of a DNS response. Each address is bound to the record's own
/// name and, when a CNAME chain led there, to the name that was asked. Malformed messages
/// yield what was read before the damage.
pub fn dns_answers(msg: &[u8], out: &mut Vec<Learned>) {
    let Some(h) = msg.get(..12) else { return };
    // QR must be set (a response), RCODE 0.
    if h[2] & 0x80 == 0 || h[3] & 0x0f != 0 {
        return;
    }
    let qd = u16::from_be_bytes([h[4], h[5]]);
    let an = u16::from_be_bytes([h[6], h[7]]);
    let mut pos = 12;
    let mut asked = None;
    // One decoder for the message: a name already read is not walked again.
    let mut names = islet_l7::dns::Names::new(msg);
    for _ in 0..qd.min(4) {
        let Ok((name, end)) = names.read(pos) else {
            return;
        };
        pos = end + 4;
        asked.get_or_insert(name);
    }
    let start = out.len();
    for _ in 0..usize::from(an).min(MAX_ANSWERS) {
        let Ok((name, end)) = names.read(pos) else {
            return;
        };
        let Some(f) = msg.get(end..end + 10) else {
            return;
        };
        let rtype = u16::from_be_bytes([f[0], f[1]]);
        let class = u16::from_be_bytes([f[2], f[3]]);
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let len = usize::from(u16::from_be_bytes([f[8], f[9]]));
        let Some(rdata) = msg.get(end + 10..end + 10 + len) else {
            return;
        };
        pos = end + 10 + len;
        let addr = match (rtype, class, rdata.len()) {
            (1, 1, 4) => IpAddr::from(<[u8; 4]>::try_from(rdata).unwrap_or_default()),
            (28, 1, 16) => IpAddr::from(<[u8; 16]>::try_from(rdata).unwrap_or_default()),
            _ => continue,
        };
        if let Some(q) = &asked
            && !q.eq_ignore_ascii_case(&name)
            && !out[start..]
                .iter()
                .any(|l| l.addr == addr && l.name.eq_ignore_ascii_case(q))
        {
            out.push(Learned {
                addr,
                name: q.to_ascii_lowercase(),
                ttl,
            });
        }
        out.push(Learned {
            addr,
            name: name.to_ascii_lowercase(),
            ttl,
        });
    }
}

#[derive(Debug)]
struct Entry {
    /// Most recent last.
    names: Vec<(String, u64)>,
    /// Insertion number of the newest binding (the ring below holds older ones too).
    seq: u64,
}

/// A worker's names by address, bounded, expiring by capture time.
#[derive(Debug)]
pub struct NameCache {
    map: hashbrown::HashMap<IpAddr, Entry>,
    /// Addresses in the order they were (re)learned, for eviction.
    order: VecDeque<(IpAddr, u64)>,
    seq: u64,
    capacity: usize,
    min_ttl_ns: u64,
    /// Addresses evicted to stay within `capacity`.
    pub evicted: u64,
}

impl Default for NameCache {
    fn default() -> Self {
        NameCache::new(1, 0)
    }
}

impl NameCache {
    pub fn new(capacity: usize, min_ttl_s: u64) -> NameCache {
        NameCache {
            map: hashbrown::HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            capacity: capacity.max(1),
            min_ttl_ns: min_ttl_s.saturating_mul(1_000_000_000),
            evicted: 0,
        }
    }

    /// Bind `l.name` to `l.addr` from `now_ns` for its TTL (at least the configured minimum,
    /// as Cilium's `tofqdns-min-ttl`).
    pub fn learn(&mut self, now_ns: u64, l: &Learned) {
        let ttl_ns = (u64::from(l.ttl) * 1_000_000_000).max(self.min_ttl_ns);
        let until = now_ns.saturating_add(ttl_ns);
        self.seq += 1;
        let seq = self.seq;
        let e = self.map.entry(l.addr).or_insert_with(|| Entry {
            names: Vec::new(),
            seq,
        });
        e.seq = seq;
        e.names.retain(|(n, _)| *n != l.name);
        if e.names.len() >= MAX_NAMES_PER_ADDR {
            e.names.remove(0);
        }
        e.names.push((l.name.clone(), until));
        self.order.push_back((l.addr, seq));
        // The ring holds one slot per learning; a slot is stale once its address was learned
        // again. Stale slots are dropped when they outnumber the live ones.
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order
                .retain(|(a, s)| map.get(a).is_some_and(|e| e.seq == *s));
        }
        while self.map.len() > self.capacity {
            let Some((a, s)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&a).is_some_and(|e| e.seq == s) {
                self.map.remove(&a);
                self.evicted += 1;
            }
        }
    }

    /// The names `addr` had at `now_ns`, most recent last; visits each without allocating.
    pub fn names(&self, addr: IpAddr, now_ns: u64) -> impl Iterator<Item = &str> {
        self.map
            .get(&addr)
            .into_iter()
            .flat_map(|e| e.names.iter())
            .filter(move |(_, until)| *until > now_ns)
            .map(|(n, _)| n.as_str())
    }

    /// The most recent name `addr` had at `now_ns`.
    pub fn name(&self, addr: IpAddr, now_ns: u64) -> Option<&str> {
        self.names(addr, now_ns).last()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `q` with a CNAME to `c` and an A record of `c`.
    fn response(q: &str, c: &str, a: [u8; 4], ttl: u32) -> Vec<u8> {
        let name = |n: &str| {
            let mut v = Vec::new();
            for l in n.split('.') {
                v.push(l.len() as u8);
                v.extend_from_slice(l.as_bytes());
            }
            v.push(0);
            v
        };
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend(name(q));
        m.extend([0, 1, 0, 1]);
        // CNAME q -> c (the owner name as a pointer to the question).
        m.extend([0xc0, 12, 0, 5, 0, 1]);
        m.extend(ttl.to_be_bytes());
        let target = name(c);
        m.extend((target.len() as u16).to_be_bytes());
        let c_at = m.len();
        m.extend(target);
        m.extend([0xc0, c_at as u8, 0, 1, 0, 1]);
        m.extend(ttl.to_be_bytes());
        m.extend([0, 4]);
        m.extend(a);
        m
    }

    #[test]
    fn answers_bind_the_record_and_the_name_asked() {
        let mut out = Vec::new();
        dns_answers(
            &response("API.example.com", "edge.cdn.net", [93, 184, 216, 34], 60),
            &mut out,
        );
        let addr = IpAddr::from([93, 184, 216, 34]);
        let names: Vec<&str> = out.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["api.example.com", "edge.cdn.net"]);
        assert!(out.iter().all(|l| l.addr == addr && l.ttl == 60));
        // A query (QR clear) teaches nothing, nor does a truncated message past its damage.
        let mut q = response("a.example", "b.example", [1, 2, 3, 4], 5);
        q[2] &= 0x7f;
        out.clear();
        dns_answers(&q, &mut out);
        assert!(out.is_empty());
        let r = response("a.example", "b.example", [1, 2, 3, 4], 5);
        for cut in 0..r.len() {
            out.clear();
            dns_answers(&r[..cut], &mut out);
            assert!(out.is_empty(), "cut at {cut}: {out:?}");
        }
    }

    #[test]
    fn cache_expires_by_capture_time_and_stays_bounded() {
        let mut c = NameCache::new(2, 0);
        let l = |a: u8, n: &str, ttl| Learned {
            addr: IpAddr::from([10, 0, 0, a]),
            name: n.into(),
            ttl,
        };
        c.learn(0, &l(1, "one.example", 10));
        let one = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(c.name(one, 9_999_999_999), Some("one.example"));
        assert_eq!(c.name(one, 10_000_000_000), None);
        c.learn(0, &l(2, "two.example", 10));
        c.learn(0, &l(1, "uno.example", 10));
        c.learn(0, &l(3, "three.example", 10));
        // Address 2 was learned least recently.
        assert_eq!(c.len(), 2);
        assert_eq!(c.evicted, 1);
        assert_eq!(c.name(IpAddr::from([10, 0, 0, 2]), 0), None);
        assert_eq!(
            c.names(one, 0).collect::<Vec<_>>(),
            ["one.example", "uno.example"]
        );
        for i in 0..10 {
            c.learn(0, &l(1, &format!("n{i}.example"), 10));
        }
        assert_eq!(c.names(one, 0).count(), MAX_NAMES_PER_ADDR);
        assert!(c.order.len() <= 4);
        // The minimum TTL holds a short answer longer.
        let mut m = NameCache::new(8, 3600);
        m.learn(0, &l(1, "one.example", 1));
        assert_eq!(m.name(one, 3_599_000_000_000), Some("one.example"));
    }
}
