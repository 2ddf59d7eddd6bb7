//! web-gateway (page, static files, sessions, the trust boundary) and api-gateway
//! (forwarding only to the five services, failures as 502/504).

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::HttpResponse;
use ecommerce::domain::{SessionId, SessionSigner};
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::{raw_http, Reply};
use support::ports::free_port;
use support::shop::{sid_of, spawn_app, spawn_with, TestApp, GOOD_CARD, SECRET, SWEET_TEA};
use support::stub::{echo_stub, Stub};

const INDEX_HTML: &[u8] = include_bytes!("../../assets/web/index.html");

/// The parts of a `Set-Cookie` for a new session: value, and the attributes in order.
fn session_cookie(reply: &Reply) -> (String, Vec<String>) {
    let all: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let mut parts = all[0].split(';').map(|p| p.trim().to_string());
    let value = parts
        .next()
        .and_then(|kv| kv.strip_prefix("session_id=").map(str::to_string))
        .unwrap_or_else(|| panic!("not a session cookie: {}", all[0]));
    (value, parts.collect())
}

fn no_cookie(reply: &Reply, what: &str) {
    assert!(
        reply.header("set-cookie").is_none(),
        "{what} set {:?}",
        reply.header("set-cookie")
    );
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> Reply {
    app.send(
        Method::GET,
        &app.web(path),
        &[("cookie", &format!("session_id={cookie}"))],
        "",
    )
    .await
}

#[actix_web::test]
async fn client_routes_serve_the_page_and_a_first_load_sets_a_readable_signed_session_cookie() {
    let app = spawn_app().await;
    let signer = SessionSigner::new(SECRET.as_bytes());

    for path in ["/", "/products/x", "/cart", "/checkout", "/confirmation"] {
        let reply = app.get(&app.web(path)).await;

        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert_eq!(reply.body, INDEX_HTML, "{path}");
        let (value, attributes) = session_cookie(&reply);
        assert_eq!(attributes, ["Path=/", "SameSite=Lax"], "{path}");
        let (sid, signature) = value.split_once('.').expect("<sid>.<signature>");
        assert!(
            sid.len() >= 16 && sid.chars().all(|c| c.is_ascii_hexdigit()),
            "{sid}"
        );
        assert_eq!(signature.len(), 64, "{signature}");
        assert_eq!(
            signer.verify(&value).map(|s| s.as_str().to_string()),
            Some(sid.to_string())
        );
    }
}

#[actix_web::test]
async fn every_first_load_gets_its_own_session() {
    let app = spawn_app().await;

    let first = app.session().await;
    let second = app.session().await;

    assert_ne!(sid_of(&first), sid_of(&second));
}

#[actix_web::test]
async fn a_page_load_with_a_valid_cookie_gets_no_new_cookie() {
    let app = spawn_app().await;
    let session = app.session().await;

    for path in ["/", "/cart", "/products/f95e2475"] {
        let reply = get_with_cookie(&app, path, &session).await;

        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, INDEX_HTML);
        no_cookie(&reply, path);
    }
}

#[actix_web::test]
async fn a_page_load_with_a_url_encoded_cookie_keeps_the_session() {
    let app = spawn_app().await;
    let session = app.session().await;

    let reply = get_with_cookie(&app, "/", &session.replace('.', "%2E")).await;

    assert_eq!(reply.status, StatusCode::OK);
    no_cookie(&reply, "an encoded cookie");
}

#[actix_web::test]
async fn a_page_load_with_a_forged_cookie_gets_a_fresh_session() {
    let app = spawn_app().await;
    let forged = format!("victim.{}", "0".repeat(64));

    let reply = get_with_cookie(&app, "/", &forged).await;

    assert_eq!(reply.status, StatusCode::OK);
    let (value, _) = session_cookie(&reply);
    assert_ne!(sid_of(&value), "victim");
}

