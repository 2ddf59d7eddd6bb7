//! cart: through the web-gateway with a signed session, and on the cart role itself
//! with a bare `<sid>`.

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::{bad_request, Reply};
use support::shop::{sid_of, spawn_app, unique_sid, TestApp, SWEET_TEA};

/// The two ways to reach a cart: the public path with a signed session, and the
/// service's own address with the bare id.
struct Door<'a> {
    app: &'a TestApp,
    base: String,
    session: String,
}

impl<'a> Door<'a> {
    async fn web(app: &'a TestApp) -> Door<'a> {
        Door {
            app,
            base: app.web("/api/v1/cart"),
            session: app.session().await,
        }
    }

    /// The cart role itself, with a fresh bare id starting with `prefix`.
    fn direct(app: &'a TestApp, prefix: &str) -> Door<'a> {
        Door::direct_as(app, &unique_sid(prefix))
    }

    fn direct_as(app: &'a TestApp, sid: &str) -> Door<'a> {
        Door {
            app,
            base: app.url(Role::Cart, ""),
            session: sid.to_string(),
        }
    }

    async fn both(app: &'a TestApp) -> [Door<'a>; 2] {
        [Door::web(app).await, Door::direct(app, "direct-shopper")]
    }

    fn body(&self) -> Value {
        json!({"session_id": self.session})
    }

    async fn call(&self, method: Method, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        self.app.json(method, &url, &self.body()).await
    }

    async fn raw(&self, method: Method, path: &str, body: impl Into<String>) -> Reply {
        let url = format!("{}{path}", self.base);
        let body: String = body.into();
        self.app
            .send(method, &url, &[("content-type", "application/json")], body)
            .await
    }

    async fn put(&self, product: &str, quantity: &str) -> Reply {
        self.call(Method::PUT, &format!("/{product}/{quantity}"))
            .await
    }

    /// The cart as the cart role has it (read on the side, not through this door).
    async fn lines(&self) -> Value {
        self.app.cart_direct(&self.session).await
    }
}

fn ok_cart(reply: &Reply, data: Value) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    assert_eq!(reply.json(), json!({"message": "success", "data": data}));
}

#[actix_web::test]
async fn a_new_cart_is_empty() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        let reply = door.call(Method::POST, "/").await;

        ok_cart(&reply, json!({}));
    }
}

#[actix_web::test]
async fn put_sets_a_line_and_a_second_put_replaces_its_quantity() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        let first = door.put(SWEET_TEA, "2").await;
        ok_cart(&first, json!({SWEET_TEA: 2}));

        let second = door.put(SWEET_TEA, "5").await;

        ok_cart(&second, json!({SWEET_TEA: 5}));
        assert_eq!(door.lines().await, json!({SWEET_TEA: 5}));
    }
}

#[actix_web::test]
async fn quantity_zero_removes_the_line() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;
        door.put("ee0a957a", "1").await;

        let reply = door.put(SWEET_TEA, "0").await;

        ok_cart(&reply, json!({"ee0a957a": 1}));
        assert_eq!(door.lines().await, json!({"ee0a957a": 1}));
    }
}

#[actix_web::test]
async fn delete_of_a_line_removes_only_that_line() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;
        door.put("ee0a957a", "1").await;

        let reply = door.call(Method::DELETE, &format!("/{SWEET_TEA}")).await;

        ok_cart(&reply, json!({"ee0a957a": 1}));
        assert_eq!(door.lines().await, json!({"ee0a957a": 1}));
    }
}

#[actix_web::test]
async fn delete_of_the_cart_empties_it() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;
        door.put("ee0a957a", "1").await;

        let reply = door.call(Method::DELETE, "/").await;

        ok_cart(&reply, json!({}));
        assert_eq!(door.lines().await, json!({}));
    }
}

