//! A standing stream whose read the database cannot answer stays open and
//! reads again: the contract ends the stream only once its token has
//! expired. It ended at the failed read, and its client took the token,
//! still active, for over.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, test_config};

#[tokio::test]
async fn a_standing_stream_stays_open_when_the_database_cannot_answer_its_read() {
    let mut config = test_config();
    config.queue_active_ttl_secs = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 3, 1_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let mut stream = app
        .client
        .get(app.url("/queue/tokens/current/events"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().expect("the first standing");
    assert!(
        String::from_utf8_lossy(&first).contains(r#""status":"active""#),
        "{first:?}"
    );

    // Out of reach from now on; the token's lapse (2 s) wakes a read.
    app.pool.close().await;
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(
        ended.is_err(),
        "the stream ended though its token's expiry was never read"
    );
}
