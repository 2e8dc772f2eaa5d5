//! STIX 2.x indicator patterns (STIX 2.1 part 9), the subset islet can match on the wire:
//! `ipv4-addr:value`/`ipv6-addr:value` (`=` or `ISSUBSET` a CIDR), `domain-name:value`,
//! `url:value`, `x509-certificate:hashes.'SHA-1'|'SHA-256'|'MD5'`, and
//! `network-traffic:dst_ref.value`/`src_ref.value` with `dst_port`/`src_port` joined by AND in
//! one observation. Comparisons joined by OR, and observations joined by OR, each become an
//! indicator. Anything else is rejected with a named reason.

use crate::model::Kind;
use PatternError::Malformed;

/// Longest pattern parsed.
pub const MAX_PATTERN: usize = 64 * 1024;
/// Deepest parenthesis nesting.
pub const MAX_DEPTH: usize = 32;
/// Most indicators one pattern may yield.
pub const MAX_PER_PATTERN: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Word(String),
    Str(String),
    Num(i64),
    Op(String),
}

fn lex(p: &str) -> Result<Vec<Tok>, &'static str> {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'[' => {
                out.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                out.push(Tok::RBracket);
                i += 1;
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'\'' => {
                let (s, n) = quoted(&p[i..])?;
                out.push(Tok::Str(s));
                i += n;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = b.get(i + 1) == Some(&b'=');
                let n = if two { 2 } else { 1 };
                out.push(Tok::Op(p[i..i + n].to_string()));
                i += n;
            }
            b'-' | b'0'..=b'9' if c != b'-' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Tok::Num(p[start..i].parse().map_err(|_| "bad_number")?));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                // An object path (`x509-certificate:hashes.'SHA-1'`) or a keyword.
                let mut w = String::new();
                while i < b.len() {
                    let c = b[i];
                    if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.' | b'*') {
                        w.push(char::from(c));
                        i += 1;
                    } else if c == b'[' && !w.is_empty() {
                        // A list index in a path: `[0]` or `[*]`.
                        let close = p[i..].find(']').ok_or("bad_path")?;
                        let idx = &p[i + 1..i + close];
                        if !(idx == "*" || idx.bytes().all(|b| b.is_ascii_digit()))
                            || idx.is_empty()
                        {
                            return Err("bad_path");
                        }
                        w.push_str(&p[i..=i + close]);
                        i += close + 1;
                    } else if c == b'\'' && w.ends_with('.') {
                        let (s, n) = quoted(&p[i..])?;
                        w.push_str(&s);
                        i += n;
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            }
            _ => return Err("bad_character"),
        }
    }
    Ok(out)
}

/// A single-quoted string with `\'` and `\\` escapes; returns it and the bytes consumed.
fn quoted(s: &str) -> Result<(String, usize), &'static str> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            '\'' => return Ok((out, i + 1)),
            _ => out.push(c),
        }
    }
    Err("unterminated_string")
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Cmp {
        path: String,
        op: String,
        value: Tok,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    /// observation-expression joined by OR / AND / FOLLOWEDBY.
    fn pattern(&mut self) -> Result<Expr, PatternError> {
        let mut ors = vec![self.and_observations()?];
        while self.keyword("OR") {
            self.at += 1;
            ors.push(self.and_observations()?);
        }
        Ok(if ors.len() == 1 {
            ors.remove(0)
        } else {
            Expr::Or(ors)
        })
    }

    fn and_observations(&mut self) -> Result<Expr, PatternError> {
        let first = self.observation()?;
        if self.keyword("AND") || self.keyword("FOLLOWEDBY") {
            return Err(PatternError::ObservationsJoinedByAnd);
        }
        Ok(first)
    }

    fn observation(&mut self) -> Result<Expr, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Malformed("too_deep"));
        }
        let e = match self.next() {
            Some(Tok::LBracket) => {
                let e = self.comparisons()?;
                if self.next() != Some(Tok::RBracket) {
                    return Err(Malformed("expected_bracket"));
                }
                e
            }
            Some(Tok::LParen) => {
                let e = self.pattern()?;
                if self.next() != Some(Tok::RParen) {
                    return Err(Malformed("expected_paren"));
                }
                e
            }
            _ => return Err(Malformed("expected_observation")),
        };
        // Qualifiers (WITHIN n SECONDS, REPEATS n TIMES, START … STOP …) do not change what
        // is matched: skip them.
        while self.keyword("WITHIN") || self.keyword("REPEATS") || self.keyword("START") {
            while let Some(t) = self.peek() {
                if matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("OR") || w.eq_ignore_ascii_case("AND"))
                    || matches!(t, Tok::RParen)
                {
                    break;
                }
                self.at += 1;
            }
        }
        self.depth -= 1;
        Ok(e)
    }

    fn comparisons(&mut self) -> Result<Expr, PatternError> {
        let mut ors = vec![self.and_comparisons()?];
        while self.keyword("OR") {
            self.at += 1;
            ors.push(self.and_comparisons()?);
        }
        Ok(if ors.len() == 1 {
            ors.remove(0)
        } else {
            Expr::Or(ors)
        })
    }

    fn and_comparisons(&mut self) -> Result<Expr, PatternError> {
        let mut ands = vec![self.comparison()?];
        while self.keyword("AND") {
            self.at += 1;
            ands.push(self.comparison()?);
        }
        Ok(if ands.len() == 1 {
            ands.remove(0)
        } else {
            Expr::And(ands)
        })
    }

    fn comparison(&mut self) -> Result<Expr, PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(Malformed("too_deep"));
            }
            self.at += 1;
            let e = self.comparisons()?;
            if self.next() != Some(Tok::RParen) {
                return Err(Malformed("expected_paren"));
            }
            self.depth -= 1;
            return Ok(e);
        }
        let Some(Tok::Word(path)) = self.next() else {
            return Err(Malformed("expected_object_path"));
        };
        let mut negated = false;
        if self.keyword("NOT") {
            self.at += 1;
            negated = true;
        }
        let op = match self.next() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Word(w)) => w.to_ascii_uppercase(),
            _ => return Err(Malformed("expected_operator")),
        };
        if negated || op == "!=" {
            return Err(PatternError::Negated);
        }
        let value = match self.next() {
            Some(v @ (Tok::Str(_) | Tok::Num(_))) => v,
            _ => return Err(Malformed("expected_value")),
        };
        Ok(Expr::Cmp { path, op, value })
    }
}