#[actix_web::test]
async fn get_of_a_line_returns_its_product_and_quantity() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "3").await;

        let present = door.call(Method::GET, &format!("/{SWEET_TEA}")).await;
        let absent = door.call(Method::GET, "/ee0a957a").await;

        assert_eq!(present.status, StatusCode::OK);
        assert_eq!(
            present.json(),
            json!({"message": "success", "data": {"product_id": SWEET_TEA, "quantity": 3}})
        );
        assert_eq!(absent.status, StatusCode::OK);
        assert_eq!(
            absent.json()["data"],
            json!({"product_id": "ee0a957a", "quantity": 0})
        );
    }
}

#[actix_web::test]
async fn malformed_or_incomplete_bodies_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;
        let path = "/ee0a957a/1";

        let malformed = door.raw(Method::PUT, path, r#"{"session_id": "#).await;
        let missing = door.raw(Method::PUT, path, r#"{"sid": "x"}"#).await;
        let empty = door.raw(Method::PUT, path, "").await;
        let array = door.raw(Method::PUT, path, "[]").await;

        bad_request(&malformed, "malformed json");
        bad_request(&missing, "session_id");
        bad_request(&empty, "body");
        bad_request(&array, "invalid");
        assert_eq!(door.lines().await, json!({SWEET_TEA: 2}));
    }
}

#[actix_web::test]
async fn a_session_id_of_the_wrong_type_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let door = Door::direct(&app, "12345");
    door.put(SWEET_TEA, "2").await;

    let number = door
        .raw(Method::PUT, "/ee0a957a/1", r#"{"session_id": 12345}"#)
        .await;
    let unsafe_key = door
        .raw(Method::PUT, "/ee0a957a/1", r#"{"session_id": "a:b"}"#)
        .await;

    bad_request(&number, "invalid type");
    bad_request(&unsafe_key, "session_id");
    assert_eq!(door.lines().await, json!({SWEET_TEA: 2}));
}

#[actix_web::test]
async fn bad_product_ids_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let too_long = "x".repeat(65);
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;

        // `%3F` and `%23` must not turn into a query or a fragment on the way.
        for id in [
            too_long.as_str(),
            "a.b",
            "%20",
            "a%20b",
            "%C3%BC",
            "a%3Fb",
            "a%23b",
        ] {
            let put = door.put(id, "1").await;
            let delete = door.call(Method::DELETE, &format!("/{id}")).await;
            let get = door.call(Method::GET, &format!("/{id}")).await;

            bad_request(&put, "product id");
            bad_request(&delete, "product id");
            bad_request(&get, "product id");
        }
        assert_eq!(door.lines().await, json!({SWEET_TEA: 2}));
    }
}

#[actix_web::test]
async fn the_longest_product_id_is_accepted() {
    let app = spawn_app().await;
    let door = Door::direct(&app, "long-ids");
    let id = "x".repeat(64);

    let reply = door.put(&id, "1").await;

    ok_cart(&reply, json!({id.clone(): 1}));
}

#[actix_web::test]
async fn bad_quantities_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;

        for quantity in ["1000", "-1", "1.5", "abc", "1e2", "%201"] {
            let reply = door.put(SWEET_TEA, quantity).await;

            bad_request(&reply, "quantity");
        }
        assert_eq!(door.lines().await, json!({SWEET_TEA: 2}));
    }
}

#[actix_web::test]
async fn the_largest_quantity_is_accepted() {
    let app = spawn_app().await;
    let door = Door::direct(&app, "big-spender");

    let reply = door.put(SWEET_TEA, "999").await;

    ok_cart(&reply, json!({SWEET_TEA: 999}));
}

