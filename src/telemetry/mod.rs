//! Telemetry, below every other layer but the domain: OpenTelemetry traces (a server
//! span per request, a client span per upstream, Redis and PostgreSQL call, exported over
//! OTLP/HTTP when an endpoint is configured; without one, nothing is recorded and only
//! the trace context travels on), the W3C context propagation, and the metrics registry.

pub mod export;
pub mod logfmt;
pub mod metrics;
pub mod otlp;
pub mod propagation;
pub mod settings;
pub mod span;

use std::sync::Arc;
use std::time::Duration;

use crate::role::Role;
use export::{Exporter, Stats};
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
    pub fn new(role: Role, tracer: Tracer) -> Self {
        Instruments {
            metrics: metrics::Metrics::new(role),
            tracer,
        }
    }
}

/// The process's trace export, shared by its roles.
pub struct Telemetry {
    exporter: Option<Arc<Exporter>>,
    sampler: Sampler,
    roles: Vec<Role>,
}

impl Telemetry {
    /// Nothing recorded, nothing exported.
    pub fn off() -> Self {
        Telemetry {
            exporter: None,
            sampler: Sampler::default(),
            roles: Vec::new(),
        }
    }

    /// Starts exporting the spans of `roles` as `otlp` says (off when `None`).
    pub fn start(otlp: Option<&Otlp>, roles: &[Role]) -> std::io::Result<Self> {
        let Some(otlp) = otlp else {
            return Ok(Telemetry::off());
        };
        let instance = hex::encode(rand::random::<[u8; 8]>());
        let resources = roles
            .iter()
            .map(|role| resource(*role, otlp, roles.len() == 1, &instance))
            .collect();
        let exporter = Exporter::start(otlp, resources)?;
        log::info!(
            "msg=\"exporting traces\" endpoint={} sampler_ratio={} parent_based={}",
            otlp.endpoint,
            otlp.sampler.ratio,
            otlp.sampler.parent_based
        );
        Ok(Telemetry {
            exporter: Some(Arc::new(exporter)),
            sampler: otlp.sampler,
            roles: roles.to_vec(),
        })
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
        }
    }

    /// Sends the spans still queued (on shutdown), waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        if let Some(exporter) = &self.exporter {
            exporter.flush(timeout).await;
        }
    }
}

/// Records the spans of one role's requests, or nothing when export is off.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Recording>>,
}

struct Recording {
    exporter: Arc<Exporter>,
    resource: usize,
    sampler: Sampler,
}

impl Tracer {
    /// Decides whether the request of `trace` is recorded, and marks the decision in its
    /// flags so that the services it calls decide alike. Without export, the caller's
    /// flags pass on unchanged.
    pub fn sample(&self, trace: &mut TraceContext) -> bool {
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
}

/// The resource of one role: who the spans come from.
fn resource(role: Role, otlp: &Otlp, only_role: bool, instance: &str) -> Vec<(String, Value)> {
    let mut attributes: Vec<(String, Value)> = vec![
        ("service.name".into(), role.as_str().into()),
        ("service.namespace".into(), "ecommerce".into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        (
            "service.instance.id".into(),
            format!("{instance}-{role}").into(),
        ),
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
        let several = resource(Role::Cart, &otlp, false, "i");
        assert_eq!(value(&several, "service.name"), Some(&"cart".into()));
        assert_eq!(
            value(&several, "deployment.environment.name"),
            Some(&"staging".into())
        );
        otlp.service_name = Some("my-cart".into());
        let one = resource(Role::Cart, &otlp, true, "i");
        assert_eq!(value(&one, "service.name"), Some(&"my-cart".into()));
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
