//! Talking to intelligence servers: MISP's REST API (`POST /attributes/restSearch` with
//! incremental `timestamp`/`last`, paging and `to_ids` filtering; `POST /sightings/add`) and
//! TAXII 2.1 collections (`GET …/objects/` with `added_after` and `next` paging). Every call
//! retries transport failures, 429 and 5xx with capped exponential backoff; an HTTP error is
//! reported with its status and the server's own message.

use serde_json::{Value, json};
use std::time::Duration;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: u64 = 512 << 20;
/// Most pages fetched in one pull (a server that never says "last page" is cut off).
pub const MAX_PAGES: u32 = 10_000;

/// Why a remote call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// The server answered with an error status; `message` is what it said.
    Http { status: u16, message: String },
    /// No answer: connection refused, timeout, TLS failure.
    Transport(String),
    /// An answer that is not what the protocol says.
    Protocol(String),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Http { status, message } => write!(f, "HTTP {status}: {message}"),
            RemoteError::Transport(m) => write!(f, "transport: {m}"),
            RemoteError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

impl std::error::Error for RemoteError {}

/// Retries with capped exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait before attempt `n` (1-based; attempt 1 does not wait).
    pub fn delay(&self, n: u32) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        let f = 1u32 << (n - 2).min(16);
        self.first.saturating_mul(f).min(self.max)
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout.saturating_mul(4))
        .user_agent(concat!("islet/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The server's message in an error body: MISP's `message`/`errors`, TAXII's `title` and
/// `description`, or the text itself.
fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let parts: Vec<String> = ["message", "title", "description", "errors", "name"]
            .iter()
            .filter_map(|k| match &v[*k] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(": ");
        }
    }
    body.chars()
        .take(300)
        .collect::<String>()
        .trim()
        .to_string()
}

fn read_body(r: ureq::Response) -> Result<(String, Option<String>), RemoteError> {
    use std::io::Read;
    let added_last = r.header("X-TAXII-Date-Added-Last").map(str::to_string);
    let mut s = String::new();
    r.into_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_string(&mut s)
        .map_err(|e| RemoteError::Transport(e.to_string()))?;
    Ok((s, added_last))
}

/// One request with retries. `send` builds and sends it; the answer is the body and the
/// TAXII `X-TAXII-Date-Added-Last` header.
fn call(
    retry: &Retry,
    sleep: &dyn Fn(Duration),
    send: &dyn Fn() -> Result<ureq::Response, Box<ureq::Error>>,
) -> Result<(String, Option<String>), RemoteError> {
    let mut last = RemoteError::Transport("no attempt".into());
    for n in 1..=retry.attempts.max(1) {
        sleep(retry.delay(n));
        match send().map_err(|e| *e) {
            Ok(r) => return read_body(r),
            Err(ureq::Error::Status(status, r)) => {
                let body = read_body(r).map(|b| b.0).unwrap_or_default();
                last = RemoteError::Http {
                    status,
                    message: server_message(&body),
                };
                // Client errors other than rate limiting will not get better.
                if status != 429 && status < 500 {
                    return Err(last);
                }
            }
            Err(ureq::Error::Transport(t)) => last = RemoteError::Transport(t.to_string()),
        }
    }
    Err(last)
}

/// What to pull from MISP.
#[derive(Debug, Clone, Default)]
pub struct MispQuery {
    /// Only attributes changed after this UNIX time (incremental pulls).
    pub timestamp: Option<u64>,
    /// Only attributes of events published in this window (`1d`, `12h`).
    pub last: Option<String>,
    /// Only attributes flagged for detection.
    pub to_ids: Option<bool>,
    /// Attribute types; empty for all.
    pub types: Vec<String>,
}

/// A MISP server.
#[derive(Debug, Clone)]
pub struct MispClient {
    pub base_url: String,
    key: String,
    pub page_size: u32,
    pub retry: Retry,
    agent: ureq::Agent,
}

