//! The pages come from the binary itself, and sample users only with `--demo`.

use serde_json::{json, Value};

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_come_from_the_binary_and_sample_users_only_with_demo() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;

    for (path, kind) in [
        ("/", "text/html"),
        ("/audit", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/booking-session.js", "text/javascript"),
        ("/assets/booking-streams.js", "text/javascript"),
        ("/assets/booking-admission.js", "text/javascript"),
        ("/assets/seat-map.js", "text/javascript"),
        ("/assets/booking-hold.js", "text/javascript"),
        ("/assets/audit.js", "text/javascript"),
        ("/assets/common.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let response = service
            .client
            .get(format!("{}{path}", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} names no other origin"
        );
    }
    let sample = service
        .client
        .post(format!("{}/api/v1/demo/user-tokens", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sample.status(), 404, "sample users need serve --demo");
    let report = service
        .client
        .get(format!("{}/api/v1/audit/report", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        report.status(),
        401,
        "the audit report needs the admin token"
    );
    let report: Value = service
        .client
        .get(format!("{}/api/v1/audit/report", service.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["violations"], json!([]));
    service.stop().await;
}
