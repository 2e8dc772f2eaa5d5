//! The snapshot image: the compiled indicator set as one little-endian byte layout that is the
//! same in memory and on disk, so a saved snapshot is memory-mapped and searched in place —
//! nothing is parsed, allocated or compiled at load.
//!
//! Layout (all integers little-endian, every section 8-byte aligned):
//!
//! ```text
//! header   magic "ISLETSNP", version u32, crc32 u32 (of every other byte of the file),
//!          seed u64, file length u64, 32 reserved bytes,
//!          then SECTIONS × (offset u64, length u64)
//! blob     value and string bytes
//! strs     interned strings: (offset u32, length u32) into blob; id 0 is ""
//! recs     one 36-byte record per indicator (see `Rec`)
//! ctxs     one 20-byte record per context (origin, threat level, feed, event uuid/info, tags)
//! supp     one 12-byte record per suppressed value (kind, value, warninglist)
//! lens     IPv4 / IPv6 prefix lengths present, longest first
//! v4 bits  an exact bitset per IPv4 prefix length ≤ 24, and one /24 bitset for longer ones
//! bloom    a one-hash Bloom filter over stored names
//! tables   static hash tables (see `Table`): v4, v6, name, domain|ip, url, uri, value
//! ```
//!
//! A static hash table holds `n` entries sorted by their 64-bit key hash, with a directory of
//! `2^k + 1` offsets indexed by the hash's top `k` bits (`2^k ≥ n`): a lookup reads one
//! directory pair and, on average, one hash. The hash only selects candidates — every hit is
//! verified against the indicator's own value — so a collision can cost a comparison, never a
//! false match. Reads are bounds-checked: a damaged image answers wrongly at worst, never
//! panics, and the CRC rejects damage before it is used.

use std::io::Read as _;

pub(crate) const MAGIC: [u8; 8] = *b"ISLETSNP";
pub(crate) const VERSION: u32 = 2;
/// The hash seed written into new images (kept in the header, so it can change).
pub(crate) const SEED: u64 = 0x6973_6c65_745f_6978;
pub(crate) const SECTIONS: usize = 16;
const FIXED: usize = 64;
pub(crate) const HEADER: usize = FIXED + SECTIONS * 16;
const CRC_AT: usize = 12;
/// Bytes per indicator record.
pub(crate) const REC: usize = 36;
/// Bytes per context record.
pub(crate) const CTX: usize = 20;
/// Bytes per suppression record.
pub(crate) const SUPP: usize = 12;
/// Record flag: the indicator raises alerts.
pub(crate) const F_TO_IDS: u8 = 1;
/// Record flag: the uuid is held as 16 bytes (else bytes 20..24 are a string id).
pub(crate) const F_UUID_BIN: u8 = 2;

/// The sections, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sec {
    Blob,
    Strs,
    Recs,
    Ctxs,
    Supp,
    V4Lens,
    V6Lens,
    V4Bits,
    Bloom,
    TV4,
    TV6,
    TName,
    TDomainIp,
    TUrl,
    TUri,
    TValue,
}

/// Hash-key tags: the same bytes under different tags hash apart.
pub(crate) const TAG_V4: u8 = 4;
pub(crate) const TAG_V6: u8 = 6;
pub(crate) const TAG_NAME: u8 = 10;
pub(crate) const TAG_URL: u8 = 20;
pub(crate) const TAG_URI: u8 = 21;
/// Values are tagged `TAG_VALUE + kind index`.
pub(crate) const TAG_VALUE: u8 = 64;

