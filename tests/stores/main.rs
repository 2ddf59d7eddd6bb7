//! The shop on real Redis and PostgreSQL: key schema, replicas, outages, concurrency and
//! migrations. Servers that a test stops are ones it started itself.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use redis::{self, AsyncCommands};
use serde_json::json;

use support::http::metric_value;
use support::otlp::Receiver;
use support::ports::free_port;
use support::shop::{sid_of, spawn_with, unique_sid, SWEET_TEA};
use support::stores::{self, PgCluster, RedisServer, TestDatabase};

mod generate;
mod persistence;
mod search_scale;
mod tls;

/// Retries `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `catalog` and `n` generated products migrated into `db`.
async fn migrate_generating(
    db: &TestDatabase,
    catalog: &[ecommerce::catalog::Product],
    n: u32,
) -> ecommerce::stores::postgres::Migrated {
    let trust = ecommerce::tls::Trust::system().unwrap();
    ecommerce::stores::postgres::migrate_generating(&db.url, catalog, n, &trust)
        .await
        .unwrap()
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[actix_web::test]
async fn carts_and_sessions_live_in_redis_under_their_keys_with_ttls() {
    let Some(redis) = stores::redis() else {
        return;
    };
    let app = spawn_with(|s| {
        s.cart_data = redis.parse().unwrap();
        s.session_data = redis.parse().unwrap();
    })
    .await;
    let session = app.session().await;

    assert_eq!(
        app.put_line(&session, SWEET_TEA, 3).await.status,
        StatusCode::OK
    );

    let mut conn = redis_conn(&redis).await;
    let sid = sid_of(&session);
    let quantity: String = conn.hget(format!("cart:{sid}"), SWEET_TEA).await.unwrap();
    assert_eq!(quantity, "3");
    let cart_ttl: i64 = conn.ttl(format!("cart:{sid}")).await.unwrap();
    assert!((86_000..=86_400).contains(&cart_ttl), "cart TTL {cart_ttl}");
    let session_ttl: i64 = conn.ttl(format!("session:{sid}")).await.unwrap();
    assert!(
        (1_700..=1_800).contains(&session_ttl),
        "session TTL {session_ttl}"
    );
}

#[actix_web::test]
async fn the_replica_serves_reads_while_the_primary_is_down_and_loses_nothing_it_confirmed() {
    if stores::redis().is_none() {
        return;
    }
    let mut primary = RedisServer::primary();
    let replica = RedisServer::replica_of(&primary);
    let app = spawn_with(|s| {
        s.cart_data = primary.url().parse().unwrap();
        s.cart_data_replica = Some(replica.url().parse().unwrap());
    })
    .await;
    let session = app.session().await;
    let products = ["a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8"];
    for (i, id) in products.iter().enumerate() {
        let put = app.put_line(&session, id, i as u32 + 1).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    }

    // A write the replica did not confirm within its wait (a machine too busy to replicate
    // in time) is acknowledged on the primary alone, and counted: only those may be lost.
    let unconfirmed = app
        .metric(
            Role::Cart,
            "ecommerce_store_unreplicated_writes_total",
            &[("store", "cart-data")],
        )
        .await;

    primary.stop();

    let cart = app.cart(&session).await;
    let lost: Vec<&str> = products
        .iter()
        .enumerate()
        .filter(|(i, id)| cart[**id] != *i as u64 + 1)
        .map(|(_, id)| *id)
        .collect();
    assert!(
        lost.len() as f64 <= unconfirmed,
        "acknowledged lines {lost:?} lost, {unconfirmed} written without the replica: {cart}"
    );
    let refused = app.put_line(&session, "z9", 1).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.reason().contains("primary"), "{}", refused.reason());
    let ready = app.get(&app.url(Role::Cart, "/readyz")).await;
    assert!(
        ready.json()["checks"]["cart-data"]
            .as_str()
            .unwrap()
            .starts_with("degraded"),
        "{}",
        ready.json()
    );
    assert_eq!(
        app.cart(&session).await,
        cart,
        "a refused write changed the cart"
    );

    primary.restart();

    eventually(Duration::from_secs(15), "writes work again", || async {
        app.put_line(&session, "z9", 1).await.status == StatusCode::OK
    })
    .await;
    let cart = app.cart(&session).await;
    assert_eq!(
        cart.as_object().unwrap().len(),
        products.len() + 1,
        "{cart}"
    );
}

