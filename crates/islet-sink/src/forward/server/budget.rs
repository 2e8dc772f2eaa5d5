//! The memory budget: what one connection holds is charged before it is allocated, to the
//! connection's own bound and to the receiver's total, and given back when it is freed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Refusal, ServerStats};

/// One connection's share of the receiver's memory budget; what it still holds is given back
/// when it is dropped.
#[derive(Debug)]
pub struct Share {
    stats: Arc<ServerStats>,
    /// Bytes this connection holds.
    held: usize,
    /// Bound for this connection.
    limit: usize,
    /// Bound for the receiver, shared by every connection of `stats`.
    total: usize,
}

impl Share {
    pub fn new(stats: Arc<ServerStats>, limit: usize, total: usize) -> Share {
        Share {
            stats,
            held: 0,
            limit,
            total,
        }
    }

    /// Bytes this connection holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Charge `n` bytes, or refuse if either bound would be passed.
    pub fn take(&mut self, n: usize) -> Result<(), Refusal> {
        if n == 0 {
            return Ok(());
        }
        if self.held.saturating_add(n) > self.limit {
            return Err(Refusal::Budget(format!(
                "this connection would hold {} bytes, its bound is {}",
                self.held.saturating_add(n),
                self.limit
            )));
        }
        let n64 = n as u64;
        let total = self.total as u64;
        let m = &self.stats.memory_bytes;
        let mut cur = m.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(n64);
            if next > total {
                return Err(Refusal::Budget(format!(
                    "the receiver would hold {next} bytes, its bound is {total}"
                )));
            }
            match m.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    self.stats
                        .memory_peak_bytes
                        .fetch_max(next, Ordering::Relaxed);
                    break;
                }
                Err(c) => cur = c,
            }
        }
        self.held += n;
        Ok(())
    }

    /// Give back `n` bytes (at most what is held).
    pub fn give(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        self.stats
            .memory_bytes
            .fetch_sub(n as u64, Ordering::AcqRel);
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.give(self.held);
    }
}
