use actix_web::http::StatusCode;

use support::shop::{spawn_app, GOOD_CARD, SWEET_TEA};

#[actix_web::test]
async fn a_shopper_pays_for_a_sweet_tea() {
    let app = spawn_app().await;
    let session = app.session().await;
    assert_eq!(
        app.put_line(&session, SWEET_TEA, 3).await.status,
        StatusCode::OK
    );
    let paid = app.checkout(&session, GOOD_CARD).await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(paid.json()["amount"], 10.5);
    assert_eq!(app.cart(&session).await, serde_json::json!({}));
}
