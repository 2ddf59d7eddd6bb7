//! product: documents, search and suggestions, and single products, checked against the
//! catalog file itself (read here independently of the shop's own parser).

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::{bad_request, Reply};
use support::shop::{spawn_app, TestApp, SWEET_TEA};

/// The catalog as the CSV file has it: one JSON object per row, empty cells as null,
/// numbers as numbers.
fn catalog() -> Vec<Value> {
    let mut reader = csv::Reader::from_reader(ecommerce::catalog::BUILTIN_CSV.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let mut product = serde_json::Map::new();
            for (name, cell) in headers.iter().zip(record.iter()) {
                let value = match name {
                    _ if cell.is_empty() => Value::Null,
                    "price" | "rating" => json!(cell.parse::<f64>().unwrap()),
                    "reviews" => json!(cell.parse::<i64>().unwrap()),
                    _ => json!(cell),
                };
                product.insert(name.to_string(), value);
            }
            product.entry("category").or_insert(Value::Null);
            Value::Object(product)
        })
        .collect()
}

/// Best rating first, then more reviews, then the id.
fn in_display_order(mut products: Vec<Value>) -> Vec<Value> {
    products.sort_by(|a, b| {
        let rating = |p: &Value| p["rating"].as_f64().unwrap();
        let reviews = |p: &Value| p["reviews"].as_i64().unwrap();
        rating(b)
            .total_cmp(&rating(a))
            .then(reviews(b).cmp(&reviews(a)))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    products
}

/// What a case-insensitive substring search for `query` should find, in order.
fn expected_matches(query: &str) -> Vec<Value> {
    let needle = query.to_lowercase();
    let hit = |field: &Value| {
        field
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains(&needle))
    };
    in_display_order(
        catalog()
            .into_iter()
            .filter(|p| hit(&p["name"]) || hit(&p["description"]))
            .collect(),
    )
}

fn ids(products: &Value) -> Vec<String> {
    products
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {products}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn ids_of(products: &[Value]) -> Vec<String> {
    ids(&Value::Array(products.to_vec()))
}

async fn documents(app: &TestApp, method: Method, body: &str) -> Reply {
    app.send(
        method,
        &app.web("/api/v1/product/documents"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

async fn search(app: &TestApp, endpoint: &str, body: &Value) -> Reply {
    app.json(
        Method::POST,
        &app.web(&format!("/api/v1/product/{endpoint}")),
        body,
    )
    .await
}

#[actix_web::test]
async fn documents_without_ids_are_the_whole_catalog_best_rated_first() {
    let app = spawn_app().await;
    let expected = in_display_order(catalog());
    assert_eq!(expected.len(), 32);

    for (method, body) in [
        (Method::GET, ""),
        (Method::POST, ""),
        (Method::GET, "[]"),
        (Method::POST, "[]"),
        (Method::POST, "  "),
    ] {
        let reply = documents(&app, method.clone(), body).await;

        assert_eq!(reply.status, StatusCode::OK, "{method} {body:?}");
        assert_eq!(
            reply.json(),
            Value::Array(expected.clone()),
            "{method} {body:?}"
        );
    }
}

#[actix_web::test]
async fn documents_with_ids_are_those_products_in_rating_order() {
    let app = spawn_app().await;
    // Asked for in the reverse of the display order, with a repeat.
    let asked = ["d0a9442c", "ee0a957a", SWEET_TEA, "d0a9442c"];
    let expected: Vec<Value> = in_display_order(
        catalog()
            .into_iter()
            .filter(|p| asked.contains(&p["id"].as_str().unwrap()))
            .collect(),
    );

    for method in [Method::GET, Method::POST] {
        let reply = documents(&app, method, &json!(asked).to_string()).await;

        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), Value::Array(expected.clone()));
        assert_eq!(ids(&reply.json()), [SWEET_TEA, "d0a9442c", "ee0a957a"]);
    }
}

#[actix_web::test]
async fn documents_leave_out_unknown_ids() {
    let app = spawn_app().await;

    let some = documents(
        &app,
        Method::POST,
        &json!(["zzzz9999", SWEET_TEA]).to_string(),
    )
    .await;
    let none = documents(&app, Method::POST, &json!(["zzzz9999"]).to_string()).await;

    assert_eq!(some.status, StatusCode::OK);
    assert_eq!(ids(&some.json()), [SWEET_TEA]);
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json(), json!([]));
}

#[actix_web::test]
async fn documents_refuse_invalid_ids() {
    let app = spawn_app().await;

    for bad in [
        json!(["a.b"]),
        json!([SWEET_TEA, ""]),
        json!(["x".repeat(65)]),
    ] {
        let reply = documents(&app, Method::POST, &bad.to_string()).await;

        bad_request(&reply, "Invalid product id");
    }
}

#[actix_web::test]
async fn documents_refuse_a_body_that_is_not_an_array_of_ids() {
    let app = spawn_app().await;

    for bad in [
        json!({"ids": [SWEET_TEA]}).to_string(),
        json!(SWEET_TEA).to_string(),
        json!([1, 2]).to_string(),
        "[\"f95e2475\"".to_string(),
    ] {
        let reply = documents(&app, Method::POST, &bad).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!reply.reason().is_empty(), "{bad}");
    }
}

#[actix_web::test]
async fn search_finds_sweet_tea_first_and_counts_every_match_exactly() {
    let app = spawn_app().await;
    let expected = expected_matches("swe");
    assert!(expected.len() >= 2, "the catalog has changed: {expected:?}");

    for endpoint in ["search", "suggestions"] {
        let reply = search(
            &app,
            endpoint,
            &json!({"query": "swe", "page": {"size": 6}}),
        )
        .await;

        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["results"][0]["name"], "Sweet Tea", "{endpoint}");
        assert_eq!(body["results"][0], expected[0]);
        assert_eq!(body["meta"]["page"]["total_results"], expected.len());
        assert_eq!(body["meta"]["page"]["total_results_relation"], "eq");
        assert_eq!(
            ids(&body["results"]),
            ids_of(&expected[..expected.len().min(6)])
        );
    }
}

