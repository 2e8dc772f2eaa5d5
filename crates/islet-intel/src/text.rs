//! MISP's CSV and freetext feeds. A CSV feed names its value columns (1-based) and delimiter;
//! a freetext feed is any text. Either way each value's type is guessed as MISP's freetext
//! import does — address, CIDR, URL, domain, hash — after undoing common defanging
//! (`hxxp`, `[.]`, `(.)`), and values matching the feed's exclude regex are skipped.

use crate::normalize::{self, Prefix};

/// MISP feed settings for a CSV or freetext feed.
#[derive(Debug, Clone)]
pub struct TextFeed {
    /// 1-based columns holding values (CSV); empty for freetext.
    pub value_columns: Vec<usize>,
    pub delimiter: char,
    pub exclude: Option<regex::Regex>,
}

impl Default for TextFeed {
    fn default() -> Self {
        TextFeed {
            value_columns: Vec::new(),
            delimiter: ',',
            exclude: None,
        }
    }
}

/// What a token looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guess {
    /// A MISP type islet matches, and the value.
    Indicator(&'static str, String),
    /// A type islet cannot see on the wire (file hashes).
    NotObservable(&'static str),
    /// Not a value.
    Nothing,
}

/// File extensions that look like top-level domains in freetext (`dropper.exe`).
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "bat", "ps1", "vbs", "js", "jar", "zip", "rar", "7z", "doc", "docx",
    "xls", "xlsx", "pdf", "txt", "tmp", "dat", "bin", "lnk", "hta", "scr", "msi", "png", "jpg",
    "gif", "log", "ini", "cfg", "py", "sh",
];

/// Undo defanging: `hxxp://` → `http://`, `[.]`/`(.)`/`{.}` → `.`, `[:]` → `:`.
pub fn refang(v: &str) -> String {
    let mut s = v
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[:]", ":")
        .replace("[://]", "://");
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("hXXp://", "http://"),
    ] {
        if s.to_ascii_lowercase().starts_with(from) {
            s = format!("{to}{}", &s[from.len()..]);
        }
    }
    s
}

/// Guess one token's type as MISP's freetext import would.
pub fn guess(token: &str) -> Guess {
    // Sentence punctuation around a value is not part of it.
    let t = refang(
        token
            .trim()
            .trim_matches(|c: char| "\"'<>()[]{},;".contains(c))
            .trim_end_matches(['.', ':', '!', '?']),
    );
    if t.is_empty() {
        return Guess::Nothing;
    }
    if Prefix::parse(&t).is_some() {
        return Guess::Indicator("ip-dst", t);
    }
    if let Some((ip, port)) = t.rsplit_once(':')
        && ip.parse::<std::net::Ipv4Addr>().is_ok()
        && port.parse::<u16>().is_ok()
    {
        return Guess::Indicator("ip-dst|port", format!("{ip}|{port}"));
    }
    if t.contains("://") {
        return match normalize::url(&t) {
            Some(_) => Guess::Indicator("url", t),
            None => Guess::Nothing,
        };
    }
    if t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match t.len() {
            32 => Guess::NotObservable("md5"),
            40 => Guess::NotObservable("sha1"),
            64 => Guess::NotObservable("sha256"),
            _ => Guess::Nothing,
        };
    }
    let Some(name) = normalize::name(&t) else {
        return Guess::Nothing;
    };
    let labels: Vec<&str> = name.split('.').collect();
    let tld = labels.last().copied().unwrap_or("");
    let plausible = labels.len() >= 2
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && !FILE_EXTENSIONS.contains(&tld)
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if plausible {
        Guess::Indicator("domain", name)
    } else {
        Guess::Nothing
    }
}

impl TextFeed {
    /// The values of one line: the value columns of a CSV line, or every token of freetext.
    /// Comment lines (`#`) and excluded values give nothing.
    pub fn values<'a>(&'a self, line: &'a str) -> Vec<&'a str> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Vec::new();
        }
        let vals: Vec<&str> = if self.value_columns.is_empty() {
            line.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '|')
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            let cols: Vec<&str> = line.split(self.delimiter).collect();
            self.value_columns
                .iter()
                .filter_map(|c| c.checked_sub(1).and_then(|i| cols.get(i)))
                .map(|v| v.trim().trim_matches('"'))
                .collect()
        };
        vals.into_iter()
            .filter(|v| !self.exclude.as_ref().is_some_and(|r| r.is_match(v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_like_misp_freetext() {
        assert_eq!(
            guess("hxxp://evil[.]example/x"),
            Guess::Indicator("url", "http://evil.example/x".into())
        );
        assert_eq!(
            guess("198.51.100.7"),
            Guess::Indicator("ip-dst", "198.51.100.7".into())
        );
        assert_eq!(
            guess("198.51.100.0/24"),
            Guess::Indicator("ip-dst", "198.51.100.0/24".into())
        );
        assert_eq!(
            guess("198.51.100.7:8080"),
            Guess::Indicator("ip-dst|port", "198.51.100.7|8080".into())
        );
        assert_eq!(
            guess("Evil.Example."),
            Guess::Indicator("domain", "evil.example".into())
        );
        assert_eq!(guess("dropper.exe"), Guess::Nothing);
        assert_eq!(
            guess("d41d8cd98f00b204e9800998ecf8427e"),
            Guess::NotObservable("md5")
        );
        assert_eq!(guess("hello"), Guess::Nothing);
    }

    #[test]
    fn csv_columns_delimiter_and_exclusion() {
        let f = TextFeed {
            value_columns: vec![2, 4],
            delimiter: ';',
            exclude: Some(regex::Regex::new(r"^10\.").unwrap()),
        };
        assert_eq!(f.values("1;evil.example;x;10.0.0.1"), vec!["evil.example"]);
        assert_eq!(f.values("# comment;a;b;c"), Vec::<&str>::new());
        let free = TextFeed::default();
        assert_eq!(
            free.values("seen evil.example, 198.51.100.7"),
            vec!["seen", "evil.example", "198.51.100.7"]
        );
    }
}
