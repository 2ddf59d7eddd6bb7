//! `migrate --generate N` on PostgreSQL: the same rows for the same N on every database, only
//! the difference written when N changes, the originals untouched, the row count kept.

use std::time::Duration;

use actix_web::http::StatusCode;
use ecommerce::catalog::{generated, parse_csv, Product, BUILTIN_CSV};
use ecommerce::domain::ProductId;
use ecommerce::stores::postgres::{migrate_generating, Migrated, PostgresCatalog};
use ecommerce::tls::Trust;

use support::shop::spawn_with;
use support::stores::{self, TestDatabase};

fn originals() -> Vec<Product> {
    parse_csv(BUILTIN_CSV).unwrap()
}

async fn generate(db: &TestDatabase, n: u32) -> Migrated {
    super::migrate_generating(db, &originals(), n).await
}

/// Every row, as the product role reads them, by id.
async fn rows(db: &TestDatabase) -> Vec<Product> {
    let catalog = PostgresCatalog::new(&db.url, &Trust::system().unwrap()).unwrap();
    let mut rows = catalog.documents(&[], Duration::ZERO).await.unwrap();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

/// `catalog_meta`'s row: (products, generated).
async fn meta(db: &TestDatabase) -> (i64, i32) {
    let client = db.client().await;
    let row = client
        .query_one("SELECT products, generated FROM catalog_meta", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The rows split into (originals, generated), each by id.
fn split(rows: Vec<Product>) -> (Vec<Product>, Vec<Product>) {
    rows.into_iter()
        .partition(|p| !generated::is_generated_id(&p.id))
}

fn sorted(mut products: Vec<Product>) -> Vec<Product> {
    products.sort_by(|a, b| a.id.cmp(&b.id));
    products
}

#[actix_web::test]
async fn generate_adds_n_products_the_same_on_every_database_and_counts_them() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let (one, two) = (
        TestDatabase::create(&server).await,
        TestDatabase::create(&server).await,
    );

    let first = generate(&one, 2000).await;
    let second = generate(&two, 2000).await;

    assert_eq!(first.changed, 2000);
    assert_eq!(first.products, 2032);
    assert_eq!(second.changed, 2000);
    let (in_one, in_two) = (rows(&one).await, rows(&two).await);
    assert_eq!(in_one.len(), 2032);
    assert!(in_one == in_two, "two databases hold different rows");
    let (kept, made) = split(in_one);
    assert_eq!(kept, sorted(originals()));
    assert_eq!(made, generated::products(2000).collect::<Vec<_>>());
    assert_eq!(meta(&one).await, (2032, 2000));
}

#[actix_web::test]
async fn a_second_run_with_the_same_n_changes_nothing() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    generate(&db, 1500).await;
    let before = rows(&db).await;

    let again = generate(&db, 1500).await;

    assert_eq!(again.changed, 0);
    assert!(rows(&db).await == before, "rows changed");
    assert_eq!(meta(&db).await, (1532, 1500));
}

#[actix_web::test]
async fn another_n_makes_exactly_n_generated_products_and_leaves_the_originals_alone() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    generate(&db, 2000).await;

    let fewer = generate(&db, 500).await;
    let (kept, made) = split(rows(&db).await);
    let more = generate(&db, 800).await;
    let after_more = split(rows(&db).await).1;
    let none = generate(&db, 0).await;

    assert_eq!(fewer.changed, 1500, "the surplus deleted, nothing else");
    assert_eq!(kept, sorted(originals()), "the originals are as in the CSV");
    assert_eq!(made, generated::products(500).collect::<Vec<_>>());
    assert_eq!(more.changed, 300, "only the missing ones added");
    assert_eq!(after_more, generated::products(800).collect::<Vec<_>>());
    assert_eq!(none.changed, 800);
    assert_eq!(rows(&db).await, sorted(originals()));
    assert_eq!(meta(&db).await, (32, 0));
}

#[actix_web::test]
async fn a_changed_generated_row_is_written_back_and_only_it() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    generate(&db, 300).await;
    let client = db.client().await;
    client
        .execute(
            "UPDATE products SET price = 99, name = 'Tampered' WHERE id = $1",
            &[&generated::id(42)],
        )
        .await
        .unwrap();

    let repaired = generate(&db, 300).await;

    assert_eq!(repaired.changed, 1);
    assert_eq!(split(rows(&db).await).1[41], generated::product(42));
}

#[actix_web::test]
async fn every_generated_product_has_a_valid_id_and_a_picture_the_content_role_serves() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    generate(&db, 2000).await;
    let app = spawn_with(|s| s.product_data = db.url.parse().unwrap()).await;
    let made = split(rows(&db).await).1;
    let mut images: Vec<&str> = made.iter().map(|p| p.filename.as_str()).collect();
    images.sort_unstable();
    images.dedup();

    let pictures = futures_util::future::join_all(images.iter().map(|name| {
        let app = &app;
        async move { app.get(&app.web(&format!("/api/v1/content/{name}"))).await }
    }))
    .await;
    let page = app
        .get(&app.web(&format!("/api/v1/product/products/{}", generated::id(7))))
        .await;

    for p in &made {
        assert!(ProductId::parse(&p.id).is_ok(), "{}", p.id);
    }
    for (name, picture) in images.iter().zip(&pictures) {
        assert_eq!(picture.status, StatusCode::OK, "{name}");
        assert_eq!(picture.header("content-type"), Some("image/jpeg"), "{name}");
    }
    assert!(images.len() >= 20, "the images of every kind: {images:?}");
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.json()["name"], generated::product(7).name);
}

#[actix_web::test]
async fn a_catalog_may_not_use_the_generated_products_ids() {
    let Some(server) = stores::postgres() else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let mut catalog = originals();
    catalog[0].id = generated::id(1);

    let refused = migrate_generating(&db.url, &catalog, 10, &Trust::system().unwrap()).await;

    assert!(refused.unwrap_err().contains("g0000001"));
    assert_eq!(meta(&db).await, (32, 0), "nothing loaded");
}
