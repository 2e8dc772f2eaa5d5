//! Fixed-size summaries of attacker-controlled key spaces: HyperLogLog for distinct counts,
//! count-min for per-key counts, space-saving for the heaviest keys. None grows with its
//! input.

/// A 64-bit mix of a key's bytes (FNV-1a then a finaliser): stable across runs, so the
/// detections of a replay are the same every time.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// HyperLogLog (Flajolet et al. 2007) with 2^10 registers: about 3% standard error, 1 KiB.
#[derive(Clone, Debug)]
pub struct Hll {
    regs: Box<[u8; 1 << Hll::P]>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            regs: Box::new([0; 1 << Hll::P]),
        }
    }
}

impl Hll {
    const P: u32 = 10;

    pub fn add(&mut self, hash: u64) {
        let idx = (hash >> (64 - Self::P)) as usize;
        let rest = hash << Self::P | 1 << (Self::P - 1);
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.regs[idx] {
            self.regs[idx] = rank;
        }
    }

    /// The estimated number of distinct hashes added.
    pub fn estimate(&self) -> u64 {
        let m = f64::from(1u32 << Self::P);
        let mut sum = 0.0;
        let mut zeros = 0u32;
        for &r in self.regs.iter() {
            sum += 1.0 / f64::from(1u32 << r.min(31));
            zeros += u32::from(r == 0);
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        // Small range: linear counting.
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / f64::from(zeros)).ln()
        } else {
            raw
        };
        e.round() as u64
    }

    pub fn clear(&mut self) {
        self.regs.fill(0);
    }

    /// Add every hash `other` saw (the union of both sets).
    pub fn merge(&mut self, other: &Hll) {
        for (a, b) in self.regs.iter_mut().zip(other.regs.iter()) {
            *a = (*a).max(*b);
        }
    }
}

/// Count-min sketch (Cormode and Muthukrishnan 2005): 4 rows of 2^12 counters, 64 KiB. An
/// estimate never undercounts.
#[derive(Clone, Debug)]
pub struct CountMin {
    rows: Box<[[u32; CountMin::W]; CountMin::D]>,
}

impl Default for CountMin {
    fn default() -> Self {
        CountMin {
            rows: Box::new([[0; CountMin::W]; CountMin::D]),
        }
    }
}

impl CountMin {
    const D: usize = 4;
    const W: usize = 1 << 12;

    fn cells(hash: u64) -> [usize; Self::D] {
        let (a, b) = (hash as u32, (hash >> 32) as u32 | 1);
        std::array::from_fn(|i| (a.wrapping_add(b.wrapping_mul(i as u32)) as usize) % Self::W)
    }

    /// Add `n` to the key and return its new estimate.
    pub fn add(&mut self, hash: u64, n: u32) -> u32 {
        let mut est = u32::MAX;
        for (row, c) in Self::cells(hash).into_iter().enumerate() {
            let v = &mut self.rows[row][c];
            *v = v.saturating_add(n);
            est = est.min(*v);
        }
        est
    }

    pub fn estimate(&self, hash: u64) -> u32 {
        Self::cells(hash)
            .into_iter()
            .enumerate()
            .map(|(row, c)| self.rows[row][c])
            .min()
            .unwrap_or(0)
    }

    pub fn clear(&mut self) {
        for r in self.rows.iter_mut() {
            r.fill(0);
        }
    }
}

/// Space-saving (Metwally et al. 2005): the `K` heaviest keys with their counts; a key's count
/// overestimates by at most its `err`.
#[derive(Clone, Debug)]
pub struct TopK<T, const K: usize> {
    items: Vec<(T, u64, u64)>,
}

impl<T, const K: usize> Default for TopK<T, K> {
    fn default() -> Self {
        TopK { items: Vec::new() }
    }
}

impl<T: PartialEq + Copy, const K: usize> TopK<T, K> {
    pub fn add(&mut self, key: T) {
        self.add_n(key, 1);
    }

    /// Count `key` `n` times.
    pub fn add_n(&mut self, key: T, n: u64) {
        if let Some(it) = self.items.iter_mut().find(|it| it.0 == key) {
            it.1 += n;
            return;
        }
        if self.items.len() < K {
            self.items.push((key, n, 0));
            return;
        }
        if let Some(min) = self.items.iter_mut().min_by_key(|it| it.1) {
            *min = (key, min.1 + n, min.1);
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Keys with counts, heaviest first.
    pub fn top(&self) -> Vec<(T, u64)> {
        let mut v: Vec<(T, u64)> = self.items.iter().map(|it| (it.0, it.1)).collect();
        v.sort_by_key(|it| std::cmp::Reverse(it.1));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_within_its_error() {
        for n in [1u64, 10, 100, 1_000, 50_000, 1_000_000] {
            let mut h = Hll::default();
            for i in 0..n {
                h.add(hash64(&i.to_le_bytes()));
            }
            let e = h.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 0.1, "{n}: estimated {e}");
        }
    }

    #[test]
    fn count_min_never_undercounts_and_top_k_finds_the_heavy() {
        let mut c = CountMin::default();
        // Space-saving finds every key above N/K: 10% > 1/16.
        let mut t: TopK<u32, 16> = TopK::default();
        for i in 0..100_000u32 {
            let k = if i % 10 == 0 { 7 } else { i };
            c.add(hash64(&k.to_le_bytes()), 1);
            t.add(k);
        }
        assert!(c.estimate(hash64(&7u32.to_le_bytes())) >= 10_000);
        assert!(c.estimate(hash64(&7u32.to_le_bytes())) < 10_200);
        assert_eq!(t.top()[0].0, 7);
    }
}
