//! Sealed blocks: one sensor's records of one ingest batch, byte for byte as the sensor sealed
//! them, framed by length and compressed with LZ4 (block format). A record may hold any byte;
//! the frame, not a separator, says where it ends.
//!
//! Reading is bounded: a block's declared length must be within [`MAX_SEALED_BLOCK`] and match
//! what decompresses, and every frame must fit the block — a damaged row is an error, never a
//! panic or an allocation of whatever a row claims.

use crate::{Result, StoreError};

/// Schema 3's rows: the records one a line, uncompressed.
pub const CODEC_LINES: i64 = 0;
/// An LZ4 block of records, each a little-endian u32 length and the record's bytes.
pub const CODEC_LZ4_FRAMED: i64 = 1;

/// The largest block read back, uncompressed (a batch is at most 20,000 records of at most
/// 1 MiB; what is larger was not written by the store).
pub const MAX_SEALED_BLOCK: usize = 1 << 30;

/// Append one record to a block being built.
pub fn frame(block: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(&record[..len as usize]);
}

/// Compress a built block into `out` (cleared first; its capacity is reused).
pub fn compress(block: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.resize(lz4_flex::block::get_maximum_output_size(block.len()), 0);
    // The buffer is sized for the worst case, so compression cannot run out of room.
    let n = lz4_flex::block::compress_into(block, out).unwrap_or(0);
    out.truncate(n);
}

/// A stored block, opened for reading.
#[derive(Debug)]
pub struct Block<'a> {
    codec: i64,
    bytes: std::borrow::Cow<'a, [u8]>,
}

fn damaged(why: &str) -> StoreError {
    StoreError::Backend(format!("a sealed block is damaged: {why}"))
}

impl<'a> Block<'a> {
    /// A row's `lines`, `codec` and `raw_len`, checked and decompressed.
    pub fn open(stored: &'a [u8], codec: i64, raw_len: i64) -> Result<Block<'a>> {
        match codec {
            CODEC_LINES => Ok(Block {
                codec,
                bytes: std::borrow::Cow::Borrowed(stored),
            }),
            CODEC_LZ4_FRAMED => {
                let len = usize::try_from(raw_len)
                    .ok()
                    .filter(|n| *n <= MAX_SEALED_BLOCK)
                    .ok_or_else(|| damaged("its length is out of bounds"))?;
                let mut raw = vec![0u8; len];
                let n = lz4_flex::block::decompress_into(stored, &mut raw)
                    .map_err(|e| damaged(&e.to_string()))?;
                if n != len {
                    return Err(damaged("it is shorter than it says"));
                }
                Ok(Block {
                    codec,
                    bytes: std::borrow::Cow::Owned(raw),
                })
            }
            other => Err(damaged(&format!("unknown codec {other}"))),
        }
    }

    /// Its records in order (a frame that overruns the block ends the reading there and is
    /// an error item).
    pub fn records(&self) -> impl Iterator<Item = Result<&[u8]>> + '_ {
        let b: &[u8] = &self.bytes;
        let lines = (self.codec == CODEC_LINES).then(|| {
            b.split(|c| *c == b'\n')
                .filter(|l| !l.is_empty())
                .map(Ok::<&[u8], StoreError>)
        });
        let mut at = 0usize;
        let mut failed = false;
        let frames = (self.codec != CODEC_LINES).then(|| {
            std::iter::from_fn(move || {
                if failed || at >= b.len() {
                    return None;
                }
                let Some(head) = b.get(at..at + 4) else {
                    failed = true;
                    return Some(Err(damaged("a frame's length is cut")));
                };
                let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                let Some(rec) = b.get(at + 4..at + 4 + n) else {
                    failed = true;
                    return Some(Err(damaged("a frame runs past the block")));
                };
                at += 4 + n;
                Some(Ok(rec))
            })
        });
        lines
            .into_iter()
            .flatten()
            .chain(frames.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(records: &[&[u8]]) -> (Vec<u8>, i64) {
        let mut raw = Vec::new();
        for r in records {
            frame(&mut raw, r);
        }
        let mut packed = Vec::new();
        compress(&raw, &mut packed);
        (packed, raw.len() as i64)
    }

    #[test]
    fn records_come_back_as_written_newlines_and_all() {
        let recs: [&[u8]; 4] = [b"{\"a\":1}", b"{\"b\":\n2}", b"", b"{\"c\":\"\xff\"}"];
        let (packed, len) = build(&recs);
        let b = Block::open(&packed, CODEC_LZ4_FRAMED, len).expect("open");
        let got: Vec<&[u8]> = b.records().map(|r| r.expect("frame")).collect();
        assert_eq!(got, recs);
    }

    #[test]
    fn schema_3_lines_still_read() {
        let b = Block::open(b"{\"a\":1}\n{\"b\":2}\n", CODEC_LINES, 0).expect("open");
        let got: Vec<&[u8]> = b.records().map(|r| r.expect("line")).collect();
        assert_eq!(got, [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic_or_a_huge_allocation() {
        let (packed, len) = build(&[b"{\"a\":1}", b"{\"b\":2}"]);
        // A length past the bound is refused before anything is allocated.
        assert!(Block::open(&packed, CODEC_LZ4_FRAMED, i64::MAX).is_err());
        assert!(Block::open(&packed, CODEC_LZ4_FRAMED, -1).is_err());
        // A length that does not match what decompresses.
        assert!(Block::open(&packed, CODEC_LZ4_FRAMED, len + 1).is_err());
        assert!(Block::open(&packed, CODEC_LZ4_FRAMED, len - 1).is_err());
        // Damaged compressed bytes.
        assert!(Block::open(&packed[..packed.len() / 2], CODEC_LZ4_FRAMED, len).is_err());
        assert!(Block::open(&packed, 7, len).is_err());
        // A frame that claims more than the block holds.
        let mut raw = Vec::new();
        frame(&mut raw, b"{}");
        raw.extend_from_slice(&1000u32.to_le_bytes());
        raw.extend_from_slice(b"{\"x\"");
        let mut p = Vec::new();
        compress(&raw, &mut p);
        let b = Block::open(&p, CODEC_LZ4_FRAMED, raw.len() as i64).expect("open");
        let got: Vec<_> = b.records().collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_records_round_trip(recs in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..40)) {
            let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
            let (packed, len) = build(&refs);
            let b = Block::open(&packed, CODEC_LZ4_FRAMED, len).expect("open");
            let got: Vec<&[u8]> = b.records().map(|r| r.expect("frame")).collect();
            proptest::prop_assert_eq!(got, refs);
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
                                 len in 0i64..5000) {
            if let Ok(b) = Block::open(&bytes, CODEC_LZ4_FRAMED, len) {
                for _ in b.records() {}
            }
        }
    }
}
