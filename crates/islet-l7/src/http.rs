//! HTTP/1.x: request and response headers (httparse), transactions matched in order
//! (pipelining included), bodies skipped by counting — never stored.

use crate::Sink;
use islet_event::AppProto;
use islet_event::proto::{AppEvent, HttpEvent};
use memchr::memmem;
use std::collections::VecDeque;

/// End of a header block.
const END: &[u8] = b"\r\n\r\n";

/// Largest header block buffered (request line + headers).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most headers parsed per message.
pub const MAX_HEADERS: usize = 96;
/// Most requests awaiting their response.
pub const MAX_PENDING: usize = 64;
/// Longest header value kept.
pub const MAX_VALUE: usize = 2048;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Body {
    #[default]
    None,
    Length(u64),
    /// Chunked: bytes left in the current chunk, or `None` while reading a size line.
    Chunked {
        left: Option<u64>,
        line: u16,
        trailer: bool,
    },
    /// Response without a length: runs to the end of the connection.
    UntilClose,
}

#[derive(Debug, Default)]
struct Side {
    head: Vec<u8>,
    body: Body,
    /// Body bytes of the current message.
    count: u64,
    broken: bool,
}

/// Per-flow HTTP state.
#[derive(Debug, Default)]
pub struct HttpState {
    side: [Side; 2],
    pending: VecDeque<(HttpEvent, bool)>,
    /// The response being read, waiting for its body to end.
    current: Option<HttpEvent>,
    tx: u64,
}

/// Header names seen on nearly every message, so naming them costs no allocation.
const COMMON_HEADERS: &[&str] = &[
    "Host",
    "User-Agent",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Connection",
    "Content-Type",
    "Content-Length",
    "Cookie",
    "Set-Cookie",
    "Referer",
    "Authorization",
    "Cache-Control",
    "Date",
    "Server",
    "Transfer-Encoding",
    "X-Forwarded-For",
    "X-Request-Id",
    "Location",
    "Last-Modified",
    "ETag",
    "Vary",
    "Expires",
    "Pragma",
    "Upgrade",
    "Origin",
    "If-Modified-Since",
    "If-None-Match",
    "Keep-Alive",
];

fn header_name(n: &str) -> std::borrow::Cow<'static, str> {
    match COMMON_HEADERS.iter().find(|c| **c == n) {
        Some(c) => std::borrow::Cow::Borrowed(c),
        None => std::borrow::Cow::Owned(n.to_string()),
    }
}

fn value(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(MAX_VALUE)]).into_owned()
}

