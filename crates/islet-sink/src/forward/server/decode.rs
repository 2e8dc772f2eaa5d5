//! Decoding one complete frame into a [`Batch`], charging what it allocates to the budget
//! first: the decoded values (counted by the sizer before decoding), the inflated entry stream
//! (inflated a step at a time into a window holding one entry, charged as it grows, so a gzip
//! bomb stops at its bound), and the events.

use std::io::Read as _;

use rmpv::Value;

use super::budget::Share;
use super::{Batch, Event, Refusal, ServerConfig};
use crate::forward::proto::Sizer;

/// What one decoded MessagePack value is charged: the enum, plus a heap allocation's overhead
/// (strings, arrays and maps each own one).
const VALUE_COST: usize = std::mem::size_of::<Value>() + 16;

/// What one event is charged beyond its record's values (the tag is charged separately).
const EVENT_COST: usize = std::mem::size_of::<Event>();

/// The inflated window grows by doubling from this size.
const INFLATE_START: usize = 64 << 10;

/// Inflated bytes are read this many at a time.
const INFLATE_STEP: usize = 16 << 10;

pub(super) fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

fn bad<T>(m: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Malformed(m.into()))
}

/// What `values` decoded values with `payload` bytes of strings and binaries take.
fn tree_cost(values: u64, payload: u64) -> usize {
    usize::try_from(values)
        .unwrap_or(usize::MAX)
        .saturating_mul(VALUE_COST)
        .saturating_add(usize::try_from(payload).unwrap_or(usize::MAX))
}

/// Decode one frame (`values` values and `payload` payload bytes, as its sizer counted) in
/// any of the four modes. What it allocates stays charged to `share`; the caller gives it back
/// once the batch is dropped.
pub(super) fn decode_frame(
    cfg: &ServerConfig,
    frame: &[u8],
    values: u64,
    payload: u64,
    share: &mut Share,
) -> Result<Batch, Refusal> {
    share.take(tree_cost(values, payload))?;
    let msg = rmpv::decode::read_value_with_max_depth(&mut &frame[..], cfg.max_depth)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    decode_message(cfg, msg, share)
}

/// Decode one event message in any of the four modes.
fn decode_message(cfg: &ServerConfig, msg: Value, share: &mut Share) -> Result<Batch, Refusal> {
    let Value::Array(mut a) = msg else {
        return bad("a message is an array");
    };
    if a.len() < 2 || a.len() > 4 {
        return bad(format!("a message has 2 to 4 elements, not {}", a.len()));
    }
    let tag = match &a[0] {
        Value::String(s) => s
            .as_str()
            .ok_or_else(|| Refusal::Malformed("tag is not UTF-8".into()))?
            .to_string(),
        _ => return bad("tag is not a string"),
    };
    let per_event = EVENT_COST + tag.len();
    // Message mode: [tag, time, record, option?].
    if matches!(
        a[1],
        Value::Integer(_) | Value::Ext(..) | Value::F64(_) | Value::F32(_)
    ) {
        let option = if a.len() == 4 { a.pop() } else { None };
        let record = a.pop().filter(|_| a.len() == 2).ok_or_else(|| {
            Refusal::Malformed("Message mode is [tag, time, record, option?]".into())
        })?;
        let time_ns = time_ns(&a[1])?;
        if !record.is_map() {
            return bad("record is not a map");
        }
        share.take(per_event)?;
        return Ok(Batch {
            events: vec![Event {
                tag,
                time_ns,
                record,
            }],
            chunk: chunk_of(option.as_ref())?,
            client: None,
        });
    }
    let option = if a.len() == 3 { a.pop() } else { None };
    if a.len() != 2 {
        return bad("Forward modes are [tag, entries, option?]");
    }
    let chunk = chunk_of(option.as_ref())?;
    let mut events = Vec::new();
    match a.pop() {
        Some(Value::Array(entries)) => {
            if entries.len() > cfg.max_entries {
                return Err(Refusal::Oversized(format!(
                    "{} entries, the bound is {}",
                    entries.len(),
                    cfg.max_entries
                )));
            }
            share.take(per_event.saturating_mul(entries.len()))?;
            events.reserve_exact(entries.len());
            for e in entries {
                events.push(entry(&tag, e)?);
            }
        }
        Some(Value::Binary(b)) => packed(cfg, &tag, &b, option.as_ref(), &mut events, share)?,
        Some(Value::String(s)) => {
            packed(cfg, &tag, s.as_bytes(), option.as_ref(), &mut events, share)?;
        }
        _ => return bad("entries are neither an array nor packed bytes"),
    }
    Ok(Batch {
        events,
        chunk,
        client: None,
    })
}

fn chunk_of(option: Option<&Value>) -> Result<Option<Value>, Refusal> {
    let Some(o) = option else { return Ok(None) };
    let Value::Map(m) = o else {
        return bad("option is not a map");
    };
    Ok(m.iter()
        .find(|(k, _)| as_bytes(k) == Some(b"chunk"))
        .map(|(_, v)| v.clone()))
}

/// Where packed entries come from: the frame's bytes, or a gzip stream inflated a step at a
/// time into a window that holds the entry being sized and little more. The inflated stream is
/// never held whole, and it stops at `max_decompressed`: a gzip bomb costs one window.
enum Entries<'a> {
    Plain(&'a [u8]),
    Gzip(Box<Window<'a>>),
}

struct Window<'a> {
    gz: flate2::read::MultiGzDecoder<&'a [u8]>,
    buf: Vec<u8>,
    /// Bytes before `start` are decoded entries, dropped at the next fill.
    start: usize,
    /// The window's capacity, charged to the budget.
    charged: usize,
    /// Bytes inflated so far.
    total: usize,
    eof: bool,
}

