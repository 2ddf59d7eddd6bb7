//! Traces: spans exported over OTLP to a test receiver, one trace per user action across
//! every service it touches, with the attributes tools read.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use ecommerce::telemetry::settings::Otlp;
use serde_json::json;

use support::http::{metric_value, Reply};
use support::otlp::{Received, Receiver};
use support::shop::{spawn_with, TestApp, GOOD_CARD, SWEET_TEA};

/// The shop exporting to `receiver` every 100 ms.
async fn traced_shop(receiver: &Receiver, faults: &[&str]) -> TestApp {
    let url = receiver.url.clone();
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    spawn_with(move |settings| {
        settings.otlp = Some(Otlp {
            schedule_delay: Duration::from_millis(100),
            ..Otlp::to(&url)
        });
        for fault in &faults {
            settings.faults.enable(fault).unwrap();
        }
    })
    .await
}

/// A sampled trace context this test starts: `(trace id, caller span id, traceparent)`.
fn caller() -> (String, String, String) {
    let trace_id = hex::encode(rand::random::<[u8; 16]>());
    let span_id = hex::encode(rand::random::<[u8; 8]>());
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

/// Checks out a cart of one product, as the caller `traceparent`, with `baggage`.
async fn checkout_as(app: &TestApp, traceparent: &str, baggage: &str) -> Reply {
    let session = app.session().await;
    let added = app.put_line(&session, SWEET_TEA, 2).await;
    assert_eq!(added.status, StatusCode::OK);
    app.send(
        Method::POST,
        &app.web("/api/v1/checkout/process"),
        &[
            ("content-type", "application/json"),
            ("traceparent", traceparent),
            ("baggage", baggage),
        ],
        TestApp::order(&session, GOOD_CARD).to_string(),
    )
    .await
}

/// Every span's parent is in the trace (the root's is the caller), and every call to a
/// service has that service's server span under it.
fn complete(spans: &[Received], caller_span: &str) -> bool {
    let ids: BTreeSet<String> = spans.iter().map(Received::span_id).collect();
    let parents_known = spans
        .iter()
        .all(|s| s.parent_id() == caller_span || ids.contains(&s.parent_id()));
    let calls_answered = spans
        .iter()
        .filter(|s| s.is_client() && s.text("peer.service").is_some())
        .all(|call| {
            spans
                .iter()
                .any(|s| s.is_server() && s.parent_id() == call.span_id())
        });
    let services: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.is_server())
        .map(|s| s.service.as_str())
        .collect();
    parents_known && calls_answered && services.len() >= 6
}

/// A checkout of one product by a caller with `baggage`, on a shop with `faults` that
/// exports its traces: the answer, the caller's span id, and the checkout's whole trace.
async fn traced_checkout(faults: &[&str], baggage: &str) -> (Reply, String, Vec<Received>) {
    let receiver = Receiver::start();
    let app = traced_shop(&receiver, faults).await;
    let (trace_id, caller_span, traceparent) = caller();

    let reply = checkout_as(&app, &traceparent, baggage).await;

    let spans = receiver
        .trace(&trace_id, Duration::from_secs(15), |s| {
            complete(s, &caller_span)
        })
        .await;
    (reply, caller_span, spans)
}

