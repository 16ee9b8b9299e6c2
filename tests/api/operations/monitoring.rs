//! What operators watch: metrics, request and correlation ids, health and
//! readiness.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    assert_problem, json_of, spawn_app, spawn_app_on, test_config, Concert, TestApp, User,
};

#[tokio::test]
async fn metrics_expose_every_family_after_a_booking() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    buy_a_seat(&app, &user, &concert).await;
    // A second user keeps a live token, so the concert's queue is sampled.
    app.active_user(&concert.concert_id).await;

    let concert_label = format!("{{concert_id=\"{}\"}}", concert.concert_id);
    let expected = [
        "concert_http_requests_total{route=\"/api/v1/payments\",method=\"POST\",status=\"201\"}".to_string(),
        "concert_http_request_duration_seconds_bucket{route=\"/api/v1/payments\",method=\"POST\",status=\"201\"".into(),
        "concert_commands_total{aggregate=\"Wallet\",outcome=\"ok\"}".into(),
        "concert_events_appended_total{aggregate=\"Wallet\"}".into(),
        "concert_pipeline_batch_size_bucket{aggregate=\"Seat\",le=\"1\"}".into(),
        "concert_pipeline_batch_size_count{aggregate=\"Wallet\"}".into(),
        "concert_event_log_position ".into(),
        "concert_projection_lag_events ".into(),
        format!("concert_queue_waiting{concert_label}"),
        format!("concert_queue_active{concert_label}"),
        "concert_holds_expired_total ".into(),
        "concert_payments_total{outcome=\"completed\"}".into(),
        "concert_db_pool_connections{state=\"in_use\"}".into(),
        "concert_db_pool_connections{state=\"idle\"}".into(),
        "# HELP concert_projection_lag_events ".into(),
    ];
    // The sampler reads the database every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.get_root("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|family| !text.contains(family.as_str()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counters show at zero before their first increment: a series that
/// appears with its first count is invisible to `rate()` over the window it
/// appears in, so the first lost race or refused value would not alert.
#[tokio::test]
async fn counters_show_before_their_first_increment() {
    let app = spawn_app().await;
    let text = app.get_root("/metrics").await.text().await.unwrap();
    let mut expected: Vec<String> = Vec::new();
    for aggregate in ["Concert", "Seat", "Wallet", "QueueTicket"] {
        expected.push(format!(
            "concert_pipeline_unstorable_total{{aggregate=\"{aggregate}\"}}"
        ));
        expected.push(format!(
            "concert_events_appended_total{{aggregate=\"{aggregate}\"}}"
        ));
    }
    for aggregate in ["Concert", "Seat", "Wallet", "QueueTicket", "Payment"] {
        expected.push(format!(
            "concert_pipeline_lost_races_total{{aggregate=\"{aggregate}\"}}"
        ));
        for outcome in ["ok", "rejected", "conflict", "error"] {
            expected.push(format!(
                "concert_commands_total{{aggregate=\"{aggregate}\",outcome=\"{outcome}\"}}"
            ));
        }
    }
    for listing in ["dates", "seats", "standing"] {
        for source in ["memory", "database"] {
            expected.push(format!(
                "concert_listings_total{{listing=\"{listing}\",source=\"{source}\"}}"
            ));
        }
    }
    expected.extend(
        [
            "concert_payments_total{outcome=\"completed\"}",
            "concert_payments_total{outcome=\"refunded\"}",
            "concert_holds_expired_total ",
            "concert_holds_refused_from_memory_total ",
            "concert_batched_work_abandoned_total ",
        ]
        .map(String::from),
    );
    let missing: Vec<&String> = expected
        .iter()
        .filter(|series| !text.contains(series.as_str()))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{text}");
    // Each family of the service says what it counts: one had a `# TYPE`
    // line and no `# HELP`. (Other tests of this process record their own.)
    let undescribed: Vec<&str> = (text.lines())
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|family| family.split(' ').next())
        .filter(|family| family.starts_with("concert_"))
        .filter(|family| !text.contains(&format!("# HELP {family} ")))
        .collect();
    assert!(undescribed.is_empty(), "no # HELP for {undescribed:?}");
}

/// A concert's queue gauges show while it has live tokens and leave the page
/// once its queue drains: kept at zero, they piled up with the catalogue.
#[tokio::test]
async fn a_drained_queue_leaves_the_metrics() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let label = format!(
        "concert_queue_active{{concert_id=\"{}\"}} 1",
        concert.concert_id
    );
    let shows = |text: &str| text.contains(&label);
    metrics_until(&app, shows, "the live token's concert").await;

    // Paying expires the buyer's token: the concert has no live token left.
    buy_a_seat(&app, &user, &concert).await;

    let concert_id = concert.concert_id.to_string();
    metrics_until(
        &app,
        |text| !text.contains(&concert_id),
        "the drained concert gone",
    )
    .await;
}