/// The key hash: 8 bytes at a time, a multiply-xorshift per word, MurmurHash3's 64-bit
/// finaliser at the end. Fixed by the format: an image answers the same in every process.
#[inline]
pub(crate) fn hash(seed: u64, tag: u8, bytes: &[u8]) -> u64 {
    const M: u64 = 0xff51_afd7_ed55_8ccd;
    let mut h =
        seed ^ (u64::from(tag) << 56) ^ (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(M);
        h ^= h >> 32;
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(M);
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The hash of an address prefix: its length and its left-aligned 128 bits.
#[inline]
pub(crate) fn hash_prefix(seed: u64, v6: bool, len: u8, bits: u128) -> u64 {
    let mut b = [0u8; 17];
    b[0] = len;
    b[1..].copy_from_slice(&bits.to_le_bytes());
    hash(seed, if v6 { TAG_V6 } else { TAG_V4 }, &b)
}

#[inline]
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at.wrapping_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at.wrapping_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

#[inline]
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at.wrapping_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Where a section lies in the image.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Span {
    pub off: usize,
    pub len: usize,
}

/// A static hash table's place in the image.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Table {
    k: u32,
    n: usize,
    dir: usize,
    hashes: usize,
    ids: usize,
}

impl Table {
    /// Build one: `entries` are (key hash, indicator); equal hashes end up adjacent.
    pub(crate) fn build(mut entries: Vec<(u64, u32)>) -> Vec<u8> {
        entries.sort_unstable();
        let n = entries.len();
        let k = if n <= 1 {
            0
        } else {
            usize::BITS - (n - 1).leading_zeros()
        };
        let buckets = 1usize << k;
        let mut out = Vec::with_capacity(8 + (buckets + 2) * 4 + n * 12);
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let mut j = 0usize;
        for b in 0..=buckets {
            while j < n && bucket(entries[j].0, k) < b {
                j += 1;
            }
            out.extend_from_slice(&(j as u32).to_le_bytes());
        }
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        for &(h, _) in &entries {
            out.extend_from_slice(&h.to_le_bytes());
        }
        for &(_, i) in &entries {
            out.extend_from_slice(&i.to_le_bytes());
        }
        out
    }

    /// Read one back; `None` when the section's length does not fit its counts.
    pub(crate) fn open(img: &[u8], s: Span) -> Option<Table> {
        if s.len < 8 {
            return None;
        }
        let k = u32_at(img, s.off);
        let n = u32_at(img, s.off + 4) as usize;
        if k > 31 {
            return None;
        }
        let dir_len = ((1usize << k) + 1) * 4;
        let hashes = (s.off + 8 + dir_len).next_multiple_of(8);
        let ids = hashes + n * 8;
        (ids + n * 4 == s.off + s.len).then_some(Table {
            k,
            n,
            dir: s.off + 8,
            hashes,
            ids,
        })
    }

    /// Every indicator stored under hash `h`.
    #[inline]
    pub(crate) fn find(&self, img: &[u8], h: u64, mut f: impl FnMut(u32)) {
        if self.n == 0 {
            return;
        }
        let b = bucket(h, self.k);
        let lo = u32_at(img, self.dir + b * 4) as usize;
        let hi = (u32_at(img, self.dir + b * 4 + 4) as usize).min(self.n);
        for j in lo..hi {
            let x = u64_at(img, self.hashes + j * 8);
            if x == h {
                f(u32_at(img, self.ids + j * 4));
            } else if x > h {
                break;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.n
    }
}

#[inline]
fn bucket(h: u64, k: u32) -> usize {
    if k == 0 { 0 } else { (h >> (64 - k)) as usize }
}

/// Lay out sections behind a header.
pub(crate) fn assemble(seed: u64, sections: &[Vec<u8>; SECTIONS]) -> Vec<u8> {
    let total: usize = HEADER
        + sections
            .iter()
            .map(|s| s.len().next_multiple_of(8))
            .sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.resize(FIXED, 0);
    let mut off = HEADER;
    for s in sections {
        out.extend_from_slice(&(off as u64).to_le_bytes());
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        off += s.len().next_multiple_of(8);
    }
    for s in sections {
        out.extend_from_slice(s);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    let crc = crc_of(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn crc_of(img: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(img.get(..CRC_AT).unwrap_or(&[]));
    h.update(&[0; 4]);
    h.update(img.get(CRC_AT + 4..).unwrap_or(&[]));
    h.finalize()
}

/// The header of an image: its seed and sections, after checking magic, version, length and
/// that every section lies inside the image.
pub(crate) fn parse_header(img: &[u8]) -> Result<(u64, [Span; SECTIONS]), String> {
    check_start(img, img.len() as u64)?;
    let seed = u64_at(img, 16);
    let total = img.len() as u64;
    let mut spans = [Span::default(); SECTIONS];
    for (i, s) in spans.iter_mut().enumerate() {
        let off = u64_at(img, FIXED + i * 16);
        let len = u64_at(img, FIXED + i * 16 + 8);
        let outside = off.checked_add(len).is_none_or(|e| e > total);
        if !off.is_multiple_of(8) || off < HEADER as u64 || outside {
            return Err(format!("snapshot section {i} lies outside the file"));
        }
        *s = Span {
            off: off as usize,
            len: len as usize,
        };
    }
    Ok((seed, spans))
}

/// Check the magic, version and length in the first bytes of an image of `len` bytes.
pub(crate) fn check_start(head: &[u8], len: u64) -> Result<(), String> {
    if head.len() < FIXED || head[..8] != MAGIC || len < HEADER as u64 {
        return Err("not an islet snapshot".into());
    }
    let version = u32_at(head, 8);
    if version != VERSION {
        return Err(format!(
            "snapshot format version {version}; this islet reads version {VERSION} (re-import the sources)"
        ));
    }
    let total = u64_at(head, 24);
    if total != len {
        return Err(format!(
            "snapshot is {len} bytes, its header says {total} (truncated or extended)"
        ));
    }
    Ok(())
}

/// Check an in-memory image's CRC.
pub(crate) fn verify(img: &[u8]) -> Result<(), String> {
    let want = u32_at(img, CRC_AT);
    let got = crc_of(img);
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "snapshot checksum mismatch (crc32 {got:08x}, header {want:08x}): the file is damaged"
        ))
    }
}

/// Check a file's CRC by reading it (the pages stay in the page cache for the mapping, and
/// out of this process's resident set).
pub(crate) fn verify_file(f: &std::fs::File) -> Result<(), String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut head = [0u8; FIXED];
    r.read_exact(&mut head)
        .map_err(|_| "not an islet snapshot (shorter than its header)".to_string())?;
    check_start(&head, len)?;
    let want = u32_at(&head, CRC_AT);
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..CRC_AT]);
    h.update(&[0; 4]);
    h.update(&head[CRC_AT + 4..]);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got = h.finalize();
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "snapshot checksum mismatch (crc32 {got:08x}, header {want:08x}): the file is damaged"
        ))
    }
}

