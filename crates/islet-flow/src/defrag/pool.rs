//! Fragment bytes, kept in fixed-size blocks drawn from one pool and chained per datagram.
//!
//! Each datagram under reassembly owns one append-only byte stream (a [`Chain`] of blocks).
//! The pool grows block by block up to its bound and never shrinks; freed chains are spliced
//! onto a free list in O(1), so once the pool has reached its working size no fragment
//! allocates. Memory is charged per block, so a flood of tiny fragments pays for the blocks it
//! really holds, not for the few bytes it carries.

/// Bytes per block. Small enough that a tiny fragment wastes little, large enough that the
/// 4-byte link per block is a small overhead (6%).
pub(super) const BLOCK: usize = 64;
/// "No block" / "no slot".
pub(super) const NIL: u32 = u32::MAX;

/// One datagram's byte stream.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chain {
    head: u32,
    tail: u32,
    /// Bytes written.
    len: u32,
}

impl Chain {
    pub(super) const EMPTY: Chain = Chain {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    /// Blocks this chain holds.
    pub(super) fn blocks(&self) -> usize {
        (self.len as usize).div_ceil(BLOCK)
    }

    /// Blocks it would hold after `add` more bytes.
    pub(super) fn blocks_after(&self, add: usize) -> usize {
        (self.len as usize + add).div_ceil(BLOCK)
    }
}

/// The block pool.
#[derive(Debug)]
pub(super) struct Pool {
    bytes: Vec<u8>,
    /// The next block of each block's chain (or of the free list).
    next: Vec<u32>,
    free: u32,
    free_n: usize,
    max_blocks: usize,
}

impl Pool {
    pub(super) fn new(max_bytes: usize) -> Self {
        Pool {
            bytes: Vec::new(),
            next: Vec::new(),
            free: NIL,
            free_n: 0,
            // At least one block, so a configuration below one block still works (as a table
            // that holds one tiny datagram).
            max_blocks: (max_bytes / BLOCK).clamp(1, NIL as usize - 1),
        }
    }

    /// Blocks that can still be handed out.
    pub(super) fn available(&self) -> usize {
        self.free_n + (self.max_blocks - self.next.len())
    }

    /// Blocks handed out now.
    pub(super) fn in_use(&self) -> usize {
        self.next.len() - self.free_n
    }

    /// Most blocks the pool will ever hold.
    pub(super) fn max_blocks(&self) -> usize {
        self.max_blocks
    }

    fn take_block(&mut self) -> Option<u32> {
        if self.free != NIL {
            let b = self.free;
            self.free = self.next[b as usize];
            self.free_n -= 1;
            self.next[b as usize] = NIL;
            return Some(b);
        }
        if self.next.len() >= self.max_blocks {
            return None;
        }
        let b = self.next.len() as u32;
        self.next.push(NIL);
        self.bytes.resize(self.bytes.len() + BLOCK, 0);
        Some(b)
    }

    /// Append `data` to `c`. The caller has checked that enough blocks are
    /// [`available`](Self::available); if not, nothing past the shortfall is written and
    /// `false` is returned.
    pub(super) fn append(&mut self, c: &mut Chain, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let fill = c.len as usize % BLOCK;
            if fill == 0 {
                let Some(b) = self.take_block() else {
                    return false;
                };
                if c.tail == NIL {
                    c.head = b;
                } else {
                    self.next[c.tail as usize] = b;
                }
                c.tail = b;
            }
            let n = (BLOCK - fill).min(data.len());
            let at = c.tail as usize * BLOCK + fill;
            self.bytes[at..at + n].copy_from_slice(&data[..n]);
            c.len += n as u32;
            data = &data[n..];
        }
        true
    }

    /// Give `c`'s blocks back (O(1): the chain is spliced onto the free list whole).
    pub(super) fn release(&mut self, c: &mut Chain) {
        if c.head != NIL {
            self.next[c.tail as usize] = self.free;
            self.free = c.head;
            self.free_n += c.blocks();
        }
        *c = Chain::EMPTY;
    }

    /// A reader of `c` from its start.
    pub(super) fn reader<'a>(&'a self, c: &Chain) -> Reader<'a> {
        Reader {
            pool: self,
            block: c.head,
            at: 0,
            left: c.len as usize,
        }
    }
}

/// Reads a chain's bytes in order.
#[derive(Debug)]
pub(super) struct Reader<'a> {
    pool: &'a Pool,
    block: u32,
    at: usize,
    left: usize,
}

impl Reader<'_> {
    /// Bytes not read yet.
    pub(super) fn left(&self) -> usize {
        self.left
    }

    /// Fill `dst` from the stream; `false` (and `dst` partly filled) if it runs out.
    pub(super) fn read(&mut self, dst: &mut [u8]) -> bool {
        let mut done = 0;
        while done < dst.len() {
            if self.left == 0 || self.block == NIL {
                return false;
            }
            if self.at == BLOCK {
                self.block = self.pool.next[self.block as usize];
                self.at = 0;
                continue;
            }
            let n = (BLOCK - self.at).min(dst.len() - done).min(self.left);
            let from = self.block as usize * BLOCK + self.at;
            dst[done..done + n].copy_from_slice(&self.pool.bytes[from..from + n]);
            done += n;
            self.at += n;
            self.left -= n;
        }
        true
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn chains_round_trip_and_release_whole() {
        let mut p = Pool::new(10 * BLOCK);
        let mut a = Chain::EMPTY;
        let mut b = Chain::EMPTY;
        let data: Vec<u8> = (0..200u8).collect();
        assert!(p.append(&mut a, &data[..70]));
        assert!(p.append(&mut b, &data[..3]));
        assert!(p.append(&mut a, &data[70..]));
        assert_eq!((a.blocks(), b.blocks(), p.in_use()), (4, 1, 5));
        let mut back = vec![0u8; 200];
        let mut r = p.reader(&a);
        assert!(r.read(&mut back));
        assert_eq!(back, data);
        assert_eq!(r.left(), 0);
        p.release(&mut a);
        assert_eq!((p.in_use(), p.available()), (1, 9));
        // Freed blocks are reused before the pool grows.
        let mut c = Chain::EMPTY;
        assert!(p.append(&mut c, &[7; 256]));
        assert_eq!(p.next.len(), 5);
    }

    #[test]
    fn pool_stops_at_its_bound() {
        let mut p = Pool::new(2 * BLOCK);
        let mut a = Chain::EMPTY;
        assert!(!p.append(&mut a, &[1; 3 * BLOCK]));
        assert_eq!(p.available(), 0);
    }
}
