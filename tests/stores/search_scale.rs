//! Search, suggestions and the whole catalog on a generated catalog of 50,000 products in
//! PostgreSQL: each page and its capped count against a brute-force filter of the same
//! rows, read back from the database.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::catalog::{generated, parse_csv, Product, BUILTIN_CSV};
use ecommerce::domain::Money;
use ecommerce::role::Role;
use ecommerce::stores::SEARCH_COUNT_CAP;
use serde_json::json;

use support::shop::spawn_with;
use support::stores::{self, TestDatabase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::eventually;

const GENERATED: u32 = 50_000;

/// Products whose text holds `%` and `_`, which a search takes literally: a wildcard
/// reading of the queries below would match thousands of generated products instead.
fn literal_products() -> Vec<Product> {
    let template = parse_csv(BUILTIN_CSV).unwrap().remove(0);
    let product = |id: &str, name: &str, description: &str, rating: f64| Product {
        id: id.into(),
        name: name.into(),
        description: Some(description.into()),
        rating,
        reviews: 7,
        price: Money::from_cents(450),
        ..template.clone()
    };
    vec![
        product("pct70", "Dark Cocoa 70% Cacao", "Seventy percent.", 4.1),
        product("pct85", "Darker Cocoa", "Made with 85% Cacao.", 3.2),
        product("under1", "Cold_Brew Reserve", "Steeped for a day.", 4.8),
    ]
}

/// A row as the brute force sees it.
struct Row {
    id: String,
    name: String,
    description: Option<String>,
    rating: f64,
    reviews: i32,
}

/// Every product in the database, read with plain SQL, in display order (best rated, more
/// reviews, then the id bytewise).
async fn every_row(url: &str) -> Vec<Row> {
    let client = stores::client(url).await;
    let mut rows: Vec<Row> = client
        .query(
            "SELECT id, name, description, rating, reviews FROM products",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| Row {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            rating: r.get(3),
            reviews: r.get(4),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.rating
            .total_cmp(&a.rating)
            .then(b.reviews.cmp(&a.reviews))
            .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
    });
    rows
}

/// The ids of the rows whose name or description contains `query` in any case, in order.
fn brute_force<'a>(rows: &'a [Row], query: &str) -> Vec<&'a str> {
    let needle = query.to_lowercase();
    let holds = |text: &str| text.to_lowercase().contains(&needle);
    rows.iter()
        .filter(|r| holds(&r.name) || r.description.as_deref().is_some_and(holds))
        .map(|r| r.id.as_str())
        .collect()
}

