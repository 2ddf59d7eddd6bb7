//! Telemetry, below every other layer but the domain: OpenTelemetry traces (a server
//! span per request, a client span per upstream, Redis and PostgreSQL call, exported over
//! OTLP/HTTP when an endpoint is configured; without one, nothing is recorded and only
//! the trace context travels on), log lines exported as OTLP log records when asked for,
//! the W3C context propagation, and the metrics registry.

pub mod export;
pub mod logfmt;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod process;
pub mod propagation;
pub mod settings;
pub mod span;

use std::sync::Arc;
use std::time::Duration;

use crate::role::Role;
use export::{Exporter, Logs, Stats, Traces};
use propagation::TraceContext;
use settings::{Otlp, Sampler};
use span::{SpanData, Value};

/// What one role's requests, calls and spans are recorded into: its metrics and its
/// tracer. A span needs these, not the role's whole HTTP context.
pub struct Instruments {
    pub metrics: metrics::Metrics,
    pub tracer: Tracer,
}

impl Instruments {
    pub fn new(tracer: Tracer) -> Self {
        Instruments {
            metrics: metrics::Metrics::default(),
            tracer,
        }
    }
}

/// The process's trace and log export, shared by its roles.
pub struct Telemetry {
    exporter: Option<Arc<Exporter<Traces>>>,
    logs: Option<logs::Installed>,
    sampler: Sampler,
    roles: Vec<Role>,
}

impl Telemetry {
    /// Nothing recorded, nothing exported.
    pub fn off() -> Self {
        Telemetry {
            exporter: None,
            logs: None,
            sampler: Sampler::default(),
            roles: Vec::new(),
        }
    }

    /// Starts exporting the spans of `roles` as `traces` says, and the process's log
    /// lines as `logs` says (each off when `None`); https endpoints are trusted as `tls`
    /// says.
    pub fn start(
        traces: Option<&Otlp>,
        logs: Option<&Otlp>,
        roles: &[Role],
        tls: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Self> {
        let mut telemetry = Telemetry {
            roles: roles.to_vec(),
            ..Telemetry::off()
        };
        let instance = hex::encode(rand::random::<[u8; 8]>());
        let only_role = roles.len() == 1;
        let resources = |otlp: &Otlp| -> Vec<Vec<(String, Value)>> {
            roles
                .iter()
                .map(|role| resource(Some(*role), otlp, only_role, &instance))
                .collect()
        };
        if let Some(otlp) = traces {
            let exporter = Exporter::<Traces>::start(otlp, resources(otlp), tls.clone())?;
            log::info!(
                "msg=\"exporting traces\" endpoint={} compression={} sampler_ratio={} parent_based={}",
                logfmt::value(&otlp.endpoint),
                otlp.compression.as_str(),
                otlp.sampler.ratio,
                otlp.sampler.parent_based
            );
            telemetry.exporter = Some(Arc::new(exporter));
            telemetry.sampler = otlp.sampler;
        }
        if let Some(otlp) = logs {
            // A line of no role (the process starting, a store's pool) is the process's:
            // the role itself when there is one, else a resource of its own.
            let mut all = resources(otlp);
            let process = if only_role {
                0
            } else {
                all.push(resource(None, otlp, false, &instance));
                roles.len()
            };
            let exporter = Exporter::<Logs>::start(otlp, all, tls)?;
            telemetry.logs = Some(logs::Installed::install(
                Arc::new(exporter),
                roles.to_vec(),
                process,
            ));
            log::info!(
                "msg=\"exporting logs\" endpoint={} compression={}",
                logfmt::value(&otlp.endpoint),
                otlp.compression.as_str()
            );
        }
        Ok(telemetry)
    }

    /// The tracer of `role`'s requests.
    pub fn tracer(&self, role: Role) -> Tracer {
        let resource = self.roles.iter().position(|r| *r == role);
        Tracer {
            inner: self
                .exporter
                .clone()
                .zip(resource)
                .map(|(exporter, resource)| {
                    Arc::new(Recording {
                        exporter,
                        resource,
                        sampler: self.sampler,
                    })
                }),
            role: Some(role),
            logs: self.logs.as_ref().map(|l| l.stats_handle()),
        }
    }

    /// What became of the process's log records, when log export is on.
    pub fn log_stats(&self) -> Option<&Stats> {
        self.logs.as_ref().map(logs::Installed::stats)
    }

    /// Sends the spans and log records still queued (on shutdown), both at once, waiting
    /// at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let spans = async {
            if let Some(exporter) = &self.exporter {
                exporter.flush(timeout).await;
            }
        };
        let logs = async {
            if let Some(logs) = &self.logs {
                logs.exporter().flush(timeout).await;
            }
        };
        futures_util::future::join(spans, logs).await;
    }
}

/// Records the spans of one role's requests, or nothing when export is off.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Recording>>,
    /// The role whose requests these are (none for a tracer of no role).
    role: Option<Role>,
    /// The process's log export counts, when logs are exported.
    logs: Option<Arc<Stats>>,
}

struct Recording {
    exporter: Arc<Exporter<Traces>>,
    resource: usize,
    sampler: Sampler,
}