fn header<'a>(h: &'a [httparse::Header<'a>], name: &str) -> Option<&'a [u8]> {
    h.iter()
        .find(|x| x.name.eq_ignore_ascii_case(name))
        .map(|x| x.value)
}

fn body_of(h: &[httparse::Header<'_>]) -> Option<Body> {
    if let Some(te) = header(h, "transfer-encoding")
        && te.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"))
    {
        return Some(Body::Chunked {
            left: None,
            line: 0,
            trailer: false,
        });
    }
    let cl = header(h, "content-length")?;
    std::str::from_utf8(cl)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Body::Length)
}

impl HttpState {
    pub fn input(&mut self, toserver: bool, mut data: &[u8], sink: &mut Sink<'_>) -> bool {
        let d = usize::from(!toserver);
        while !data.is_empty() && !self.side[d].broken {
            if self.side[d].body != Body::None {
                data = self.body(d, data, sink);
                continue;
            }
            let s = &mut self.side[d];
            // Fast path: a whole header block inside this segment is parsed where it lies.
            if s.head.is_empty()
                && let Some(i) = memmem::find(&data[..data.len().min(MAX_HEADER_BYTES)], END)
            {
                let (head, rest) = data.split_at(i + 4);
                if toserver {
                    self.request(head, sink);
                } else {
                    self.response(head, sink);
                }
                data = rest;
                continue;
            }
            // Otherwise gather the block across segments.
            let start = s.head.len().saturating_sub(3);
            let room = MAX_HEADER_BYTES.saturating_sub(s.head.len());
            let take = data.len().min(room);
            s.head.extend_from_slice(&data[..take]);
            let end = memmem::find(&s.head[start..], END).map(|i| start + i + 4);
            let Some(end) = end else {
                data = &data[take..];
                if s.head.len() >= MAX_HEADER_BYTES {
                    s.broken = true;
                    let event = if toserver {
                        "request_header_too_long"
                    } else {
                        "response_header_too_long"
                    };
                    sink.events.push(AppEvent::Anomaly {
                        app_proto: AppProto::Http,
                        event,
                    });
                }
                continue;
            };
            // Bytes of `data` past the header block go back to the loop.
            let used_from_data = take - (s.head.len() - end);
            data = &data[used_from_data..];
            let head = std::mem::take(&mut s.head);
            if toserver {
                self.request(&head[..end], sink);
            } else {
                self.response(&head[..end], sink);
            }
            // Keep the allocation for the next message.
            self.side[d].head = head;
            self.side[d].head.clear();
        }
        false
    }

    fn request(&mut self, head: &[u8], sink: &mut Sink<'_>) {
        // The request line is read leniently (method, first token of the target, last token as
        // the protocol), as servers and tshark do; headers go through httparse.
        let line_end = memmem::find(head, b"\r\n").unwrap_or(head.len());
        let line = &head[..line_end];
        let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            sink.events.push(AppEvent::Anomaly {
                app_proto: AppProto::Http,
                event: "request_line_invalid",
            });
            return;
        };
        let version = line
            .rsplit(|&b| b == b' ')
            .next()
            .filter(|v| v.starts_with(b"HTTP/"))
            .unwrap_or(b"HTTP/0.9");
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let rest = head.get(line_end + 2..).unwrap_or(&[]);
        let h: &[httparse::Header<'_>] = match httparse::parse_headers(rest, &mut hs) {
            Ok(httparse::Status::Complete((_, h))) => h,
            _ => {
                sink.events.push(AppEvent::Anomaly {
                    app_proto: AppProto::Http,
                    event: "request_header_invalid",
                });
                &[]
            }
        };
        let (hostname, http_port) = match header(h, "host").map(value) {
            Some(host) => match host.rsplit_once(':') {
                Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                    (Some(name.to_string()), port.parse().ok())
                }
                _ => (Some(host), None),
            },
            None => (None, None),
        };
        let method = String::from_utf8_lossy(method).into_owned();
        let ev = HttpEvent {
            tx_id: self.tx,
            hostname,
            http_port,
            url: value(target),
            protocol: String::from_utf8_lossy(version).into_owned(),
            http_user_agent: header(h, "user-agent").map(value),
            http_refer: header(h, "referer").map(value),
            xff: header(h, "x-forwarded-for").map(value),
            request_header_names: h.iter().map(|x| header_name(x.name)).collect(),
            http_method: method.clone(),
            ..HttpEvent::default()
        };
        self.tx += 1;
        self.side[0].body = body_of(h).unwrap_or(Body::None);
        self.side[0].count = 0;
        if self.pending.len() >= MAX_PENDING {
            // Unanswered requests beyond the bound are logged without a response.
            if let Some((old, _)) = self.pending.pop_front() {
                sink.events.push(AppEvent::Http(Box::new(old)));
            }
        }
        self.pending.push_back((ev, method == "HEAD"));
    }

    fn response(&mut self, head: &[u8], sink: &mut Sink<'_>) {
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut hs);
        match resp.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                sink.events.push(AppEvent::Anomaly {
                    app_proto: AppProto::Http,
                    event: "response_line_invalid",
                });
                return;
            }
        }
        let status = resp.code.unwrap_or(0);
        if (100..200).contains(&status) {
            return; // interim response: the final one follows
        }
        let h = &*resp.headers;
        let Some((mut ev, head_req)) = self.pending.pop_front() else {
            // A response with no request before it (libhtp's name for it).
            sink.events.push(AppEvent::Anomaly {
                app_proto: AppProto::Http,
                event: "unable_to_match_response_to_request",
            });
            self.side[1].body = body_of(h).unwrap_or(Body::None);
            self.side[1].count = 0;
            return;
        };
        ev.status = Some(status);
        ev.http_content_type = header(h, "content-type").map(|v| {
            let v = value(v);
            v.split(';').next().unwrap_or("").trim().to_string()
        });
        ev.response_header_names = h.iter().map(|x| header_name(x.name)).collect();
        if ev.protocol.is_empty() {
            ev.protocol = format!("HTTP/1.{}", resp.version.unwrap_or(1));
        }
        let no_body = head_req || status == 204 || status == 304;
        let body = if no_body {
            Body::None
        } else {
            body_of(h).unwrap_or(Body::UntilClose)
        };
        self.side[1].count = 0;
        self.side[1].body = body;
        if body == Body::None || body == Body::Length(0) {
            self.side[1].body = Body::None;
            sink.events.push(AppEvent::Http(Box::new(ev)));
        } else {
            self.current = Some(ev);
        }
    }

    /// Skip body bytes of side `d`; returns what is left of `data`.
    fn body<'a>(&mut self, d: usize, data: &'a [u8], sink: &mut Sink<'_>) -> &'a [u8] {
        let s = &mut self.side[d];
        let (used, done) = match &mut s.body {
            Body::None => (0, true),
            Body::UntilClose => (data.len(), false),
            Body::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                (n as usize, *left == 0)
            }
            Body::Chunked {
                left,
                line,
                trailer,
            } => {
                let mut i = 0;
                let mut done = false;
                while i < data.len() && !done {
                    match left {
                        Some(0) => {
                            // CRLF after chunk data.
                            if data[i] == b'\n' {
                                *left = None;
                            }
                            i += 1;
                        }
                        Some(n) => {
                            let k = (*n).min((data.len() - i) as u64);
                            *n -= k;
                            i += k as usize;
                            s.count += k;
                            if *n == 0 {
                                *left = Some(0);
                            }
                        }
                        None => {
                            // Size line (hex, optional extensions) or trailer lines.
                            let c = data[i];
                            i += 1;
                            if c == b'\n' {
                                if *trailer {
                                    if *line == 0 {
                                        done = true;
                                    }
                                    *line = 0;
                                } else {
                                    let size = std::mem::take(line);
                                    if size == 0 {
                                        *trailer = true;
                                    } else {
                                        *left = Some(u64::from(size));
                                    }
                                }
                            } else if *trailer {
                                if c != b'\r' {
                                    *line = line.saturating_add(1);
                                }
                            } else if let Some(v) = (c as char).to_digit(16) {
                                *line = line.saturating_mul(16).saturating_add(v as u16);
                            }
                        }
                    }
                }
                (i, done)
            }
        };
        if !matches!(s.body, Body::Chunked { .. }) {
            s.count += used as u64;
        }
        if done {
            s.body = Body::None;
            if d == 1
                && let Some(mut ev) = self.current.take()
            {
                ev.length = self.side[1].count;
                sink.events.push(AppEvent::Http(Box::new(ev)));
            }
        }
        &data[used..]
    }

    /// The connection ended: log responses cut short and requests never answered.
    pub fn finish(&mut self, sink: &mut Sink<'_>) {
        if let Some(mut ev) = self.current.take() {
            ev.length = self.side[1].count;
            sink.events.push(AppEvent::Http(Box::new(ev)));
        }
        for (ev, _) in self.pending.drain(..) {
            sink.events.push(AppEvent::Http(Box::new(ev)));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn run(req: &[u8], resp: &[u8]) -> Vec<AppEvent> {
        let mut evs = Vec::new();
        let mut s = HttpState::default();
        {
            let mut sink = Sink { events: &mut evs };
            s.input(true, req, &mut sink);
            s.input(false, resp, &mut sink);
            s.finish(&mut sink);
        }
        evs
    }

    #[test]
    fn pipelined_requests_pair_with_responses() {
        let evs = run(
            b"GET /a HTTP/1.1\r\nHost: ex.com:8080\r\n\r\nGET /b HTTP/1.1\r\nHost: ex.com\r\nUser-Agent: t\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/html; charset=x\r\n\r\nabcHTTP/1.1 404 NF\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n",
        );
        let h: Vec<&HttpEvent> = evs
            .iter()
            .filter_map(|e| {
                if let AppEvent::Http(h) = e {
                    Some(&**h)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].url.as_str(), h[0].status, h[0].length),
            ("/a", Some(200), 3)
        );
        assert_eq!(h[0].hostname.as_deref(), Some("ex.com"));
        assert_eq!(h[0].http_port, Some(8080));
        assert_eq!(h[0].http_content_type.as_deref(), Some("text/html"));
        assert_eq!(
            (h[1].url.as_str(), h[1].status, h[1].length),
            ("/b", Some(404), 4)
        );
        assert_eq!(h[1].http_user_agent.as_deref(), Some("t"));
    }

    #[test]
    fn request_split_anywhere_parses() {
        let req = b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n";
        for cut in 1..req.len() {
            let mut evs = Vec::new();
            let mut s = HttpState::default();
            let mut sink = Sink { events: &mut evs };
            s.input(true, &req[..cut], &mut sink);
            s.input(true, &req[cut..], &mut sink);
            s.finish(&mut sink);
            let AppEvent::Http(h) = &evs[0] else {
                panic!("{evs:?}")
            };
            assert_eq!(h.http_method, "OPTIONS");
        }
    }
}
