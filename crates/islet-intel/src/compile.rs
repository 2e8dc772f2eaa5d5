//! Compiling indicators into a snapshot image (`image.rs`): records, interned strings, the
//! IPv4 pre-filters, the name Bloom filter and one static hash table per kind of lookup.

use crate::image::{
    self, CTX, F_TO_IDS, F_UUID_BIN, REC, SECTIONS, SUPP, Sec, TAG_NAME, TAG_URI, TAG_URL,
    TAG_VALUE, Table,
};
use crate::model::{Context, Indicator, Kind, Suppressed};
use crate::normalize::{self, Prefix};
use crate::snapshot::canonical;
use hashbrown::HashMap;

/// The value bytes of one indicator are bounded by the importer (URLs 8 KiB, user agents
/// 4 KiB); a record holds their length in 16 bits.
const MAX_VALUE: usize = u16::MAX as usize;

/// Strings and values, with interning for the repeated ones (categories, tags, feeds).
struct Strings {
    blob: Vec<u8>,
    strs: Vec<u8>,
    n: u32,
    ids: HashMap<String, u32>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            blob: Vec::new(),
            // Id 0 is the empty string.
            strs: vec![0; 8],
            n: 1,
            ids: HashMap::new(),
        }
    }

    /// Append bytes to the blob; their offset.
    fn put(&mut self, s: &str) -> Result<u32, String> {
        let off = u32::try_from(self.blob.len())
            .ok()
            .filter(|o| o.checked_add(s.len() as u32).is_some() && s.len() <= u32::MAX as usize)
            .ok_or("snapshot strings exceed 4 GiB")?;
        self.blob.extend_from_slice(s.as_bytes());
        Ok(off)
    }

    fn intern(&mut self, s: &str) -> Result<u32, String> {
        if s.is_empty() {
            return Ok(0);
        }
        if let Some(&id) = self.ids.get(s) {
            return Ok(id);
        }
        let off = self.put(s)?;
        self.strs.extend_from_slice(&off.to_le_bytes());
        self.strs.extend_from_slice(&(s.len() as u32).to_le_bytes());
        let id = self.n;
        self.n += 1;
        self.ids.insert(s.to_string(), id);
        Ok(id)
    }
}

