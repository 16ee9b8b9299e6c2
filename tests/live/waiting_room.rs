//! A waiting room: the standing streams of many waiting tokens of one
//! concert, placed from one read of the line that they share.

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tokens_move_up_together_when_the_line_moves() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    settings.queue_active_ttl_secs = 3;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(1).await;
    let _first = service.active_token(&concert_id).await;
    let mut watchers = Vec::new();
    for ahead in 0..4 {
        let (_, _, token) = service.queued_user(&concert_id).await;
        let mut events = service
            .subscribe("/queue/tokens/current/events", &token, None)
            .await;
        let standing = events.next().await.unwrap();
        assert_eq!(
            (
                standing.data["status"].as_str(),
                standing.data["position"].as_i64()
            ),
            (Some("waiting"), Some(ahead)),
        );
        // What the stream says is what the token's own query says.
        let own = service
            .send("GET", "/queue/tokens/current", &token, None)
            .await;
        assert_eq!(own["position"], standing.data["position"]);
        assert_eq!(
            own["estimated_wait_seconds"],
            standing.data["estimated_wait_seconds"]
        );
        watchers.push(events);
    }

    // The active token times out and the first waiting one is admitted:
    // everyone behind it moves up one place (a new estimate may come first).
    for (ahead, events) in watchers.iter_mut().enumerate() {
        let ahead = ahead as i64;
        let mut standing = events.next().await.unwrap();
        while standing.data["status"] == "waiting" && standing.data["position"] == ahead {
            standing = events.next().await.unwrap();
        }
        if ahead == 0 {
            assert_eq!(standing.data["status"], "active", "{standing:?}");
        } else {
            assert_eq!(
                (
                    standing.data["status"].as_str(),
                    standing.data["position"].as_i64()
                ),
                (Some("waiting"), Some(ahead - 1)),
                "{standing:?}"
            );
        }
    }
    service.stop().await;
}
