//! The docs page works offline: it and its assets are served by us, and it
//! shows our own spec without an online validator. A browser protects it as
//! it does the pages: a strict policy, no framing, no sniffing, no
//! `Referer`; and a token given to "Authorize" is not kept in storage.

use base64::Engine;
use reqwest::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::helpers::spawn_app;

/// The protections every answer of the docs carries; returns its policy.
fn assert_protected(what: &str, response: &Response) -> String {
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(
        header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    let policy = header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'self';",
        "img-src 'self' data:;",
        "object-src 'none';",
        "base-uri 'none';",
        // A form posting elsewhere: `default-src` does not cover it.
        "form-action 'self';",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{what}: {policy}");
    }
    // Nothing from elsewhere, and no inline code or style but by its hash.
    for loose in ["http", "*", "unsafe-inline", "unsafe-eval"] {
        assert!(!policy.contains(loose), "{what}: {policy}");
    }
    policy
}

/// The values of `attribute="..."` in an HTML page.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// Absolute http(s) URLs in a text that point anywhere but `own`.
fn outside_urls(text: &str, own: &str) -> Vec<String> {
    text.match_indices("http")
        .map(|(at, _)| &text[at..])
        .filter(|rest| rest.starts_with("http://") || rest.starts_with("https://"))
        .filter(|rest| !rest.starts_with(own))
        .map(|rest| rest.chars().take(60).collect())
        .collect()
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_by_us() {
    let app = spawn_app().await;
    let own = format!("{}/", app.address);

    // `/docs` is the page itself, for a client that does not follow
    // redirects too (it was a 303 to `/docs/`).
    let unredirected = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for entry in ["/docs", "/docs/"] {
        let response = unredirected
            .get(format!("{}{entry}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{entry}");
        assert_protected(entry, &response);
        let page = response.url().clone();
        let html = response.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        assert_eq!(outside_urls(&html, &own), Vec::<String>::new(), "{entry}");

        let mut assets = attribute_values(&html, "src");
        assets.extend(attribute_values(&html, "href"));
        assert!(assets.iter().any(|asset| asset.ends_with(".js")), "{html}");
        for asset in assets {
            let url = page.join(&asset).unwrap();
            assert_eq!(url.origin(), page.origin(), "{asset} is not ours");
            let response = app.client.get(url.clone()).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            assert_protected(url.as_str(), &response);
            assert!(!response.bytes().await.unwrap().is_empty(), "{url}");
        }
    }
    // The page's configuration: our own spec, and no online validator.
    let initializer = app
        .get_root("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(outside_urls(&initializer, &own), Vec::<String>::new());
    assert!(
        initializer.contains("\"url\": \"/openapi.json\""),
        "{initializer}"
    );
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );
    // A token given to "Authorize" stays in the page's memory: persisted,
    // it would be in the local storage of the pages' origin.
    assert!(
        initializer.contains("\"persistAuthorization\": false"),
        "{initializer}"
    );
    assert!(
        !initializer.contains("\"persistAuthorization\": true"),
        "{initializer}"
    );
}

/// The one inline style sheet the policy allows is the one Swagger UI's
/// script writes (its top bar's logo): a new Swagger UI with another one
/// fails here rather than drawing its logo black on black.
#[tokio::test]
async fn the_docs_policy_allows_exactly_the_inline_styles_swagger_ui_writes() {
    let app = spawn_app().await;
    let page = app.get_root("/docs/").await;
    let policy = assert_protected("/docs/", &page);
    let mut hashes = Vec::new();
    for script in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"] {
        let text = app
            .get_root(&format!("/docs/{script}"))
            .await
            .text()
            .await
            .unwrap();
        let opening = "createElement(\"style\",null,\"";
        for (at, _) in text.match_indices(opening) {
            let rest = &text[at + opening.len()..];
            let style = &rest[..rest.find('"').unwrap()];
            let digest = Sha256::digest(style.as_bytes());
            let hash = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push(format!("'sha256-{hash}'"));
        }
    }
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    let allowed = format!("style-src 'self' {};", hashes[0]);
    assert!(policy.contains(&allowed), "{policy}\nwants {allowed}");
}