impl Entries<'_> {
    fn avail(&self) -> &[u8] {
        match self {
            Entries::Plain(b) => b,
            Entries::Gzip(w) => &w.buf[w.start..],
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Entries::Plain(b) => *b = &b[n..],
            Entries::Gzip(w) => w.start += n,
        }
    }

    /// Make [`Entries::avail`] hold at least `need` bytes; false if the stream ends first.
    fn fill(
        &mut self,
        need: usize,
        cfg: &ServerConfig,
        share: &mut Share,
    ) -> Result<bool, Refusal> {
        let Entries::Gzip(w) = self else {
            return Ok(self.avail().len() >= need);
        };
        if w.start > 0 {
            w.buf.drain(..w.start);
            w.start = 0;
        }
        while w.buf.len() < need {
            if w.eof {
                return Ok(false);
            }
            let want = w.buf.len().max(need) + INFLATE_STEP;
            if want > w.charged {
                // Doubling, so an entry whose size is learnt bit by bit is not copied over and
                // over; never past the bound (plus one step).
                let cap = want
                    .max(w.charged.saturating_mul(2))
                    .max(INFLATE_START)
                    .min(cfg.max_decompressed.saturating_add(INFLATE_STEP))
                    .max(want);
                share.take(cap - w.charged)?;
                w.buf.reserve_exact(cap - w.buf.len());
                w.charged = cap;
            }
            let old = w.buf.len();
            w.buf.resize(old + INFLATE_STEP, 0);
            let n = loop {
                match w.gz.read(&mut w.buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return bad(format!("gzip: {e}")),
                }
            };
            w.buf.truncate(old + n);
            w.eof = n == 0;
            w.total += n;
            if w.total > cfg.max_decompressed {
                return Err(Refusal::Oversized(format!(
                    "more than {} bytes decompressed",
                    cfg.max_decompressed
                )));
            }
        }
        Ok(true)
    }

    /// The window's memory, given back once the entries are decoded.
    fn charged(&self) -> usize {
        match self {
            Entries::Plain(_) => 0,
            Entries::Gzip(w) => w.charged,
        }
    }
}

fn packed(
    cfg: &ServerConfig,
    tag: &str,
    bytes: &[u8],
    option: Option<&Value>,
    events: &mut Vec<Event>,
    share: &mut Share,
) -> Result<(), Refusal> {
    let compressed = match option {
        Some(Value::Map(m)) => m
            .iter()
            .find(|(k, _)| as_bytes(k) == Some(b"compressed"))
            .and_then(|(_, v)| as_bytes(v)),
        _ => None,
    };
    let mut src = match compressed {
        None | Some(b"text") => Entries::Plain(bytes),
        Some(b"gzip") => Entries::Gzip(Box::new(Window {
            gz: flate2::read::MultiGzDecoder::new(bytes),
            buf: Vec::new(),
            start: 0,
            charged: 0,
            total: 0,
            eof: false,
        })),
        Some(other) => {
            return bad(format!(
                "unknown compression {:?}",
                String::from_utf8_lossy(other)
            ));
        }
    };
    let r = entries(cfg, tag, &mut src, events, share);
    share.give(src.charged());
    r
}

fn entries(
    cfg: &ServerConfig,
    tag: &str,
    src: &mut Entries<'_>,
    events: &mut Vec<Event>,
    share: &mut Share,
) -> Result<(), Refusal> {
    // Twice the slot: the events vector grows by doubling, its count unknown in advance.
    let per_event = 2 * EVENT_COST + tag.len();
    let mut sizer = Sizer::new();
    loop {
        if !src.fill(1, cfg, share)? {
            return Ok(());
        }
        if events.len() >= cfg.max_entries {
            return Err(Refusal::Oversized(format!(
                "more than {} entries",
                cfg.max_entries
            )));
        }
        sizer.reset();
        let n = loop {
            match sizer.advance(src.avail(), cfg.max_depth) {
                Ok(Some(n)) => break n,
                Ok(None) => {
                    if !src.fill(sizer.need(), cfg, share)? {
                        return bad("packed entries end inside an entry");
                    }
                }
                Err(e) => return bad(e.to_string()),
            }
        };
        share.take(tree_cost(sizer.values(), sizer.payload()).saturating_add(per_event))?;
        let v = rmpv::decode::read_value_with_max_depth(&mut &src.avail()[..n], cfg.max_depth)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        src.consume(n);
        events.push(entry(tag, v)?);
    }
}

fn entry(tag: &str, e: Value) -> Result<Event, Refusal> {
    let Value::Array(mut pair) = e else {
        return bad("an entry is [time, record]");
    };
    if pair.len() != 2 {
        return bad("an entry is [time, record]");
    }
    let record = pair.pop().unwrap_or(Value::Nil);
    if !record.is_map() {
        return bad("record is not a map");
    }
    Ok(Event {
        tag: tag.to_string(),
        time_ns: time_ns(&pair[0])?,
        record,
    })
}

fn time_ns(v: &Value) -> Result<u64, Refusal> {
    match v {
        Value::Integer(i) => i
            .as_u64()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .ok_or_else(|| Refusal::Malformed("time out of range".into())),
        Value::F64(f) if f.is_finite() && *f >= 0.0 => Ok((*f * 1e9) as u64),
        Value::F32(f) if f.is_finite() && *f >= 0.0 => Ok((f64::from(*f) * 1e9) as u64),
        Value::Ext(0, b) if b.len() == 8 => {
            let s = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            Ok(u64::from(s) * 1_000_000_000 + u64::from(n))
        }
        _ => bad("time is neither an integer nor an EventTime"),
    }
}
