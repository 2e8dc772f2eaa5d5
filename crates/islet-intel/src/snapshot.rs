//! The compiled, immutable indicator set and its lookups: address prefixes by length (IPv4 and
//! IPv6), names by exact label sequence with parent walks for `domain`, fingerprints and
//! user agents by value, URLs by normalised form. Held as one image (`image.rs`): built by the
//! importer in memory, or memory-mapped from a saved snapshot file and searched in place.
//! Shared read-only by every worker, so lookups take no lock and allocate nothing unless they
//! hit.

use crate::compile::{ORIGIN_CODES, V4_FILTERS};
use crate::image::{
    self, Backing, CTX, F_TO_IDS, F_UUID_BIN, REC, SECTIONS, SUPP, Sec, Span, TAG_NAME, TAG_URI,
    TAG_URL, TAG_VALUE, Table, u16_at, u32_at, u64_at,
};
use crate::model::{Context, Indicator, Kind, Suppressed};
use crate::normalize::{self, Prefix};
use crate::warninglist::suffixes;
use std::net::IpAddr;
use std::path::Path;

/// Why a snapshot image was refused. The `Display` text is the reason import reports give.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be opened or mapped.
    Io(std::io::Error),
    /// The header or checksum is wrong, or the image is truncated.
    Image(String),
    /// A section does not hold whole records (`what`: indicator, context, string,
    /// suppression).
    NotWholeRecords { what: &'static str, len: usize },
    /// A prefix-length list names a length longer than the address.
    PrefixLengthOutOfRange,
    /// The IPv4 filter section is shorter than its header.
    V4FiltersTruncated,
    /// An IPv4 filter points outside its section.
    V4FilterOutside,
    /// The name filter's size is not a power of two.
    NameFilterSize,
    /// A lookup table (named) is damaged.
    TableDamaged { table: String },
    /// A suppression names a kind islet does not have.
    UnknownSuppressionKind,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "{e}"),
            SnapshotError::Image(m) => f.write_str(m),
            SnapshotError::NotWholeRecords { what, len } => write!(
                f,
                "snapshot {what} section of {len} bytes is not whole records"
            ),
            SnapshotError::PrefixLengthOutOfRange => {
                f.write_str("snapshot prefix length out of range")
            }
            SnapshotError::V4FiltersTruncated => f.write_str("snapshot IPv4 filters truncated"),
            SnapshotError::V4FilterOutside => {
                f.write_str("snapshot IPv4 filter outside its section")
            }
            SnapshotError::NameFilterSize => {
                f.write_str("snapshot name filter size is not a power of two")
            }
            SnapshotError::TableDamaged { table } => {
                write!(f, "snapshot table {table} is damaged")
            }
            SnapshotError::UnknownSuppressionKind => {
                f.write_str("snapshot suppression of an unknown kind")
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Bridge for callers that still carry errors as text.
impl From<SnapshotError> for String {
    fn from(e: SnapshotError) -> String {
        e.to_string()
    }
}

/// The compiled indicators.
#[derive(Debug)]
pub struct Snapshot {
    img: Backing,
    seed: u64,
    spans: [Span; SECTIONS],
    n: usize,
    n_ctx: usize,
    n_strs: usize,
    suppressed: Vec<Suppressed>,
    /// Prefix lengths present, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    /// IPv4 pre-filters, (byte offset, words): exact bitsets for lengths 1–23, and at index 24
    /// the /24 map of which lengths 24–32 occur in each /24. Most addresses are ruled out
    /// without a table probe.
    v4_bits: [(usize, usize); V4_FILTERS],
    /// The name filter: (byte offset of its bits, bits − 1; bits is a power of two), and the
    /// label counts present.
    bloom: (usize, usize),
    name_labels: u64,
    t_v4: Table,
    t_v6: Table,
    t_name: Table,
    t_domain_ip: Table,
    t_url: Table,
    t_uri: Table,
    t_value: Table,
}

impl Default for Snapshot {
    /// No indicators.
    fn default() -> Snapshot {
        let img = image::assemble(image::SEED, &Default::default());
        Snapshot {
            img: Backing::Owned(img),
            seed: image::SEED,
            spans: [Span::default(); SECTIONS],
            n: 0,
            n_ctx: 0,
            n_strs: 0,
            suppressed: Vec::new(),
            v4_lens: Vec::new(),
            v6_lens: Vec::new(),
            v4_bits: [(0, 0); V4_FILTERS],
            bloom: (0, 0),
            name_labels: 0,
            t_v4: Table::default(),
            t_v6: Table::default(),
            t_name: Table::default(),
            t_domain_ip: Table::default(),
            t_url: Table::default(),
            t_uri: Table::default(),
            t_value: Table::default(),
        }
    }
}

impl Snapshot {
    /// Compile imported indicators (in memory).
    pub(crate) fn compile(
        indicators: Vec<Indicator>,
        contexts: Vec<Context>,
        suppressed: Vec<Suppressed>,
    ) -> Result<Snapshot, String> {
        let img = crate::compile::compile(&indicators, &contexts, &suppressed)?;
        drop((indicators, contexts));
        Ok(Snapshot::from_backing(Backing::Owned(img))?)
    }

    /// Map a saved snapshot (`islet intel import -o`). The file's CRC is checked by reading
    /// it once; its tables are then used in place.
    pub fn open(path: &Path) -> Result<Snapshot, SnapshotError> {
        let f = std::fs::File::open(path).map_err(SnapshotError::Io)?;
        image::verify_file(&f).map_err(SnapshotError::Image)?;
        let img = Backing::map(&f).map_err(SnapshotError::Io)?;
        Snapshot::from_backing(img)
    }

    /// A snapshot image held in memory (checked like a file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        image::parse_header(&bytes).map_err(SnapshotError::Image)?;
        image::verify(&bytes).map_err(SnapshotError::Image)?;
        Snapshot::from_backing(Backing::Owned(bytes))
    }

    /// A snapshot image held in memory, without the CRC check: every structural check still
    /// applies. For fuzzing and property tests of damaged images; use [`Snapshot::from_bytes`].
    #[doc(hidden)]
    pub fn from_bytes_unverified(bytes: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_backing(Backing::Owned(bytes))
    }

    /// Does this start like a snapshot image?
    pub fn is_image(head: &[u8]) -> bool {
        head.starts_with(&image::MAGIC)
    }

    /// Is this file a snapshot image?
    pub fn is_file(path: &Path) -> bool {
        use std::io::Read as _;
        let mut head = [0u8; 8];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && Snapshot::is_image(&head)
    }

    fn from_backing(img: Backing) -> Result<Snapshot, SnapshotError> {
        let b = img.bytes();
        let (seed, spans) = image::parse_header(b).map_err(SnapshotError::Image)?;
        let span = |s: Sec| spans[s as usize];
        let count = |s: Sec, size: usize, what: &'static str| {
            let l = span(s).len;
            if l.is_multiple_of(size) {
                Ok(l / size)
            } else {
                Err(SnapshotError::NotWholeRecords { what, len: l })
            }
        };
        let n = count(Sec::Recs, REC, "indicator")?;
        let n_ctx = count(Sec::Ctxs, CTX, "context")?;
        let n_strs = count(Sec::Strs, 8, "string")?;
        let n_supp = count(Sec::Supp, SUPP, "suppression")?;
        let lens = |s: Sec, max: u8| -> Result<Vec<u8>, SnapshotError> {
            let sp = span(s);
            let v = b[sp.off..sp.off + sp.len].to_vec();
            if v.iter().any(|&l| l > max) {
                return Err(SnapshotError::PrefixLengthOutOfRange);
            }
            Ok(v)
        };
        let v4_lens = lens(Sec::V4Lens, 32)?;
        let v6_lens = lens(Sec::V6Lens, 128)?;
        let mut v4_bits = [(0usize, 0usize); V4_FILTERS];
        let f = span(Sec::V4Bits);
        if f.len > 0 {
            let words_at = f.off + V4_FILTERS * 8;
            let words = f
                .len
                .checked_sub(V4_FILTERS * 8)
                .ok_or(SnapshotError::V4FiltersTruncated)?
                / 8;
            for (i, e) in v4_bits.iter_mut().enumerate() {
                let off = u32_at(b, f.off + i * 8) as usize;
                let len = u32_at(b, f.off + i * 8 + 4) as usize;
                if off + len > words {
                    return Err(SnapshotError::V4FilterOutside);
                }
                *e = (words_at + off * 8, len);
            }
        }
        let bl = span(Sec::Bloom);
        let name_labels = if bl.len >= 8 { u64_at(b, bl.off) } else { 0 };
        let bloom_bits = bl.len.saturating_sub(8) * 8;
        if bloom_bits != 0 && !bloom_bits.is_power_of_two() {
            return Err(SnapshotError::NameFilterSize);
        }
        let table = |s: Sec| -> Result<Table, SnapshotError> {
            if span(s).len == 0 {
                return Ok(Table::default());
            }
            Table::open(b, span(s)).ok_or_else(|| SnapshotError::TableDamaged {
                table: format!("{s:?}"),
            })
        };
        let mut snap = Snapshot {
            seed,
            spans,
            n,
            n_ctx,
            n_strs,
            suppressed: Vec::with_capacity(n_supp),
            v4_lens,
            v6_lens,
            v4_bits,
            bloom: (bl.off + 8, bloom_bits.saturating_sub(1)),
            name_labels,
            t_v4: table(Sec::TV4)?,
            t_v6: table(Sec::TV6)?,
            t_name: table(Sec::TName)?,
            t_domain_ip: table(Sec::TDomainIp)?,
            t_url: table(Sec::TUrl)?,
            t_uri: table(Sec::TUri)?,
            t_value: table(Sec::TValue)?,
            img: Backing::Owned(Vec::new()),
        };
        snap.img = img;
        let s = snap.spans[Sec::Supp as usize];
        for i in 0..n_supp {
            let at = s.off + i * SUPP;
            let b = snap.img.bytes();
            let kind = *Kind::ALL
                .get(usize::from(b[at]))
                .ok_or(SnapshotError::UnknownSuppressionKind)?;
            let x = Suppressed {
                kind,
                value: snap.string(u32_at(b, at + 4)).to_string(),
                list: snap.string(u32_at(b, at + 8)).to_string(),
            };
            snap.suppressed.push(x);
        }
        Ok(snap)
    }

    /// The image (what `islet intel import -o` saves).
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        w.write_all(self.img.bytes())
    }

    /// Save to `path` by writing a new file beside it and renaming it over `path`, so a
    /// process that has the old file mapped keeps reading the old, complete snapshot.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let r = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            self.write_to(&mut f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Bytes of the image.
    pub fn image_len(&self) -> usize {
        self.img.bytes().len()
    }

    /// Is it a mapped file (rather than built in memory)?
    pub fn is_mapped(&self) -> bool {
        matches!(self.img, Backing::Mapped(_))
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline]
    fn b(&self) -> &[u8] {
        self.img.bytes()
    }

    #[inline]
    fn rec(&self, i: u32) -> Option<usize> {
        ((i as usize) < self.n).then(|| self.spans[Sec::Recs as usize].off + i as usize * REC)
    }

    fn blob_str(&self, off: u32, len: usize) -> &str {
        let start = self.spans[Sec::Blob as usize].off + off as usize;
        self.b()
            .get(start..start + len)
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("")
    }

    /// An interned string.
    fn string(&self, id: u32) -> &str {
        if id == 0 || id as usize >= self.n_strs {
            return "";
        }
        let at = self.spans[Sec::Strs as usize].off + id as usize * 8;
        self.blob_str(u32_at(self.b(), at), u32_at(self.b(), at + 4) as usize)
    }

    fn string_list(&self, id: u32) -> Vec<String> {
        if id == 0 {
            return Vec::new();
        }
        serde_json::from_str(self.string(id)).unwrap_or_default()
    }

    /// Indicator `i`'s kind.
    #[inline]
    pub fn kind(&self, i: u32) -> Option<Kind> {
        let r = self.rec(i)?;
        Kind::ALL.get(usize::from(*self.b().get(r + 6)?)).copied()
    }

    /// Does indicator `i` raise alerts?
    pub fn to_ids(&self, i: u32) -> bool {
        self.rec(i)
            .and_then(|r| self.b().get(r + 7))
            .is_some_and(|f| f & F_TO_IDS != 0)
    }

    /// Indicator `i`'s value, exactly as its source holds it.
    #[inline]
    pub fn value(&self, i: u32) -> &str {
        match self.rec(i) {
            Some(r) => self.blob_str(u32_at(self.b(), r), usize::from(u16_at(self.b(), r + 4))),
            None => "",
        }
    }

    /// Indicator `i`, decoded.
    pub fn indicator(&self, i: u32) -> Indicator {
        let Some(r) = self.rec(i) else {
            return Indicator {
                kind: Kind::Ip,
                value: String::new(),
                to_ids: false,
                uuid: String::new(),
                category: String::new(),
                tags: Vec::new(),
                context: 0,
            };
        };
        let b = self.b();
        let flags = b.get(r + 7).copied().unwrap_or(0);
        let uuid = if flags & F_UUID_BIN != 0 {
            b.get(r + 20..r + 36)
                .map(image::uuid_text)
                .unwrap_or_default()
        } else {
            self.string(u32_at(b, r + 20)).to_string()
        };
        Indicator {
            kind: self.kind(i).unwrap_or(Kind::Ip),
            value: self.value(i).to_string(),
            to_ids: flags & F_TO_IDS != 0,
            uuid,
            category: self.string(u32_at(b, r + 12)).to_string(),
            tags: self.string_list(u32_at(b, r + 16)),
            context: u32_at(b, r + 8),
        }
    }

    /// Every indicator, decoded, in order.
    pub fn iter(&self) -> impl Iterator<Item = Indicator> + '_ {
        (0..self.n as u32).map(|i| self.indicator(i))
    }

    /// The context of indicator `i`.
    pub fn context(&self, i: u32) -> Context {
        self.context_at(self.context_index(i))
    }

    /// Indicator `i`'s context number (for [`Snapshot::context_at`]).
    pub fn context_index(&self, i: u32) -> u32 {
        self.rec(i).map_or(u32::MAX, |r| u32_at(self.b(), r + 8))
    }

    pub fn context_count(&self) -> usize {
        self.n_ctx
    }

    /// Context `c` (an [`Indicator::context`]).
    pub fn context_at(&self, c: u32) -> Context {
        if c as usize >= self.n_ctx {
            return Context::default();
        }
        let at = self.spans[Sec::Ctxs as usize].off + c as usize * CTX;
        let b = self.b();
        Context {
            origin: ORIGIN_CODES
                .get(usize::from(b.get(at).copied().unwrap_or(0)))
                .copied()
                .unwrap_or(""),
            threat_level: b.get(at + 1).copied().unwrap_or(4),
            feed: self.string(u32_at(b, at + 4)).to_string(),
            event_uuid: self.string(u32_at(b, at + 8)).to_string(),
            event_info: self.string(u32_at(b, at + 12)).to_string(),
            tags: self.string_list(u32_at(b, at + 16)),
        }
    }

    pub fn suppressed(&self) -> &[Suppressed] {
        &self.suppressed
    }

    /// Is bit `i` set in a pre-filter bitset?
    #[inline]
    fn bit(&self, set: (usize, usize), i: u32) -> bool {
        let w = (i / 64) as usize;
        w < set.1 && u64_at(self.b(), set.0 + w * 8) & (1 << (i % 64)) != 0
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
        let (t, lens) = if a.v6 {
            (&self.t_v6, &self.v6_lens)
        } else {
            (&self.t_v4, &self.v4_lens)
        };
        if t.len() == 0 {
            return;
        }
        let a4 = (a.bits >> 96) as u32;
        // The /24 map's mask of this address's /24 (read at most once).
        let mut long: Option<u16> = None;
        for &len in lens {
            if !a.v6 && len >= 24 {
                let m = *long.get_or_insert_with(|| {
                    let (off, words) = self.v4_bits[24];
                    let i = (a4 >> 8) as usize;
                    match words {
                        0 => u16::MAX,
                        _ if i / 4 < words => u16_at(self.b(), off + i * 2),
                        _ => 0,
                    }
                });
                if m & (1 << (len - 24)) == 0 {
                    continue;
                }
            } else if !a.v6 && len > 0 {
                let set = self.v4_bits[usize::from(len)];
                if !self.bit(set, a4 >> (32 - u32::from(len))) {
                    continue;
                }
            }
            let p = a.truncate(len);
            let h = image::hash_prefix(self.seed, p.v6, len, p.bits);
            t.find(self.b(), h, |idx| {
                if self.addr_hit(idx, p, port, is_src) && !out.contains(&idx) {
                    out.push(idx);
                }
            });
        }
    }

    /// Does address indicator `idx` hold prefix `p`, on this side, for this port?
    fn addr_hit(&self, idx: u32, p: Prefix, port: Option<u16>, is_src: bool) -> bool {
        let Some(kind) = self.kind(idx) else {
            return false;
        };
        let v = self.value(idx);
        let (addr, want) = match kind {
            Kind::IpSrcPort | Kind::IpDstPort => match v.rsplit_once('|') {
                Some((a, x)) => (a, x.trim().parse::<u16>().ok()),
                None => (v, None),
            },
            _ => (v, None),
        };
        let side_ok = match kind {
            Kind::Ip => true,
            Kind::IpSrc | Kind::IpSrcPort => is_src,
            Kind::IpDst | Kind::IpDstPort => !is_src,
            _ => false,
        };
        let port_ok = match (want, port) {
            (Some(w), Some(seen)) => w == seen,
            _ => true,
        };
        side_ok && port_ok && Prefix::parse(addr) == Some(p)
    }

    /// Is a name indicator `idx` stored under exactly `name` (normalised)?
    fn name_is(&self, idx: u32, name: &str) -> bool {
        let v = self.value(idx);
        if is_normal_name(v) {
            v == name
        } else {
            normalize::name(v).as_deref() == Some(name)
        }
    }

    /// `domain` indicators for the name or any parent; `hostname` ones for the name only.
    pub fn match_name(&self, name: &str, out: &mut Vec<u32>) {
        self.name_hits(name, |idx, _| {
            if !out.contains(&idx) {
                out.push(idx);
            }
        });
    }

    /// Each name indicator `name` matches, with the stored name it matched (the name itself
    /// or a parent).
    fn name_hits(&self, name: &str, mut f: impl FnMut(u32, &str)) {
        if self.t_name.len() == 0 {
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
        let labels = n.bytes().filter(|&b| b == b'.').count() + 1;
        for (i, s) in suffixes(&n).enumerate() {
            if self.name_labels & crate::compile::label_bit(labels.saturating_sub(i)) == 0 {
                continue;
            }
            let h = image::hash(self.seed, TAG_NAME, s.as_bytes());
            let bit = (h as usize) & self.bloom.1;
            if u64_at(self.b(), self.bloom.0 + (bit / 64) * 8) & (1 << (bit % 64)) == 0 {
                continue;
            }
            self.t_name.find(self.b(), h, |idx| {
                let exact_only = self.kind(idx) == Some(Kind::Hostname);
                if (i == 0 || !exact_only) && self.name_is(idx, s) {
                    f(idx, s);
                }
            });
        }
    }

    /// `domain|ip`: the name seen together with the address (a DNS answer, or a TLS/HTTP name
    /// on a flow to that server).
    pub fn match_domain_ip(&self, name: &str, ip: IpAddr, out: &mut Vec<u32>) {
        if self.t_domain_ip.len() == 0 {
            return;
        }
        let Some(n) = normalize::name(name) else {
            return;
        };
        let a = Prefix::of(ip);
        let h = image::hash(self.seed, TAG_NAME, n.as_bytes());
        self.t_domain_ip.find(self.b(), h, |idx| {
            let hit = self.value(idx).split_once('|').is_some_and(|(d, x)| {
                normalize::name(d).as_deref() == Some(n.as_str())
                    && Prefix::parse(x).is_some_and(|p| p.contains(a))
            });
            if hit && !out.contains(&idx) {
                out.push(idx);
            }
        });
    }

    fn url_hits(&self, url: &str, out: &mut Vec<u32>) {
        let h = image::hash(self.seed, TAG_URL, url.as_bytes());
        self.t_url.find(self.b(), h, |idx| {
            if normalize::url(self.value(idx)).as_deref() == Some(url) && !out.contains(&idx) {
                out.push(idx);
            }
        });
    }

    fn uri_hits(&self, target: &str, out: &mut Vec<u32>) {
        let h = image::hash(self.seed, TAG_URI, target.as_bytes());
        self.t_uri.find(self.b(), h, |idx| {
            if self.value(idx).trim() == target && !out.contains(&idx) {
                out.push(idx);
            }
        });
    }

    /// `url` (scheme `http`, the request's host and port, and target) and `uri` (the target).
    pub fn match_http(&self, host: Option<&str>, port: u16, target: &str, out: &mut Vec<u32>) {
        if self.t_url.len() > 0
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
            if let Some(u) = normalize::url(&url) {
                self.url_hits(&u, out);
            }
        }
        if self.t_uri.len() > 0 {
            self.uri_hits(target, out);
        }
    }

    /// Fingerprints (JA3, JA4, HASSH, x509 hashes) and user agents.
    pub fn match_value(&self, kind: Kind, value: &str, out: &mut Vec<u32>) {
        if self.t_value.len() == 0 {
            return;
        }
        // The canonical form of what the wire gives, without allocating: hex fingerprints
        // (colon-separated certificate hashes too) into a stack buffer; JA4s and user agents
        // already in their stored form as they are.
        let mut buf = [0u8; 64];
        let c;
        let key = match kind {
            Kind::Ja3 | Kind::Hassh | Kind::HasshServer | Kind::X509Md5 => {
                hex_into(value, 32, &mut buf)
            }
            Kind::X509Sha1 => hex_into(value, 40, &mut buf),
            Kind::X509Sha256 => hex_into(value, 64, &mut buf),
            Kind::Ja4 if !value.bytes().any(|b| b.is_ascii_uppercase() || b == b' ') => Some(value),
            Kind::UserAgent
                if !value.is_empty()
                    && value.len() <= 4096
                    && value.trim().len() == value.len() =>
            {
                Some(value)
            }
            _ => {
                c = canonical(kind, value);
                c.as_deref()
            }
        };
        let Some(key) = key else {
            return;
        };
        let h = image::hash(self.seed, TAG_VALUE + kind as u8, key.as_bytes());
        self.t_value.find(self.b(), h, |idx| {
            let hit = self.kind(idx) == Some(kind)
                && canonical(kind, self.value(idx)).as_deref() == Some(key);
            if hit && !out.contains(&idx) {
                out.push(idx);
            }
        });
    }
}