impl Tracer {
    /// Decides whether the request of `trace` is recorded, and marks the decision in its
    /// flags so that the services it calls decide alike. Without export, the caller's
    /// flags pass on unchanged.
    pub fn sample(&self, trace: &mut TraceContext) -> bool {
        if let Some(role) = self.role {
            // Every request passes here first, on the worker thread that serves it.
            logs::serving(role);
        }
        let Some(recording) = &self.inner else {
            return false;
        };
        let parent_sampled = trace.parent_span_id.map(|_| trace.flags & 1 == 1);
        let sampled = recording.sampler.sample(&trace.trace_id, parent_sampled);
        trace.flags = (trace.flags & !1) | u8::from(sampled);
        sampled
    }

    pub fn record(&self, span: SpanData) {
        if let Some(recording) = &self.inner {
            recording.exporter.send(recording.resource, &span);
        }
    }

    /// What became of the spans, when export is on.
    pub fn stats(&self) -> Option<&Stats> {
        self.inner.as_ref().map(|r| &*r.exporter.stats)
    }

    /// What became of the process's log records, when log export is on (the same counts
    /// for every role of the process: their lines share one exporter).
    pub fn log_stats(&self) -> Option<&Stats> {
        self.logs.as_deref()
    }
}

/// The resource of one role, or (`None`) of a process of several roles: who the spans
/// and log records come from.
fn resource(
    role: Option<Role>,
    otlp: &Otlp,
    only_role: bool,
    instance: &str,
) -> Vec<(String, Value)> {
    let (name, instance_id) = match role {
        Some(role) => (role.as_str(), format!("{instance}-{role}")),
        None => ("ecommerce", instance.to_string()),
    };
    let mut attributes: Vec<(String, Value)> = vec![
        ("service.name".into(), name.into()),
        ("service.namespace".into(), "ecommerce".into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("service.instance.id".into(), instance_id.into()),
        ("deployment.environment.name".into(), "local".into()),
        ("telemetry.sdk.name".into(), "ecommerce".into()),
        ("telemetry.sdk.language".into(), "rust".into()),
        (
            "telemetry.sdk.version".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    for (key, value) in &otlp.resource {
        // Several roles in one process keep their own names whatever is configured.
        if key == "service.name" && !only_role {
            continue;
        }
        attributes.retain(|(k, _)| k != key);
        attributes.push((key.clone(), value.clone().into()));
    }
    if let (Some(name), true) = (&otlp.service_name, only_role) {
        attributes.retain(|(k, _)| k != "service.name");
        attributes.push(("service.name".into(), name.clone().into()));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(attributes: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn the_role_names_the_service_unless_one_role_is_renamed() {
        let mut otlp = Otlp::to("http://c:4318/v1/traces");
        otlp.resource = vec![
            ("deployment.environment.name".into(), "staging".into()),
            ("service.name".into(), "shop".into()),
        ];
        let several = resource(Some(Role::Cart), &otlp, false, "i");
        assert_eq!(value(&several, "service.name"), Some(&"cart".into()));
        assert_eq!(
            value(&several, "deployment.environment.name"),
            Some(&"staging".into())
        );
        otlp.service_name = Some("my-cart".into());
        let one = resource(Some(Role::Cart), &otlp, true, "i");
        assert_eq!(value(&one, "service.name"), Some(&"my-cart".into()));
        let process = resource(None, &otlp, false, "i");
        assert_eq!(value(&process, "service.name"), Some(&"ecommerce".into()));
        assert_eq!(value(&process, "service.instance.id"), Some(&"i".into()));
    }

    /// Trusts nothing: enough for endpoints that are never reached over https.
    fn no_roots() -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        Arc::new(config)
    }

    #[test]
    fn log_lines_are_queued_except_from_the_exporters_own_threads() {
        // Nothing listens on port 1: every batch fails, and is counted failed.
        let otlp = Otlp::to("http://127.0.0.1:1/v1/logs");
        let telemetry = Telemetry::start(None, Some(&otlp), &[Role::Cart], no_roots()).unwrap();
        let tracer = telemetry.tracer(Role::Cart);
        assert!(tracer.stats().is_none(), "no span export");

        logs::export(log::Level::Info, "ts=1 level=info msg=one");
        std::thread::spawn(|| {
            logs::quiet_this_thread();
            logs::export(log::Level::Warn, "ts=2 level=warn msg=\"export failed\"");
        })
        .join()
        .unwrap();
        actix_web::rt::System::new().block_on(telemetry.flush(Duration::from_secs(5)));

        let stats = telemetry.log_stats().expect("log export is on");
        assert_eq!(
            (stats.exported(), stats.dropped(), stats.failed()),
            (0, 0, 1)
        );
        let seen = tracer.log_stats().expect("roles see the log counts");
        assert_eq!(seen.failed(), 1);
        drop(telemetry);
        logs::export(log::Level::Info, "ts=3 level=info msg=\"after the end\"");
        assert_eq!(
            seen.failed() + seen.dropped(),
            1,
            "nothing queued once stopped"
        );
    }

    #[test]
    fn sampling_marks_the_decision_in_the_flags() {
        let telemetry = Telemetry::off();
        let mut trace = TraceContext::from_headers(&Default::default());
        assert!(!telemetry.tracer(Role::Cart).sample(&mut trace));
        assert_eq!(
            trace.flags, 1,
            "without export the flags pass on as they came"
        );
    }
}
