//! OTLP export requests in protobuf (opentelemetry/proto/collector/trace/v1 and
//! .../logs/v1), written by hand: the few messages the shop sends do not need a protobuf
//! code generator.

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

/// One resource (a service) and its entries (spans or log records), already encoded by
/// `encode_span` or `encode_log_record`.
pub struct ResourceEntries<'a> {
    pub resource: &'a [(String, Value)],
    pub entries: &'a [u8],
}

/// The instrumentation scope every span and log record is reported under.
const SCOPE: &str = "ecommerce";

/// One log line as a `LogRecord`.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    pub time_unix_nanos: u64,
    /// OpenTelemetry's `SeverityNumber` (9 info, 13 warn, 17 error ...) and its text.
    pub severity_number: u8,
    pub severity_text: &'static str,
    /// The line as written.
    pub body: &'a str,
    /// The trace and span of the request it was logged in, and the trace flags when known.
    pub trace: Option<LogTrace>,
}

/// The request a log record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTrace {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: Option<u8>,
}

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

/// Appends `record` to `out` as one entry of `ScopeLogs.log_records`, ready for
/// `export_request`.
pub fn encode_log_record(out: &mut Vec<u8>, record: &LogRecord<'_>) {
    let mut w = Writer {
        buf: std::mem::take(out),
    };
    w.message(2, |w| write_log_record(w, record));
    *out = w.buf;
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }`, or
/// `ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1 }`: the two are
/// the same on the wire but for their innermost entries, so one writer serves both.
pub fn export_request(resources: &[ResourceEntries<'_>]) -> Vec<u8> {
    let mut w = Writer::default();
    for group in resources {
        // ResourceSpans / ResourceLogs { Resource resource = 1;
        //   repeated ScopeSpans scope_spans / ScopeLogs scope_logs = 2 }
        w.message(1, |w| {
            // Resource { repeated KeyValue attributes = 1 }
            w.message(1, |w| {
                for (key, value) in group.resource {
                    w.attribute(1, key, value);
                }
            });
            // ScopeSpans / ScopeLogs { InstrumentationScope scope = 1;
            //   repeated Span spans / LogRecord log_records = 2 }
            w.message(2, |w| {
                w.message(1, |w| {
                    w.string(1, SCOPE);
                    w.string(2, env!("CARGO_PKG_VERSION"));
                });
                w.buf.extend_from_slice(group.entries);
            });
        });
    }
    w.into_bytes()
}

/// `LogRecord`: time_unix_nano = 1, severity_number = 2, severity_text = 3, body = 5,
/// flags = 8, trace_id = 9, span_id = 10, observed_time_unix_nano = 11.
fn write_log_record(w: &mut Writer, record: &LogRecord<'_>) {
    w.fixed64(1, record.time_unix_nanos);
    w.uint(2, u64::from(record.severity_number));
    w.string(3, record.severity_text);
    w.message(5, |w| w.string(1, record.body));
    if let Some(trace) = &record.trace {
        if let Some(flags) = trace.flags {
            w.key(8, 5);
            w.buf.extend_from_slice(&u32::from(flags).to_le_bytes());
        }
        w.bytes(9, &trace.trace_id);
        w.bytes(10, &trace.span_id);
    }
    w.fixed64(11, record.time_unix_nanos);
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
    fn a_log_record_carries_its_severity_body_and_trace() {
        let record = LogRecord {
            time_unix_nanos: 7,
            severity_number: 9,
            severity_text: "INFO",
            body: "msg=hi",
            trace: Some(LogTrace {
                trace_id: [1; 16],
                span_id: [2; 8],
                flags: Some(1),
            }),
        };
        let mut out = Vec::new();
        encode_log_record(&mut out, &record);
        let mut expected = vec![0x12, 69];
        expected.push(0x09);
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 9, 0x1a, 4]);
        expected.extend_from_slice(b"INFO");
        expected.extend_from_slice(&[0x2a, 8, 0x0a, 6]);
        expected.extend_from_slice(b"msg=hi");
        expected.extend_from_slice(&[0x45, 1, 0, 0, 0, 0x4a, 16]);
        expected.extend_from_slice(&[1; 16]);
        expected.extend_from_slice(&[0x52, 8]);
        expected.extend_from_slice(&[2; 8]);
        expected.push(0x59);
        expected.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(out, expected);
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
