//! What every handler shares: the error every route answers with (`{"error", "field"}` and
//! its status) and the decoding of query strings, JSON bodies and path ids that names the
//! failing field, as functions and as extractors ([`Q`], [`JsonBody`], [`PathId`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use islet_store::StoreError;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// An API error: status, message, and the field at fault.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status: status.as_u16(),
            error: error.into(),
            field: None,
            retry_after: None,
        }
    }
    pub fn field(status: StatusCode, field: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            status: status.as_u16(),
            error: error.into(),
            field: Some(field.to_string()),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        match self.retry_after {
            Some(s) => (
                code,
                [(axum::http::header::RETRY_AFTER, s.to_string())],
                Json(self),
            )
                .into_response(),
            None => (code, Json(self)).into_response(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            StoreError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        }
    }
}

/// Decode a query string, naming the field that failed.
pub fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    let q = uri.query().unwrap_or("");
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::field(
            StatusCode::BAD_REQUEST,
            if path == "." { "query" } else { &path },
            e.into_inner().to_string(),
        )
    })
}

/// Decode a JSON body, naming the field that failed (a body over the bound is a 413).
pub fn body<T: DeserializeOwned>(b: &Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let b = b.as_ref().map_err(|e| {
        ApiError::field(
            StatusCode::from_u16(e.status().as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
            "body",
            format!("{} (at most {} bytes)", e.body_text(), crate::MAX_BODY),
        )
    })?;
    let mut de = serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::field(
            StatusCode::BAD_REQUEST,
            if path == "." { "body" } else { &path },
            e.into_inner().to_string(),
        )
    })
}

/// A query string decoded by [`query`] (400 naming the field on failure).
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        query(&parts.uri).map(Q)
    }
}

/// A JSON body decoded by [`body`] (400 naming the field, 413 over the bound).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let b = Bytes::from_request(req, state).await;
        body(&b).map(JsonBody)
    }
}

/// A positive integer id in the path (400 naming `id` otherwise).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(s) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, "id", e.body_text()))?;
        s.parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(PathId)
            .ok_or_else(|| {
                ApiError::field(StatusCode::BAD_REQUEST, "id", "id is a positive integer")
            })
    }
}