impl MispClient {
    pub fn new(base_url: &str, key: &str) -> MispClient {
        MispClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            key: key.to_string(),
            page_size: 10_000,
            retry: Retry::default(),
            agent: agent(Duration::from_secs(10)),
        }
    }

    fn post(
        &self,
        path: &str,
        body: &Value,
        sleep: &dyn Fn(Duration),
    ) -> Result<String, RemoteError> {
        let url = format!("{}{path}", self.base_url);
        let text = body.to_string();
        call(&self.retry, sleep, &|| {
            self.agent
                .post(&url)
                // MISP takes the raw key, with no "Bearer".
                .set("Authorization", &self.key)
                .set("Accept", "application/json")
                .set("Content-Type", "application/json")
                .send_string(&text)
                .map_err(Box::new)
        })
        .map(|b| b.0)
    }

    /// `POST /attributes/restSearch`, every page. Returns the attributes (each naming its
    /// event) as one `{"response": {"Attribute": […]}}` document, and the newest attribute
    /// `timestamp` seen, for the next incremental pull.
    pub fn pull(
        &self,
        q: &MispQuery,
        sleep: &dyn Fn(Duration),
    ) -> Result<(Value, Option<u64>), RemoteError> {
        let mut all = Vec::new();
        let mut newest = None::<u64>;
        for page in 1..=MAX_PAGES {
            let mut body = json!({
                "returnFormat": "json",
                "page": page,
                "limit": self.page_size,
                "includeEventTags": true,
            });
            if let Some(t) = q.timestamp {
                body["timestamp"] = json!(t);
            }
            if let Some(l) = &q.last {
                body["last"] = json!(l);
            }
            if let Some(ids) = q.to_ids {
                body["to_ids"] = json!(u8::from(ids));
            }
            if !q.types.is_empty() {
                body["type"] = json!(q.types);
            }
            let text = self.post("/attributes/restSearch", &body, sleep)?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                RemoteError::Protocol(format!("restSearch answer is not JSON: {e}"))
            })?;
            let attrs = v["response"]["Attribute"].as_array().ok_or_else(|| {
                RemoteError::Protocol("restSearch answer has no response.Attribute".into())
            })?;
            for a in attrs {
                if let Some(t) = crate::misp::number(&a["timestamp"]) {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            let n = attrs.len();
            all.extend(attrs.iter().cloned());
            if n < self.page_size as usize {
                break;
            }
        }
        Ok((json!({"response": {"Attribute": all}}), newest))
    }

    /// `POST /sightings/add` for a batch of values seen at `timestamp`.
    pub fn add_sightings(
        &self,
        values: &[String],
        timestamp: u64,
        source: &str,
        sleep: &dyn Fn(Duration),
    ) -> Result<(), RemoteError> {
        let body = json!({"values": values, "timestamp": timestamp, "source": source});
        self.post("/sightings/add", &body, sleep).map(|_| ())
    }
}

/// A TAXII 2.1 collection.
#[derive(Debug, Clone)]
pub struct TaxiiClient {
    /// `https://host/api-root/collections/<id>/`.
    pub collection_url: String,
    auth: Option<(String, String)>,
    pub page_size: u32,
    pub retry: Retry,
    agent: ureq::Agent,
}

impl TaxiiClient {
    pub fn new(collection_url: &str, auth: Option<(String, String)>) -> TaxiiClient {
        let mut u = collection_url.to_string();
        if !u.ends_with('/') {
            u.push('/');
        }
        TaxiiClient {
            collection_url: u,
            auth,
            page_size: 1000,
            retry: Retry::default(),
            agent: agent(Duration::from_secs(10)),
        }
    }

    /// Every object added after `added_after`, as one STIX bundle, and the
    /// `X-TAXII-Date-Added-Last` to resume from.
    pub fn poll(
        &self,
        added_after: Option<&str>,
        sleep: &dyn Fn(Duration),
    ) -> Result<(Value, Option<String>), RemoteError> {
        let mut objects = Vec::new();
        let mut next: Option<String> = None;
        let mut resume = added_after.map(str::to_string);
        for _ in 0..MAX_PAGES {
            let url = format!("{}objects/", self.collection_url);
            let (text, added_last) = call(&self.retry, sleep, &|| {
                let mut r = self
                    .agent
                    .get(&url)
                    .set("Accept", "application/taxii+json;version=2.1")
                    .query("limit", &self.page_size.to_string());
                if let Some(a) = added_after {
                    r = r.query("added_after", a);
                }
                if let Some(n) = &next {
                    r = r.query("next", n);
                }
                if let Some((u, p)) = &self.auth {
                    r = r.set("Authorization", &basic(u, p));
                }
                r.call().map_err(Box::new)
            })?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| RemoteError::Protocol(format!("TAXII envelope is not JSON: {e}")))?;
            if let Some(o) = v["objects"].as_array() {
                objects.extend(o.iter().cloned());
            }
            if added_last.is_some() {
                resume = added_last;
            }
            match (v["more"].as_bool(), v["next"].as_str()) {
                (Some(true), Some(n)) => next = Some(n.to_string()),
                (Some(true), None) => {
                    return Err(RemoteError::Protocol(
                        "envelope says more but gives no next".into(),
                    ));
                }
                _ => break,
            }
        }
        Ok((
            json!({"type": "bundle", "id": "bundle--taxii-poll", "objects": objects}),
            resume,
        ))
    }
}

/// `Basic base64(user:pass)`, RFC 7617.
fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let r = Retry {
            attempts: 6,
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let d: Vec<u64> = (1..=6).map(|n| r.delay(n).as_millis() as u64).collect();
        assert_eq!(d, vec![0, 100, 200, 400, 500, 500]);
    }

    #[test]
    fn basic_auth_is_rfc7617() {
        // RFC 7617 section 2's example.
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic("a", "b"), "Basic YTpi");
    }

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(
            server_message(
                r#"{"name":"Authentication failed.","message":"Authentication failed. Please make sure you pass the API key","url":"/attributes/restSearch"}"#
            ),
            "Authentication failed. Please make sure you pass the API key: Authentication failed."
        );
        assert_eq!(server_message("plain"), "plain");
    }
}