/// The indicators a pattern yields: (kind, value as islet stores it from STIX).
pub fn indicators(pattern: &str) -> Result<Vec<(Kind, String)>, PatternError> {
    if pattern.len() > MAX_PATTERN {
        return Err(Malformed("pattern_too_long"));
    }
    let toks = lex(pattern).map_err(Malformed)?;
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
    };
    let e = p.pattern()?;
    if p.at != p.toks.len() {
        return Err(Malformed("trailing_tokens"));
    }
    let mut out = Vec::new();
    convert(&e, &mut out)?;
    if out.len() > MAX_PER_PATTERN {
        return Err(Malformed("too_many_comparisons"));
    }
    Ok(out)
}

/// Why a pattern yields no indicators. The message is the reason an import report gives
/// (`too_deep`, `unsupported_pattern: file =`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// Not a well-formed pattern, or over a bound: `unterminated_string`, `too_deep`,
    /// `pattern_too_long`, `trailing_tokens`, `too_many_comparisons`, `bad_port`, ….
    Malformed(&'static str),
    /// A negated comparison (`NOT`, `!=`).
    Negated,
    /// Observations joined by `AND` or `FOLLOWEDBY`.
    ObservationsJoinedByAnd,
    /// Comparisons joined by `AND` that are not one network-traffic address with its port;
    /// what is wrong, if more can be said.
    UnsupportedAnd(Option<String>),
    /// A comparison islet cannot match: the object type and the operator.
    UnsupportedPattern { object: String, op: String },
    /// A comparison whose value is not a string: the object path.
    UnsupportedValue { path: String },
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed(reason) => f.write_str(reason),
            PatternError::Negated => f.write_str("negated_comparison"),
            PatternError::ObservationsJoinedByAnd => f.write_str("observations_joined_by_and"),
            PatternError::UnsupportedAnd(None) => f.write_str("unsupported_and"),
            PatternError::UnsupportedAnd(Some(why)) => write!(f, "unsupported_and: {why}"),
            PatternError::UnsupportedPattern { object, op } => {
                write!(f, "unsupported_pattern: {object} {op}")
            }
            PatternError::UnsupportedValue { path } => write!(f, "unsupported_value: {path}"),
        }
    }
}

impl std::error::Error for PatternError {}