/// The bytes of an image: a read-only mapping of a snapshot file, or a buffer built here.
#[derive(Debug)]
pub(crate) enum Backing {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Backing {
    /// Map a snapshot file read-only.
    pub(crate) fn map(f: &std::fs::File) -> std::io::Result<Backing> {
        // SAFETY: the mapping is read-only. Its bytes change under us only if some process
        // writes or truncates the file in place while it is mapped (then reads may see other
        // bytes, or fault on vanished pages). islet never does: `Snapshot::save` writes a new
        // file and renames it over the old one, which leaves a mapped old file whole. Every
        // read through the mapping is bounds-checked, so changed bytes give wrong answers,
        // not undefined indexing.
        #[allow(unsafe_code)]
        let m = unsafe { memmap2::Mmap::map(f)? };
        Ok(Backing::Mapped(m))
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Owned(v) => v,
            Backing::Mapped(m) => m,
        }
    }
}

/// UUID text `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower case, as 16 bytes; `None` for any
/// other text (kept as a string, so it reads back exactly).
pub(crate) fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut hi = None;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        match hi.take() {
            None => hi = Some(d),
            Some(h) => {
                out[n] = (h << 4) | d;
                n += 1;
            }
        }
    }
    Some(out)
}

pub(crate) fn uuid_text(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_only_in_canonical_form() {
        let u = "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        assert_eq!(uuid_text(&uuid_bytes(u).expect("uuid")), u);
        assert!(uuid_bytes("5F1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D").is_none());
        assert!(uuid_bytes("5f1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d").is_none());
        assert!(uuid_bytes("").is_none());
    }

    #[test]
    fn tables_find_every_entry_and_nothing_else() {
        let entries: Vec<(u64, u32)> = (0..1000u32)
            .map(|i| (hash(SEED, TAG_NAME, format!("n{}", i / 2).as_bytes()), i))
            .collect();
        let mut sections: [Vec<u8>; SECTIONS] = Default::default();
        sections[Sec::TName as usize] = Table::build(entries);
        let img = assemble(SEED, &sections);
        verify(&img).expect("crc");
        let (_, spans) = parse_header(&img).expect("header");
        let t = Table::open(&img, spans[Sec::TName as usize]).expect("table");
        assert_eq!(t.len(), 1000);
        for i in 0..500u32 {
            let mut got = Vec::new();
            t.find(
                &img,
                hash(SEED, TAG_NAME, format!("n{i}").as_bytes()),
                |x| got.push(x),
            );
            got.sort_unstable();
            assert_eq!(got, vec![2 * i, 2 * i + 1]);
        }
        let mut none = Vec::new();
        t.find(&img, hash(SEED, TAG_NAME, b"absent"), |x| none.push(x));
        assert!(none.is_empty());
    }

    #[test]
    fn damage_is_refused() {
        let sections: [Vec<u8>; SECTIONS] = Default::default();
        let mut img = assemble(SEED, &sections);
        assert!(parse_header(&img).is_ok());
        assert!(parse_header(&img[..img.len() - 8]).is_err());
        let last = img.len() - 1;
        img[last] ^= 1;
        assert!(verify(&img).is_err());
        img[8] = 9;
        assert!(parse_header(&img).unwrap_err().contains("version 9"));
    }
}
