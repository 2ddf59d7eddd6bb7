//! What every role does: health, readiness, identity, metrics, JSON 404s, trace context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::metric_value;
use support::ports::free_port;
use support::shop::{spawn_app, spawn_with, unique_sid, GOOD_CARD, SECRET, SWEET_TEA};
use support::stub::Stub;

#[actix_web::test]
async fn every_role_answers_healthz() {
    let app = spawn_app().await;

    for role in Role::ALL {
        let reply = app.get(&app.url(role, "/healthz")).await;

        assert_eq!(reply.status, StatusCode::OK, "{role}");
        assert_eq!(reply.json(), json!({"healthy": true}), "{role}");
    }
}

#[actix_web::test]
async fn every_backend_role_names_itself_and_its_version_and_no_secret() {
    let app = spawn_app().await;

    for role in Role::ALL.into_iter().filter(|r| *r != Role::WebGateway) {
        let reply = app.get(&app.url(role, "/")).await;

        assert_eq!(reply.status, StatusCode::OK, "{role}");
        let body = reply.json();
        assert_eq!(body["service"], role.as_str());
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        for path in ["/", "/readyz", "/metrics", "/healthz"] {
            let text = app.get(&app.url(role, path)).await.body;
            let text = String::from_utf8_lossy(&text);
            assert!(
                !text.contains(SECRET),
                "{role}{path} shows the session secret"
            );
        }
    }
}

#[actix_web::test]
async fn the_active_faults_are_listed() {
    let app = spawn_with(|settings| settings.faults.enable("payment-failure=1").unwrap()).await;

    let reply = app.get(&app.url(Role::Payment, "/")).await;

    assert_eq!(reply.json()["faults"], json!(["payment-failure=1"]));
}

#[actix_web::test]
async fn every_role_is_ready_and_shows_its_checks() {
    let app = spawn_app().await;
    let expected: [(Role, &[&str]); 7] = [
        (Role::WebGateway, &["api-gateway", "session-data"]),
        (
            Role::ApiGateway,
            &["cart", "checkout", "content", "payment", "product"],
        ),
        (Role::Cart, &["cart-data"]),
        (Role::Checkout, &["api-gateway"]),
        (Role::Content, &[]),
        (Role::Payment, &[]),
        (Role::Product, &["product-data"]),
    ];

    for (role, dependencies) in expected {
        let reply = app.get(&app.url(role, "/readyz")).await;

        assert_eq!(reply.status, StatusCode::OK, "{role}: {}", reply.json());
        let body = reply.json();
        assert_eq!(body["ready"], true);
        let checks = body["checks"].as_object().expect("checks");
        let names: Vec<&str> = checks.keys().map(String::as_str).collect();
        assert_eq!(names, dependencies, "{role}");
        for (name, state) in checks {
            let state = state.as_str().unwrap();
            assert!(
                state == "up" || state.starts_with("degraded"),
                "{role} {name}: {state}"
            );
        }
    }
}

#[actix_web::test]
async fn a_dependency_that_is_down_is_named_in_readyz_which_stays_200() {
    let port = free_port();
    let app = spawn_with(|settings| {
        settings.api_gateway_url = Some(format!("http://127.0.0.1:{port}"));
        settings.faults.enable("cart-data-outage").unwrap();
    })
    .await;

    for (role, dependency) in [
        (Role::WebGateway, "api-gateway"),
        (Role::Checkout, "api-gateway"),
        (Role::Cart, "cart-data"),
    ] {
        let reply = app.get(&app.url(role, "/readyz")).await;

        // Readiness is the process's own: a dependency's failure is the role's own
        // 5xx answers, not the role leaving its Service.
        assert_eq!(reply.status, StatusCode::OK, "{role}");
        let body = reply.json();
        assert_eq!(
            (&body["ready"], &body["draining"]),
            (&json!(true), &json!(false))
        );
        let state = body["checks"][dependency].as_str().unwrap_or_default();
        assert!(state.starts_with("down"), "{role} {dependency}: {state}");
        assert!(!state.contains(&port.to_string()), "{state}");
    }
    let page = app.get(&app.web("/api/v1/product/search")).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.json());
}

