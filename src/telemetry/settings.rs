//! Trace export settings, from the standard OpenTelemetry environment variables.

use std::time::Duration;

use crate::domain::percent_decode;
use crate::domain::Secret;

/// Where and how spans are exported: OTLP over HTTP with protobuf bodies.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// The traces URL, e.g. `http://collector:4318/v1/traces`.
    pub endpoint: String,
    /// Sent with every export (often an API key), never logged.
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Resource attributes added to (or replacing) the shop's own.
    pub resource: Vec<(String, String)>,
    /// `service.name` for a process that runs one role (several roles keep their names).
    pub service_name: Option<String>,
    pub sampler: Sampler,
    /// How often spans are sent, and how many wait at most (more are dropped, counted).
    pub schedule_delay: Duration,
    pub max_queue: usize,
    pub max_batch: usize,
}

impl Otlp {
    /// Export to `endpoint` (a traces URL) with the SDK defaults otherwise.
    pub fn to(endpoint: &str) -> Self {
        Otlp {
            endpoint: endpoint.to_string(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            resource: Vec::new(),
            service_name: None,
            sampler: Sampler::default(),
            schedule_delay: Duration::from_millis(5000),
            max_queue: 2048,
            max_batch: 512,
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

/// The export settings the `OTEL_*` variables describe: `None` when no endpoint is set or
/// export is switched off (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`).
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Otlp>, EnvError> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(error(
                "OTEL_TRACES_EXPORTER",
                format!("'{other}' is not supported (use otlp or none)"),
            ))
        }
    }
    let (endpoint_var, endpoint) = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
        (None, Some(base)) => (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}/v1/traces", base.trim_end_matches('/')),
        ),
        (None, None) => return Ok(None),
    };
    check_endpoint(&endpoint).map_err(|reason| error(endpoint_var, reason))?;
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = var(name).filter(|p| p != "http/protobuf") {
            return Err(error(
                name,
                format!("'{protocol}' is not supported; the shop exports http/protobuf (a collector's port 4318)"),
            ));
        }
    }

    let mut otlp = Otlp::to(&endpoint);
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        let Some(text) = var(name) else { continue };
        let name: &'static str = if name.contains("TRACES") {
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
        } else {
            "OTEL_EXPORTER_OTLP_HEADERS"
        };
        for (key, value) in key_values(&text).map_err(|r| error(name, r))? {
            actix_web::http::header::HeaderName::try_from(key.as_str())
                .map_err(|_| error(name, format!("'{key}' is not a header name")))?;
            actix_web::http::header::HeaderValue::try_from(value.as_str())
                .map_err(|_| error(name, format!("the value of '{key}' is not a header value")))?;
            // The signal's own headers win over the general ones.
            otlp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            otlp.headers.push((key, Secret::new(value)));
        }
    }
    // The signal's own timeout wins over the general one.
    for name in [
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    ] {
        if let Some(ms) = number(&var, name)? {
            otlp.timeout = Duration::from_millis(ms.max(1));
        }
    }
    if let Some(text) = var("OTEL_RESOURCE_ATTRIBUTES") {
        otlp.resource = key_values(&text).map_err(|r| error("OTEL_RESOURCE_ATTRIBUTES", r))?;
    }
    otlp.service_name = var("OTEL_SERVICE_NAME");
    otlp.sampler = sampler(var("OTEL_TRACES_SAMPLER"), var("OTEL_TRACES_SAMPLER_ARG"))?;
    if let Some(ms) = number(&var, "OTEL_BSP_SCHEDULE_DELAY")? {
        otlp.schedule_delay = Duration::from_millis(ms.max(1));
    }
    if let Some(n) = number(&var, "OTEL_BSP_MAX_QUEUE_SIZE")? {
        otlp.max_queue = (n as usize).clamp(1, 1 << 20);
    }
    if let Some(n) = number(&var, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
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

/// An http:// URL with a host: this build has no TLS client.
fn check_endpoint(url: &str) -> Result<(), String> {
    let uri: actix_web::http::Uri = url
        .parse()
        .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(host)) if !host.is_empty() => Ok(()),
        (Some("https"), _) => Err(format!(
            "'{url}': https is not supported here; export to a collector's http:// endpoint (port 4318) and let it forward"
        )),
        _ => Err(format!("'{url}' is not an http:// URL")),
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
        from_env(|name| map.get(name).cloned())
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
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
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
