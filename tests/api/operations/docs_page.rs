//! The docs page works offline: it and its assets are served by us, and it
//! shows our own spec without an online validator.

use reqwest::StatusCode;

use crate::helpers::spawn_app;

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

    for entry in ["/docs", "/docs/"] {
        let response = app
            .client
            .get(format!("{}{entry}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{entry}");
        let page = response.url().clone();
        assert_eq!(page.path(), "/docs/");
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
}