#[actix_web::test]
async fn static_files_are_served_with_their_content_type_and_no_cookie() {
    let app = spawn_app().await;
    let page = String::from_utf8(app.get(&app.web("/")).await.body.to_vec()).unwrap();
    // The bundle's file names carry content hashes: take them from the page.
    let linked = |ext: &str| {
        page.split('"')
            .find(|part| part.starts_with("/assets/") && part.ends_with(ext))
            .unwrap_or_else(|| panic!("index.html links no {ext}: {page}"))
            .to_string()
    };

    for (path, content_type, cache) in [
        (linked(".js"), "text/javascript", "immutable"),
        (linked(".css"), "text/css", "immutable"),
        ("/favicon.svg".to_string(), "image/svg+xml", "max-age=3600"),
    ] {
        let reply = app.get(&app.web(&path)).await;

        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let got = reply.header("content-type").unwrap_or_default();
        assert!(got.starts_with(content_type), "{path}: {got}");
        let cache_control = reply.header("cache-control").unwrap_or_default();
        assert!(cache_control.contains(cache), "{path}: {cache_control}");
        assert!(!reply.body.is_empty());
        no_cookie(&reply, &path);
    }
}

#[actix_web::test]
async fn an_unknown_static_file_is_404() {
    let app = spawn_app().await;

    for path in ["/nope.js", "/assets/app.js", "/app.js.map"] {
        let reply = app.get(&app.web(path)).await;

        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["message"], "failure");
        no_cookie(&reply, path);
    }
}

#[actix_web::test]
async fn no_path_escapes_the_web_bundle() {
    let app = spawn_app().await;
    let address = app.address(Role::WebGateway);

    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/assets/../Cargo.toml",
        "/..%2fCargo.toml",
        "/..%2FCargo.toml",
        "/%2e%2e%2fCargo.toml",
        "/web/../../Cargo.toml",
        "/..\\Cargo.toml",
        "//etc/passwd.txt",
        "/../src/main.rs",
        "/../assets/products.csv",
    ] {
        let reply = raw_http(
            &address,
            format!("GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"),
        )
        .await;

        assert_eq!(reply.status, 404, "{path}: {}", reply.head);
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body = String::from_utf8_lossy(&reply.body);
        assert!(!body.contains("[package]"), "{path}");
        assert!(!body.contains("fn main"), "{path}");
        assert!(!body.contains("Sweet Tea"), "{path}");
    }
}

#[actix_web::test]
async fn health_static_and_api_calls_never_set_a_cookie() {
    let app = spawn_app().await;
    let session = app.session().await;

    for path in ["/healthz", "/readyz", "/metrics", "/app.js", "/nope.js"] {
        no_cookie(&app.get(&app.web(path)).await, path);
    }
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/product/search",
            json!({"query": "tea"}),
        ),
        (Method::GET, "/api/v1/product/documents", json!([])),
        (Method::POST, "/api/v1/cart", json!({"session_id": session})),
        (
            Method::POST,
            "/api/v1/cart",
            json!({"session_id": "forged"}),
        ),
        (Method::GET, "/api/v1/content/sweet-tea.jpeg", json!(null)),
        (Method::GET, "/api/v1/nowhere", json!(null)),
    ] {
        let reply = app.json(method, &app.web(path), &body).await;

        no_cookie(&reply, path);
    }
}

/// Every cart and checkout call that names a session, with `session` as its value.
fn session_calls(session: &str) -> Vec<(Method, String, Value)> {
    let named = json!({"session_id": session});
    vec![
        (
            Method::PUT,
            format!("/api/v1/cart/{SWEET_TEA}/9"),
            named.clone(),
        ),
        (Method::PUT, "/api/v1/cart/ee0a957a/1".into(), named.clone()),
        (Method::POST, "/api/v1/cart".into(), named.clone()),
        (Method::POST, "/api/v1/cart/".into(), named.clone()),
        (
            Method::GET,
            format!("/api/v1/cart/{SWEET_TEA}"),
            named.clone(),
        ),
        (
            Method::DELETE,
            format!("/api/v1/cart/{SWEET_TEA}"),
            named.clone(),
        ),
        (Method::DELETE, "/api/v1/cart".into(), named.clone()),
        (
            Method::POST,
            "/api/v1/checkout/process".into(),
            TestApp::order(session, GOOD_CARD),
        ),
        (Method::POST, "/api/v1/checkout/initiate".into(), named),
    ]
}