#[actix_web::test]
async fn search_on_a_large_catalog_agrees_with_a_brute_force_filter_and_caps_its_count() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let mut catalog = parse_csv(BUILTIN_CSV).unwrap();
    catalog.extend(literal_products());
    let started = Instant::now();
    super::migrate_generating(&db, &catalog, GENERATED).await;
    let generation = started.elapsed();
    let rows = every_row(&db.url).await;
    assert_eq!(rows.len(), catalog.len() + GENERATED as usize);
    let app = spawn_with(|s| s.product_data = db.url.parse().unwrap()).await;
    let common = generated::COMMON_TERMS[1];
    let rare = generated::RARE_TERMS[0].to_uppercase();
    let queries: Vec<(String, usize)> = vec![
        (common.to_string(), 6),
        (common.to_string(), 100),
        (rare, 6),
        // Hundreds of matches, and a few dozen: more than a page, counted exactly at
        // least once whatever the cap.
        ("Patagonian".into(), 100),
        ("sIcIlIaN".into(), 6),
        ("Orchard Lavender".into(), 6),
        ("% c".into(), 100),
        ("0%".into(), 6),
        ("_b".into(), 6),
        ("".into(), 6),
    ];

    let mut relations = Vec::new();
    let asked = queries.iter().flat_map(|(q, size)| {
        [("/search", SEARCH_COUNT_CAP), ("/suggestions", *size)]
            .map(|(path, cap)| (path, q, size, cap))
    });
    for (path, query, size, cap) in asked {
        let reply = app
            .json(
                Method::POST,
                &app.url(Role::Product, path),
                &json!({"query": query, "page": {"size": size}}),
            )
            .await;

        assert_eq!(reply.status, StatusCode::OK, "{path} {query:?}");
        let body = reply.json();
        let expected = brute_force(&rows, query);
        let found: Vec<&str> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            found,
            expected[..expected.len().min(*size)],
            "{path} {query:?}: the page"
        );
        let page = &body["meta"]["page"];
        let capped = !query.is_empty() && expected.len() > cap;
        let (total, relation) = if capped {
            (cap, "gte")
        } else {
            (expected.len(), "eq")
        };
        assert_eq!(page["total_results"], json!(total), "{path} {query:?}");
        assert_eq!(page["total_results_relation"], relation, "{path} {query:?}");
        if path == "/search" {
            relations.push((relation, expected.len(), *size));
        }
    }

    // The queries cover a capped count, an exact one of more than a page, and literal
    // wildcards that match a few products only.
    assert!(relations.iter().any(|(r, ..)| *r == "gte"), "{relations:?}");
    assert!(
        relations.iter().any(|(r, n, size)| *r == "eq" && n > size),
        "{relations:?}"
    );
    // The whole catalog (no ids), streamed from a cursor: every row, best rated first.
    let all = app.get(&app.url(Role::Product, "/documents")).await;
    assert_eq!(all.status, StatusCode::OK);
    let all = all.json();
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert!(ids == expected, "the whole catalog differs from the rows");
    assert_eq!(all[0]["name"].as_str(), Some(rows[0].name.as_str()));

    assert_eq!(brute_force(&rows, "% c"), ["pct70", "pct85"]);
    assert_eq!(brute_force(&rows, "_b"), ["under1"]);
    assert!(
        generation < Duration::from_secs(60),
        "generating {GENERATED} products took {generation:?}"
    );
}

/// Transactions the product role holds open: whole-catalog reads in progress.
async fn open_reads(monitor: &tokio_postgres::Client) -> i64 {
    monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'ecommerce' AND state = 'idle in transaction'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A client that asks for the whole catalog, takes the first bytes, then reads no more
/// (a small receive window, so that the rest waits in the role).
async fn stalled_reader(address: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address.parse().unwrap()).await.unwrap();
    stream
        .write_all(b"GET /documents HTTP/1.1\r\nHost: product\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 64];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &first[..n]);
    stream
}

#[actix_web::test]
async fn a_reader_that_stops_taking_the_whole_catalog_holds_its_connection_for_seconds_only() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let catalog = parse_csv(BUILTIN_CSV).unwrap();
    // About 6 MB of JSON, more than the sockets between reader and role can hold.
    let generated = 20_000;
    super::migrate_generating(&db, &catalog, generated).await;
    let app = spawn_with(|s| s.product_data = db.url.parse().unwrap()).await;
    let monitor = db.client().await;

    let readers = [
        stalled_reader(&app.address(Role::Product)).await,
        stalled_reader(&app.address(Role::Product)).await,
    ];
    eventually(Duration::from_secs(5), "both reads in progress", || async {
        open_reads(&monitor).await == 2
    })
    .await;
    let search = app
        .json(
            Method::POST,
            &app.url(Role::Product, "/search"),
            &json!({"query": "tea", "page": {"size": 6}}),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "searches go on beside them");

    // Given up on after 10 s without a batch taken: the transactions end.
    eventually(
        Duration::from_secs(20),
        "the stalled reads given up",
        || async { open_reads(&monitor).await == 0 },
    )
    .await;
    drop(readers);
    let all = app.get(&app.url(Role::Product, "/documents")).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        all.json().as_array().unwrap().len(),
        catalog.len() + generated as usize
    );
}
