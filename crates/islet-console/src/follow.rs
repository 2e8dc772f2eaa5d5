//! File ingest: EVE files read line by line into the writer in batches, and optionally followed
//! as they grow (a file replaced by rotation is reopened from its start). A line that is not a
//! JSON object is counted as malformed and skipped; a line longer than
//! [`crate::ingest::MAX_RECORD`] is skipped whole.

use crate::ingest::{Incoming, MAX_RECORD, Submitter};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Records per submitted batch.
pub const FILE_BATCH: usize = 5000;

/// The sensor name of a file's records: the file's stem (`eve` for `/var/log/islet/eve.json`),
/// unless given.
pub fn sensor_of(p: &Path) -> String {
    p.file_stem()
        .map_or_else(|| "file".into(), |s| s.to_string_lossy().into_owned())
}

/// Read `path` to its end; then, with `follow`, keep reading as it grows until `stop`.
/// Returns the lines submitted.
pub fn ingest_file(
    path: &Path,
    sensor: &str,
    sub: &Submitter,
    follow: bool,
    stop: &Arc<AtomicBool>,
) -> Result<u64, String> {
    let open = |p: &PathBuf| std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let path = path.to_path_buf();
    let mut f = open(&path)?;
    let mut ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut r = BufReader::with_capacity(1 << 20, f.try_clone().map_err(|e| e.to_string())?);
    let mut pos: u64 = 0;
    let mut total = 0u64;
    let mut batch = Vec::with_capacity(FILE_BATCH);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = (&mut r)
            .take(MAX_RECORD as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n > 0 && line.last() == Some(&b'\n') {
            pos += n as u64;
            let l = line.trim_ascii();
            if !l.is_empty() {
                batch.push(Incoming {
                    sensor: sensor.to_string(),
                    line: l.to_vec(),
                });
            }
            if batch.len() >= FILE_BATCH {
                total += batch.len() as u64;
                sub.submit(std::mem::take(&mut batch))?;
            }
            continue;
        }
        if n > MAX_RECORD {
            // Skip the rest of an overlong line.
            pos += n as u64;
            let mut skip = Vec::new();
            let _ = r.read_until(b'\n', &mut skip);
            pos += skip.len() as u64;
            continue;
        }
        // At the end (or a partial last line): submit what we have, then wait or stop.
        if !batch.is_empty() {
            total += batch.len() as u64;
            sub.submit(std::mem::take(&mut batch))?;
        }
        if !follow {
            if n > 0 {
                let l = line.trim_ascii();
                if !l.is_empty() {
                    total += 1;
                    sub.submit(vec![Incoming {
                        sensor: sensor.to_string(),
                        line: l.to_vec(),
                    }])?;
                }
            }
            return Ok(total);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(total);
        }
        std::thread::sleep(Duration::from_millis(200));
        // Rotation or truncation: start over on the new file.
        let meta = std::fs::metadata(&path).ok();
        let rotated = meta
            .as_ref()
            .is_some_and(|m| m.ino() != ino || m.len() < pos);
        if rotated {
            f = open(&path)?;
            ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            r = BufReader::with_capacity(1 << 20, f.try_clone().map_err(|e| e.to_string())?);
            pos = 0;
        } else {
            // Re-read from the start of the partial line.
            r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        }
    }
}
