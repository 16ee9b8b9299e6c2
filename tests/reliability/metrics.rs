//! Counters of a process on a store it starts empty: what is appended from
//! the first event on is counted (the baseline of an empty log is zero, not
//! the first events found).

use std::time::{Duration, Instant};

use crate::harness::{self, Api, Server, Workdir};

#[tokio::test]
async fn events_appended_to_a_fresh_store_are_all_counted() {
    let _turn = harness::serial().await;
    let work = Workdir::new("appended");
    let mut server = Server::start(&work, "appended", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    for _ in 0..3 {
        api.create_concert(5, 1000).await;
    }

    // The metrics sampler looks at the log every 5 s.
    let counted = "concert_events_appended_total{aggregate=\"Concert\"} 3";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = reqwest::get(format!("{}/metrics", server.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|line| line == counted) {
            break;
        }
        let line = metrics
            .lines()
            .find(|line| line.starts_with("concert_events_appended_total{aggregate=\"Concert\"}"));
        assert!(
            Instant::now() < deadline,
            "3 concerts scheduled, counted: {line:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(server.terminate().await.success());
}