/// A victim with a cart, and the values an attacker might name it with.
async fn victim_and_forgeries(app: &TestApp) -> (String, Vec<String>) {
    let victim = app.session().await;
    assert_eq!(
        app.put_line(&victim, SWEET_TEA, 2).await.status,
        StatusCode::OK
    );
    let sid = sid_of(&victim).to_string();
    let foreign =
        SessionSigner::new(b"another-shop's-secret").sign(&SessionId::parse(&sid).unwrap());
    let forgeries = vec![
        format!("{sid}.{}", "0".repeat(64)),
        sid.clone(),
        format!("{sid}."),
        format!("{sid}%2E{}", "0".repeat(64)),
        "abc".to_string(),
        foreign,
    ];
    (victim, forgeries)
}

async fn assert_forbidden(app: &TestApp, method: Method, url: &str, body: &Value, what: &str) {
    let reply = app.json(method.clone(), url, body).await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what} {method} {url}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(!reply.reason().is_empty());
}

#[actix_web::test]
async fn forged_unsigned_and_foreign_sessions_are_403_and_the_victims_cart_is_untouched() {
    let app = spawn_app().await;
    let (victim, forgeries) = victim_and_forgeries(&app).await;

    for forged in &forgeries {
        for (method, path, body) in session_calls(forged) {
            assert_forbidden(&app, method, &app.web(&path), &body, forged).await;
        }
    }

    assert_eq!(app.cart(&victim).await, json!({SWEET_TEA: 2}));
    let paid = app
        .metric(Role::Payment, "ecommerce_payments_total", &[])
        .await;
    assert_eq!(paid, 0.0);
}

#[actix_web::test]
async fn a_session_id_that_is_not_a_string_is_403_at_the_gateway() {
    let app = spawn_app().await;
    let (victim, _) = victim_and_forgeries(&app).await;

    for value in [
        json!(12345),
        json!(null),
        json!([sid_of(&victim)]),
        json!({"id": 1}),
    ] {
        let body = json!({"session_id": value});
        assert_forbidden(
            &app,
            Method::DELETE,
            &app.web("/api/v1/cart"),
            &body,
            "typed",
        )
        .await;
    }

    assert_eq!(app.cart(&victim).await, json!({SWEET_TEA: 2}));
}

#[actix_web::test]
async fn percent_encoded_service_names_do_not_bypass_the_session_check() {
    let app = spawn_app().await;
    let (victim, forgeries) = victim_and_forgeries(&app).await;
    let forged = &forgeries[0];
    let body = json!({"session_id": forged});

    for path in [
        format!("/api/v1/c%61rt/{SWEET_TEA}/9"),
        format!("/api/v1/%63%61%72%74/{SWEET_TEA}/9"),
        format!("/api/v1/cart/{SWEET_TEA}/9"),
        "/api/v1/c%61rt".to_string(),
        "/api/v1/%63art/".to_string(),
    ] {
        let method = if path.ends_with("/9") {
            Method::PUT
        } else {
            Method::DELETE
        };
        assert_forbidden(&app, method, &app.web(&path), &body, &path).await;
    }
    let order = TestApp::order(forged, GOOD_CARD);
    assert_forbidden(
        &app,
        Method::POST,
        &app.web("/api/v1/ch%65ckout/process"),
        &order,
        "checkout",
    )
    .await;

    assert_eq!(app.cart(&victim).await, json!({SWEET_TEA: 2}));
}

#[actix_web::test]
async fn other_spellings_of_the_cart_path_reach_no_cart() {
    let app = spawn_app().await;
    let (victim, forgeries) = victim_and_forgeries(&app).await;
    let body = json!({"session_id": forgeries[0]});

    for path in [
        "/api/v1/CART",
        "/api/v1//cart",
        "/api/v1/./cart",
        "/api/v1/cart%2F",
        "/api/v1/%2563art",
    ] {
        let reply = app.json(Method::DELETE, &app.web(path), &body).await;

        assert!(
            reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.status
        );
        assert_eq!(reply.json()["message"], "failure", "{path}");
    }

    assert_eq!(app.cart(&victim).await, json!({SWEET_TEA: 2}));
}

#[actix_web::test]
async fn a_url_encoded_session_value_is_accepted() {
    let app = spawn_app().await;
    let session = app.session().await;
    let encoded = session.replace('.', "%2E");

    let reply = app.put_line(&encoded, SWEET_TEA, 4).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 4}));
    assert_eq!(app.cart(&encoded).await, json!({SWEET_TEA: 4}));
}