fn convert(e: &Expr, out: &mut Vec<(Kind, String)>) -> Result<(), PatternError> {
    let and = |why: String| PatternError::UnsupportedAnd(Some(why));
    match e {
        Expr::Or(v) => {
            for x in v {
                convert(x, out)?;
            }
            Ok(())
        }
        Expr::Cmp { path, op, value } => {
            out.push(comparison(path, op, value)?);
            Ok(())
        }
        Expr::And(v) => {
            // network-traffic:{dst,src}_ref.value AND {dst,src}_port.
            let (mut ip, mut port, mut side) = (None, None, None);
            for x in v {
                let Expr::Cmp { path, op, value } = x else {
                    return Err(PatternError::UnsupportedAnd(None));
                };
                let s = path
                    .strip_prefix("network-traffic:")
                    .ok_or_else(|| and(path.clone()))?;
                let this = if s.starts_with("dst_") {
                    "dst"
                } else if s.starts_with("src_") {
                    "src"
                } else {
                    return Err(and(path.clone()));
                };
                if side.is_some_and(|x| x != this) {
                    return Err(and("mixed src and dst".into()));
                }
                side = Some(this);
                match (s, op.as_str(), value) {
                    ("dst_ref.value" | "src_ref.value", "=", Tok::Str(v)) => ip = Some(v.clone()),
                    ("dst_port" | "src_port", "=", Tok::Num(n)) => {
                        port = Some(u16::try_from(*n).map_err(|_| Malformed("bad_port"))?)
                    }
                    _ => return Err(and(format!("{path} {op}"))),
                }
            }
            let ip = ip.ok_or_else(|| and("no address".into()))?;
            let dst = side == Some("dst");
            out.push(match (port, dst) {
                (Some(p), true) => (Kind::IpDstPort, format!("{ip}|{p}")),
                (Some(p), false) => (Kind::IpSrcPort, format!("{ip}|{p}")),
                (None, true) => (Kind::IpDst, ip),
                (None, false) => (Kind::IpSrc, ip),
            });
            Ok(())
        }
    }
}

fn comparison(path: &str, op: &str, value: &Tok) -> Result<(Kind, String), PatternError> {
    let Tok::Str(v) = value else {
        return Err(PatternError::UnsupportedValue {
            path: path.to_string(),
        });
    };
    let kind = match (path, op) {
        ("ipv4-addr:value" | "ipv6-addr:value", "=" | "ISSUBSET") => Kind::Ip,
        ("domain-name:value", "=") => Kind::Hostname,
        ("url:value", "=") => Kind::Url,
        ("x509-certificate:hashes.SHA-1" | "x509-certificate:hashes.SHA1", "=") => Kind::X509Sha1,
        ("x509-certificate:hashes.SHA-256" | "x509-certificate:hashes.SHA256", "=") => {
            Kind::X509Sha256
        }
        ("x509-certificate:hashes.MD5", "=") => Kind::X509Md5,
        ("network-traffic:dst_ref.value", "=") => Kind::IpDst,
        ("network-traffic:src_ref.value", "=") => Kind::IpSrc,
        _ => {
            let object = path.split(':').next().unwrap_or(path);
            return Err(PatternError::UnsupportedPattern {
                object: object.to_string(),
                op: op.to_string(),
            });
        }
    };
    Ok((kind, v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_patterns() {
        assert_eq!(
            indicators("[ipv4-addr:value = '10.0.0.0']").unwrap(),
            vec![(Kind::Ip, "10.0.0.0".into())]
        );
        assert_eq!(
            indicators("[ipv4-addr:value ISSUBSET '223.166.0.0/15']").unwrap(),
            vec![(Kind::Ip, "223.166.0.0/15".into())]
        );
        assert_eq!(
            indicators("[domain-name:value = 'a.example' OR domain-name:value = 'b.example']")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            indicators("[url:value = 'http://x/'] OR [domain-name:value = 'y']")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            indicators("[x509-certificate:hashes.'SHA-256' = 'aa']").unwrap(),
            vec![(Kind::X509Sha256, "aa".into())]
        );
        assert_eq!(
            indicators(
                "[network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 443]"
            )
            .unwrap(),
            vec![(Kind::IpDstPort, "198.51.100.7|443".into())]
        );
        assert_eq!(
            indicators("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn unsupported_patterns_are_named() {
        assert!(
            indicators("[file:hashes.'SHA-256' = 'aa']")
                .unwrap_err()
                .to_string()
                .starts_with("unsupported_pattern: file")
        );
        assert!(
            indicators("[email-message:from_ref.value MATCHES '.+@example']")
                .unwrap_err()
                .to_string()
                .starts_with("unsupported_pattern: email-message")
        );
        assert_eq!(
            indicators("[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'x']")
                .unwrap_err()
                .to_string(),
            "observations_joined_by_and"
        );
        assert_eq!(
            indicators("[ipv4-addr:value = '1.2")
                .unwrap_err()
                .to_string(),
            "unterminated_string"
        );
        assert_eq!(
            indicators(&"(".repeat(100)).unwrap_err().to_string(),
            "too_deep"
        );
    }
}
