//! Who is asking: a bearer token or the UI's cookie, checked against the store's tokens
//! (throttled per token id and per peer), and the role a route needs. Writes carried by a
//! cookie must come from the console's own pages.

use crate::App;
use crate::auth::Principal;
use crate::http::ApiError;
use axum::http::{HeaderMap, Method, StatusCode, header};
use islet_store::{Role, StoreError};

/// Who is asking, if allowed `need`.
pub fn authorize(
    app: &App,
    headers: &HeaderMap,
    method: &Method,
    need: Role,
) -> Result<Principal, ApiError> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim));
    let cookie = cookie_token(headers);
    let token = match (bearer, &cookie) {
        (Some(t), _) => t.to_string(),
        (None, Some(c)) => {
            // A cookie rides along on any request the browser makes: writes must come from
            // our own pages.
            if method != Method::GET && !same_origin(headers) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cross-site request refused",
                ));
            }
            c.clone()
        }
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a token is required (Authorization: Bearer …)",
            ));
        }
    };
    let p = verify(app, &token, headers)?;
    if p.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the {} role is required (this token is {})",
                need.name(),
                p.role.name()
            ),
        ));
    }
    Ok(p)
}

/// The peer's address, as the listener set it.
pub fn peer_of(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    headers
        .get(crate::listen::PEER_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Check a presented token: 401 when unknown, 429 when its id or the peer is throttled.
pub fn verify(app: &App, token: &str, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let peer = peer_of(headers);
    let r = app
        .with_reader(|s| Ok::<_, StoreError>(app.verifier.check_from(token, s, peer)))
        .unwrap_or(Err(crate::auth::Denied::Unknown));
    r.map_err(|d| match d {
        crate::auth::Denied::Unknown => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token")
        }
        crate::auth::Denied::Throttled(w) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed tokens from this address or for this token id",
            );
            e.retry_after = Some(w.as_secs().max(1));
            e
        }
    })
}

/// The token in the UI's cookie.
pub fn cookie_token(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("islet_token="))
        .map(str::to_string)
        .next()
}

/// The request came from our own pages (Fetch metadata, else Origin against Host).
pub fn same_origin(h: &HeaderMap) -> bool {
    if let Some(s) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return s == "same-origin";
    }
    match (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(o), Some(host)) => o.split_once("://").is_some_and(|(_, rest)| rest == host),
        _ => false,
    }
}

/// An extractor per role: the request's principal when its token holds at least that role,
/// else the route answers with [`authorize`]'s error before anything else of the request is
/// read (query, path or body).
macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl axum::extract::FromRequestParts<std::sync::Arc<App>> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                app: &std::sync::Arc<App>,
            ) -> Result<Self, ApiError> {
                authorize(app, &parts.headers, &parts.method, $role).map($name)
            }
        }
    };
}

role_extractor!(
    /// Anyone with a valid token: reads.
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// An analyst or admin: case work.
    Analyst,
    Role::Analyst
);
role_extractor!(
    /// An admin: tokens and the audit log.
    Admin,
    Role::Admin
);
