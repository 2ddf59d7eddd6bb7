//! W3C trace context and baggage: read from every request, carried on every outgoing call.

use actix_web::http::header::{HeaderMap, HeaderValue};
use rand::RngCore;

pub const TRACEPARENT: &str = "traceparent";
pub const BAGGAGE: &str = "baggage";

/// The most baggage carried on (the W3C limit); more is dropped whole.
const MAX_BAGGAGE: usize = 8192;

/// The trace a request belongs to and the span that serving it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, when the request arrived with a valid `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    pub flags: u8,
}

impl TraceContext {
    /// Continues the caller's trace, or starts a new (sampled) one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let mut rng = rand::thread_rng();
        let span_id = random_nonzero::<8>(&mut rng);
        match parent {
            Some((trace_id, parent_span, flags)) => TraceContext {
                trace_id,
                span_id,
                parent_span_id: Some(parent_span),
                flags,
            },
            None => TraceContext {
                trace_id: random_nonzero::<16>(&mut rng),
                span_id,
                parent_span_id: None,
                flags: 1,
            },
        }
    }

    /// A fresh span id.
    pub fn new_span_id() -> [u8; 8] {
        random_nonzero::<8>(&mut rand::thread_rng())
    }

    /// The context of a call made as span `span_id` of this trace.
    pub fn child(&self, span_id: [u8; 8]) -> Self {
        TraceContext {
            span_id,
            parent_span_id: Some(self.span_id),
            ..*self
        }
    }

    /// The `traceparent` value for calls made while serving this request.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }
}

/// The request's `baggage` (all its headers joined), to pass on; none when it is over the
/// W3C size limit or not text.
pub fn baggage(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(BAGGAGE);
    let first = values.next()?;
    let joined = match values.next() {
        None => first.clone(),
        Some(second) => {
            let mut text = first.to_str().ok()?.to_string();
            for value in std::iter::once(second).chain(values) {
                text.push(',');
                text.push_str(value.to_str().ok()?);
            }
            HeaderValue::from_str(&text).ok()?
        }
    };
    (joined.len() <= MAX_BAGGAGE && joined.to_str().is_ok()).then_some(joined)
}

/// The value of baggage entry `key` (`key=value;properties`), percent-decoded.
pub fn baggage_entry(baggage: &HeaderValue, key: &str) -> Option<String> {
    baggage.to_str().ok()?.split(',').find_map(|member| {
        let (k, rest) = member.split_once('=')?;
        (k.trim() == key).then(|| {
            let value = rest.split(';').next().unwrap_or_default().trim();
            crate::domain::percent_decode(value).into_owned()
        })
    })
}

fn random_nonzero<const N: usize>(rng: &mut impl RngCore) -> [u8; N] {
    loop {
        let mut bytes = [0u8; N];
        rng.fill_bytes(&mut bytes);
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>`; all-zero ids are invalid per the W3C spec.
fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    hex::decode_to_slice(span, &mut span_id).ok()?;
    let flags = u8::from_str_radix(flags.get(..2)?, 16).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some((trace_id, span_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(traceparent: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(TRACEPARENT),
            HeaderValue::from_str(traceparent).unwrap(),
        );
        map
    }

    #[test]
    fn continues_a_valid_trace() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::from_headers(&headers(incoming));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            ctx.parent_span_id,
            Some(*b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7")
        );
        assert_ne!(ctx.span_id_hex(), "00f067aa0ba902b7");
        let outgoing = ctx.traceparent();
        assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(outgoing.ends_with("-01"));
    }

    #[test]
    fn baggage_is_joined_bounded_and_readable() {
        let mut map = HeaderMap::new();
        let name = HeaderName::from_static(BAGGAGE);
        map.append(
            name.clone(),
            HeaderValue::from_static("synthetic_request=true"),
        );
        map.append(name.clone(), HeaderValue::from_static("user=a%20b;ttl=3"));
        let joined = baggage(&map).unwrap();
        assert_eq!(joined, "synthetic_request=true,user=a%20b;ttl=3");
        assert_eq!(baggage_entry(&joined, "user").as_deref(), Some("a b"));
        assert_eq!(
            baggage_entry(&joined, "synthetic_request").as_deref(),
            Some("true")
        );
        assert_eq!(baggage_entry(&joined, "missing"), None);
        let mut huge = HeaderMap::new();
        huge.insert(name, HeaderValue::from_str(&"k=v,".repeat(3000)).unwrap());
        assert!(baggage(&huge).is_none());
    }

    #[test]
    fn children_keep_the_trace_and_name_their_parent() {
        let ctx = TraceContext::from_headers(&HeaderMap::new());
        let child = ctx.child([7; 8]);
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_eq!(child.parent_span_id, Some(ctx.span_id));
        assert!(child.traceparent().contains("-0707070707070707-"));
    }

    #[test]
    fn starts_a_new_trace_on_garbage() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            let ctx = TraceContext::from_headers(&headers(bad));
            assert_eq!(ctx.parent_span_id, None, "{bad:?}");
            assert_ne!(ctx.trace_id, [0; 16]);
        }
    }
}
