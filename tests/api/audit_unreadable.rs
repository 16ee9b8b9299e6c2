//! Rows edited into values no service writes: a time of `infinity` or past
//! the years a `DateTime` holds, a number past `f64` and nesting 200 deep,
//! escape codes in an event's type. Every reader of the log still shows
//! them (the audit API, `concert events`) and the audit names them. Before,
//! such a time panicked every reader, and such a payload answered `500`.

use reqwest::StatusCode;
use serde_json::Value;

use super::audit::{audit, booking_history, names};
use crate::helpers::{spawn_app, TestApp, ADMIN_TOKEN};

/// Sets `set` on the event at `position`; returns its stream as `Type/id`.
async fn edit(app: &TestApp, position: i64, set: &str) -> String {
    sqlx::query_scalar(&format!(
        "update events set {set} where position = $1
         returning aggregate_type || '/' || aggregate_id"
    ))
    .bind(position)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Every positioned event, through the audit API, as text (serde_json reads
/// no number past `f64`).
async fn feed_text(app: &TestApp) -> String {
    let answer = app
        .get("/audit/events?after=0&limit=1000", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    answer.text().await.unwrap()
}

/// `concert events`, as readable lines or JSON lines.
async fn printed(app: &TestApp, json: bool) -> String {
    let mut out = Vec::new();
    concert::history::print_events(&app.pool, None, 0, json, 1000, &mut out)
        .await
        .expect("the log is printed");
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn an_event_recorded_at_a_time_no_database_stamps_is_shown_and_named() {
    let app = spawn_app().await;
    booking_history(&app).await;
    concert::event_log::assign_positions(&app.pool)
        .await
        .unwrap();
    let infinite = edit(&app, 2, "recorded_at = 'infinity'").await;
    let far = edit(&app, 3, "recorded_at = '294276-01-01 00:00:00+00'").await;

    let feed: Value = serde_json::from_str(&feed_text(&app).await).unwrap();
    let stream = app
        .get(&format!("/audit/streams/{infinite}"), Some(ADMIN_TOKEN))
        .await;
    let lines = printed(&app, false).await;
    let report = audit(&app.pool).await;

    let events = feed["events"].as_array().unwrap();
    assert_eq!(events[1]["recorded_at"], Value::Null, "{}", events[1]);
    assert_eq!(events[2]["recorded_at"], Value::Null, "{}", events[2]);
    assert!(events[3]["recorded_at"].is_string());
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(lines.matches("(no time)").count(), 2, "{lines}");
    let rule = "events carry the time they were recorded";
    let named: Vec<_> = report
        .violations
        .iter()
        .filter(|violation| violation.rule == rule)
        .collect();
    assert_eq!(named.len(), 2, "{:#?}", report.violations);
    assert!(names(&report, &format!("#2 {infinite}")));
    assert!(names(&report, &format!("#3 {far}")));
}

#[tokio::test]
async fn a_payload_serde_json_cannot_read_is_shown_as_stored_and_named() {
    let app = spawn_app().await;
    booking_history(&app).await;
    concert::event_log::assign_positions(&app.pool)
        .await
        .unwrap();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let payload = format!("{{\"Charged\": {{\"amount\": 1e400,\n \"deep\": {deep}}}}}");
    let stream = edit(&app, 1, &format!("payload = '{payload}'::json")).await;

    let feed = feed_text(&app).await;
    let history = app
        .get(&format!("/audit/streams/{stream}"), Some(ADMIN_TOKEN))
        .await;
    let lines = printed(&app, true).await;
    let report = audit(&app.pool).await;

    assert!(feed.contains("1e400"), "{feed}");
    assert!(feed.contains(&deep));
    assert_eq!(history.status(), StatusCode::OK);
    // One event a line: the payload's line break is only spacing.
    assert!(
        lines.lines().all(|line| line.starts_with("{\"position\":")),
        "{lines}"
    );
    assert!(lines.lines().next().unwrap().contains("1e400"));
    assert!(report
        .violations
        .iter()
        .any(|violation| violation.rule == "events deserialize"
            && violation
                .events
                .iter()
                .any(|event| event.starts_with("#1 "))));
}

#[tokio::test]
async fn escape_codes_in_a_stored_type_print_as_escapes() {
    let app = spawn_app().await;
    booking_history(&app).await;
    concert::event_log::assign_positions(&app.pool)
        .await
        .unwrap();
    edit(&app, 1, "event_type = E'Charged\\x1b[2K\\r\\x1b[1A'").await;

    let lines = printed(&app, false).await;

    assert!(!lines.contains('\u{1b}') && !lines.contains('\r'));
    assert!(
        lines.contains("Charged\\u{1b}[2K\\u{d}\\u{1b}[1A"),
        "{lines}"
    );
}

/// A replay stopped on such a payload without saying which event it was,
/// where the audit names it.
#[tokio::test]
async fn a_replay_names_the_event_it_cannot_read() {
    let app = spawn_app().await;
    booking_history(&app).await;
    concert::event_log::assign_positions(&app.pool)
        .await
        .unwrap();
    let stream = edit(
        &app,
        1,
        r#"payload = '{"Charged": {"amount": "abc"}}'::json"#,
    )
    .await;

    let error = concert::replay::replay(&app.pool, &mut |_, _| {})
        .await
        .expect_err("the replay cannot read the event")
        .to_string();

    assert!(error.contains(&format!("#1 {stream} seq 1")), "{error}");
    assert!(error.contains("does not deserialize"), "{error}");
}
