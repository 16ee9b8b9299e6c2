//! A problem's `type` resolves, against the service, to a page that says
//! what the problem means (RFC 9457 §3.1.1).

use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_problem_s_type_leads_to_a_page_about_it() {
    let app = spawn_app().await;
    let missing = app
        .get("/concerts/00000000-0000-4000-8000-000000000000", None)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let problem: serde_json::Value = missing.json().await.unwrap();
    let kind = problem["type"].as_str().unwrap();
    assert_eq!(kind, "/problems/not-found");

    let page = app
        .client
        .get(format!("{}{kind}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(headers.contains_key("content-security-policy"));
    let text = page.text().await.unwrap();
    assert!(text.contains(problem["title"].as_str().unwrap()), "{text}");
    assert!(text.contains("404"), "{text}");

    let unknown = app
        .client
        .get(format!("{}/problems/no-such-problem", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}
