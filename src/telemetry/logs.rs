//! Log records over OTLP: with `OTEL_LOGS_EXPORTER=otlp`, every line the process logs
//! (still written to stderr as well) is queued as a LogRecord of the service it concerns,
//! with the trace of the request it was logged in, for the log exporter's thread.

use std::cell::Cell;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::export::{Exporter, Logs, Stats};
use super::otlp::{LogRecord, LogTrace};
use super::span;
use crate::role::Role;

/// The process's log export, when on: one, as the `log` facade is one per process (with
/// several shops in one process, the one started last).
static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);

struct Sink {
    exporter: Arc<Exporter<Logs>>,
    /// The services of the exporter's resources, in its order.
    roles: Vec<Role>,
    /// The resource of lines no role can be named for (the process's own).
    process: usize,
}

thread_local! {
    /// The role whose server this thread works for (every worker thread serves one
    /// role), noted with each request it serves: the request line is logged after the
    /// request's own scope has ended.
    static THREAD_ROLE: Cell<Option<Role>> = const { Cell::new(None) };
    /// Set on the exporters' own threads: what they log goes to stderr only.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Log export while it lives: started by `Telemetry::start`, ended when dropped.
pub struct Installed {
    sink: Arc<Sink>,
}

impl Installed {
    /// Makes `exporter` the process's log export; `roles` name its first resources, and
    /// `process` is the index of the resource for lines of no role.
    pub(super) fn install(exporter: Arc<Exporter<Logs>>, roles: Vec<Role>, process: usize) -> Self {
        let sink = Arc::new(Sink {
            exporter,
            roles,
            process,
        });
        *SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(sink.clone());
        Installed { sink }
    }

    /// What became of the log records.
    pub fn stats(&self) -> &Stats {
        &self.sink.exporter.stats
    }

    pub(super) fn stats_handle(&self) -> Arc<Stats> {
        self.sink.exporter.stats.clone()
    }

    pub(super) fn exporter(&self) -> &Exporter<Logs> {
        &self.sink.exporter
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
        if sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.sink)) {
            *sink = None;
        }
    }
}

/// Marks the calling thread as an exporter's: nothing it logs is exported, so a failing
/// export cannot feed itself with its own warnings.
pub(super) fn quiet_this_thread() {
    let _ = QUIET.try_with(|quiet| quiet.set(true));
}

/// Notes that the calling thread serves `role`.
pub(super) fn serving(role: Role) {
    let _ = THREAD_ROLE.try_with(|r| r.set(Some(role)));
}

/// Queues `line` (one line as the logger writes it, without its newline), logged at
/// `level`, when log export is on. Never waits: a full queue drops the record (counted).
pub fn export(level: log::Level, line: &str) {
    if QUIET.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    let Some(sink) = sink.as_ref() else {
        return;
    };
    // Inside a request: its trace and role, as the logger appends them to the line.
    // After it (the request line, which names its own ids): the ids the line names.
    let (trace, role) = span::with_current(|c| {
        let trace = LogTrace {
            trace_id: c.trace.trace_id,
            span_id: c.trace.span_id,
            flags: Some(c.trace.flags),
        };
        (Some(trace), c.instruments.tracer.role)
    })
    .unwrap_or_else(|| (ids_in(line), None));
    let role = role.or_else(|| THREAD_ROLE.try_with(Cell::get).ok().flatten());
    let resource = role
        .and_then(|role| sink.roles.iter().position(|r| *r == role))
        .unwrap_or(sink.process);
    let (severity_number, severity_text) = severity(level);
    sink.exporter.send(
        resource,
        &LogRecord {
            time_unix_nanos: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            severity_number,
            severity_text,
            body: line,
            trace,
        },
    );
}

/// OpenTelemetry's severity number and text of a level.
fn severity(level: log::Level) -> (u8, &'static str) {
    match level {
        log::Level::Error => (17, "ERROR"),
        log::Level::Warn => (13, "WARN"),
        log::Level::Info => (9, "INFO"),
        log::Level::Debug => (5, "DEBUG"),
        log::Level::Trace => (1, "TRACE"),
    }
}

/// The `trace_id` and `span_id` fields of a logfmt line, when it has both.
fn ids_in(line: &str) -> Option<LogTrace> {
    let mut trace_id = None;
    let mut span_id = None;
    for (key, value) in bare_fields(line) {
        match key {
            "trace_id" => trace_id = hex_bytes::<16>(value),
            "span_id" => span_id = hex_bytes::<8>(value),
            _ => {}
        }
    }
    Some(LogTrace {
        trace_id: trace_id?,
        span_id: span_id?,
        flags: None,
    })
}

/// The `key=value` fields of a logfmt line whose values are bare words. A quoted value
/// is skipped whole, so no text a client sent (a path, always quoted when it holds a
/// space or `=`) can pose as a field.
fn bare_fields(line: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = line;
    std::iter::from_fn(move || loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return None;
        }
        let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        let after = &rest[key_end..];
        let Some(value) = after.strip_prefix('=') else {
            rest = after;
            continue;
        };
        if let Some(quoted) = value.strip_prefix('"') {
            rest = skip_quoted(quoted);
            continue;
        }
        let end = value.find(' ').unwrap_or(value.len());
        rest = &value[end..];
        return Some((key, &value[..end]));
    })
}

/// What follows a quoted value whose opening quote is already consumed.
fn skip_quoted(text: &str) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return &text[i + 1..],
            _ => {}
        }
    }
    ""
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn the_request_line_gives_its_trace_and_span() {
        let line = format!(
            "ts=1 level=info msg=request method=GET path=/a route=/a status=200 duration_ms=1.000 trace_id={TRACE} span_id={SPAN}"
        );
        let trace = ids_in(&line).unwrap();
        assert_eq!(hex::encode(trace.trace_id), TRACE);
        assert_eq!(hex::encode(trace.span_id), SPAN);
        assert_eq!(trace.flags, None);
        assert!(ids_in("ts=1 level=info msg=\"serving\" service=cart").is_none());
        assert!(ids_in(&format!("msg=x trace_id={TRACE}")).is_none());
    }

    #[test]
    fn quoted_values_cannot_pose_as_ids() {
        let forged = format!(
            "msg=request path=\"/x trace_id={TRACE} span_id={SPAN}\" error=\"a \\\" trace_id={TRACE} span_id={SPAN}\""
        );
        assert!(ids_in(&forged).is_none(), "{forged}");
        let fields: Vec<_> = bare_fields("msg=request a=\"q \\\"x=y\\\"\" b=2 bare c=3").collect();
        assert_eq!(fields, [("msg", "request"), ("b", "2"), ("c", "3")]);
    }

    #[test]
    fn levels_map_to_opentelemetry_severities() {
        assert_eq!(severity(log::Level::Info), (9, "INFO"));
        assert_eq!(severity(log::Level::Warn), (13, "WARN"));
        assert_eq!(severity(log::Level::Error), (17, "ERROR"));
        assert_eq!(severity(log::Level::Debug).0, 5);
        assert_eq!(severity(log::Level::Trace).0, 1);
    }
}
