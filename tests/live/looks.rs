//! A look at one's place in the line (`GET /queue/tokens/current`), answered
//! from the feed's memory as the listings are: it follows a move of the line
//! made anywhere, on every instance, within the feed's lag.

use std::time::{Duration, Instant};

use super::harness::*;

/// How long a move of the line may take to show in a look.
const MOVE_WAIT: Duration = Duration::from_secs(5);

/// A look at `token`'s place through `instance`: its status and position.
async fn look(instance: &Instance, token: &str) -> (String, i64) {
    let (status, body) = instance.get("/queue/tokens/current", token).await;
    assert_eq!(status, 200, "{body}");
    let status_of_token = body["status"].as_str().unwrap().to_string();
    (status_of_token, body["position"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_at_ones_place_follows_the_line_on_every_instance() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    settings.queue_active_ttl_secs = 2;
    let instances = [
        start(&pool, settings.clone()).await,
        start(&pool, settings).await,
    ];
    let (concert_id, _) = instances[0].concert(1).await;
    let _first = instances[0].active_token(&concert_id).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let (_, _, token) = instances[0].queued_user(&concert_id).await;
        waiting.push(token);
    }
    // Both instances have the line in memory, and agree.
    for instance in &instances {
        for (ahead, token) in waiting.iter().enumerate() {
            assert_eq!(
                look(instance, token).await,
                ("waiting".to_string(), ahead as i64)
            );
        }
    }

    // The active token times out and the first waiting one is admitted,
    // through whichever instance leads the scheduler: each look of the last
    // token reads its old place or its new one, and never goes back.
    let last = &waiting[2];
    let mut moved = [false, false];
    let started = Instant::now();
    while moved != [true, true] {
        for (instance, moved) in instances.iter().zip(moved.iter_mut()) {
            let (status, position) = look(instance, last).await;
            assert_eq!(status, "waiting");
            if *moved {
                assert_eq!(position, 1, "a look went back after the move");
            } else {
                assert!(position == 2 || position == 1, "position {position}");
                *moved = position == 1;
            }
        }
        assert!(
            started.elapsed() < MOVE_WAIT,
            "the move shows on {moved:?} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _) = look(&instances[1], &waiting[0]).await;
    assert_eq!(status, "active");
    for instance in instances {
        instance.stop().await;
    }
}