#[actix_web::test]
async fn one_checkout_is_one_trace_through_every_service_it_touches() {
    let (reply, caller_span, spans) = traced_checkout(&[], "user=ada").await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let servers: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.is_server())
        .map(|s| s.service.as_str())
        .collect();
    for service in [
        "web-gateway",
        "api-gateway",
        "checkout",
        "cart",
        "product",
        "payment",
    ] {
        assert!(servers.contains(service), "no {service} span: {servers:?}");
    }
    // One tree: a single root (the web-gateway's span, under the caller), unique ids, and
    // each call's server span in the service the call named.
    let roots: Vec<&Received> = spans
        .iter()
        .filter(|s| s.parent_id() == caller_span)
        .collect();
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert_eq!(roots[0].service, "web-gateway");
    let ids: BTreeSet<String> = spans.iter().map(Received::span_id).collect();
    assert_eq!(ids.len(), spans.len(), "span ids repeat");
    let by_id: HashMap<String, &Received> = spans.iter().map(|s| (s.span_id(), s)).collect();
    for server in spans
        .iter()
        .filter(|s| s.is_server() && s.parent_id() != caller_span)
    {
        let call = by_id[&server.parent_id()];
        assert!(
            call.is_client(),
            "{} is under a server span",
            server.span.name
        );
        assert_eq!(call.text("peer.service"), Some(server.service.as_str()));
        if let Some(upstream) = call.text("ecommerce.upstream") {
            // Checkout's calls go through the api-gateway, on to the service named.
            let onward = spans
                .iter()
                .find(|s| s.is_client() && s.parent_id() == server.span_id());
            assert_eq!(onward.and_then(|c| c.text("peer.service")), Some(upstream));
        }
    }
    // Checkout's own calls, in order: claiming the cart, the prices, the payment and
    // recording the receipt.
    let mut checkout_calls: Vec<&Received> = spans
        .iter()
        .filter(|s| s.is_client() && s.service == "checkout")
        .collect();
    checkout_calls.sort_by_key(|s| s.span.start_time_unix_nano);
    let names: Vec<&str> = checkout_calls
        .iter()
        .map(|s| s.span.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["POST cart", "POST product", "POST payment", "POST cart"]
    );
}

