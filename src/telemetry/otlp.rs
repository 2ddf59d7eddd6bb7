//! OTLP trace export requests in protobuf (opentelemetry/proto/collector/trace/v1), written
//! by hand: the few messages the shop sends do not need a protobuf code generator.

use super::span::{Kind, SpanData, Value};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// A protobuf message being written; nested messages are length-prefixed in place.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn uint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    /// A nested message: its key, a one-byte length, the body, then the length patched
    /// in (moving the body only when it is 128 bytes or more, and so needs a longer one).
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.key(field, LEN);
        self.buf.push(0);
        let start = self.buf.len();
        body(self);
        let len = self.buf.len() - start;
        if len < 0x80 {
            self.buf[start - 1] = len as u8;
            return;
        }
        let mut prefix = [0u8; 10];
        let (mut rest, mut n) = (len as u64, 0);
        while rest >= 0x80 {
            prefix[n] = rest as u8 | 0x80;
            rest >>= 7;
            n += 1;
        }
        prefix[n] = rest as u8;
        self.buf[start - 1] = prefix[0];
        self.buf.splice(start..start, prefix[1..=n].iter().copied());
    }

    /// `KeyValue { key = 1; AnyValue value = 2 }`.
    fn attribute(&mut self, field: u32, key: &str, value: &Value) {
        self.message(field, |w| {
            w.string(1, key);
            w.message(2, |w| w.any_value(value));
        });
    }

    /// `AnyValue { string_value = 1; bool_value = 2; int_value = 3; array_value = 5 }`.
    fn any_value(&mut self, value: &Value) {
        match value {
            Value::Str(s) => self.string(1, s),
            Value::Bool(b) => self.uint(2, u64::from(*b)),
            Value::Int(i) => self.uint(3, *i as u64),
            Value::Strs(items) => self.message(5, |w| {
                for item in items {
                    // ArrayValue { repeated AnyValue values = 1 }
                    w.message(1, |w| w.string(1, item));
                }
            }),
        }
    }
}

/// One resource (a service) and its spans, already encoded by `encode_span`.
pub struct ResourceSpans<'a> {
    pub resource: &'a [(String, Value)],
    pub spans: &'a [u8],
}

/// The instrumentation scope every span is reported under.
const SCOPE: &str = "ecommerce";

/// Appends `span` to `out` as one entry of `ScopeSpans.spans`, ready for
/// `export_request`: spans are encoded where they end, so the export thread only
/// concatenates them.
pub fn encode_span(out: &mut Vec<u8>, span: &SpanData) {
    let mut w = Writer {
        buf: std::mem::take(out),
    };
    w.message(2, |w| write_span(w, span));
    *out = w.buf;
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }`.
pub fn export_request(resources: &[ResourceSpans<'_>]) -> Vec<u8> {
    let mut w = Writer::default();
    for rs in resources {
        // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2 }
        w.message(1, |w| {
            // Resource { repeated KeyValue attributes = 1 }
            w.message(1, |w| {
                for (key, value) in rs.resource {
                    w.attribute(1, key, value);
                }
            });
            // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2 }
            w.message(2, |w| {
                w.message(1, |w| {
                    w.string(1, SCOPE);
                    w.string(2, env!("CARGO_PKG_VERSION"));
                });
                w.buf.extend_from_slice(rs.spans);
            });
        });
    }
    w.into_bytes()
}

/// `Span`: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6,
/// start_time_unix_nano = 7, end_time_unix_nano = 8, attributes = 9, status = 15,
/// flags = 16.
fn write_span(w: &mut Writer, span: &SpanData) {
    w.bytes(1, &span.trace_id);
    w.bytes(2, &span.span_id);
    if let Some(parent) = &span.parent_span_id {
        w.bytes(4, parent);
    }
    w.string(5, &span.name);
    w.uint(
        6,
        match span.kind {
            Kind::Server => 2,
            Kind::Client => 3,
        },
    );
    w.fixed64(7, span.start_unix_nanos);
    w.fixed64(8, span.end_unix_nanos);
    for (key, value) in &span.attributes {
        w.attribute(9, key, value);
    }
    // Status { string message = 2; StatusCode code = 3 } (1 ok, 2 error); unset if absent.
    if let Some(message) = &span.error {
        w.message(15, |w| {
            w.string(2, message);
            w.uint(3, 2);
        });
    }
    // SpanFlags: the W3C trace flags, and that the parent's remoteness is known.
    w.key(16, 5);
    let remote_known = 0x100u32 | if span.parent_is_remote { 0x200 } else { 0 };
    w.buf
        .extend_from_slice(&(u32::from(span.flags) | remote_known).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_nested_lengths_follow_the_wire_format() {
        let mut w = Writer::default();
        w.uint(1, 300);
        assert_eq!(w.buf, [0x08, 0xac, 0x02]);
        // Nested lengths of one, two and three bytes, the body kept whole after them.
        for (len, prefix) in [
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (200, vec![0xc8, 0x01]),
            (20_000, vec![0xa0, 0x9c, 0x01]),
        ] {
            let mut w = Writer::default();
            w.message(2, |w| w.buf.extend_from_slice(&vec![7u8; len]));
            assert_eq!(w.buf[0], 0x12);
            assert_eq!(&w.buf[1..1 + prefix.len()], &prefix[..], "{len}");
            assert_eq!(w.buf.len(), 1 + prefix.len() + len);
            assert!(w.buf[1 + prefix.len()..].iter().all(|b| *b == 7));
        }
    }

    #[test]
    fn attributes_encode_as_key_values() {
        let mut w = Writer::default();
        w.attribute(9, "a", &Value::Int(-1));
        // KeyValue { key "a", value AnyValue { int_value -1 (ten bytes) } }
        let mut expected = vec![0x4a, 16, 0x0a, 1, b'a', 0x12, 11, 0x18];
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        assert_eq!(w.buf, expected);
    }
}
