//! What every handler shares: the error every route answers with (`{"error", "field"}` and
//! its status) and the decoding of query strings and JSON bodies that names the failing field.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
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
