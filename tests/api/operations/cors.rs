//! Cross-origin calls from a browser on an allowed origin: the preflight
//! lets it send its credentials and the headers of the contract, and its
//! script can read the ids of the answer. Other origins get no grant, and
//! an OPTIONS request that is no preflight is not answered as one.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use crate::helpers::{spawn_app_with, test_config};

const ALLOWED: &str = "https://tickets.example.test";

#[tokio::test]
async fn an_allowed_origin_may_send_its_token_and_read_the_answers_ids() {
    let mut config = test_config();
    config.cors_origins = vec![ALLOWED.to_string()];
    let app = spawn_app_with(config).await;
    let user = Uuid::new_v4();
    let url = app.url(&format!("/users/{user}/balance/charges"));

    let preflight = app
        .client
        .request(Method::OPTIONS, &url)
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED);
    // `*` would not do: the Fetch standard never lets it cover Authorization.
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(
            allowed.split(',').any(|each| each.trim() == name),
            "{name} not in {allowed}"
        );
    }

    let token = app.user_token(user).await;
    let charged = app
        .client
        .post(&url)
        .header("origin", ALLOWED)
        .bearer_auth(token)
        .json(&serde_json::json!({"amount": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(charged.status(), StatusCode::OK);
    assert_eq!(charged.headers()["access-control-allow-origin"], ALLOWED);
    let exposed = charged.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    // A page of another origin reads when to retry and what a 401 wants.
    for header in ["x-request-id", "retry-after", "www-authenticate"] {
        assert!(exposed.contains(header), "{header}: {exposed}");
    }

    let foreign = app
        .client
        .request(Method::OPTIONS, &url)
        .header("origin", "https://tickets.example.test.evil.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn an_options_request_that_is_no_preflight_is_answered_as_without_cors() {
    let mut config = test_config();
    config.cors_origins = vec![ALLOWED.to_string()];
    let with_cors = spawn_app_with(config).await;
    let without_cors = spawn_app_with(test_config()).await;

    // No Origin, or an Origin with no method asked for: no browser's preflight.
    for headers in [&[][..], &[("origin", ALLOWED)]] {
        for path in ["/payments", "/no/such/route"] {
            let mut answers = Vec::new();
            for app in [&with_cors, &without_cors] {
                let mut request = app.client.request(Method::OPTIONS, app.url(path));
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let answer = request.send().await.unwrap();
                let status = answer.status();
                let content_type = answer.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_string();
                answers.push((status, content_type));
            }
            assert_eq!(answers[0], answers[1], "{path} {headers:?}");
            assert!(answers[0].0.is_client_error(), "{path}: {answers:?}");
            assert_eq!(answers[0].1, "application/problem+json", "{path}");
        }
    }
}
