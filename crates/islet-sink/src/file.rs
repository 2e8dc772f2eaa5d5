//! Line files that rotate by size and by age, optionally gzip-compressing what they rotate.
//!
//! Writes are whole lines (the caller hands complete records), and rotation happens only
//! between writes: the current file is flushed and renamed to `NAME.YYYYmmddTHHMMSS.NNNNNN`
//! before a new `NAME` is opened, so no line is split or lost. Rotated files sort by name in the
//! order they were written, which is the order `islet log verify` takes them in.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// When to rotate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes (0: never by size).
    pub max_bytes: u64,
    /// Rotate once the file is this old (zero: never by age).
    pub max_age: Duration,
    /// gzip rotated files (`.gz`, in a background thread).
    pub compress: bool,
}

/// A rotating line file.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    opened: Instant,
    rot: Rotation,
    rotations: u64,
    compressing: Vec<std::thread::JoinHandle<()>>,
}

impl RotatingFile {
    pub fn create(path: &Path, rot: Rotation) -> std::io::Result<RotatingFile> {
        let f = File::create(path)?;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, f),
            written: 0,
            opened: Instant::now(),
            rot,
            rotations: 0,
            compressing: Vec::new(),
        })
    }

    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Write whole lines, rotating first if the file is due.
    pub fn write_lines(&mut self, lines: &[u8]) -> std::io::Result<()> {
        let by_size = self.rot.max_bytes > 0
            && self.written > 0
            && self.written + lines.len() as u64 > self.rot.max_bytes;
        let by_age = !self.rot.max_age.is_zero()
            && self.written > 0
            && self.opened.elapsed() >= self.rot.max_age;
        if by_size || by_age {
            self.rotate()?;
        }
        self.out.write_all(lines)?;
        self.written += lines.len() as u64;
        Ok(())
    }

    /// Close the current file under its rotated name and start a new one.
    pub fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.rotations += 1;
        let stamp = utc_stamp(SystemTime::now());
        let name = format!(
            "{}.{stamp}.{:06}",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            self.rotations
        );
        let to = self.path.with_file_name(name);
        std::fs::rename(&self.path, &to)?;
        self.out = BufWriter::with_capacity(1 << 20, File::create(&self.path)?);
        self.written = 0;
        self.opened = Instant::now();
        if self.rot.compress {
            self.compressing.push(std::thread::spawn(move || {
                if let Err(e) = gzip_file(&to) {
                    eprintln!("rotate: compressing {}: {e}", to.display());
                }
            }));
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flush, and wait for background compression.
    pub fn close(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        for h in self.compressing.drain(..) {
            let _ = h.join();
        }
        Ok(())
    }
}

fn gzip_file(p: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", p.display()));
    let mut src = std::io::BufReader::new(File::open(p)?);
    let mut enc = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(&gz)?),
        flate2::Compression::default(),
    );
    std::io::copy(&mut src, &mut enc)?;
    enc.finish()?.flush()?;
    std::fs::remove_file(p)
}

/// `YYYYmmddTHHMMSS` in UTC.
fn utc_stamp(t: SystemTime) -> String {
    let s = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut b = Vec::new();
    islet_event::time::write_iso(&mut b, s * 1_000_000_000);
    let iso = String::from_utf8_lossy(&b);
    // "\"YYYY-MM-DDTHH:MM:SS…" → "YYYYMMDDTHHMMSS"
    iso.trim_start_matches('"')
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rotation_by_size_keeps_every_line_whole() {
        let dir = std::env::temp_dir().join(format!("islet-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("eve.json");
        let mut f = RotatingFile::create(
            &p,
            Rotation {
                max_bytes: 1000,
                compress: true,
                ..Rotation::default()
            },
        )
        .unwrap();
        let mut want = Vec::new();
        for i in 0..400 {
            let l = format!("{{\"n\":{i}}}\n");
            want.extend_from_slice(l.as_bytes());
            f.write_lines(l.as_bytes()).unwrap();
        }
        assert!(f.rotations() >= 2);
        f.close().unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        // Rotated (compressed) files first in name order, then the live file.
        let live = names.remove(0);
        assert_eq!(live, p);
        names.push(live);
        let mut got = Vec::new();
        for n in &names {
            let b = std::fs::read(n).unwrap();
            if n.extension().is_some_and(|e| e == "gz") {
                use std::io::Read as _;
                flate2::read::GzDecoder::new(&b[..])
                    .read_to_end(&mut got)
                    .unwrap();
            } else {
                got.extend_from_slice(&b);
            }
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
