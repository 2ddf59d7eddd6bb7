//! The shop's public face under attack: bodies the web-gateway cannot verify, internal
//! services, operational endpoints on their own listener, guessed admin tokens, and the
//! security headers of every answer.

use actix_web::http::{Method, StatusCode};
use ecommerce::config::Secret;
use ecommerce::role::Role;
use serde_json::json;

use support::shop::{sid_of, spawn_app, spawn_with, unique_sid, TestApp, GOOD_CARD, SWEET_TEA};

const TOKEN: &str = "boundary-admin-token";

/// Every cart and checkout route a browser can call, with the method it takes.
fn session_routes() -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/cart".into()),
        (Method::POST, "/api/v1/cart/".into()),
        (Method::DELETE, "/api/v1/cart".into()),
        (Method::PUT, format!("/api/v1/cart/{SWEET_TEA}/9")),
        (Method::DELETE, format!("/api/v1/cart/{SWEET_TEA}")),
        (Method::GET, format!("/api/v1/cart/{SWEET_TEA}")),
        (Method::POST, "/api/v1/checkout/process".into()),
        (Method::POST, "/api/v1/checkout/initiate".into()),
    ]
}

/// Bodies that name `victim` (a raw sid) in ways a lenient reader would accept.
fn unreadable_bodies(victim: &str, own: &str) -> Vec<Vec<u8>> {
    let order = TestApp::order(victim, GOOD_CARD);
    let order = order.to_string();
    let open = &order[..order.len() - 1];
    let mut not_utf8 = format!(r#"{{"session_id": "{victim}", "x": ""#).into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe\"}");
    let texts = vec![
        format!(r#"{{"session_id": "{victim}", "x": 1e999}}"#),
        format!(r#"{{"session_id": "{victim}", "x": [-1e400]}}"#),
        format!(r#"{open}, "amount": 1e999}}"#),
        format!(r#"{{"session_id": "{own}", "session_id": "{victim}"}}"#),
        format!(r#"{{"session_id": "{victim}", "session_id": "{own}"}}"#),
        format!(r#"{{"session_\u0069d": "{victim}", "session_id": "{own}"}}"#),
        format!(r#"{{"session_id": "{own}", "a": {{"b": 1, "b": 2}}}}"#),
        format!(r#"["{victim}"]"#),
        format!(
            r#"["{victim}", {{"address": "x"}}, {{"address": "x", "card": {{"number": "4111111111111111"}}}}]"#
        ),
        format!(r#"{{"session_id": "{victim}""#),
        format!(r#"{{"session_id": "{victim}"}} {{}}"#),
        format!(r#"{{"session_id": "{victim}", "x": "\ud800"}}"#),
        format!(
            r#"{{"session_id": "{victim}", "x": {}}}"#,
            "[".repeat(300) + &"]".repeat(300)
        ),
        "not json".into(),
    ];
    let mut bodies: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
    bodies.push(not_utf8);
    bodies
}

#[actix_web::test]
async fn bodies_the_gateway_cannot_verify_are_refused_on_every_cart_and_checkout_route() {
    let app = spawn_app().await;
    let victim = app.session().await;
    assert_eq!(
        app.put_line(&victim, SWEET_TEA, 2).await.status,
        StatusCode::OK
    );
    let own = app.session().await;
    let raw = sid_of(&victim).to_string();
    let unsigned_made_up = unique_sid("made-up");

    for (method, path) in session_routes() {
        for target in [&raw, &unsigned_made_up] {
            for body in unreadable_bodies(target, &own) {
                let reply = app
                    .send(
                        method.clone(),
                        &app.web(&path),
                        &[("content-type", "application/json")],
                        body.clone(),
                    )
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {path} {}: {}",
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(&reply.body)
                );
                assert!(!reply.reason().is_empty());
            }
        }
    }

    assert_eq!(app.cart(&victim).await, json!({SWEET_TEA: 2}));
    assert_eq!(app.cart_direct(&unsigned_made_up).await, json!({}));
    let charged = app
        .metric(Role::Payment, "ecommerce_payments_total", &[])
        .await;
    assert_eq!(charged, 0.0);
    let updates = app
        .metric(Role::Cart, "ecommerce_cart_updates_total", &[])
        .await;
    assert_eq!(updates, 1.0, "only the victim's own line");
}

#[actix_web::test]
async fn a_cart_or_checkout_call_without_a_session_is_refused_at_the_gateway() {
    let app = spawn_app().await;

    for (method, path) in session_routes() {
        let opening = path.ends_with("/initiate");
        for body in ["", "{}", r#"{"x": 1}"#] {
            let reply = app
                .send(method.clone(), &app.web(&path), &[], body.to_string())
                .await;
            let expected = if opening {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(reply.status, expected, "{method} {path} {body:?}");
        }
    }
}

#[actix_web::test]
async fn payment_is_not_reachable_from_outside() {
    let app = spawn_app().await;
    let charge = json!({"amount": 999.99, "card": {"number": GOOD_CARD}});

    for path in [
        "/api/v1/payment/process",
        "/api/v1/p%61yment/process",
        "/api/v1/payment",
    ] {
        let reply = app.json(Method::POST, &app.web(path), &charge).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }

    let charged = app
        .metric(Role::Payment, "ecommerce_payments_total", &[])
        .await;
    assert_eq!(charged, 0.0);
    // Checkout still reaches it, through the api-gateway.
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 1).await;
    assert_eq!(
        app.checkout(&session, GOOD_CARD).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn the_shop_s_answers_carry_security_headers() {
    let app = spawn_app().await;
    let page = app.get(&app.web("/")).await;
    let script = app.get(&app.web("/favicon.svg")).await;
    let api = app
        .json(
            Method::POST,
            &app.web("/api/v1/product/search"),
            &json!({"query": "tea"}),
        )
        .await;
    let missing = app.get(&app.web("/nope.js")).await;

    for reply in [&page, &script, &api, &missing] {
        let csp = reply.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
    }
}

async fn shop_with_admin_listeners() -> TestApp {
    spawn_with(|settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        settings.admin_listen = settings
            .roles
            .iter()
            .map(|r| (*r, "127.0.0.1:0".to_string()))
            .collect();
    })
    .await
}

#[actix_web::test]
async fn with_an_admin_listener_operational_endpoints_leave_the_main_one() {
    let app = shop_with_admin_listeners().await;

    for role in Role::ALL {
        assert_eq!(
            app.get(&app.url(role, "/healthz")).await.status,
            StatusCode::OK,
            "{role}"
        );
        // What each endpoint's answer holds; on the main listener the path is the
        // shop's own (the web-gateway's page, a cart line, a 404), never the endpoint.
        for (path, mark) in [
            ("/metrics", "# TYPE"),
            ("/readyz", "\"checks\""),
            ("/faults", "\"switchable\""),
        ] {
            let reply = app.get(&app.url(role, path)).await;
            let body = String::from_utf8_lossy(&reply.body);
            assert!(
                !body.contains(mark),
                "{role} {path} still answers on the main listener"
            );
            let admin = app.get(&app.ops_url(role, path)).await;
            assert!(String::from_utf8_lossy(&admin.body).contains(mark));
        }
        for path in ["/healthz", "/metrics", "/readyz", "/faults"] {
            let reply = app.get(&app.ops_url(role, path)).await;
            assert_eq!(reply.status, StatusCode::OK, "{role} admin {path}");
        }
        let put = app
            .send(
                Method::PUT,
                &app.url(role, "/faults"),
                &[("authorization", &format!("Bearer {TOKEN}"))],
                r#"{"faults": ["basic-bug"]}"#,
            )
            .await;
        assert_ne!(
            put.status,
            StatusCode::OK,
            "{role} switched faults publicly"
        );
    }
    let metrics = app.metrics(Role::Product).await;
    assert!(metrics.contains("http_server_requests_total"));
    assert_eq!(
        app.get(&app.web("/")).await.status,
        StatusCode::OK,
        "the shop itself"
    );
}

#[actix_web::test]
async fn wrong_admin_tokens_are_answered_429_after_a_few_tries() {
    let app = shop_with_admin_listeners().await;
    let url = app.ops_url(Role::Payment, "/faults");
    let put = |token: &'static str| {
        let url = url.clone();
        let app = &app;
        async move {
            let auth = format!("Bearer {token}");
            app.send(
                Method::PUT,
                &url,
                &[("authorization", auth.as_str())],
                r#"{"faults": []}"#,
            )
            .await
        }
    };

    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(put("guess").await.status.as_u16());
    }
    let right_token = put(TOKEN).await;

    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(right_token.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = right_token
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Another role counts its own guesses.
    let elsewhere = app
        .send(
            Method::PUT,
            &app.ops_url(Role::Cart, "/faults"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            r#"{"faults": []}"#,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK);
}