#[actix_web::test]
async fn cart_calls_without_a_session_id_are_refused_by_the_cart() {
    let app = spawn_app().await;

    let reply = app
        .json(Method::PUT, &app.web("/api/v1/cart/f95e2475/1"), &json!({}))
        .await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.reason().contains("session_id"));
}

/// Every upstream of the api-gateway is the echo stub.
async fn shop_with_echo_upstreams(echo: &Stub) -> TestApp {
    let url = echo.url.clone();
    spawn_with(move |settings| {
        for role in Role::UPSTREAMS {
            settings.upstreams.insert(role, url.clone());
        }
    })
    .await
}

#[actix_web::test]
async fn the_api_gateway_forwards_only_to_the_five_services() {
    let echo = echo_stub();
    let app = shop_with_echo_upstreams(&echo).await;
    let session = app.session().await;

    for base in [app.url(Role::ApiGateway, ""), app.web("")] {
        for path in [
            "/api/v1/basket/x",
            "/api/v1/api-gateway/x",
            "/api/v1/web-gateway",
            "/api/v1/web-gateway/",
            "/api/v1/redis/x",
            "/api/v1/Cart/x",
            "/api/v1",
            "/api/v1/",
        ] {
            let reply = app
                .json(
                    Method::POST,
                    &format!("{base}{path}"),
                    &json!({"session_id": session}),
                )
                .await;

            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{base}{path}");
            assert_eq!(reply.json()["message"], "failure");
            assert!(reply.header("x-echo").is_none(), "{path} was proxied");
        }
        // The control: a service's path does reach the (echo) upstream.
        let proxied = app
            .json(
                Method::POST,
                &format!("{base}/api/v1/cart/x"),
                &json!({"session_id": session}),
            )
            .await;
        assert_eq!(proxied.header("x-echo"), Some("yes"));
    }
}

#[actix_web::test]
async fn the_api_gateway_forwards_method_path_query_and_body_unchanged() {
    let echo = echo_stub();
    let app = shop_with_echo_upstreams(&echo).await;

    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        let reply = app
            .send(
                method.clone(),
                &app.web("/api/v1/product/some/deep%20path/a%3Fb?x=1&y=%20z"),
                &[("content-type", "text/plain"), ("x-custom", "kept")],
                "hello, upstream",
            )
            .await;

        assert_eq!(reply.status, StatusCode::OK);
        let seen = reply.json();
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["path"], "/some/deep%20path/a%3Fb");
        assert_eq!(seen["query"], "x=1&y=%20z");
        assert_eq!(seen["body"], "hello, upstream");
        assert_eq!(seen["headers"]["content-type"], "text/plain");
        assert_eq!(seen["headers"]["x-custom"], "kept");
        assert!(seen["headers"]["x-forwarded-for"].is_string());
    }
    let bare = app.get(&app.url(Role::ApiGateway, "/api/v1/payment")).await;
    assert_eq!(bare.json()["path"], "/");
}

#[actix_web::test]
async fn the_api_gateway_returns_the_upstream_status_and_body_unchanged() {
    let echo = echo_stub();
    let app = shop_with_echo_upstreams(&echo).await;

    for status in [201u16, 404, 418, 500, 503] {
        let reply = app
            .get(&app.web(&format!("/api/v1/content/status/{status}")))
            .await;

        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.json()["path"], format!("/status/{status}"));
    }
}

#[actix_web::test]
async fn real_services_answer_through_both_gateways() {
    let app = spawn_app().await;

    for base in [app.url(Role::ApiGateway, ""), app.web("")] {
        let search = app
            .json(
                Method::POST,
                &format!("{base}/api/v1/product/search?x=1"),
                &json!({"query": "sweet", "page": {"size": 1}}),
            )
            .await;
        let missing = app
            .get(&format!("{base}/api/v1/product/products/nope"))
            .await;

        assert_eq!(search.status, StatusCode::OK);
        assert_eq!(search.json()["results"][0]["id"], SWEET_TEA);
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.reason().contains("nope"));
    }
}

