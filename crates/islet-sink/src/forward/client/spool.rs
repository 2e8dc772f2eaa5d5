//! The spool directory: queued buffers as numbered files, and the last acknowledged record.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::ForwardError;

pub(super) fn spool_files(dir: &Path) -> Result<Vec<(u64, PathBuf, u64)>, ForwardError> {
    let rd = std::fs::read_dir(dir).map_err(|source| ForwardError::Spool {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        let Some(id) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        v.push((id, p, len));
    }
    v.sort();
    Ok(v)
}

pub(super) fn write_spool(dir: &Path, id: u64, lines: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{id:016}.spool"));
    let tmp = dir.join(format!("{id:016}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(lines)?;
    f.sync_data()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The acknowledged head kept in the spool: `<seq> <hex hash>`.
pub(super) fn load_acked(p: &Path) -> Option<(u64, [u8; 32])> {
    let t = std::fs::read_to_string(p).ok()?;
    let (seq, h) = t.trim().split_once(' ')?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(h, &mut hash).ok()?;
    Some((seq.parse().ok()?, hash))
}

/// Keep the acknowledged head (by rename).
pub(super) fn store_acked(p: &Path, head: (u64, [u8; 32])) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, format!("{} {}\n", head.0, hex::encode(head.1)))?;
    std::fs::rename(&tmp, p)
}