#[actix_web::test]
async fn search_pages_are_cut_at_the_size_but_count_every_match() {
    let app = spawn_app().await;
    let expected = expected_matches("tea");
    assert!(expected.len() > 3);

    let reply = search(
        &app,
        "search",
        &json!({"query": "tea", "page": {"size": 3}}),
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(ids(&body["results"]), ids_of(&expected[..3]));
    assert_eq!(body["meta"]["page"]["total_results"], expected.len());
    assert_eq!(
        body["meta"]["page"]["total_results_relation"], "eq",
        "32 products are counted exactly"
    );
}

#[actix_web::test]
async fn suggestions_count_only_past_their_page() {
    let app = spawn_app().await;
    let expected = expected_matches("tea");
    assert!(expected.len() > 3);
    let suggest = |size: usize| {
        let app = &app;
        async move {
            let body = json!({"query": "tea", "page": {"size": size}});
            search(app, "suggestions", &body).await.json()
        }
    };

    let short = suggest(3).await;
    let whole = suggest(expected.len()).await;

    assert_eq!(ids(&short["results"]), ids_of(&expected[..3]));
    assert_eq!(short["meta"]["page"]["total_results"], 3);
    assert_eq!(short["meta"]["page"]["total_results_relation"], "gte");
    assert_eq!(ids(&whole["results"]), ids_of(&expected));
    assert_eq!(whole["meta"]["page"]["total_results"], expected.len());
    assert_eq!(whole["meta"]["page"]["total_results_relation"], "eq");
}

#[actix_web::test]
async fn search_ignores_case() {
    let app = spawn_app().await;

    let lower = search(&app, "search", &json!({"query": "sweet tea"})).await;
    let upper = search(&app, "search", &json!({"query": "SWEET TEA"})).await;
    let mixed = search(&app, "suggestions", &json!({"query": "sWeEt TeA"})).await;

    assert_eq!(lower.status, StatusCode::OK);
    assert_eq!(ids(&lower.json()["results"]), [SWEET_TEA]);
    assert_eq!(upper.json()["results"], lower.json()["results"]);
    assert_eq!(mixed.json()["results"], lower.json()["results"]);
}

#[actix_web::test]
async fn search_matches_descriptions_too() {
    let app = spawn_app().await;
    let expected = expected_matches("fjords");
    assert_eq!(ids_of(&expected), ["16a1ca37"]);

    let reply = search(&app, "search", &json!({"query": "FJORDS"})).await;

    assert_eq!(ids(&reply.json()["results"]), ["16a1ca37"]);
}

#[actix_web::test]
async fn percent_and_underscore_are_literal_characters() {
    let app = spawn_app().await;

    for query in ["%", "_", "%tea%", "sw_et", "%%", "\\"] {
        // No product has these characters, so a wildcard reading would be visible.
        assert_eq!(expected_matches(query), Vec::<Value>::new(), "{query}");

        let reply = search(&app, "search", &json!({"query": query})).await;

        assert_eq!(reply.status, StatusCode::OK, "{query}");
        assert_eq!(
            reply.json(),
            json!({
                "meta": {"page": {"total_results": 0, "total_results_relation": "eq", "size": 100}},
                "results": [],
            }),
            "{query}"
        );
    }
}

#[actix_web::test]
async fn without_a_size_search_returns_every_match() {
    let app = spawn_app().await;

    let everything = search(&app, "search", &json!({"query": ""})).await;
    let no_page = search(&app, "search", &json!({"query": "tea", "page": {}})).await;
    let no_body = app
        .send(Method::POST, &app.web("/api/v1/product/search"), &[], "")
        .await;

    assert_eq!(everything.status, StatusCode::OK);
    assert_eq!(
        ids(&everything.json()["results"]),
        ids_of(&in_display_order(catalog()))
    );
    assert_eq!(everything.json()["meta"]["page"]["total_results"], 32);
    assert_eq!(
        everything.json()["meta"]["page"]["total_results_relation"],
        "eq"
    );
    assert_eq!(
        ids(&no_page.json()["results"]),
        ids_of(&expected_matches("tea"))
    );
    assert_eq!(no_body.status, StatusCode::OK);
    assert_eq!(no_body.json()["results"].as_array().unwrap().len(), 32);
}

#[actix_web::test]
async fn page_sizes_of_1_and_100_are_accepted() {
    let app = spawn_app().await;

    let one = search(&app, "search", &json!({"query": "", "page": {"size": 1}})).await;
    let hundred = search(&app, "search", &json!({"query": "", "page": {"size": 100}})).await;

    assert_eq!(ids(&one.json()["results"]).len(), 1);
    assert_eq!(one.json()["meta"]["page"]["total_results"], 32);
    assert_eq!(ids(&hundred.json()["results"]).len(), 32);
}

#[actix_web::test]
async fn page_sizes_outside_1_to_100_are_refused() {
    let app = spawn_app().await;

    for endpoint in ["search", "suggestions"] {
        for size in [json!(0), json!(101), json!(-1), json!("6"), json!(2.5)] {
            let reply = search(
                &app,
                endpoint,
                &json!({"query": "tea", "page": {"size": size}}),
            )
            .await;

            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{endpoint} {size}");
            assert!(!reply.reason().is_empty());
        }
    }
}

#[actix_web::test]
async fn a_query_over_256_characters_is_refused() {
    let app = spawn_app().await;

    let longest = search(&app, "search", &json!({"query": "a".repeat(256)})).await;
    let too_long = search(&app, "search", &json!({"query": "a".repeat(257)})).await;
    let too_long_suggestion = search(&app, "suggestions", &json!({"query": "é".repeat(257)})).await;

    assert_eq!(longest.status, StatusCode::OK);
    assert_eq!(longest.json()["meta"]["page"]["total_results"], 0);
    bad_request(&too_long, "longer than 256");
    bad_request(&too_long_suggestion, "longer than 256");
}

#[actix_web::test]
async fn malformed_search_bodies_are_refused() {
    let app = spawn_app().await;

    for body in [r#"{"query": "tea""#, r#"{"query": 5}"#, "[1]"] {
        let reply = app
            .send(
                Method::POST,
                &app.web("/api/v1/product/search"),
                &[("content-type", "application/json")],
                body,
            )
            .await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!reply.reason().is_empty());
    }
}