/// Holds the first free seat of `concert`, charges `user` and pays for it.
async fn buy_a_seat(app: &TestApp, user: &User, concert: &Concert) {
    let seat_id = app.first_free_seat(user, concert).await;
    let held: Value = json_of(&app.hold(user, &seat_id).await);
    assert_eq!(app.charge(user.user_id, 5000).await.status, StatusCode::OK);
    let paid = app
        .pay(user, held["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(paid.status, StatusCode::CREATED);
}

/// Reads `/metrics` until `wanted` holds of it (the sampler reads every 5 s).
async fn metrics_until(app: &TestApp, wanted: impl Fn(&str) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.get_root("/metrics").await.text().await.unwrap();
        if wanted(&text) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not so in\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_request_id_is_echoed_or_generated_and_a_correlation_id_returned() {
    let app = spawn_app().await;
    let url = format!("{}/healthz", app.address);

    let echoed = app
        .client
        .get(&url)
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    let first = app.client.get(&url).send().await.unwrap();
    let second = app.get_root("/no/such/route").await;

    assert_eq!(echoed.headers()["x-request-id"], "client-chosen-42");
    let generated: Vec<&str> = [&first, &second]
        .iter()
        .map(|response| response.headers()["x-request-id"].to_str().unwrap())
        .collect();
    assert!(
        generated.iter().all(|id| Uuid::parse_str(id).is_ok()),
        "{generated:?}"
    );
    assert_ne!(generated[0], generated[1]);
    for response in [&echoed, &first, &second] {
        let correlation = response.headers()["x-correlation-id"].to_str().unwrap();
        assert!(Uuid::parse_str(correlation).is_ok(), "{correlation}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;

    let health = app.get_root("/healthz").await;
    let ready = app.get_root("/readyz").await;

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    for check in ["database", "migrations", "projections"] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }
    assert!(
        body["projection_lag_events"].as_i64().unwrap() < 10_000,
        "{body}"
    );
}

#[tokio::test]
async fn readiness_fails_when_the_read_models_fall_far_behind() {
    let app = spawn_app().await;
    // 10,000 events of a stream no projection follows: never applied.
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Unprojected', 'lagging', n, 'Noted', '1.0', '{}', '{}' from generate_series(1, 10000) n",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let ready = app.get_root("/readyz").await;

    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.headers()["retry-after"], "1");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["projections"], "failed");
    assert!(
        body["projection_lag_events"].as_i64().unwrap() >= 10_000,
        "{body}"
    );
}

/// `projection_lag_events` of a `/readyz` answer that must be 200.
async fn ready_lag(app: &crate::helpers::TestApp) -> i64 {
    let ready = app.get_root("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    body["projection_lag_events"].as_i64().unwrap()
}

#[tokio::test]
async fn the_lag_counts_events_positioned_after_a_look_until_their_stream_is_applied() {
    let app = spawn_app().await;
    let stream = Uuid::new_v4().to_string();
    assert_eq!(ready_lag(&app).await, 0, "nothing is behind at first");
    // Three events no projection follows, positioned after the first look:
    // the next look finds them in the range positioned since.
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Unprojected', $1, n, 'Noted', '1.0', '{}', '{}' from generate_series(1, 3) n",
    )
    .bind(&stream)
    .execute(&app.pool)
    .await
    .unwrap();
    concert::event_log::assign_positions(&app.pool)
        .await
        .unwrap();
    assert_eq!(ready_lag(&app).await, 3);
    assert_eq!(
        ready_lag(&app).await,
        3,
        "a stream found behind stays counted"
    );
    // A restarted service's first look reads the whole log.
    let pool = app.shutdown().await;
    let app = spawn_app_on(pool, test_config()).await;
    assert_eq!(ready_lag(&app).await, 3, "after a restart");

    // Applying two of them (the offset moves) leaves one behind, then none.
    for (applied, lag) in [(2, 1), (3, 0)] {
        sqlx::query(
            "insert into projection_offsets (aggregate_type, aggregate_id, last_sequence)
             values ('Unprojected', $1, $2)
             on conflict (aggregate_type, aggregate_id) do update set last_sequence = excluded.last_sequence",
        )
        .bind(&stream)
        .bind(applied)
        .execute(&app.pool)
        .await
        .unwrap();
        assert_eq!(ready_lag(&app).await, lag, "offset at {applied}");
    }
}

#[tokio::test]
async fn readiness_fails_with_a_problem_document_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.pool.close().await;

    let ready = app.get_root("/readyz").await;
    let health = app.get_root("/healthz").await;

    assert_eq!(health.status(), StatusCode::OK);
    assert_problem(ready, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
}
