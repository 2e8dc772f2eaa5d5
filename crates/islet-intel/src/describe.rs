//! Intelligence as text, for people: what an import kept, suppressed and rejected
//! ([`ImportReport`]), what a snapshot holds ([`Description`]), and which indicators a value
//! matches and why ([`Explain`]). Each is a `Display`; the caller decides where it goes.

use crate::import::Report;
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// An import's report: indicators by type, what is not observable on the wire, duplicates,
/// warninglist suppressions (five values per list) and every rejection with its reason.
#[derive(Debug, Clone, Copy)]
pub struct ImportReport<'a>(pub &'a Report);

impl fmt::Display for ImportReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        writeln!(
            f,
            "imported {} indicators from {} events",
            r.imported_total(),
            r.events
        )?;
        for (k, n) in &r.imported {
            writeln!(f, "  {k:<26} {n}")?;
        }
        if !r.not_observable.is_empty() {
            let n: u64 = r.not_observable.values().sum();
            let types: Vec<String> = r
                .not_observable
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(f, "not observable on the wire: {n} ({})", types.join(", "))?;
        }
        if r.duplicates > 0 {
            writeln!(f, "duplicates: {}", r.duplicates)?;
        }
        let mut by_list: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in &r.suppressed {
            by_list.entry(&s.list).or_default().push(&s.value);
        }
        writeln!(f, "suppressed by warninglists: {}", r.suppressed.len())?;
        for (list, values) in by_list {
            let shown: Vec<&str> = values.iter().take(5).copied().collect();
            let more = values.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            };
            writeln!(f, "  {list}: {} ({}{tail})", values.len(), shown.join(", "))?;
        }
        writeln!(f, "rejected: {}", r.rejected_total)?;
        for x in &r.rejected {
            writeln!(
                f,
                "  {} at {}: {} — {}",
                x.source, x.position, x.reason, x.detail
            )?;
        }
        Ok(())
    }
}

/// A snapshot: size, indicators by type (and how many alert), feeds, and warninglist
/// suppressions. Counted from the records' kind, flag and context fields: nothing is decoded
/// per indicator.
#[derive(Debug, Clone, Copy)]
pub struct Description<'a> {
    /// The file it was read from, as named.
    pub path: &'a Path,
    pub snapshot: &'a Snapshot,
}

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot;
        let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut per_ctx = vec![0u64; s.context_count()];
        for i in 0..s.len() as u32 {
            if let Some(k) = s.kind(i) {
                let e = by_kind.entry(k.name()).or_default();
                e.0 += 1;
                e.1 += u64::from(s.to_ids(i));
            }
            if let Some(n) = per_ctx.get_mut(s.context_index(i) as usize) {
                *n += 1;
            }
        }
        writeln!(
            f,
            "{}: {} indicators, {} events, {} bytes{}",
            self.path.display(),
            s.len(),
            s.context_count(),
            s.image_len(),
            if s.is_mapped() { " (mapped)" } else { "" }
        )?;
        writeln!(f, "  {:<26} {:>10} {:>10}", "type", "total", "to_ids")?;
        for (k, (n, ids)) in by_kind {
            writeln!(f, "  {k:<26} {n:>10} {ids:>10}")?;
        }
        let mut feeds: BTreeMap<String, u64> = BTreeMap::new();
        for (c, n) in per_ctx.iter().enumerate().filter(|(_, n)| **n > 0) {
            *feeds.entry(s.context_at(c as u32).feed).or_default() += n;
        }
        writeln!(f, "feeds:")?;
        for (name, n) in feeds {
            writeln!(f, "  {name}: {n}")?;
        }
        let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for x in s.suppressed() {
            lists
                .entry(&x.list)
                .or_default()
                .push(format!("{} {}", x.kind, x.value));
        }
        writeln!(f, "suppressed by warninglists: {}", s.suppressed().len())?;
        for (l, v) in lists {
            writeln!(f, "  {l}: {}", v.join(", "))?;
        }
        Ok(())
    }
}

/// Which indicators of a snapshot one value matches, one line each with why, whether it
/// alerts and the event it came from; or that nothing matches (and which warninglists
/// suppressed an indicator of that value).
#[derive(Debug, Clone, Copy)]
pub struct Explain<'a> {
    pub snapshot: &'a Snapshot,
    /// An address, name, URL, fingerprint or user agent.
    pub value: &'a str,
}

impl fmt::Display for Explain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (snap, v) = (self.snapshot, self.value);
        let hits = snap.check(v);
        if hits.is_empty() {
            let suppressed: Vec<&str> = snap
                .suppressed()
                .iter()
                .filter(|s| s.value.eq_ignore_ascii_case(v))
                .map(|s| s.list.as_str())
                .collect();
            return if suppressed.is_empty() {
                writeln!(f, "{v}: no match")
            } else {
                writeln!(
                    f,
                    "{v}: no match (an indicator with this value was suppressed by {})",
                    suppressed.join(", ")
                )
            };
        }
        for (i, why) in hits {
            let ind = snap.indicator(i);
            let ctx = snap.context(i);
            writeln!(
                f,
                "{v}: matches {} {:?} {why}{} — {} {} '{}'",
                ind.kind,
                ind.value,
                if ind.to_ids {
                    ", alerts (to_ids)"
                } else {
                    ", sighting only"
                },
                if ctx.origin.is_empty() {
                    "MISP event"
                } else {
                    ctx.origin
                },
                ctx.event_uuid,
                ctx.event_info
            )?;
        }
        Ok(())
    }
}
