//! The client itself: one keep-alive reqwest client, the servers it spreads
//! calls over (round-robin), the admin token, the user tokens kept so far and
//! the observer told of every call. Each endpoint's call lives in the file of
//! its resource and goes through `send`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};

use crate::answer::Answer;
use crate::error::Error;
use crate::observer::{Call, Observer};
use crate::users::UserTokens;

/// How the client connects and signs users in.
#[derive(Debug, Clone)]
pub struct Options {
    /// Idle keep-alive connections kept per server: two for each of this
    /// many concurrent callers.
    pub connections: usize,
    /// How long a call may take before it counts as unanswered.
    pub timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// Life of the user tokens the client mints (60..=86,400 s).
    pub user_token_ttl_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 1,
            timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            // A day: longer than any run.
            user_token_ttl_secs: 86_400,
        }
    }
}

/// A client of one or more servers of the API. Clones share the connections,
/// the round-robin turn and the user tokens; each has its own observer.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    observer: Option<Arc<dyn Observer>>,
}

struct Shared {
    http: reqwest::Client,
    /// Server roots without a trailing slash, e.g. `http://127.0.0.1:8080`.
    roots: Vec<String>,
    turn: AtomicUsize,
    admin_token: String,
    user_token_ttl_secs: u64,
    user_tokens: UserTokens,
}

impl Client {
    /// A client of the servers at `roots` (e.g. `http://127.0.0.1:8080`),
    /// sending `admin_token` where the API asks for the admin.
    pub fn new<S: AsRef<str>>(
        roots: &[S],
        admin_token: &str,
        options: Options,
    ) -> Result<Self, Error> {
        if roots.is_empty() {
            return Err(Error::NoServer);
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(options.connections.max(1) * 2)
            .pool_idle_timeout(options.idle_timeout)
            .tcp_nodelay(true)
            .timeout(options.timeout)
            .build()
            .map_err(Error::Setup)?;
        let roots = roots
            .iter()
            .map(|root| root.as_ref().trim_end_matches('/').to_string())
            .collect();
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                roots,
                turn: AtomicUsize::new(0),
                admin_token: admin_token.to_string(),
                user_token_ttl_secs: options.user_token_ttl_secs,
                user_tokens: UserTokens::default(),
            }),
            observer: None,
        })
    }

    /// The same client, telling `observer` of every call it makes.
    pub fn with_observer(&self, observer: impl Observer + 'static) -> Self {
        Self {
            shared: self.shared.clone(),
            observer: Some(Arc::new(observer)),
        }
    }

    /// Whether every server answers `GET /healthz` with a 2xx. Not observed:
    /// it is a precondition, not part of a workload.
    pub async fn healthy(&self) -> bool {
        for root in &self.shared.roots {
            let answered = self.shared.http.get(format!("{root}/healthz")).send().await;
            if !matches!(answered, Ok(r) if r.status().is_success()) {
                return false;
            }
        }
        true
    }

    /// The URL of `path` under `/api/v1` on the server whose turn it is.
    pub(crate) fn url(&self, path: &str) -> String {
        self.root_url(&format!("/api/v1{path}"))
    }

    /// The URL of `path` from the root (probes such as `/readyz` live
    /// outside `/api/v1`) on the server whose turn it is.
    pub(crate) fn root_url(&self, path: &str) -> String {
        let roots = &self.shared.roots;
        let turn = self.shared.turn.fetch_add(1, Ordering::Relaxed);
        format!("{}{path}", roots[turn % roots.len()])
    }

    /// A request of `path` under `/api/v1`, on the next server.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.shared.http.request(method, self.url(path))
    }

    /// A request of `path` from the root, on the next server.
    pub(crate) fn request_from_root(&self, method: Method, path: &str) -> RequestBuilder {
        self.shared.http.request(method, self.root_url(path))
    }

    /// A request of `path` sent as the admin.
    pub(crate) fn as_admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .bearer_auth(&self.shared.admin_token)
    }

    pub(crate) fn user_token_ttl_secs(&self) -> u64 {
        self.shared.user_token_ttl_secs
    }

    pub(crate) fn user_tokens(&self) -> &UserTokens {
        &self.shared.user_tokens
    }

    /// Sends `request`, reads the whole answer and tells the observer.
    pub(crate) async fn send(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<Answer, Error> {
        let started = Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let content_type = header("content-type");
            let correlation_id = header("x-correlation-id");
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Answer {
                status,
                content_type,
                correlation_id,
                body,
            })
        }
        .await;
        if let Some(observer) = &self.observer {
            observer.observe(&Call {
                endpoint,
                outcome: outcome.as_ref(),
                elapsed: started.elapsed(),
            });
        }
        outcome.map_err(|source| Error::Transport { endpoint, source })
    }
}

/// `request` with an `Idempotency-Key` header when a key is given: a retry
/// of it is then answered as the first one was, and acts once.
pub(crate) fn with_idempotency_key(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
    match key {
        Some(key) => request.header("idempotency-key", key),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crate::fake_server::FakeServer;

    use super::*;

    #[test]
    fn calls_take_the_servers_in_turn() {
        let client =
            Client::new(&["http://a:1", "http://b:2"], "admin", Options::default()).unwrap();

        let urls: Vec<String> = (0..3).map(|_| client.url("/concerts")).collect();

        assert_eq!(
            urls,
            [
                "http://a:1/api/v1/concerts",
                "http://b:2/api/v1/concerts",
                "http://a:1/api/v1/concerts"
            ]
        );
    }

    #[test]
    fn clones_share_the_turn() {
        let client = Client::new(&["http://a", "http://b"], "admin", Options::default()).unwrap();
        let observed = client.with_observer(|_: &Call<'_>| {});

        client.url("/x");

        assert_eq!(observed.url("/x"), "http://b/api/v1/x");
    }

    #[test]
    fn a_trailing_slash_of_a_server_root_is_dropped() {
        let client = Client::new(&["http://a:1/"], "admin", Options::default()).unwrap();

        assert_eq!(client.url("/payments"), "http://a:1/api/v1/payments");
    }

    #[test]
    fn a_client_needs_a_server() {
        let none: [&str; 0] = [];

        let error = Client::new(&none, "admin", Options::default()).err();

        assert!(matches!(error, Some(Error::NoServer)));
    }

    #[tokio::test]
    async fn the_observer_sees_each_call_with_its_endpoint_and_status() {
        let server = FakeServer::start(|_| (200, "application/json", r#"{"concerts":[]}"#.into()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let client = Client::new(&[server.root()], "admin", Options::default())
            .unwrap()
            .with_observer(move |call: &Call<'_>| {
                log.lock().unwrap().push((call.endpoint, call.status()));
            });

        let answer = client.concerts().await.unwrap();

        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/json");
        assert_eq!(*seen.lock().unwrap(), [("concerts", Some(200))]);
    }

    #[tokio::test]
    async fn no_answer_is_a_transport_error_the_observer_sees_without_status() {
        // A port that was free a moment ago: nothing listens there.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let root = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let client = Client::new(&[root], "admin", Options::default())
            .unwrap()
            .with_observer(move |call: &Call<'_>| {
                log.lock().unwrap().push((call.endpoint, call.status()));
            });

        let error = client.concerts().await.unwrap_err();

        assert!(matches!(
            error,
            Error::Transport {
                endpoint: "concerts",
                ..
            }
        ));
        assert_eq!(*seen.lock().unwrap(), [("concerts", None)]);
    }
}
