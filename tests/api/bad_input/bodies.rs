//! Bodies that are not what an endpoint takes: not JSON, not declared as
//! JSON, JSON of the wrong type, missing fields, ids that are not UUIDs.

use reqwest::StatusCode;
use serde_json::json;

use super::{catalog, charged_user, free_seat_count, post_raw};
use crate::helpers::{assert_problem, spawn_app, Reply, ADMIN_TOKEN};

#[tokio::test]
async fn malformed_json_is_a_bad_request_and_charges_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    // Also where a value of the wrong type comes before the fault, and
    // where the text opens like an array.
    for body in [
        r#"{"amount": "#,
        "{",
        "",
        "amount=10",
        r#"{"amount": 10,}"#,
        r#"{"amount": "5"} garbage"#,
        "[1,",
    ] {
        let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_bad_request_even_in_a_field_nobody_reads() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [
        &b"{\"amount\": 1, \"note\": \"\xff\"}"[..],
        b"{\"amount\": 1, \"notes\": [\"\xc3\"]}",
    ] {
        let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn two_content_types_are_a_bad_request_in_either_order() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for types in [
        ["application/json", "text/plain"],
        ["text/plain", "application/json"],
    ] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("content-type", types[0])
            .header("content-type", types[1])
            .body(r#"{"amount": 10}"#)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

/// JSON is UTF-8 (RFC 8259): a body declared in another charset was read
/// as UTF-8 all the same, and `application/+json` passed for a JSON type.
#[tokio::test]
async fn a_body_declared_in_another_charset_or_an_unnamed_json_type_is_a_bad_request() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for content_type in [
        "application/json; charset=utf-16",
        "application/json; charset=latin1",
        "application/+json",
    ] {
        let response = post_raw(&app, &path, Some(&token), content_type, r#"{"amount": 10}"#).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let response = post_raw(
        &app,
        &path,
        Some(&token),
        "application/json; charset=UTF-8",
        r#"{"amount": 10}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.balance(user_id).await, 1_010);
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_a_bad_request() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    let response = post_raw(&app, &path, Some(&token), "text/plain", r#"{"amount": 10}"#).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    // No content type at all.
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .body(r#"{"amount": 10}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn well_formed_json_of_the_wrong_type_fails_validation() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [
        json!({"amount": "ten"}),
        json!({"amount": null}),
        json!({"amount": true}),
        json!({"amount": [10]}),
        json!({"amount": {"won": 10}}),
        json!([{"amount": 10}]),
        // serde would read a struct from an array, field by field.
        json!([10]),
        json!("amount"),
        json!(null),
        json!(10),
    ] {
        let response = app.post(&path, Some(&token), body.clone()).await;
        let (status, content_type, bytes) = response.parts().await;
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (status, content_type.as_deref(), problem["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("application/problem+json"),
                Some("validation_failed")
            ),
            "body {body}"
        );
        // The service's own type names are nothing to its clients.
        let detail = problem["detail"].as_str().unwrap();
        assert!(!detail.contains("Request"), "body {body}: {detail}");
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn missing_fields_fail_validation() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let response = app
        .post(
            &format!("/users/{user_id}/balance/charges"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.balance(user_id).await, 1_000);

    // The user is signed in and names themselves: only the concert is missing.
    let response = app
        .post("/queue/tokens", Some(&token), json!({"user_id": user_id}))
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post(
            "/concerts",
            Some(ADMIN_TOKEN),
            json!({"title": "No dates field"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(catalog(&app).await.is_empty());
}

#[tokio::test]
async fn a_bad_uuid_in_a_json_body_fails_validation() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let user_token = app.user_token(user.user_id).await;
    let response = app
        .post(
            "/queue/tokens",
            Some(&user_token),
            json!({"user_id": "me", "concert_id": concert.concert_id}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // Ids that are not UUIDs: requests the typed client cannot build.
    let response = app
        .post(
            "/reservations",
            Some(&user.token),
            json!({"seat_id": "seat-1"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post(
            "/payments",
            Some(&user.token),
            json!({"reservation_id": "not-a-reservation"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

/// A date written as an array (serde reads a struct from one, field by
/// field) scheduled a concert (`201`), and one with an element more was
/// called malformed JSON (`400`): both are well-formed JSON of the wrong
/// shape, and nothing is scheduled.
#[tokio::test]
async fn a_date_written_as_an_array_fails_validation_and_schedules_nothing() {
    let app = spawn_app().await;
    let date = json!({"starts_at": "2031-01-01T19:00:00Z", "seats": 3, "price": 100});
    for dates in [
        json!([["2031-01-01T19:00:00Z", 3, 100]]),
        json!([["2031-01-01T19:00:00Z", 3, 100, null]]),
        json!([date, ["2031-01-01T19:00:00Z", 3, 100]]),
        json!(["2031-01-01T19:00:00Z"]),
    ] {
        let body = json!({"title": "Arrays", "dates": dates});
        let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
        let (status, _, bytes) = response.parts().await;
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "dates {dates}: {problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("a JSON object")),
            "{problem}"
        );
    }
    let listed = app.get_json("/concerts", None).await;
    assert_eq!(listed["concerts"], json!([]), "{listed}");
    let response = app
        .post(
            "/concerts",
            Some(ADMIN_TOKEN),
            json!({"title": "Objects", "dates": [date]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