#[actix_web::test]
async fn metrics_are_openmetrics_text_without_target_labels() {
    let app = spawn_app().await;
    // Traffic through every role first, so that each has histograms to show.
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 1).await;
    assert_eq!(
        app.checkout(&session, GOOD_CARD).await.status,
        StatusCode::OK
    );
    for role in Role::ALL {
        app.get(&app.url(role, "/healthz")).await;
    }

    for role in Role::ALL {
        let reply = app.get(&app.url(role, "/metrics")).await;

        assert_eq!(reply.status, StatusCode::OK);
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/openmetrics-text; version=1.0.0"),
            "{role}: {content_type}"
        );
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        for family in [
            "# TYPE http_server_requests counter",
            "# TYPE http_server_request_duration_seconds histogram",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_cpu_seconds counter",
        ] {
            assert!(text.contains(family), "{role}: {family}");
        }
        check_exposition(role, &text);
    }
}

/// Labels Prometheus or its Operator set on every scraped series: a series of the shop's
/// own with one of them would be renamed (`exported_service`...).
const TARGET_LABELS: [&str; 7] = [
    "service",
    "job",
    "instance",
    "pod",
    "namespace",
    "container",
    "endpoint",
];

/// The OpenMetrics rules, as Prometheus parses them: every sample belongs to a family
/// declared by `# TYPE` before it, labels are `name="value"` pairs and never a target's,
/// values are numbers, each histogram's buckets are cumulative up to `+Inf` = `_count`,
/// and `# EOF` ends it.
fn check_exposition(role: Role, text: &str) {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut buckets: HashMap<String, Vec<f64>> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    assert!(text.ends_with("# EOF\n"), "{role}: no # EOF at the end");
    for line in text.lines().filter(|l| !l.is_empty() && *l != "# EOF") {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "{role}: {line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        // An exemplar follows ` # `; the sample is what precedes it.
        let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
        let (series, value) = sample.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{role}: {line}"));
        let (name, labels) = match series.strip_suffix('}').and_then(|s| s.split_once('{')) {
            Some((name, labels)) => (name, labels),
            None => (series, ""),
        };
        let mut pairs = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once("=\"")
                .unwrap_or_else(|| panic!("{role}: {line}"));
            let end = after
                .char_indices()
                .find(|&(i, c)| c == '"' && !after[..i].ends_with('\\'))
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("{role}: unterminated label: {line}"));
            pairs.push((key.to_string(), after[..end].to_string()));
            rest = after[end + 1..].trim_start_matches(',');
        }
        assert!(
            pairs
                .iter()
                .all(|(k, _)| !TARGET_LABELS.contains(&k.as_str())),
            "{role}: a target's label: {line}"
        );
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| types.contains_key(*base))
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "{role}: no # TYPE before {line}"
        );
        let key = |pairs: &[(String, String)]| {
            let mut others: Vec<_> = pairs.iter().filter(|(k, _)| k != "le").collect();
            others.sort();
            format!("{family}{others:?}")
        };
        if name.ends_with("_bucket") && family != name {
            buckets.entry(key(&pairs)).or_default().push(value);
        } else if name.ends_with("_count") && family != name {
            counts.insert(key(&pairs), value);
        }
    }
    assert!(!buckets.is_empty(), "{role}: no histogram series");
    for (series, values) in &buckets {
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{role}: buckets not cumulative: {series} {values:?}"
        );
        assert_eq!(
            values.last(),
            counts.get(series),
            "{role}: +Inf is not _count: {series}"
        );
    }
}

