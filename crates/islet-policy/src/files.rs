//! Reading policy and inventory files: a size bound, and parser errors named with the file
//! and line.

use std::path::Path;

/// A file's text, refused above `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<String, String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?;
    if meta.len() > max {
        return Err(format!(
            "{name}: {} bytes, above the {max}-byte bound",
            meta.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))
}

/// `FILE: line N: message` for a TOML error.
pub(crate) fn toml_error(name: &str, text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    match line {
        Some(l) => format!("{name}: line {l}: {}", e.message().trim()),
        None => format!("{name}: {}", e.message().trim()),
    }
}

/// `FILE: line N: message` for a YAML (or JSON) error.
pub(crate) fn yaml_error(name: &str, e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("{name}: line {}: {e}", l.line()),
        None => format!("{name}: {e}"),
    }
}

/// A directory entry's name for messages: printable ASCII as is, a backslash doubled, every
/// other byte (controls, non-UTF-8, non-ASCII) as `\xNN`, so a hostile name can neither hide
/// in nor rewrite a terminal line.
pub fn escape_name(name: &std::ffi::OsStr) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt as _;
    let mut s = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

/// What a directory entry is, without following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// A FIFO, socket or device.
    Special,
}

impl EntryKind {
    fn of(t: std::fs::FileType) -> EntryKind {
        if t.is_symlink() {
            EntryKind::Symlink
        } else if t.is_dir() {
            EntryKind::Directory
        } else if t.is_file() {
            EntryKind::File
        } else {
            EntryKind::Special
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symbolic link",
            EntryKind::Special => "special file",
        }
    }
}

/// Every entry of a directory (hidden ones too), sorted by name bytes, with its kind as the
/// entry itself is (a link is not followed). More than `max` entries, or an entry that cannot
/// be read, is an error: nothing is skipped.
pub(crate) fn list_dir(
    dir: &Path,
    max: usize,
) -> Result<Vec<(std::ffi::OsString, EntryKind)>, String> {
    let d = dir.display();
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{d}: {e}"))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| format!("{d}: {e}"))?;
        if out.len() == max {
            return Err(format!("{d}: more than {max} entries"));
        }
        let t = e
            .file_type()
            .map_err(|err| format!("{d}/{}: {err}", escape_name(&e.file_name())))?;
        out.push((e.file_name(), EntryKind::of(t)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Why [`read_regular`] refused a file.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Not a regular file as it stands (a link is not followed).
    NotAFile(EntryKind),
    /// Above the bound: the size seen.
    TooLarge(u64),
    /// Replaced between looking at it and opening it.
    Replaced,
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotAFile(k) => write!(f, "a {}, not a regular file", k.name()),
            ReadError::TooLarge(n) => write!(f, "{n} bytes, above its bound"),
            ReadError::Replaced => write!(f, "replaced while it was being read"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The bytes of `dir/name`, read once, if it is a regular file of at most `max` bytes. The
/// entry is looked at without following links, and the file opened is checked to be that same
/// entry (device and inode), so a link swapped in meanwhile is refused, not read.
pub(crate) fn read_regular(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let p = dir.join(name);
    let seen = std::fs::symlink_metadata(&p).map_err(ReadError::Io)?;
    let kind = EntryKind::of(seen.file_type());
    if kind != EntryKind::File {
        return Err(ReadError::NotAFile(kind));
    }
    if seen.len() > max {
        return Err(ReadError::TooLarge(seen.len()));
    }
    let f = std::fs::File::open(&p).map_err(ReadError::Io)?;
    let opened = f.metadata().map_err(ReadError::Io)?;
    if !opened.is_file() || opened.dev() != seen.dev() || opened.ino() != seen.ino() {
        return Err(ReadError::Replaced);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len().min(max)).unwrap_or(0));
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}