#[actix_web::test]
async fn spans_carry_the_attributes_and_resource_tools_expect() {
    let (reply, _, spans) = traced_checkout(&[], "user=ada").await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let payment = spans
        .iter()
        .find(|s| s.is_server() && s.service == "payment")
        .unwrap();
    assert_eq!(payment.span.name, "POST /process");
    assert_eq!(payment.text("http.request.method"), Some("POST"));
    assert_eq!(payment.text("http.route"), Some("/process"));
    assert_eq!(payment.int("http.response.status_code"), Some(200));
    assert_eq!(payment.text("url.path"), Some("/process"));
    assert!(payment.text("server.address").is_some());
    assert!(payment.span.end_time_unix_nano >= payment.span.start_time_unix_nano);
    assert!(!payment.failed());
    assert_eq!(payment.resource_text("service.name"), Some("payment"));
    assert_eq!(
        payment.resource_text("service.version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(payment
        .resource_text("deployment.environment.name")
        .is_some());
    let call = spans
        .iter()
        .find(|s| s.is_client() && s.service == "checkout" && s.span.name == "POST payment")
        .unwrap();
    assert_eq!(call.text("http.request.method"), Some("POST"));
    assert_eq!(call.int("http.response.status_code"), Some(200));
    assert!(call
        .text("url.full")
        .is_some_and(|u| u.ends_with("/api/v1/payment/process")));
}

#[actix_web::test]
async fn baggage_reaches_every_hop_and_marks_synthetic_traffic() {
    let (reply, _, spans) = traced_checkout(&[], "synthetic_request=true").await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    for server in spans.iter().filter(|s| s.is_server()) {
        assert_eq!(
            server.attribute("synthetic_request"),
            Some(&support::otlp::proto::Value::Bool(true)),
            "{}: {}",
            server.service,
            server.span.name
        );
    }
}

#[actix_web::test]
async fn a_fault_that_acts_on_a_request_shows_on_its_span() {
    let (reply, _, spans) = traced_checkout(&["payment-failure=1"], "user=ada").await;

    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    let payment = spans
        .iter()
        .find(|s| s.is_server() && s.service == "payment")
        .unwrap();
    assert_eq!(
        payment.text("ecommerce.fault.applied"),
        Some("payment-failure")
    );
    assert_eq!(payment.texts("ecommerce.faults"), ["payment-failure=1"]);
    assert_eq!(payment.int("http.response.status_code"), Some(402));
}

/// A product search through the web-gateway as the caller `traceparent`.
async fn search_as(app: &TestApp, traceparent: &str) -> Reply {
    app.send(
        Method::POST,
        &app.web("/api/v1/product/search"),
        &[
            ("content-type", "application/json"),
            ("traceparent", traceparent),
        ],
        json!({"query": "tea", "page": {"size": 1}}).to_string(),
    )
    .await
}

#[actix_web::test]
async fn a_caller_that_does_not_sample_is_not_recorded_anywhere() {
    let receiver = Receiver::start();
    let app = traced_shop(&receiver, &[]).await;
    let (unsampled_trace, _, _) = caller();
    let (sampled_trace, _, sampled) = caller();

    let unsampled = search_as(&app, &format!("00-{unsampled_trace}-00f067aa0ba902b7-00")).await;
    let probe = app
        .send(
            Method::GET,
            &app.url(Role::Product, "/healthz"),
            &[("traceparent", &sampled)],
            "",
        )
        .await;
    let recorded = search_as(&app, &sampled).await;

    assert_eq!(unsampled.status, StatusCode::OK);
    assert_eq!(probe.status, StatusCode::OK);
    assert_eq!(recorded.status, StatusCode::OK);
    // The sampled search arrives whole (three services); by then the others would have.
    let spans = receiver
        .trace(&sampled_trace, Duration::from_secs(15), |s| {
            s.iter().filter(|s| s.is_server()).count() >= 3
        })
        .await;
    assert!(
        spans.iter().all(|s| s.text("url.path") != Some("/healthz")),
        "probes are not traced"
    );
    let stray: Vec<String> = receiver
        .spans()
        .iter()
        .filter(|s| s.trace_id() == unsampled_trace)
        .map(|s| format!("{}: {}", s.service, s.span.name))
        .collect();
    assert!(stray.is_empty(), "unsampled trace recorded: {stray:?}");
}

#[actix_web::test]
async fn exported_spans_are_counted_in_metrics() {
    let receiver = Receiver::start();
    let app = traced_shop(&receiver, &[]).await;
    let (trace_id, _, traceparent) = caller();

    app.send(
        Method::GET,
        &app.url(Role::Payment, "/"),
        &[("traceparent", &traceparent)],
        "",
    )
    .await;
    receiver
        .trace(&trace_id, Duration::from_secs(15), |s| !s.is_empty())
        .await;

    let metrics = app.metrics(Role::Payment).await;
    let spans = |outcome| {
        metric_value(
            &metrics,
            "ecommerce_telemetry_spans_total",
            &[("outcome", outcome)],
        )
    };
    assert!(spans("exported") >= 1.0, "{metrics}");
    assert_eq!(spans("dropped"), 0.0);
}

/// The Python interpreter with `prometheus_client` (the test command provides one).
fn python() -> String {
    std::env::var("ECOMMERCE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What the reference OpenMetrics parser makes of `text`: `{"families": {name: type},
/// "exemplar_trace_ids": [...]}`.
fn parse_openmetrics(text: &str) -> serde_json::Value {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/metrics/parse_openmetrics.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the OpenMetrics check needs the Prometheus Python client: `pip install prometheus-client`, or ECOMMERCE_TEST_PYTHON naming a Python that has it (scripts/test.sh makes one)"
    );
    assert!(out.status.success(), "{stderr}\n{text}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[actix_web::test]
async fn latency_exemplars_name_exported_traces_and_parse_as_openmetrics() {
    let receiver = Receiver::start();
    let app = traced_shop(&receiver, &[]).await;
    let (trace_id, _, traceparent) = caller();

    assert_eq!(search_as(&app, &traceparent).await.status, StatusCode::OK);
    let spans = receiver
        .trace(&trace_id, Duration::from_secs(15), |s| {
            s.iter().filter(|s| s.is_server()).count() >= 3
        })
        .await;

    assert!(spans.iter().any(|s| s.service == "product"), "{spans:?}");
    // The product's request histogram and the api-gateway's call histogram each keep
    // the search's trace as an exemplar, and the reference parser reads both.
    for (role, family) in [
        (Role::Product, "http_server_request_duration_seconds"),
        (Role::ApiGateway, "http_client_request_duration_seconds"),
    ] {
        let text = app.metrics(role).await;
        let parsed = parse_openmetrics(&text);
        assert_eq!(parsed["families"][family], "histogram", "{role}: {parsed}");
        assert_eq!(
            parsed["families"]["process_resident_memory_bytes"], "gauge",
            "{role}"
        );
        let exemplars: Vec<&str> = parsed["exemplar_trace_ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            exemplars.contains(&trace_id.as_str()),
            "{role}: {exemplars:?}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{family}_bucket"))
                    && l.contains(&format!("# {{trace_id=\"{trace_id}\"}}"))),
            "{role}: {text}"
        );
    }
}