#[actix_web::test]
async fn request_and_cart_update_counts_move_by_exactly_the_requests_made() {
    let app = spawn_app().await;
    let route = [
        ("method", "PUT"),
        ("route", "/{product_id}/{quantity}"),
        ("status", "200"),
    ];
    let refused = [
        ("method", "PUT"),
        ("route", "/{product_id}/{quantity}"),
        ("status", "400"),
    ];
    let requests = |labels| app.metric(Role::Cart, "http_server_requests_total", labels);
    let durations = |labels| {
        app.metric(
            Role::Cart,
            "http_server_request_duration_seconds_count",
            labels,
        )
    };
    let updates = || {
        app.metric(
            Role::Cart,
            "ecommerce_cart_updates_total",
            &[("operation", "set")],
        )
    };
    let before = (
        requests(&route).await,
        durations(&route).await,
        requests(&refused).await,
        updates().await,
    );

    let sid = unique_sid("counted");
    for quantity in [1, 2, 3] {
        let reply = app
            .json(
                Method::PUT,
                &app.url(Role::Cart, &format!("/{SWEET_TEA}/{quantity}")),
                &json!({"session_id": sid}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let bad = app
        .json(
            Method::PUT,
            &app.url(Role::Cart, "/a.b/1"),
            &json!({"session_id": sid}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    assert_eq!(requests(&route).await - before.0, 3.0);
    assert_eq!(durations(&route).await - before.1, 3.0);
    assert_eq!(requests(&refused).await - before.2, 1.0);
    assert_eq!(updates().await - before.3, 3.0);
}

#[actix_web::test]
async fn checkouts_payments_and_sessions_are_counted() {
    let app = spawn_app().await;
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 3).await;

    let paid = app.checkout(&session, GOOD_CARD).await;
    let empty = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json());
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.json());
    let checkouts = app.metrics(Role::Checkout).await;
    let outcome = |o| metric_value(&checkouts, "ecommerce_checkouts_total", &[("outcome", o)]);
    assert_eq!(outcome("success"), 1.0);
    assert_eq!(outcome("rejected"), 1.0);
    let payments = app
        .metric(
            Role::Payment,
            "ecommerce_payments_total",
            &[("outcome", "success")],
        )
        .await;
    assert_eq!(payments, 1.0);
    let amount = app
        .metric(Role::Payment, "ecommerce_payment_amount_total", &[])
        .await;
    assert_eq!(amount, 10.5);
    let sessions = app
        .metric(Role::WebGateway, "ecommerce_sessions_created_total", &[])
        .await;
    assert_eq!(sessions, 1.0);
}

#[actix_web::test]
async fn an_unknown_route_is_a_json_404_on_every_role() {
    let app = spawn_app().await;

    for role in Role::ALL {
        let (method, path) = if role == Role::WebGateway {
            // Paths without an extension are the page's client-side routes.
            (Method::POST, "/no/such/route")
        } else {
            (Method::GET, "/no/such/route/here")
        };

        let reply = app.send(method, &app.url(role, path), &[], "").await;

        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{role}");
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("application/json"), "{role}");
        assert_eq!(reply.json()["message"], "failure", "{role}");
        assert!(!reply.reason().is_empty());
    }
}

/// A stub that keeps the `traceparent` of every request it gets, and answers `body`.
fn trace_recorder(body: &'static [u8]) -> (Stub, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let stub = Stub::start(move |cfg| {
        let record = record.clone();
        cfg.default_service(actix_web::web::to(move |req: HttpRequest| {
            let record = record.clone();
            async move {
                let traceparent = req
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("<none>")
                    .to_string();
                record.lock().unwrap().push(traceparent);
                HttpResponse::Ok().content_type("image/jpeg").body(body)
            }
        }));
    });
    (stub, seen)
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// `(trace id, parent span id, flags)` of a valid version-00 `traceparent`.
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00", "{traceparent}");
    assert_eq!(fields[1].len(), 32, "{traceparent}");
    assert_eq!(fields[2].len(), 16, "{traceparent}");
    assert!(fields[1..].iter().all(|f| f
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())));
    assert_ne!(fields[2], "0".repeat(16));
    (fields[1].into(), fields[2].into(), fields[3].into())
}