/// Compile into an image; fails only when the image would exceed its 32-bit offsets.
pub(crate) fn compile(
    indicators: &[Indicator],
    contexts: &[Context],
    suppressed: &[Suppressed],
) -> Result<Vec<u8>, String> {
    let seed = image::SEED;
    if u32::try_from(indicators.len()).is_err() || u32::try_from(contexts.len()).is_err() {
        return Err("more than 2^32 indicators or contexts".into());
    }
    let mut st = Strings::new();
    let mut recs = Vec::with_capacity(indicators.len() * REC);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut v4_prefixes: Vec<(u8, u32)> = Vec::new();
    let mut v4_lens = Vec::new();
    let mut v6_lens = Vec::new();
    let mut names = Vec::new();
    let mut labels = 0u64;
    let mut domain_ip = Vec::new();
    let mut urls = Vec::new();
    let mut uris = Vec::new();
    let mut values = Vec::new();
    for (i, ind) in indicators.iter().enumerate() {
        let idx = i as u32;
        let v = ind.value.as_str();
        if v.len() > MAX_VALUE {
            return Err(format!("indicator {i}: value of {} bytes", v.len()));
        }
        let off = st.put(v)?;
        recs.extend_from_slice(&off.to_le_bytes());
        recs.extend_from_slice(&(v.len() as u16).to_le_bytes());
        recs.push(ind.kind as u8);
        let uuid = image::uuid_bytes(&ind.uuid);
        recs.push(
            if ind.to_ids { F_TO_IDS } else { 0 } | if uuid.is_some() { F_UUID_BIN } else { 0 },
        );
        recs.extend_from_slice(&ind.context.to_le_bytes());
        recs.extend_from_slice(&st.intern(&ind.category)?.to_le_bytes());
        let tags = if ind.tags.is_empty() {
            0
        } else {
            st.intern(&serde_json::to_string(&ind.tags).map_err(|e| e.to_string())?)?
        };
        recs.extend_from_slice(&tags.to_le_bytes());
        match uuid {
            Some(u) => recs.extend_from_slice(&u),
            None => {
                recs.extend_from_slice(&st.intern(&ind.uuid)?.to_le_bytes());
                recs.extend_from_slice(&[0; 12]);
            }
        }
        match ind.kind {
            k if k.is_ip() => {
                let addr = match k {
                    Kind::IpSrcPort | Kind::IpDstPort => v.rsplit_once('|').map_or(v, |x| x.0),
                    _ => v,
                };
                if let Some(p) = Prefix::parse(addr) {
                    let h = image::hash_prefix(seed, p.v6, p.len, p.bits);
                    if p.v6 {
                        v6.push((h, idx));
                        if !v6_lens.contains(&p.len) {
                            v6_lens.push(p.len);
                        }
                    } else {
                        v4.push((h, idx));
                        v4_prefixes.push((p.len, (p.bits >> 96) as u32));
                        if !v4_lens.contains(&p.len) {
                            v4_lens.push(p.len);
                        }
                    }
                }
            }
            Kind::Domain | Kind::Hostname => {
                if let Some(n) = normalize::name(v) {
                    labels |= label_bit(n.split('.').count());
                    names.push((image::hash(seed, TAG_NAME, n.as_bytes()), idx));
                }
            }
            Kind::DomainIp => {
                if let Some((d, a)) = v.split_once('|')
                    && let (Some(n), Some(_)) = (normalize::name(d), Prefix::parse(a))
                {
                    domain_ip.push((image::hash(seed, TAG_NAME, n.as_bytes()), idx));
                }
            }
            Kind::Url => {
                if let Some(u) = normalize::url(v) {
                    urls.push((image::hash(seed, TAG_URL, u.as_bytes()), idx));
                }
            }
            Kind::Uri => uris.push((image::hash(seed, TAG_URI, v.trim().as_bytes()), idx)),
            k => {
                if let Some(c) = canonical(k, v) {
                    values.push((image::hash(seed, TAG_VALUE + k as u8, c.as_bytes()), idx));
                }
            }
        }
    }
    let mut ctxs = Vec::with_capacity(contexts.len() * CTX);
    for c in contexts {
        let origin = ORIGIN_CODES
            .iter()
            .position(|o| *o == c.origin)
            .unwrap_or(0) as u8;
        ctxs.push(origin);
        ctxs.push(c.threat_level);
        ctxs.extend_from_slice(&[0; 2]);
        ctxs.extend_from_slice(&st.intern(&c.feed)?.to_le_bytes());
        ctxs.extend_from_slice(&st.intern(&c.event_uuid)?.to_le_bytes());
        ctxs.extend_from_slice(&st.intern(&c.event_info)?.to_le_bytes());
        let tags = if c.tags.is_empty() {
            0
        } else {
            st.intern(&serde_json::to_string(&c.tags).map_err(|e| e.to_string())?)?
        };
        ctxs.extend_from_slice(&tags.to_le_bytes());
    }
    let mut supp = Vec::with_capacity(suppressed.len() * SUPP);
    for x in suppressed {
        supp.push(x.kind as u8);
        supp.extend_from_slice(&[0; 3]);
        supp.extend_from_slice(&st.intern(&x.value)?.to_le_bytes());
        supp.extend_from_slice(&st.intern(&x.list)?.to_le_bytes());
    }
    v4_lens.sort_unstable_by(|a, b| b.cmp(a));
    v6_lens.sort_unstable_by(|a, b| b.cmp(a));
    let mut s: [Vec<u8>; SECTIONS] = Default::default();
    s[Sec::V4Bits as usize] = v4_filters(&v4_prefixes);
    s[Sec::Bloom as usize] = bloom(&names, labels);
    s[Sec::TV4 as usize] = Table::build(v4);
    s[Sec::TV6 as usize] = Table::build(v6);
    s[Sec::TName as usize] = Table::build(names);
    s[Sec::TDomainIp as usize] = Table::build(domain_ip);
    s[Sec::TUrl as usize] = Table::build(urls);
    s[Sec::TUri as usize] = Table::build(uris);
    s[Sec::TValue as usize] = Table::build(values);
    s[Sec::V4Lens as usize] = v4_lens;
    s[Sec::V6Lens as usize] = v6_lens;
    s[Sec::Recs as usize] = recs;
    s[Sec::Ctxs as usize] = ctxs;
    s[Sec::Supp as usize] = supp;
    s[Sec::Strs as usize] = st.strs;
    s[Sec::Blob as usize] = st.blob;
    Ok(image::assemble(seed, &s))
}