#[actix_web::test]
async fn a_101st_line_is_refused_while_existing_lines_still_update() {
    let app = spawn_app().await;
    let door = Door::direct(&app, "hoarder");
    let web = Door::web(&app).await;
    // Both carts filled to the limit on the cart role itself (the quicker way).
    let web_cart = Door::direct_as(&app, sid_of(&web.session));
    for cart in [&door, &web_cart] {
        let puts = (0..100).map(|i| async move { cart.put(&format!("p{i:03}"), "1").await });
        for (i, reply) in futures_util::future::join_all(puts)
            .await
            .iter()
            .enumerate()
        {
            assert_eq!(reply.status, StatusCode::OK, "line {i}");
        }
    }

    let refused = door.put("one-too-many", "1").await;
    let refused_on_the_web = web.put("one-too-many", "1").await;
    let update = door.put("p000", "7").await;
    let update_on_the_web = web.put("p099", "0").await;
    let refill_on_the_web = web.put("another", "1").await;

    bad_request(&refused, "at most 100 lines");
    bad_request(&refused_on_the_web, "at most 100 lines");
    assert_eq!(update.status, StatusCode::OK);
    let lines = door.lines().await;
    let lines = lines.as_object().unwrap();
    assert_eq!(lines.len(), 100);
    assert!(!lines.contains_key("one-too-many"));
    assert_eq!(lines["p000"], 7);
    // Removing a line makes room for another.
    assert_eq!(update_on_the_web.status, StatusCode::OK);
    assert_eq!(refill_on_the_web.status, StatusCode::OK);
    let web_lines = web.lines().await;
    let web_lines = web_lines.as_object().unwrap();
    assert_eq!(web_lines.len(), 100);
    assert!(!web_lines.contains_key("one-too-many"));
    assert!(!web_lines.contains_key("p099"));
    assert_eq!(web_lines["another"], 1);
}

#[actix_web::test]
async fn a_body_over_64_kib_is_refused_with_413_and_changes_nothing() {
    let app = spawn_app().await;
    for door in Door::both(&app).await {
        door.put(SWEET_TEA, "2").await;
        // Valid JSON naming the session: only its size is wrong.
        let padding = "x".repeat(64 * 1024);
        let body = json!({"session_id": door.session, "padding": padding}).to_string();

        let reply = door.raw(Method::PUT, "/ee0a957a/1", body).await;

        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(reply.reason().contains("larger than"), "{}", reply.reason());
        assert_eq!(door.lines().await, json!({SWEET_TEA: 2}));
    }
}

#[actix_web::test]
async fn a_body_just_under_64_kib_is_accepted() {
    let app = spawn_app().await;
    let door = Door::direct(&app, "padded");
    let skeleton = json!({"session_id": door.session, "padding": ""}).to_string();
    let padding = "x".repeat(64 * 1024 - skeleton.len());
    let body = json!({"session_id": door.session, "padding": padding}).to_string();
    assert_eq!(body.len(), 64 * 1024);

    let reply = door
        .raw(Method::PUT, &format!("/{SWEET_TEA}/1"), body)
        .await;

    ok_cart(&reply, json!({SWEET_TEA: 1}));
}

#[actix_web::test]
async fn two_sessions_have_independent_carts() {
    let app = spawn_app().await;
    let alice = Door::web(&app).await;
    let bob = Door::web(&app).await;
    assert_ne!(alice.session, bob.session);

    alice.put(SWEET_TEA, "2").await;
    bob.put("ee0a957a", "4").await;
    bob.call(Method::DELETE, &format!("/{SWEET_TEA}")).await;

    assert_eq!(alice.lines().await, json!({SWEET_TEA: 2}));
    assert_eq!(bob.lines().await, json!({"ee0a957a": 4}));
    bob.call(Method::DELETE, "/").await;
    assert_eq!(alice.lines().await, json!({SWEET_TEA: 2}));
}

#[actix_web::test]
async fn the_signed_and_the_bare_session_name_the_same_cart() {
    let app = spawn_app().await;
    let web = Door::web(&app).await;
    let direct = Door::direct_as(&app, sid_of(&web.session));

    web.put(SWEET_TEA, "2").await;

    assert_eq!(
        direct.call(Method::POST, "/").await.json()["data"],
        json!({SWEET_TEA: 2})
    );
}