#[actix_web::test]
async fn writes_go_on_without_the_replica_and_the_role_says_so() {
    if stores::redis().is_none() {
        return;
    }
    let primary = RedisServer::primary();
    let mut replica = RedisServer::replica_of(&primary);
    let app = spawn_with(|s| {
        s.cart_data = primary.url().parse().unwrap();
        s.cart_data_replica = Some(replica.url().parse().unwrap());
    })
    .await;
    let session = app.session().await;
    assert_eq!(app.put_line(&session, "a1", 1).await.status, StatusCode::OK);

    replica.stop();

    for quantity in 2..=4 {
        let put = app.put_line(&session, "a1", quantity).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    }
    assert_eq!(app.cart(&session).await, json!({"a1": 4}));
    let ready = app.get(&app.url(Role::Cart, "/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    let check = ready.json()["checks"]["cart-data"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        check.starts_with("degraded") && check.contains("replica"),
        "{check}"
    );
    let metrics = app.get(&app.url(Role::Cart, "/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    let unreplicated: f64 = text
        .lines()
        .find(|l| l.starts_with("ecommerce_store_unreplicated_writes_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the unreplicated-writes metric");
    assert!(unreplicated >= 3.0, "{text}");
}

#[actix_web::test]
async fn a_role_started_while_its_store_is_down_answers_503_then_recovers() {
    if stores::redis().is_none() {
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = spawn_with(|s| s.cart_data = url.parse().unwrap()).await;
    let session = app.session().await;

    let down = app.put_line(&session, SWEET_TEA, 1).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.reason().contains("cart-data"), "{}", down.reason());
    // The store's outage is the cart's own 503 with a reason, not the cart leaving its
    // Service: it stays ready, and its readiness body names the store.
    let ready = app.get(&app.url(Role::Cart, "/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(
        ready.json()["checks"]["cart-data"]
            .as_str()
            .is_some_and(|c| c.starts_with("down")),
        "{}",
        ready.json()
    );

    let _redis = RedisServer::primary_on(port);

    eventually(Duration::from_secs(10), "the cart works", || async {
        app.put_line(&session, SWEET_TEA, 1).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 1}));
}

#[actix_web::test]
async fn concurrent_updates_to_one_cart_lose_nothing() {
    let Some(redis) = stores::redis() else {
        return;
    };
    let app = spawn_with(|s| s.cart_data = redis.parse().unwrap()).await;
    let sid = format!("concurrency{:08x}", rand::random::<u32>());
    let body = json!({"session_id": sid});
    let urls = (0..40)
        .map(|i| app.url(Role::Cart, &format!("/p{i:02}/{}", i + 1)))
        .chain((1..=20).map(|q| app.url(Role::Cart, &format!("/shared/{q}"))));
    let puts = urls.map(|url| {
        let (app, body) = (&app, &body);
        async move { app.json(Method::PUT, &url, body).await.status }
    });
    let statuses = futures_util::future::join_all(puts).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );

    let cart = app
        .json(Method::POST, &app.url(Role::Cart, "/"), &body)
        .await
        .json()["data"]
        .clone();
    let lines = cart.as_object().unwrap();
    assert_eq!(lines.len(), 41, "{cart}");
    for i in 0..40 {
        assert_eq!(lines[&format!("p{i:02}")], i + 1);
    }
    assert!((1..=20).contains(&lines["shared"].as_u64().unwrap()));
}

#[actix_web::test]
async fn the_line_limit_holds_under_concurrent_adds() {
    let Some(redis) = stores::redis() else {
        return;
    };
    let app = spawn_with(|s| s.cart_data = redis.parse().unwrap()).await;
    let sid = format!("limit{:08x}", rand::random::<u32>());
    let body = json!({"session_id": sid});
    let puts = (0..120).map(|i| {
        let url = app.url(Role::Cart, &format!("/p{i:03}/1"));
        let (app, body) = (&app, &body);
        async move { app.json(Method::PUT, &url, body).await.status }
    });
    let statuses = futures_util::future::join_all(puts).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (100, 20));
    let cart = app
        .json(Method::POST, &app.url(Role::Cart, "/"), &body)
        .await
        .json();
    assert_eq!(cart["data"].as_object().unwrap().len(), 100);
}

#[actix_web::test]
async fn product_answers_503_while_postgres_is_down_and_recovers_without_a_restart() {
    if stores::postgres().is_none() {
        return;
    }
    let mut pg = PgCluster::start();
    let db = TestDatabase::create(&pg.server_url()).await;
    let app = spawn_with(|s| s.product_data = db.url.parse().unwrap()).await;
    let url = app.web("/api/v1/product/search");
    let query = json!({"query": "tea", "page": {"size": 3}});
    let search = || app.json(Method::POST, &url, &query);
    assert_eq!(search().await.status, StatusCode::OK);

    pg.stop();

    let down = search().await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.reason().contains("product-data"), "{}", down.reason());
    let ready = app.get(&app.url(Role::Product, "/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(
        ready.json()["checks"]["product-data"]
            .as_str()
            .is_some_and(|c| c.starts_with("down")),
        "{}",
        ready.json()
    );

    pg.resume();

    eventually(Duration::from_secs(15), "search works again", || async {
        search().await.status == StatusCode::OK
    })
    .await;
    let results = search().await.json();
    assert_eq!(results["results"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn migrate_is_idempotent_and_applies_a_changed_catalog() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let mut products = ecommerce::catalog::parse_csv(ecommerce::catalog::BUILTIN_CSV).unwrap();
    let original = products[0].price;

    let again = ecommerce::stores::postgres::migrate(&db.url, &products)
        .await
        .unwrap();
    assert_eq!(again.changed, 0, "a second run changed rows");

    products[0].price = ecommerce::domain::Money::from_cents(999);
    let changed = ecommerce::stores::postgres::migrate(&db.url, &products)
        .await
        .unwrap();
    assert_eq!(changed.changed, 1);

    // The command line loads the built-in catalog again: the price goes back.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .args(["migrate", "--product-data", &db.url])
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let app = spawn_with(|s| s.product_data = db.url.parse().unwrap()).await;
    let product = app
        .get(&app.web(&format!("/api/v1/product/products/{}", products[0].id)))
        .await;
    assert_eq!(product.json()["price"], original.as_f64());
}

#[actix_web::test]
async fn store_calls_are_spans_under_their_request_and_pools_are_measured() {
    let (Some(redis), Some(server)) = (stores::redis(), stores::postgres()) else {
        return;
    };
    let receiver = Receiver::start();
    let db = TestDatabase::create(&server).await;
    let endpoint = receiver.url.clone();
    let app = spawn_with(|s| {
        s.cart_data = redis.parse().unwrap();
        s.product_data = db.url.parse().unwrap();
        s.otlp = Some(ecommerce::telemetry::settings::Otlp {
            schedule_delay: Duration::from_millis(100),
            ..ecommerce::telemetry::settings::Otlp::to(&endpoint)
        });
    })
    .await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let sid = unique_sid("traced");

    let set = app
        .send(
            Method::PUT,
            &app.url(Role::Cart, &format!("/{SWEET_TEA}/2")),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent),
            ],
            json!({"session_id": sid}).to_string(),
        )
        .await;
    let found = app
        .send(
            Method::POST,
            &app.url(Role::Product, "/search"),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent),
            ],
            json!({"query": "tea", "page": {"size": 2}}).to_string(),
        )
        .await;

    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(found.status, StatusCode::OK);
    let spans = receiver
        .trace(&trace_id, Duration::from_secs(15), |s| s.len() >= 4)
        .await;
    let server_span = |service: &str| {
        spans
            .iter()
            .find(|s| s.is_server() && s.service == service)
            .unwrap_or_else(|| panic!("no {service} span"))
    };
    let redis_call = spans
        .iter()
        .find(|s| s.text("db.system") == Some("redis"))
        .expect("a Redis span");
    assert_eq!(redis_call.text("db.operation"), Some("EVALSHA"));
    assert_eq!(redis_call.span.name, "EVALSHA cart-data");
    assert_eq!(redis_call.parent_id(), server_span("cart").span_id());
    assert!(redis_call.text("server.address").is_some());
    let sql_call = spans
        .iter()
        .find(|s| s.text("db.system") == Some("postgresql"))
        .expect("a PostgreSQL span");
    assert_eq!(sql_call.text("db.operation"), Some("SELECT"));
    assert!(sql_call
        .text("db.query.text")
        .is_some_and(|q| q.contains("FROM products")));
    assert_eq!(sql_call.parent_id(), server_span("product").span_id());

    let cart = app.metrics(Role::Cart).await;
    let pool = |name| {
        metric_value(
            &cart,
            name,
            &[("store", "cart-data"), ("server", "primary")],
        )
    };
    assert!(pool("ecommerce_store_pool_connections") >= 1.0, "{cart}");
    assert_eq!(pool("ecommerce_store_pool_connections_in_use"), 0.0);
    assert_eq!(pool("ecommerce_store_pool_connections_max"), 16.0);
    let operations = metric_value(
        &cart,
        "db_client_operation_duration_seconds_count",
        &[
            ("db_system", "redis"),
            ("operation", "EVALSHA"),
            ("outcome", "ok"),
        ],
    );
    assert_eq!(operations, 1.0);
    let product = app.metrics(Role::Product).await;
    let connections = metric_value(
        &product,
        "ecommerce_store_pool_connections",
        &[("store", "product-data")],
    );
    assert!(connections >= 1.0, "{product}");
}