#[actix_web::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let echo = echo_stub();
    let app = shop_with_echo_upstreams(&echo).await;

    for role in [Role::WebGateway, Role::ApiGateway] {
        let reply = raw_http(
            &app.address(role),
            "GET /api/v1/product/hop HTTP/1.1\r\n\
             Host: shop\r\n\
             Connection: close, x-hop\r\n\
             x-hop: 1\r\n\
             Keep-Alive: timeout=5\r\n\
             Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
             x-kept: 1\r\n\r\n"
                .to_string(),
        )
        .await;

        assert_eq!(reply.status, 200, "{}", reply.head);
        let seen: Value = serde_json::from_slice(&reply.body).unwrap();
        let headers = &seen["headers"];
        assert_eq!(headers["x-kept"], "1", "{role}: {headers}");
        for hop in ["x-hop", "keep-alive", "proxy-authorization"] {
            assert!(
                headers.get(hop).is_none(),
                "{role} forwarded {hop}: {headers}"
            );
        }
    }
}

/// The shop with its api-gateway sending cart calls to a port nobody listens on.
async fn shop_with_a_dead_cart() -> (TestApp, u16) {
    let port = free_port();
    let app = spawn_with(|settings| {
        settings
            .upstreams
            .insert(Role::Cart, format!("http://127.0.0.1:{port}"));
    })
    .await;
    (app, port)
}

#[actix_web::test]
async fn a_dead_upstream_is_502_with_a_json_reason_and_no_address() {
    let (app, port) = shop_with_a_dead_cart().await;
    let session = app.session().await;

    let started = Instant::now();
    let through_web = app.put_line(&session, SWEET_TEA, 1).await;
    let direct = app
        .json(
            Method::POST,
            &app.url(Role::ApiGateway, "/api/v1/cart"),
            &json!({"session_id": "x"}),
        )
        .await;

    for reply in [&through_web, &direct] {
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let reason = reply.reason();
        assert!(reason.contains("cart"), "{reason}");
        assert!(
            !reason.contains("127.0.0.1") && !reason.contains(&port.to_string()),
            "{reason}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn a_dead_api_gateway_is_502_at_the_web_gateway() {
    let port = free_port();
    let app = spawn_with(|settings| {
        settings.api_gateway_url = Some(format!("http://127.0.0.1:{port}"));
    })
    .await;

    let reply = app
        .json(Method::POST, &app.web("/api/v1/product/search"), &json!({}))
        .await;

    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(reply.reason().contains("api-gateway"), "{}", reply.reason());
    assert!(!reply.reason().contains(&port.to_string()));
}

#[actix_web::test]
async fn a_slow_upstream_is_504_not_a_hung_request() {
    let slow = Stub::start(|cfg| {
        cfg.default_service(actix_web::web::to(|| async {
            actix_web::rt::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().finish()
        }));
    });
    let url = slow.url.clone();
    let app = spawn_with(move |settings| {
        settings.request_timeout = Duration::from_millis(300);
        settings.upstreams.insert(Role::Product, url);
    })
    .await;

    for base in [app.url(Role::ApiGateway, ""), app.web("")] {
        let started = Instant::now();
        let reply = app
            .json(
                Method::POST,
                &format!("{base}/api/v1/product/search"),
                &json!({}),
            )
            .await;
        let elapsed = started.elapsed();

        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{base}");
        assert!(reply.reason().contains("in time"), "{}", reply.reason());
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}

#[actix_web::test]
async fn every_dependency_is_up_in_metrics_and_a_dead_upstream_is_down_without_unreadiness() {
    let (app, _) = shop_with_a_dead_cart().await;
    let up = |text: &str, dependency| {
        support::http::metric_value(
            text,
            "ecommerce_dependency_up",
            &[("dependency", dependency)],
        )
    };

    let gateway = app.metrics(Role::ApiGateway).await;
    let web = app.metrics(Role::WebGateway).await;
    let checkout = app.metrics(Role::Checkout).await;
    let ready = app.get(&app.url(Role::ApiGateway, "/readyz")).await;

    for upstream in ["checkout", "content", "payment", "product"] {
        assert_eq!(up(&gateway, upstream), 1.0, "{upstream}: {gateway}");
    }
    assert_eq!(up(&gateway, "cart"), 0.0, "{gateway}");
    assert_eq!(up(&web, "api-gateway"), 1.0, "{web}");
    assert_eq!(up(&web, "session-data"), 1.0, "{web}");
    assert_eq!(up(&checkout, "api-gateway"), 1.0, "{checkout}");
    // One upstream down is that upstream's routes failing (502), not the whole
    // api-gateway leaving its Service.
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.json()["checks"]["cart"]
        .as_str()
        .unwrap()
        .starts_with("down"));
}
