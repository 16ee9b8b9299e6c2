//! `spawn_app`: the real service on a loopback port, on its own fresh database
//! of a real PostgreSQL (the one in `DATABASE_URL`, or a private server started
//! once for this test binary), plus request helpers and `assert_problem`, the
//! check that a request got the problem document it should.

mod database;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use concert::config::Config;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

pub use database::{database_url_of, fresh_database};

/// The admin token every test server is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Settings for a test server: short scheduler interval, known admin token.
pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.admin_token = Some(ADMIN_TOKEN.to_string());
    config.scheduler_interval_ms = 50;
    config.payment_recovery_secs = 1;
    config
}

/// A running service.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// User tokens minted so far, by user.
    user_tokens: Mutex<HashMap<Uuid, String>>,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Starts the service with default test settings on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// Starts the service with `config` on a fresh database.
pub async fn spawn_app_with(config: Config) -> TestApp {
    spawn_app_on(fresh_database().await, config).await
}

/// Starts the service with `config` on the given database.
pub async fn spawn_app_on(pool: PgPool, config: Config) -> TestApp {
    let app = concert::server::prepare(pool.clone(), config)
        .await
        .expect("service prepares");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        concert::server::serve(listener, app, stopped)
            .await
            .expect("service runs");
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        pool,
        user_tokens: Mutex::default(),
        stop,
        server: Some(server),
    }
}

impl TestApp {
    /// Stops serving (finishing requests in flight) and the scheduler.
    pub async fn shutdown(mut self) -> PgPool {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.pool.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// GETs `path` and reads its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        self.get(path, token).await.json().await.unwrap()
    }

    /// GETs `path` at the root of the service, outside `/api/v1` (health,
    /// readiness, metrics, the spec and docs).
    pub async fn get_root(&self, path: &str) -> Response {
        let url = format!("{}{path}", self.address);
        self.client.get(url).send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Schedules a concert with dates of `seats` seats each, starting next month.
    pub async fn create_concert(&self, dates: usize, seats: u32, price: i64) -> Concert {
        let dates: Vec<Value> = (0..dates)
            .map(|n| {
                let starts_at = chrono::Utc::now() + chrono::Duration::days(30 + n as i64);
                json!({"starts_at": starts_at, "seats": seats, "price": price})
            })
            .collect();
        let response = self
            .post(
                "/concerts",
                Some(ADMIN_TOKEN),
                json!({"title": "Test Concert", "dates": dates}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        Concert {
            concert_id: body["concert_id"].as_str().unwrap().to_string(),
            date_ids: body["dates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["date_id"].as_str().unwrap().to_string())
                .collect(),
        }
    }

    /// A user token for `user_id`, minted by the service (admin route) on first use.
    pub async fn user_token(&self, user_id: Uuid) -> String {
        if let Some(token) = self.user_tokens.lock().unwrap().get(&user_id) {
            return token.clone();
        }
        let response = self
            .post(
                &format!("/users/{user_id}/tokens"),
                Some(ADMIN_TOKEN),
                json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let token = body["token"].as_str().expect("a user token").to_string();
        self.user_tokens
            .lock()
            .unwrap()
            .insert(user_id, token.clone());
        token
    }

    /// Enters the queue as `user_id`, signed in with their own token, and
    /// returns the answer body.
    pub async fn enter_queue(&self, user_id: Uuid, concert_id: &str) -> (StatusCode, Value) {
        let token = self.user_token(user_id).await;
        let response = self
            .post(
                "/queue/tokens",
                Some(&token),
                json!({"concert_id": concert_id}),
            )
            .await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Waits until the scheduler admits the token.
    pub async fn wait_until_active(&self, token: &str) {
        for _ in 0..600 {
            let body: Value = self.get_json("/queue/tokens/current", Some(token)).await;
            if body["status"] == "active" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("token never became active");
    }

    /// A new user with an active token for the concert.
    pub async fn active_user(&self, concert_id: &str) -> User {
        let user_id = Uuid::new_v4();
        let (_, body) = self.enter_queue(user_id, concert_id).await;
        let token = body["token"].as_str().expect("a token").to_string();
        self.wait_until_active(&token).await;
        User { user_id, token }
    }

    /// The free seats of a date (first page).
    pub async fn free_seats(&self, user: &User, concert: &Concert, date: usize) -> Vec<Value> {
        let path = format!(
            "/concerts/{}/dates/{}/seats",
            concert.concert_id, concert.date_ids[date]
        );
        let body: Value = self.get_json(&path, Some(&user.token)).await;
        body["seats"].as_array().expect("a seat list").clone()
    }

    /// The id of the first free seat of the concert's first date.
    pub async fn first_free_seat(&self, user: &User, concert: &Concert) -> String {
        let seats = self.free_seats(user, concert, 0).await;
        seats[0]["seat_id"].as_str().expect("a seat id").to_string()
    }

    pub async fn hold(&self, user: &User, seat_id: &str) -> Response {
        self.post(
            "/reservations",
            Some(&user.token),
            json!({"seat_id": seat_id}),
        )
        .await
    }

    /// Charges `user_id`'s wallet, signed in as that user.
    pub async fn charge(&self, user_id: Uuid, amount: i64) -> Response {
        let token = self.user_token(user_id).await;
        self.post(
            &format!("/users/{user_id}/balance/charges"),
            Some(&token),
            json!({"amount": amount}),
        )
        .await
    }

    pub async fn pay(&self, user: &User, reservation_id: &str) -> Response {
        self.post(
            "/payments",
            Some(&user.token),
            json!({"reservation_id": reservation_id}),
        )
        .await
    }

    /// `user_id`'s balance, read as that user.
    pub async fn balance(&self, user_id: Uuid) -> i64 {
        let token = self.user_token(user_id).await;
        let body: Value = self
            .get_json(&format!("/users/{user_id}/balance"), Some(&token))
            .await;
        body["balance"].as_i64().expect("a balance")
    }
}

/// A scheduled concert.
pub struct Concert {
    pub concert_id: String,
    pub date_ids: Vec<String>,
}

/// A user with a queue token.
#[derive(Clone)]
pub struct User {
    pub user_id: Uuid,
    pub token: String,
}

/// Reads a problem answer, checking its media type, and returns its code.
pub async fn problem_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "status {status}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"].as_u64(), Some(status.as_u16() as u64));
    for field in ["type", "title", "detail", "code"] {
        assert!(body[field].is_string(), "problem lacks {field}: {body}");
    }
    (status, body["code"].as_str().unwrap().to_string())
}

/// Asserts that `response` is a problem document with `status` and `code`.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) {
    assert_problem_for("", response, status, code).await;
}

/// [`assert_problem`] for one of several cases, named in the failure message.
pub async fn assert_problem_for(
    case: impl std::fmt::Display,
    response: Response,
    status: StatusCode,
    code: &str,
) {
    let (got_status, got_code) = problem_code(response).await;
    assert_eq!((got_status, got_code.as_str()), (status, code), "{case}");
}

/// Polls `check` until it returns true, for at most 15 s: the scheduler runs
/// every 50 ms, but a loaded CI machine may need longer.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
