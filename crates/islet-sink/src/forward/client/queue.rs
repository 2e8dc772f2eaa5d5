//! The queue between the sensor's writer and the sending thread: entries in memory or in spool
//! files, in one order, and the records dropped under `drop_newest` not yet announced.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use super::ForwardStats;
use crate::chain::seq_prev;

/// Queued records. Every entry takes the next number of one sequence, in memory or on disk,
/// and a spool file is named by it: a restarted sensor sends them in the order they came.
pub(super) enum Entry {
    Mem {
        id: u64,
        bytes: Vec<u8>,
        at: Instant,
    },
    Disk {
        path: PathBuf,
        len: u64,
        at: Instant,
    },
}

impl Entry {
    pub(super) fn load(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Entry::Mem { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes)),
            Entry::Disk { path, .. } => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }
    pub(super) fn at(&self) -> Instant {
        match self {
            Entry::Mem { at, .. } | Entry::Disk { at, .. } => *at,
        }
    }
}

/// Records dropped under `drop_newest`, not yet announced.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gap {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) prev: [u8; 32],
    pub(super) resume: [u8; 32],
    pub(super) ts: [u8; 32],
    pub(super) ts_len: usize,
}

pub(super) struct Queue {
    pub(super) entries: VecDeque<Entry>,
    pub(super) mem_bytes: usize,
    pub(super) disk_bytes: u64,
    pub(super) closing: bool,
    /// Stop sending now (the shutdown timeout passed).
    pub(super) give_up: bool,
    /// The number the next entry takes.
    pub(super) next_spool: u64,
    pub(super) gap: Option<Gap>,
    /// The sender holds an entry it took from the front.
    pub(super) busy: bool,
}

pub(super) struct Shared {
    pub(super) q: Mutex<Queue>,
    pub(super) data: Condvar,
    pub(super) space: Condvar,
    pub(super) stats: Arc<ForwardStats>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Extend the pending gap with the records of `lines` (sealed: each has seq and prev).
pub(super) fn drop_lines(gap: &mut Option<Gap>, lines: &[u8]) {
    let mut it = lines.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let Some(first) = it.next() else { return };
    let last = it.next_back().unwrap_or(first);
    let (Some((fs, fprev)), Some((ls, _))) = (seq_prev(first), seq_prev(last)) else {
        return;
    };
    let resume: [u8; 32] = Sha256::digest(last).into();
    let mut ts = [0u8; 32];
    let t = crate::chain::event_time(last)
        .map(|(t, _)| t)
        .unwrap_or(b"");
    let ts_len = t.len().min(32);
    ts[..ts_len].copy_from_slice(&t[..ts_len]);
    match gap {
        Some(g) if g.last + 1 == fs => {
            g.last = ls;
            g.resume = resume;
            g.ts = ts;
            g.ts_len = ts_len;
        }
        _ => {
            *gap = Some(Gap {
                first: fs,
                last: ls,
                prev: fprev,
                resume,
                ts,
                ts_len,
            });
        }
    }
}
