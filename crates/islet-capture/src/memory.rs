//! Frames held in memory as a packet source: for tests, fuzzing and replaying frames built
//! in a program rather than read from a file.

use crate::{CaptureError, Packet, PacketSource};

/// Ethernet frames with their capture times, handed out in order.
#[derive(Clone, Debug, Default)]
pub struct Frames {
    frames: Vec<(u64, Vec<u8>)>,
    next: usize,
}

impl Frames {
    /// Frames in the order given (times are not reordered).
    pub fn new(frames: Vec<(u64, Vec<u8>)>) -> Frames {
        Frames { frames, next: 0 }
    }

    /// Frames handed out so far.
    pub fn delivered(&self) -> usize {
        self.next
    }
}

impl PacketSource for Frames {
    fn read_batch(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(&Packet<'_>),
    ) -> Result<usize, CaptureError> {
        let end = self.frames.len().min(self.next.saturating_add(max));
        for (ts, data) in &self.frames[self.next..end] {
            f(&Packet {
                ts_ns: *ts,
                linktype: 1,
                data,
                orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            });
        }
        let n = end - self.next;
        self.next = end;
        Ok(n)
    }

    fn progress(&self) -> (u64, u64) {
        (self.next as u64, self.frames.len() as u64)
    }
}
