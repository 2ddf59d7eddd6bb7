//! Reading request bodies within the 64 KiB limit and parsing them as JSON.

use actix_web::web::{Bytes, Payload};
use serde::de::DeserializeOwned;

use super::error::MAX_BODY_BYTES;
use super::ApiError;

/// The whole body, or 413 past the limit.
pub async fn read(payload: Payload) -> Result<Bytes, ApiError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::Validation(format!(
            "Could not read the body: {e}"
        ))),
        Err(_) => Err(too_large()),
    }
}

pub fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("Body is larger than {MAX_BODY_BYTES} bytes"))
}

/// Parses `bytes` as `T`; malformed JSON and missing or mistyped fields are 400s that
/// say what was wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::Validation(format!("Invalid body: {e}")),
            Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
                ApiError::Validation("A JSON body is required".into())
            }
            _ => ApiError::Validation(format!("Malformed JSON: {e}")),
        }
    })
}

/// Reads and parses a required JSON body.
pub async fn json<T: DeserializeOwned>(payload: Payload) -> Result<T, ApiError> {
    parse(&read(payload).await?)
}

/// Reads and parses a JSON body that may be absent (empty).
pub async fn optional_json<T: DeserializeOwned>(payload: Payload) -> Result<Option<T>, ApiError> {
    let bytes = read(payload).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        session_id: String,
    }

    #[test]
    fn parse_errors_say_what_was_wrong() {
        let reason = |bytes: &[u8]| parse::<Body>(bytes).unwrap_err().to_string();
        assert!(reason(b"{").starts_with("Malformed JSON"));
        assert!(reason(b"").contains("required"));
        assert!(reason(b"{}").contains("missing field `session_id`"));
        assert!(reason(br#"{"session_id": 5}"#).contains("invalid type"));
    }
}