#[actix_web::test]
async fn product_data_slow_waits_inside_postgres_on_the_query_s_connection_until_switched_off() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let receiver = Receiver::start();
    let db = TestDatabase::create(&server).await;
    let endpoint = receiver.url.clone();
    let app = spawn_with(|s| {
        s.product_data = db.url.parse().unwrap();
        s.admin_token = Some(ecommerce::config::Secret::new("store-test-token".into()));
        s.otlp = Some(ecommerce::telemetry::settings::Otlp {
            schedule_delay: Duration::from_millis(100),
            ..ecommerce::telemetry::settings::Otlp::to(&endpoint)
        });
        s.faults.enable("product-data-slow=300").unwrap();
    })
    .await;
    let monitor = db.client().await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let url = app.url(Role::Product, &format!("/products/{SWEET_TEA}"));
    let get = |headers: Vec<(&'static str, String)>| {
        let url = url.clone();
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let started = Instant::now();
            let reply = app.send(Method::GET, &url, &headers, "").await;
            (reply.status, started.elapsed())
        }
    };
    // The shop's sessions on this database that are asleep in the fault's wait.
    let sleeping = || async {
        monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'ecommerce' AND state = 'active' \
                 AND query LIKE 'SELECT pg_sleep%'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let watch = async {
        let mut most = 0;
        for _ in 0..40 {
            most = most.max(sleeping().await);
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        most
    };

    let ((slow, slow_took), seen_asleep) =
        futures_util::join!(get(vec![("traceparent", traceparent)]), watch);
    let off = app
        .send(
            Method::PUT,
            &app.url(Role::Product, "/faults"),
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer store-test-token"),
            ],
            json!({"faults": []}).to_string(),
        )
        .await;
    let (fast, fast_took) = get(Vec::new()).await;

    assert_eq!(slow, StatusCode::OK);
    assert!(slow_took >= Duration::from_millis(300), "{slow_took:?}");
    assert_eq!(seen_asleep, 1, "the wait is not a query of the shop's");
    let spans = receiver
        .trace(&trace_id, Duration::from_secs(15), |s| {
            s.iter().any(|s| s.text("db.system") == Some("postgresql"))
        })
        .await;
    let query = spans
        .iter()
        .find(|s| s.text("db.system") == Some("postgresql"))
        .unwrap();
    let took = query.span.end_time_unix_nano - query.span.start_time_unix_nano;
    assert!(took >= 300_000_000, "the PostgreSQL span took {took} ns");
    assert!(query
        .text("db.query.text")
        .is_some_and(|q| q.contains("WHERE id = $1")));
    let product = app.metrics(Role::Product).await;
    let store_seconds = metric_value(
        &product,
        "db_client_operation_duration_seconds_sum",
        &[("db_system", "postgresql"), ("outcome", "ok")],
    );
    assert!(store_seconds >= 0.3, "{store_seconds}");
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(fast, StatusCode::OK);
    assert!(fast_took < Duration::from_millis(300), "{fast_took:?}");
}
