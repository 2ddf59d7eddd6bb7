//! content: product images, built in or fetched from a bucket and cached.

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::Value;

use support::ports::free_port;
use support::shop::{spawn_app, spawn_with, TestApp};
use support::stub::Stub;

/// Every image file the catalog names, as the product service lists them.
async fn catalog_images(app: &TestApp) -> Vec<String> {
    let reply = app.get(&app.web("/api/v1/product/documents")).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["filename"].as_str().unwrap().to_string())
        .collect()
}

fn image_url(app: &TestApp, name: &str) -> String {
    app.web(&format!("/api/v1/content/{name}"))
}

/// A JPEG-looking payload the bucket stub serves.
const BUCKET_IMAGE: &[u8] = b"\xFF\xD8\xFF\xE0 bucket image bytes \xFF\xD9";

/// A bucket serving one image, `bucket-only.jpeg`, and 404 for anything else.
fn bucket() -> Stub {
    Stub::start(|cfg| {
        cfg.route(
            "/bucket-only.jpeg",
            actix_web::web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("image/jpeg")
                    .body(Bytes::from_static(BUCKET_IMAGE))
            }),
        );
    })
}

#[actix_web::test]
async fn every_catalog_image_is_served_as_jpeg_with_etag_and_cache_control() {
    let app = spawn_app().await;
    let names = catalog_images(&app).await;
    assert_eq!(names.len(), 32);

    for name in names {
        let reply = app.get(&image_url(&app, &name)).await;

        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert_eq!(reply.header("content-type"), Some("image/jpeg"), "{name}");
        assert!(
            reply.body.starts_with(&[0xFF, 0xD8]),
            "{name} is not a JPEG"
        );
        assert!(
            reply.header("etag").is_some_and(|e| e.starts_with('"')),
            "{name}"
        );
        let cache = reply.header("cache-control").unwrap_or_default();
        assert!(cache.contains("max-age="), "{name}: {cache:?}");
    }
}

#[actix_web::test]
async fn a_matching_if_none_match_gets_304_without_a_body() {
    let app = spawn_app().await;

    for name in catalog_images(&app).await {
        let first = app.get(&image_url(&app, &name)).await;
        let etag = first.header("etag").unwrap().to_string();

        let again = app
            .send(
                Method::GET,
                &image_url(&app, &name),
                &[("if-none-match", &etag)],
                "",
            )
            .await;

        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{name}");
        assert!(again.body.is_empty(), "{name}");
        assert_eq!(again.header("etag"), Some(etag.as_str()), "{name}");
    }
}

#[actix_web::test]
async fn a_stale_etag_gets_the_image_again() {
    let app = spawn_app().await;

    let reply = app
        .send(
            Method::GET,
            &image_url(&app, "sweet-tea.jpeg"),
            &[("if-none-match", "\"not-the-etag\"")],
            "",
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.starts_with(&[0xFF, 0xD8]));
}

#[actix_web::test]
async fn an_unknown_image_is_404() {
    let app = spawn_app().await;

    let reply = app.get(&image_url(&app, "no-such-drink.jpeg")).await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.reason().contains("no-such-drink.jpeg"));
}

#[actix_web::test]
async fn names_that_could_form_a_path_are_refused_and_never_read_a_file() {
    let app = spawn_app().await;

    for name in [
        "..",
        ".env",
        "a%2Fb",
        "a%20b",
        "..%2FCargo.toml",
        "%2e%2e%2fCargo.toml",
        "..%5CCargo.toml",
        ".gitignore",
    ] {
        let reply = app.get(&image_url(&app, name)).await;

        assert!(
            reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND,
            "{name}: {}",
            reply.status
        );
        let body: Value = reply.json();
        assert_eq!(body["message"], "failure", "{name}");
        assert!(!reply.body.windows(9).any(|w| w == b"[package]"), "{name}");
    }
}

#[actix_web::test]
async fn images_come_from_the_bucket_and_stay_cached_when_it_goes_away() {
    let bucket = bucket();
    let source = bucket.url.clone();
    let app = spawn_with(|settings| settings.content_source = Some(source)).await;

    let first = app.get(&image_url(&app, "bucket-only.jpeg")).await;
    bucket.stop().await;
    let bucket_is_down = awc::Client::new()
        .get(format!("{}/bucket-only.jpeg", bucket.url))
        .send()
        .await
        .is_err();
    let second = app.get(&image_url(&app, "bucket-only.jpeg")).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, BUCKET_IMAGE);
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    assert!(first.header("etag").is_some());
    assert!(first.header("cache-control").is_some());
    assert!(bucket_is_down);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, BUCKET_IMAGE);
    assert_eq!(second.header("etag"), first.header("etag"));
}

#[actix_web::test]
async fn an_image_the_bucket_does_not_have_is_404() {
    let bucket = bucket();
    let source = bucket.url.clone();
    let app = spawn_with(|settings| settings.content_source = Some(source)).await;

    // Built in, but this shop serves from the bucket only.
    let reply = app.get(&image_url(&app, "sweet-tea.jpeg")).await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["message"], "failure");
}

#[actix_web::test]
async fn a_bucket_that_is_down_gives_502_without_its_address() {
    let port = free_port();
    let app =
        spawn_with(|settings| settings.content_source = Some(format!("http://127.0.0.1:{port}")))
            .await;

    let reply = app.get(&image_url(&app, "bucket-only.jpeg")).await;

    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(!reply.reason().contains("127.0.0.1"), "{}", reply.reason());
}