/// Context origins by code (code 0 for any other).
pub(crate) const ORIGIN_CODES: [&str; 5] =
    ["", "MISP event", "STIX indicator", "list", "MISP feed"];

/// Entries of the IPv4 pre-filter section: 25 × (word offset, words), then the words. Entry
/// `0 < L < 24` is an exact bitset of the `L`-bit prefixes present. Entry 24 is the /24 map:
/// one 16-bit mask per /24 whose bit `L − 24` says the /24 holds an `L`-bit prefix (/24 to
/// /32), so one read tells which of the long lengths to probe. An address is probed only at
/// lengths its filters allow. The map (32 MiB) is built only for at least [`MIN_V4_MAP`] long
/// prefixes; below that every long length present is probed.
pub(crate) const V4_FILTERS: usize = 25;
pub(crate) const MIN_V4_MAP: usize = 1 << 16;

fn v4_filters(prefixes: &[(u8, u32)]) -> Vec<u8> {
    let mut sets: Vec<Vec<u64>> = vec![Vec::new(); V4_FILTERS];
    let long = prefixes.iter().filter(|p| p.0 >= 24).count();
    for &(len, a) in prefixes {
        if len == 0 || (len >= 24 && long < MIN_V4_MAP) {
            continue;
        }
        if len >= 24 {
            let map = &mut sets[24];
            if map.is_empty() {
                // 2^24 masks of 16 bits, four to a word.
                *map = vec![0; (1 << 24) / 4];
            }
            let i = (a >> 8) as usize;
            map[i / 4] |= 1 << ((i % 4) * 16 + usize::from(len - 24));
            continue;
        }
        let set = &mut sets[usize::from(len)];
        if set.is_empty() {
            *set = vec![0; ((1usize << len) / 64).max(1)];
        }
        let i = a >> (32 - u32::from(len));
        set[(i / 64) as usize] |= 1 << (i % 64);
    }
    let mut out = Vec::new();
    let mut word = 0u32;
    for s in &sets {
        out.extend_from_slice(&word.to_le_bytes());
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        word += s.len() as u32;
    }
    for s in &sets {
        for w in s {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    out
}

/// The name filter: a mask of the label counts stored (bit `min(labels, 63)`), then one bit
/// per stored name hash (about 8 bits per name), a power of two of bits.
fn bloom(names: &[(u64, u32)], labels: u64) -> Vec<u8> {
    if names.is_empty() {
        return Vec::new();
    }
    let bits = (names.len() * 8).next_power_of_two().max(64);
    let mut words = vec![0u64; bits / 64];
    for &(h, _) in names {
        let i = (h as usize) & (bits - 1);
        words[i / 64] |= 1 << (i % 64);
    }
    let mut out = labels.to_le_bytes().to_vec();
    out.extend(words.iter().flat_map(|w| w.to_le_bytes()));
    out
}

/// The bit of a name's label count in the name filter's mask.
pub(crate) fn label_bit(labels: usize) -> u64 {
    1 << labels.min(63)
}
