//! The headers browsers and caches act on: every answer is `nosniff`, the
//! API's are kept by no cache, a `401` names the `Bearer` scheme, and the
//! pages send no `Referer` and may not be framed.

use reqwest::{Response, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, ADMIN_TOKEN};

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// `nosniff`, and `Cache-Control: no-store`: the answer may carry a token,
/// a balance or another user's data.
fn assert_not_sniffed_nor_stored(what: &str, response: &Response) {
    assert_eq!(
        header(response, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(response, "cache-control"),
        Some("no-store"),
        "{what}"
    );
}

#[tokio::test]
async fn api_answers_are_neither_sniffed_nor_stored_json_and_problems_alike() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();

    let minted = app
        .post(
            &format!("/users/{user}/tokens"),
            Some(ADMIN_TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(minted.status(), StatusCode::CREATED);
    assert_not_sniffed_nor_stored("a minted user token", &minted);
    let token: serde_json::Value = minted.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_string();

    let balance = app
        .get(&format!("/users/{user}/balance"), Some(&token))
        .await;
    assert_eq!(balance.status(), StatusCode::OK);
    assert_eq!(header(&balance, "content-type"), Some("application/json"));
    assert_not_sniffed_nor_stored("a balance", &balance);

    let entry = app
        .post(
            "/queue/tokens",
            Some(&token),
            json!({"concert_id": concert.concert_id}),
        )
        .await;
    assert!(entry.status().is_success(), "{}", entry.status());
    assert_not_sniffed_nor_stored("a queue token", &entry);

    let audit = app.get("/audit/events?limit=1", Some(ADMIN_TOKEN)).await;
    assert_eq!(audit.status(), StatusCode::OK);
    assert_not_sniffed_nor_stored("the audit's events", &audit);

    let catalogue = app.get("/concerts", None).await;
    assert_eq!(catalogue.status(), StatusCode::OK);
    assert_not_sniffed_nor_stored("the catalogue", &catalogue);

    // Problems: another user's balance, a refused token, an unknown route.
    let other = app
        .get(&format!("/users/{}/balance", Uuid::new_v4()), Some(&token))
        .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header(&other, "content-type"),
        Some("application/problem+json")
    );
    assert_not_sniffed_nor_stored("a 403 problem", &other);
    let refused = app.get(&format!("/users/{user}/balance"), None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_not_sniffed_nor_stored("a 401 problem", &refused);
    let unknown = app.get("/no-such-route", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_not_sniffed_nor_stored("a 404 problem", &unknown);
}

#[tokio::test]
async fn a_401_names_the_bearer_scheme_and_says_when_the_token_sent_was_refused() {
    let app = spawn_app().await;
    let path = format!("/users/{}/balance", Uuid::new_v4());

    let without = app.get(&path, None).await;
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&without, "www-authenticate"), Some("Bearer"));

    let refused = app.get(&path, Some("not.a.jwt")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&refused, "www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );

    // A credential of another scheme is no bearer token refused: the client
    // learns the scheme, without an error code (RFC 6750 §3.1).
    let basic = app
        .client
        .get(app.url(&path))
        .header("authorization", "Basic YWRtaW46YWRt")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&basic, "www-authenticate"), Some("Bearer"));

    // Only a 401 challenges: a refusal of another kind does not.
    let other = app.get("/no-such-route", Some("not.a.jwt")).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&other, "www-authenticate"), None);
}

#[tokio::test]
async fn the_pages_send_no_referrer_may_not_be_framed_and_keep_their_own_caching() {
    let app = spawn_app().await;
    for path in ["/", "/audit", "/assets/app.js", "/assets/style.css"] {
        let page = app.get_root(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&page, "referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(header(&page, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&page, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let policy = header(&page, "content-security-policy").unwrap();
        assert!(
            policy.starts_with("default-src 'self';"),
            "{path}: {policy}"
        );
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        // Checked again with the server on every load, not `no-store`.
        assert_eq!(header(&page, "cache-control"), Some("no-cache"), "{path}");
        // ...and a copy the browser has is not sent again.
        let etag = header(&page, "etag").expect("a validator").to_string();
        for asked in [etag.clone(), format!("W/{etag}, \"other\""), "*".into()] {
            let again = app
                .client
                .get(format!("{}{path}", app.address))
                .header("if-none-match", &asked)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path} {asked}");
            assert_eq!(header(&again, "etag"), Some(etag.as_str()), "{path}");
            assert!(again.bytes().await.unwrap().is_empty(), "{path}");
        }
        let other = app
            .client
            .get(format!("{}{path}", app.address))
            .header("if-none-match", "\"an-older-build\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    // Outside the API and the pages: `nosniff` alone.
    for path in ["/healthz", "/openapi.json"] {
        let answer = app.get_root(path).await;
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&answer, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(header(&answer, "cache-control"), None, "{path}");
    }
}
