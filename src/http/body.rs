//! Reading request bodies within the 64 KiB limit and a time limit, and parsing them as
//! strict JSON: one reading that the web-gateway and every role share, so that no body
//! means one thing at the trust boundary and another behind it.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use actix_web::web::{Bytes, Payload};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::MAX_BODY_BYTES;
use super::ApiError;

/// How long a client may take to send a request's head, and again its body: a client
/// sending a byte now and then holds a connection of the server's, nothing more.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole body: 413 past the size limit, 408 when it does not arrive in time.
pub async fn read(payload: Payload) -> Result<Bytes, ApiError> {
    let reading = payload.to_bytes_limited(MAX_BODY_BYTES);
    match actix_web::rt::time::timeout(CLIENT_REQUEST_TIMEOUT, reading).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(e))) => Err(ApiError::Validation(format!(
            "Could not read the body: {e}"
        ))),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "The body did not arrive within {} s",
            CLIENT_REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

pub fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("Body is larger than {MAX_BODY_BYTES} bytes"))
}

/// What a strict reading found at the top of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    Object,
    Other,
}

/// A JSON document read strictly: no key twice in one object (at any depth) and only
/// numbers that fit a float. A lenient reader takes the last of two keys, or skips a
/// number it cannot hold, and two lenient readers may not agree on what a body says.
struct Strict(Top);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict(Top::Other))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict(Top::Other))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict(Top::Other))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        if v.is_finite() {
            Ok(Strict(Top::Other))
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict(Top::Other))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Top::Other))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict(Top::Other))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            keys.insert(key);
            map.next_value::<Strict>()?;
        }
        Ok(Strict(Top::Object))
    }
}

/// Maps a JSON error to a 400 that says what was wrong.
fn invalid(bytes: &[u8], e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::Validation(format!("Invalid body: {e}")),
        Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
            ApiError::Validation("A JSON body is required".into())
        }
        _ => ApiError::Validation(format!("Malformed JSON: {e}")),
    }
}

/// Parses `bytes` strictly as `T`; malformed or ambiguous JSON and missing or mistyped
/// fields are 400s that say what was wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_strict(bytes).map(|(value, _)| value)
}

/// [`parse`], for bodies that must be a JSON object (`{...}`; a struct would also take
/// an array of its fields in order, which no client of the shop sends).
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match parse_strict(bytes)? {
        (value, Top::Object) => Ok(value),
        (_, Top::Other) => Err(ApiError::Validation(
            "Invalid body: expected a JSON object".into(),
        )),
    }
}

fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Top), ApiError> {
    let Strict(top) = serde_json::from_slice(bytes).map_err(|e| invalid(bytes, e))?;
    let value = serde_json::from_slice(bytes).map_err(|e| invalid(bytes, e))?;
    Ok((value, top))
}

/// Reads and parses a required JSON body.
pub async fn json<T: DeserializeOwned>(payload: Payload) -> Result<T, ApiError> {
    parse(&read(payload).await?)
}

/// Reads and parses a required JSON object.
pub async fn object<T: DeserializeOwned>(payload: Payload) -> Result<T, ApiError> {
    parse_object(&read(payload).await?)
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
    fn ambiguous_or_unreadable_documents_are_refused_whole() {
        let reason = |bytes: &[u8]| parse::<Body>(bytes).unwrap_err().to_string();
        assert!(reason(br#"{"session_id": "a", "session_id": "b"}"#).contains("twice"));
        assert!(reason(br#"{"session_id": "a", "x": {"k": 1, "k": 2}}"#).contains("twice"));
        assert!(reason(br#"{"session_id": "a", "x": 1e999}"#).contains("out of range"));
        assert!(reason(br#"{"session_id": "a", "x": [-1e400]}"#).contains("out of range"));
        assert!(reason(br#"{"session_id": "a"} {}"#).contains("trailing"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse::<serde_json::Value>(deep.as_bytes()).is_err());
        assert!(parse::<Body>(br#"{"session_id": "a", "x": [1, {"y": null}]}"#).is_ok());
    }

    #[test]
    fn objects_are_objects() {
        assert!(
            parse::<Body>(br#"["victim"]"#).is_ok(),
            "serde's struct-as-array"
        );
        let e = parse_object::<Body>(br#"["victim"]"#).unwrap_err();
        assert!(e.to_string().contains("object"), "{e}");
        assert!(parse_object::<Body>(br#"{"session_id": "a"}"#).is_ok());
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
