//! One hostile request (`Case`) and its answer (`Reply`): built from raw parts,
//! sent on a kept-alive connection or, if the server just closed it, a fresh one.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

use super::fixture::{Fixture, Tok};

/// One request of the fuzzer.
#[derive(Clone)]
pub(super) struct Case {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) token: Tok,
    pub(super) content_type: Option<String>,
    pub(super) idempotency_key: Option<Vec<u8>>,
    pub(super) extra_headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Option<Vec<u8>>,
}

impl Case {
    /// A request with a JSON content type and no other headers.
    pub(super) fn json(method: &str, path: &str, token: Tok, body: Option<Vec<u8>>) -> Case {
        Case {
            method: method.to_string(),
            path: path.to_string(),
            token,
            content_type: Some("application/json".into()),
            idempotency_key: None,
            extra_headers: Vec::new(),
            body,
        }
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lossy = |bytes: &Option<Vec<u8>>| {
            bytes
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        f.debug_struct("Case")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("token", &self.token)
            .field("content_type", &self.content_type)
            .field("idempotency_key", &lossy(&self.idempotency_key))
            .field(
                "extra_headers",
                &self
                    .extra_headers
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "body",
                &lossy(&self.body).map(|b| b.chars().take(300).collect::<String>()),
            )
            .finish()
    }
}

/// The answer to one case.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) body: String,
}

/// Sends `case`; `None` when the client cannot build its request.
pub(super) async fn send(
    client: &reqwest::Client,
    app: &str,
    fx: &Fixture,
    case: &Case,
) -> Option<Reply> {
    match send_once(client, app, fx, case).await {
        Ok(reply) => reply,
        // A kept-alive connection the server had just closed (after answering
        // a bad request without reading its body) fails to send: once more on
        // a fresh connection, which must be answered.
        Err(_) => {
            let fresh = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            match send_once(&fresh, app, fx, case).await {
                Ok(reply) => reply,
                Err(error) => panic!("no answer to {case:?}: {error:?}"),
            }
        }
    }
}

async fn send_once(
    client: &reqwest::Client,
    app: &str,
    fx: &Fixture,
    case: &Case,
) -> Result<Option<Reply>, reqwest::Error> {
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &[u8]| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    };
    if let Some(value) = case.token.header(fx) {
        put("authorization", value.as_bytes());
    }
    if let Some(content_type) = &case.content_type {
        put("content-type", content_type.as_bytes());
    }
    if let Some(key) = &case.idempotency_key {
        put("idempotency-key", key);
    }
    for (name, value) in &case.extra_headers {
        // A wrong content-length or transfer-encoding would only desynchronise
        // the client's own connection; hyper refuses those before the router.
        if name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        put(name, value);
    }
    let mut request = client
        .request(method, format!("{app}{}", case.path))
        .headers(headers);
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        // reqwest refuses some generated URLs before sending anything.
        Err(error) if error.is_builder() => return Ok(None),
        Err(error) => return Err(error),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.text().await.unwrap_or_default();
    Ok(Some(Reply {
        status,
        content_type,
        body,
    }))
}
