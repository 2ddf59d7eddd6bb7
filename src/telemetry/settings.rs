//! Trace and log export settings, from the standard OpenTelemetry environment variables.

use std::time::Duration;

use crate::domain::percent_decode;
use crate::domain::Secret;

/// Where and how one signal (spans, or log records) is exported: OTLP over HTTP (or
/// HTTPS) with protobuf bodies.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// The signal's URL, e.g. `http://collector:4318/v1/traces` or `.../v1/logs`.
    pub endpoint: String,
    /// Sent with every export (often an API key), never logged.
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// How export bodies are encoded on the wire.
    pub compression: Compression,
    /// Resource attributes added to (or replacing) the shop's own.
    pub resource: Vec<(String, String)>,
    /// `service.name` for a process that runs one role (several roles keep their names).
    pub service_name: Option<String>,
    /// Which traces are recorded (spans only).
    pub sampler: Sampler,
    /// How often the queue is sent, and how many entries wait at most (more are dropped,
    /// counted).
    pub schedule_delay: Duration,
    pub max_queue: usize,
    pub max_batch: usize,
}

impl Otlp {
    /// Export to `endpoint` (the signal's URL) with the SDK's span defaults otherwise.
    pub fn to(endpoint: &str) -> Self {
        Otlp {
            endpoint: endpoint.to_string(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            compression: Compression::None,
            resource: Vec::new(),
            service_name: None,
            sampler: Sampler::default(),
            schedule_delay: Duration::from_millis(5000),
            max_queue: 2048,
            max_batch: 512,
        }
    }
}

/// How export bodies travel (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    /// gzip, sent with `Content-Encoding: gzip`.
    Gzip,
}

impl Compression {
    /// The value as the `OTEL_*_COMPRESSION` variables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
}

/// Which traces are recorded: a share of new ones, and (parent-based) whatever the
/// caller decided for the others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    pub ratio: f64,
    pub parent_based: bool,
}

impl Default for Sampler {
    /// `parentbased_always_on`, the OpenTelemetry default.
    fn default() -> Self {
        Sampler {
            ratio: 1.0,
            parent_based: true,
        }
    }
}

impl Sampler {
    /// Whether a request of `trace_id` is recorded; `parent_sampled` is the caller's
    /// decision when there is a caller.
    pub fn sample(&self, trace_id: &[u8; 16], parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(sampled) if self.parent_based => sampled,
            _ if self.ratio >= 1.0 => true,
            _ if self.ratio <= 0.0 => false,
            _ => {
                // The trace id's random low half against the ratio, so every service
                // decides alike for one trace.
                let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
                (low as f64) < self.ratio * u64::MAX as f64
            }
        }
    }
}

/// A variable that could not be used, and why.
#[derive(Debug, PartialEq)]
pub struct EnvError {
    pub var: &'static str,
    pub reason: String,
}

fn error(var: &'static str, reason: impl Into<String>) -> EnvError {
    EnvError {
        var,
        reason: reason.into(),
    }
}

/// The variables of one signal: the `OTEL_*` names that configure its export, and the
/// path its URL gets from the general endpoint.
struct Signal {
    exporter: &'static str,
    /// Whether an endpoint alone turns export on (traces), or the exporter variable must
    /// say `otlp` (logs, which the standard leaves off unless asked for).
    on_by_default: bool,
    path: &'static str,
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    compression: &'static str,
    schedule_delay: &'static str,
    max_queue: &'static str,
    max_batch: &'static str,
    /// The SDK's default delay between exports, in milliseconds.
    default_delay_ms: u64,
}

const TRACES: Signal = Signal {
    exporter: "OTEL_TRACES_EXPORTER",
    on_by_default: true,
    path: "/v1/traces",
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    schedule_delay: "OTEL_BSP_SCHEDULE_DELAY",
    max_queue: "OTEL_BSP_MAX_QUEUE_SIZE",
    max_batch: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    default_delay_ms: 5000,
};

const LOGS: Signal = Signal {
    exporter: "OTEL_LOGS_EXPORTER",
    on_by_default: false,
    path: "/v1/logs",
    endpoint: "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    schedule_delay: "OTEL_BLRP_SCHEDULE_DELAY",
    max_queue: "OTEL_BLRP_MAX_QUEUE_SIZE",
    max_batch: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    default_delay_ms: 1000,
};

/// The span export settings the `OTEL_*` variables describe: `None` when no endpoint is
/// set or export is switched off (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`).
pub fn traces_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Otlp>, EnvError> {
    signal_from_env(&env, &TRACES)
}

/// The log export settings: `None` unless `OTEL_LOGS_EXPORTER=otlp` (then an endpoint
/// must be set), or when `OTEL_SDK_DISABLED=true`.
pub fn logs_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Otlp>, EnvError> {
    signal_from_env(&env, &LOGS)
}