/// [`normalize::hex_fingerprint`] into a buffer: separators dropped, lower case, exactly
/// `len` hex digits.
fn hex_into<'b>(v: &str, len: usize, buf: &'b mut [u8; 64]) -> Option<&'b str> {
    let mut n = 0;
    for b in v.bytes() {
        if matches!(b, b':' | b' ' | b'-') {
            continue;
        }
        if !b.is_ascii_hexdigit() || n == len.min(64) {
            return None;
        }
        buf[n] = b.to_ascii_lowercase();
        n += 1;
    }
    if n != len {
        return None;
    }
    std::str::from_utf8(&buf[..n]).ok()
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
            self.uri_hits(v, &mut found);
            take(&mut found, "as an HTTP request target", &mut out);
        }
        if v.contains("://")
            && let Some(u) = normalize::url(v)
        {
            self.url_hits(&u, &mut found);
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
        if !v.contains("://")
            && let Some(n) = normalize::name(v)
        {
            let mut hits: Vec<(u32, String)> = Vec::new();
            self.name_hits(&n, |idx, s| hits.push((idx, s.to_string())));
            for (idx, s) in hits {
                let why = if s == n {
                    "as the name itself".to_string()
                } else {
                    format!("as a subdomain of {s}")
                };
                found.push(idx);
                take(&mut found, &why, &mut out);
            }
        }
        out
    }
}
