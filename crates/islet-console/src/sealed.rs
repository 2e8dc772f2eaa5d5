//! A sensor's records as the store keeps them, written out as EVE lines — byte for byte what
//! the sensor sealed, in chain order — so its chain can be checked again away from the
//! console (`islet serve records … | islet log verify --key sensor.pub`).

use islet_store::EvidenceStore;
use std::io::Write;

/// Records read from the store per query.
pub const PAGE: usize = 10_000;

/// Why an export stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealedError {
    Store(islet_store::StoreError),
    Write(std::io::Error),
}

impl std::fmt::Display for SealedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealedError::Store(e) => write!(f, "reading the store: {e}"),
            SealedError::Write(e) => write!(f, "writing the records: {e}"),
        }
    }
}

impl std::error::Error for SealedError {}

/// Write `sensor`'s chained records after `after_seq`, one per line; returns how many.
pub fn write(
    store: &dyn EvidenceStore,
    sensor: &str,
    after_seq: u64,
    out: &mut dyn Write,
) -> Result<u64, SealedError> {
    let (mut after, mut n) = (after_seq, 0u64);
    loop {
        let page = store
            .sealed(sensor, after, PAGE)
            .map_err(SealedError::Store)?;
        for (seq, line) in &page {
            let line = line.strip_suffix('\n').unwrap_or(line);
            out.write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(SealedError::Write)?;
            after = *seq;
            n += 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    out.flush().map_err(SealedError::Write)?;
    Ok(n)
}