/// PostgreSQL text cannot hold NUL: it is bad input, never a store failure.
#[actix_web::test]
async fn a_nul_character_in_a_search_is_bad_input() {
    let app = spawn_app().await;

    for endpoint in ["search", "suggestions"] {
        let reply = search(&app, endpoint, &json!({"query": "te\u{0}a"})).await;
        bad_request(&reply, "NUL");
    }

    let errors = app
        .metric(
            Role::Product,
            "http_server_requests_total",
            &[("status_class", "5xx")],
        )
        .await;
    assert_eq!(errors, 0.0);
    let tea = search(&app, "search", &json!({"query": "tea"})).await;
    assert_eq!(tea.status, StatusCode::OK, "the store is fine");
}

#[actix_web::test]
async fn a_product_is_shown_with_every_field() {
    let app = spawn_app().await;

    let reply = app
        .get(&app.web(&format!("/api/v1/product/products/{SWEET_TEA}")))
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let product = reply.json();
    assert_eq!(
        product,
        json!({
            "id": SWEET_TEA,
            "name": "Sweet Tea",
            "category": null,
            "price": 3.5,
            "rating": 5.0,
            "reviews": 2,
            "filename": "sweet-tea.jpeg",
            "description": "Sweet Tea",
            "alcoholic": "non-alcoholic",
            "temperature": "cold",
            "type": "tea",
        })
    );
    assert!(product["price"].is_f64());
    assert!(product["rating"].is_number());
    assert!(product["reviews"].is_u64());
}

#[actix_web::test]
async fn every_product_matches_the_catalog_file() {
    let app = spawn_app().await;

    for expected in catalog() {
        let id = expected["id"].as_str().unwrap();
        let reply = app
            .get(&app.web(&format!("/api/v1/product/products/{id}")))
            .await;

        assert_eq!(reply.status, StatusCode::OK, "{id}");
        assert_eq!(reply.json(), expected);
    }
}

#[actix_web::test]
async fn an_unknown_product_is_404() {
    let app = spawn_app().await;

    let reply = app.get(&app.web("/api/v1/product/products/zzzz9999")).await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.reason().contains("zzzz9999"), "{}", reply.reason());
}

#[actix_web::test]
async fn a_malformed_product_id_is_400() {
    let app = spawn_app().await;

    for id in ["a.b", "a%20b", &"x".repeat(65)] {
        let reply = app
            .get(&app.web(&format!("/api/v1/product/products/{id}")))
            .await;

        bad_request(&reply, "Invalid product id");
    }
}