fn signal_from_env(
    env: &impl Fn(&str) -> Option<String>,
    signal: &Signal,
) -> Result<Option<Otlp>, EnvError> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var(signal.exporter).as_deref() {
        None if signal.on_by_default => {}
        None | Some("none") => return Ok(None),
        Some("otlp") => {}
        Some(other) => {
            return Err(error(
                signal.exporter,
                format!("'{other}' is not supported (use otlp or none)"),
            ))
        }
    }
    let (endpoint_var, endpoint) = match (var(signal.endpoint), var("OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        (Some(url), _) => (signal.endpoint, url),
        (None, Some(base)) => (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}{}", base.trim_end_matches('/'), signal.path),
        ),
        (None, None) if signal.on_by_default => return Ok(None),
        (None, None) => {
            return Err(error(
                signal.exporter,
                format!(
                    "otlp needs OTEL_EXPORTER_OTLP_ENDPOINT or {} (the collector's URL)",
                    signal.endpoint
                ),
            ))
        }
    };
    check_endpoint(&endpoint).map_err(|reason| error(endpoint_var, reason))?;
    for name in [signal.protocol, "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = var(name).filter(|p| p != "http/protobuf") {
            return Err(error(
                name,
                format!("'{protocol}' is not supported; the shop exports http/protobuf (a collector's port 4318)"),
            ));
        }
    }

    let mut otlp = Otlp::to(&endpoint);
    // The signal's own headers, timeout and compression win over the general ones.
    for name in ["OTEL_EXPORTER_OTLP_HEADERS", signal.headers] {
        let Some(text) = var(name) else { continue };
        for (key, value) in key_values(&text).map_err(|r| error(name, r))? {
            actix_web::http::header::HeaderName::try_from(key.as_str())
                .map_err(|_| error(name, format!("'{key}' is not a header name")))?;
            actix_web::http::header::HeaderValue::try_from(value.as_str())
                .map_err(|_| error(name, format!("the value of '{key}' is not a header value")))?;
            otlp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            otlp.headers.push((key, Secret::new(value)));
        }
    }
    for name in ["OTEL_EXPORTER_OTLP_TIMEOUT", signal.timeout] {
        if let Some(ms) = number(&var, name)? {
            otlp.timeout = Duration::from_millis(ms.max(1));
        }
    }
    for name in ["OTEL_EXPORTER_OTLP_COMPRESSION", signal.compression] {
        if let Some(text) = var(name) {
            otlp.compression = compression(&text).map_err(|r| error(name, r))?;
        }
    }
    if let Some(text) = var("OTEL_RESOURCE_ATTRIBUTES") {
        otlp.resource = key_values(&text).map_err(|r| error("OTEL_RESOURCE_ATTRIBUTES", r))?;
    }
    otlp.service_name = var("OTEL_SERVICE_NAME");
    if signal.on_by_default {
        otlp.sampler = sampler(var("OTEL_TRACES_SAMPLER"), var("OTEL_TRACES_SAMPLER_ARG"))?;
    }
    otlp.schedule_delay = Duration::from_millis(signal.default_delay_ms);
    if let Some(ms) = number(&var, signal.schedule_delay)? {
        otlp.schedule_delay = Duration::from_millis(ms.max(1));
    }
    if let Some(n) = number(&var, signal.max_queue)? {
        otlp.max_queue = (n as usize).clamp(1, 1 << 20);
    }
    if let Some(n) = number(&var, signal.max_batch)? {
        otlp.max_batch = (n as usize).clamp(1, otlp.max_queue);
    }
    Ok(Some(otlp))
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<u64>, EnvError> {
    match var(name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| error(name, format!("'{text}' is not a whole number"))),
    }
}

/// `gzip` or `none` (the values the OTLP exporter specification defines).
fn compression(text: &str) -> Result<Compression, String> {
    match text.to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err(format!("'{text}' is not supported (use gzip or none)")),
    }
}

/// An http:// or https:// URL with a host.
fn check_endpoint(url: &str) -> Result<(), String> {
    let uri: actix_web::http::Uri = url
        .parse()
        .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(format!("'{url}' is not an http:// or https:// URL")),
    }
}

/// `OTEL_TRACES_SAMPLER` and its argument.
fn sampler(name: Option<String>, arg: Option<String>) -> Result<Sampler, EnvError> {
    let ratio = || -> Result<f64, EnvError> {
        match &arg {
            None => Ok(1.0),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    error(
                        "OTEL_TRACES_SAMPLER_ARG",
                        format!("'{text}' is not a ratio from 0 to 1"),
                    )
                }),
        }
    };
    let (ratio, parent_based) = match name.as_deref().unwrap_or("parentbased_always_on") {
        "always_on" => (1.0, false),
        "always_off" => (0.0, false),
        "traceidratio" => (ratio()?, false),
        "parentbased_always_on" => (1.0, true),
        "parentbased_always_off" => (0.0, true),
        "parentbased_traceidratio" => (ratio()?, true),
        other => {
            return Err(error(
                "OTEL_TRACES_SAMPLER",
                format!("'{other}' is not a sampler (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"),
            ))
        }
    };
    Ok(Sampler {
        ratio,
        parent_based,
    })
}

