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
