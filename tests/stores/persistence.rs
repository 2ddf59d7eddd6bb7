//! A Redis primary that crashes and restarts on its own data folder: with the chart's
//! append-only file (fsynced once a second) nothing acknowledged before that second is
//! lost, on the primary or on its replica; without persistence the primary comes back
//! empty and its replica follows it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use redis::AsyncCommands;
use serde_json::{json, Value};

use support::shop::{sid_of, spawn_with, TestApp};
use support::stores::{self, RedisServer, CHART_PERSISTENCE, NO_PERSISTENCE};

use super::eventually;

/// With `appendfsync everysec`, a crash may lose the writes of the last second at most.
const FSYNC_WINDOW: Duration = Duration::from_secs(1);

/// The lines a shopper puts in their cart before the crash.
const LINES: [(&str, u32); 6] = [
    ("a1", 1),
    ("b2", 2),
    ("c3", 3),
    ("d4", 4),
    ("e5", 5),
    ("f6", 6),
];

fn acknowledged() -> BTreeMap<String, u32> {
    LINES.iter().map(|(p, q)| (p.to_string(), *q)).collect()
}

/// The shop with its cart on `primary` and `replica`, and a shopper whose every line of
/// [`LINES`] was acknowledged (200).
async fn shopper_on(primary: &RedisServer, replica: &RedisServer) -> (TestApp, String) {
    let app = spawn_with(|s| {
        s.cart_data = primary.url().parse().unwrap();
        s.cart_data_replica = Some(replica.url().parse().unwrap());
    })
    .await;
    let session = app.session().await;
    for (product, quantity) in LINES {
        let put = app.put_line(&session, product, quantity).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    }
    (app, session)
}

/// The cart hash of `sid` as `server` holds it, asked until it answers (a server still
/// loading its file answers LOADING), within 10 s.
async fn stored_cart(server: &RedisServer, sid: &str) -> BTreeMap<String, u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = async {
            let client = redis::Client::open(server.url())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            conn.hgetall::<_, BTreeMap<String, u32>>(format!("cart:{sid}"))
                .await
        };
        match answer.await {
            Ok(cart) => return cart,
            Err(e) if Instant::now() < deadline => {
                eprintln!("redis on port {} not answering yet: {e}", server.port);
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("redis on port {} never answered: {e}", server.port),
        }
    }
}

fn as_json(cart: &BTreeMap<String, u32>) -> Value {
    json!(cart)
}

#[actix_web::test]
async fn a_crashed_primary_restarts_with_every_acknowledged_line_and_its_replica_keeps_them() {
    if stores::redis().is_none() {
        return;
    }
    let mut primary = RedisServer::primary_with(CHART_PERSISTENCE);
    let replica = RedisServer::replica_of(&primary);
    let (app, session) = shopper_on(&primary, &replica).await;
    let sid = sid_of(&session);
    // Past the second in which the append-only file may not be on disk yet.
    actix_web::rt::time::sleep(FSYNC_WINDOW + Duration::from_millis(500)).await;

    primary.stop(); // SIGKILL: a crash, no shutdown save

    assert_eq!(
        app.cart(&session).await,
        as_json(&acknowledged()),
        "the replica serves every acknowledged line"
    );
    let refused = app.put_line(&session, "z9", 1).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);

    primary.restart();

    assert_eq!(
        stored_cart(&primary, sid).await,
        acknowledged(),
        "the primary read every acknowledged line back from its file"
    );
    replica.wait_synced();
    assert_eq!(
        stored_cart(&replica, sid).await,
        acknowledged(),
        "the replica, resynced, still holds every line"
    );
    eventually(Duration::from_secs(15), "writes work again", || async {
        app.put_line(&session, "z9", 1).await.status == StatusCode::OK
    })
    .await;
    let mut after = acknowledged();
    after.insert("z9".into(), 1);
    assert_eq!(app.cart(&session).await, as_json(&after));
}

/// Why the chart's primaries keep an append-only file.
#[actix_web::test]
async fn a_primary_without_persistence_restarts_empty_and_its_replica_resyncs_to_empty() {
    if stores::redis().is_none() {
        return;
    }
    let mut primary = RedisServer::primary_with(NO_PERSISTENCE);
    let replica = RedisServer::replica_of(&primary);
    let (app, session) = shopper_on(&primary, &replica).await;
    let sid = sid_of(&session);
    // Replication is asynchronous: the crash comes once the replica has every line, so
    // what the restart loses is the primary's doing alone.
    eventually(
        Duration::from_secs(10),
        "the replica has every line",
        || async { stored_cart(&replica, sid).await == acknowledged() },
    )
    .await;

    primary.stop();
    let served_by_replica = app.cart(&session).await;
    primary.restart();
    replica.wait_synced();

    assert_eq!(served_by_replica, as_json(&acknowledged()));
    assert_eq!(stored_cart(&primary, sid).await, BTreeMap::new());
    assert_eq!(
        stored_cart(&replica, sid).await,
        BTreeMap::new(),
        "the replica kept lines an empty primary does not have"
    );
}