/// `key1=value1,key2=value2` with percent-encoded values (the OTEL_* list format).
fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("'{}' is not key=value", item.trim()))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("'{}' has no key", item.trim()));
            }
            Ok((key.to_string(), percent_decode(value.trim()).into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<Otlp>, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        traces_from_env(|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_disabled() {
        assert!(parse(&[]).unwrap().is_none());
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(parse(&[on, ("OTEL_SDK_DISABLED", "true")])
            .unwrap()
            .is_none());
        assert!(parse(&[on, ("OTEL_TRACES_EXPORTER", "none")])
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_general_endpoint_gets_the_traces_path_the_signal_one_is_kept() {
        let otlp = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(otlp.endpoint, "http://collector:4318/v1/traces");
        let otlp = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(otlp.endpoint, "http://b:9999/custom");
    }

    #[test]
    fn headers_resource_and_batching_are_read() {
        let otlp = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=abc%20def,x-team=shop",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=traces"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=staging",
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .unwrap();
        let headers: Vec<_> = otlp
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(headers, [("x-api-key", "abc def"), ("x-team", "traces")]);
        assert_eq!(
            otlp.resource,
            [("deployment.environment.name".into(), "staging".into())]
        );
        assert_eq!(otlp.schedule_delay, Duration::from_millis(200));
        assert_eq!(
            otlp.sampler,
            Sampler {
                ratio: 0.25,
                parent_based: true
            }
        );
    }

    #[test]
    fn unusable_values_name_their_variable() {
        let cases = [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
                ],
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
                ],
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_TRACES_SAMPLER", "sometimes"),
                ],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ],
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
        ];
        for (vars, expected) in cases {
            let err = parse(&vars).unwrap_err();
            assert_eq!(err.var, expected, "{vars:?}: {}", err.reason);
        }
    }

    fn parse_logs(vars: &[(&str, &str)]) -> Result<Option<Otlp>, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        logs_from_env(|name| map.get(name).cloned())
    }

    #[test]
    fn https_endpoints_are_taken() {
        let otlp = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")])
            .unwrap()
            .unwrap();
        assert_eq!(otlp.endpoint, "https://collector:4318/v1/traces");
    }

    #[test]
    fn compression_is_gzip_or_none_and_the_signal_variable_wins() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let unset = parse(&[base]).unwrap().unwrap();
        assert_eq!(unset.compression, Compression::None);
        let gzip = parse(&[base, ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")])
            .unwrap()
            .unwrap();
        assert_eq!(gzip.compression, Compression::Gzip);
        let traces_plain = parse(&[
            base,
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(traces_plain.compression, Compression::None);
        let logs_gzip = parse_logs(&[
            base,
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "GZIP"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(logs_gzip.compression, Compression::Gzip);
        let err = parse_logs(&[
            base,
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "deflate"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION");
        assert!(err.reason.contains("deflate"), "{}", err.reason);
    }

    #[test]
    fn logs_are_exported_only_when_asked_for() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/");
        assert!(parse_logs(&[base]).unwrap().is_none());
        assert!(parse_logs(&[base, ("OTEL_LOGS_EXPORTER", "none")])
            .unwrap()
            .is_none());
        assert!(parse_logs(&[
            base,
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_SDK_DISABLED", "true")
        ])
        .unwrap()
        .is_none());
        let err = parse_logs(&[base, ("OTEL_LOGS_EXPORTER", "console")]).unwrap_err();
        assert_eq!(err.var, "OTEL_LOGS_EXPORTER");
        let err = parse_logs(&[("OTEL_LOGS_EXPORTER", "otlp")]).unwrap_err();
        assert_eq!(err.var, "OTEL_LOGS_EXPORTER");
        assert!(
            err.reason.contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{}",
            err.reason
        );
        // Log export does not depend on span export.
        let logs = parse_logs(&[
            base,
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(logs.endpoint, "http://c:4318/v1/logs");
        assert_eq!(logs.schedule_delay, Duration::from_millis(1000));
    }

    #[test]
    fn log_settings_take_their_own_endpoint_headers_and_batching() {
        let logs = parse_logs(&[
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "https://logs:443/ingest",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k,x-team=shop"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-team=logs"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=traces"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2500"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "9999"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(logs.endpoint, "https://logs:443/ingest");
        let headers: Vec<_> = logs
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(headers, [("x-api-key", "k"), ("x-team", "logs")]);
        assert_eq!(logs.timeout, Duration::from_millis(2500));
        assert_eq!(logs.schedule_delay, Duration::from_millis(50));
        assert_eq!((logs.max_queue, logs.max_batch), (100, 100));
        let err = parse_logs(&[
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs:4318"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
        let err = parse_logs(&[
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL");
    }

    #[test]
    fn samplers_follow_the_parent_or_the_ratio() {
        let id = [0u8; 16];
        let parent_based = Sampler::default();
        assert!(!parent_based.sample(&id, Some(false)));
        assert!(parent_based.sample(&id, None));
        let none = Sampler {
            ratio: 0.0,
            parent_based: false,
        };
        assert!(!none.sample(&id, Some(true)));
        let half = Sampler {
            ratio: 0.5,
            parent_based: false,
        };
        let mut high = [0u8; 16];
        high[8] = 0xff;
        assert!(half.sample(&id, None));
        assert!(!half.sample(&high, None));
    }
}