#[actix_web::test]
async fn the_trace_id_reaches_an_upstream_unchanged_with_a_new_parent_span() {
    let (upstream, seen) = trace_recorder(b"{}");
    let url = upstream.url.clone();
    let app = spawn_with(move |settings| {
        settings.upstreams.insert(Role::Product, url);
    })
    .await;

    let reply = app
        .send(
            Method::POST,
            &app.web("/api/v1/product/search"),
            &[("traceparent", &format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))],
            "{}",
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (trace, parent, flags) = parts(&seen[0]);
    assert_eq!(trace, TRACE_ID);
    assert_ne!(parent, CLIENT_SPAN);
    assert_eq!(flags, "01");
}

#[actix_web::test]
async fn the_trace_id_crosses_every_hop_to_the_image_bucket() {
    let (bucket, seen) = trace_recorder(b"\xFF\xD8 image");
    let url = bucket.url.clone();
    let app = spawn_with(move |settings| settings.content_source = Some(url)).await;

    let reply = app
        .send(
            Method::GET,
            &app.web("/api/v1/content/traced.jpeg"),
            &[("traceparent", &format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))],
            "",
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (trace, parent, _) = parts(&seen[0]);
    assert_eq!(trace, TRACE_ID);
    assert_ne!(parent, CLIENT_SPAN);
}

#[actix_web::test]
async fn a_request_without_a_valid_traceparent_starts_a_new_trace() {
    let (upstream, seen) = trace_recorder(b"{}");
    let url = upstream.url.clone();
    let app = spawn_with(move |settings| {
        settings.upstreams.insert(Role::Product, url);
    })
    .await;

    let plain = app
        .send(Method::POST, &app.web("/api/v1/product/search"), &[], "{}")
        .await;
    let garbage = app
        .send(
            Method::POST,
            &app.web("/api/v1/product/search"),
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            "{}",
        )
        .await;

    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(garbage.status, StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (first, _, _) = parts(&seen[0]);
    let (second, _, _) = parts(&seen[1]);
    assert_ne!(first, second);
    assert_ne!(second, "0".repeat(32));
}

#[actix_web::test]
async fn errors_never_show_internal_addresses() {
    let app = spawn_app().await;

    let reply = app
        .json(
            Method::POST,
            &app.web("/api/v1/cart"),
            &json!({"session_id": 5}),
        )
        .await;
    let text = String::from_utf8_lossy(&reply.body);

    assert!(reply.status.is_client_error());
    for role in Role::ALL {
        assert!(!text.contains(&app.address(role)), "{text}");
    }
    let _: Value = reply.json();
}

#[actix_web::test]
async fn upstream_calls_in_flight_requests_and_status_classes_are_measured() {
    let app = spawn_app().await;
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 1).await;
    let calls = || async {
        let text = app.metrics(Role::Checkout).await;
        [("cart", "POST"), ("product", "POST"), ("payment", "POST")].map(|(upstream, method)| {
            metric_value(
                &text,
                "http_client_request_duration_seconds_count",
                &[
                    ("upstream", upstream),
                    ("method", method),
                    ("status_class", "2xx"),
                ],
            )
        })
    };
    let before = calls().await;

    let paid = app.checkout(&session, GOOD_CARD).await;
    let refused = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json());
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let after = calls().await;
    // The paid checkout claimed the cart, priced it, paid and recorded the receipt (all
    // 2xx); the refused one stopped at its claim of the empty cart (a 4xx).
    assert_eq!(after[0] - before[0], 2.0, "cart claims and receipts");
    assert_eq!(after[1] - before[1], 1.0, "price lookups");
    assert_eq!(after[2] - before[2], 1.0, "payments");
    let classes = app.metrics(Role::Checkout).await;
    let served = |class| {
        metric_value(
            &classes,
            "http_server_requests_total",
            &[("route", "/process"), ("status_class", class)],
        )
    };
    assert_eq!(served("2xx"), 1.0);
    assert_eq!(served("4xx"), 1.0);
    // The scrape itself is the one request in flight.
    assert_eq!(
        metric_value(&classes, "http_server_active_requests", &[]),
        1.0
    );
    let gateway = app.metrics(Role::ApiGateway).await;
    let forwarded = metric_value(
        &gateway,
        "http_client_request_duration_seconds_count",
        &[("upstream", "payment"), ("status_class", "2xx")],
    );
    assert_eq!(forwarded, 1.0);
}
