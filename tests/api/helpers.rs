//! `spawn_app`: the real service on a loopback port, on its own fresh database
//! of a real PostgreSQL (the one in `DATABASE_URL`, or a private server started
//! once for this test binary), plus request helpers and `assert_problem`, the
//! check that a request got the problem document it should. The typed helpers
//! (`create_concert`, `hold`, `pay`...) go through `concert-client`, the one
//! typed client of the API; the raw ones (`get`, `post`...) build any request,
//! malformed or hostile ones included, with reqwest.

mod database;
mod metrics;
mod store;

use std::future::Future;
use std::time::Duration;

use concert::config::Config;
use concert_client::{Answer, FreeSeat, NewConcert, NewDate, Options, SeatPage};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

pub use database::{database_url_of, database_without_a_store, fresh_database};
pub use metrics::{largest_batch_seen, largest_bucket, lost_races};
pub use store::{
    assert_replay_rebuilds_the_read_models, commits_and_events, store_as_another_writer,
};

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
    /// The raw client, for requests a typed client cannot build.
    pub client: reqwest::Client,
    /// The typed client, signed in as the admin; it keeps the user tokens it mints.
    pub api: concert_client::Client,
    pub pool: PgPool,
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
    start(pool, config, false).await
}

/// Starts the service as `serve --demo` does (sample users may sign in) on a
/// fresh database.
pub async fn spawn_demo_app() -> TestApp {
    start(fresh_database().await, test_config(), true).await
}

async fn start(pool: PgPool, config: Config, demo: bool) -> TestApp {
    let mut app = concert::server::prepare(pool.clone(), config)
        .await
        .expect("service prepares");
    // As `concert serve` does: the audit holds the log to what was served.
    concert::server::record_settings(&app)
        .await
        .expect("settings recorded");
    app.set_demo(demo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        concert::server::serve(listener, app, stopped).await;
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let options = Options {
        // Up to a hundred users act at once in a test.
        connections: 100,
        // The service's default, which the tests' tokens always had.
        user_token_ttl_secs: 3_600,
        ..Options::default()
    };
    let api = concert_client::Client::new(&[&address], ADMIN_TOKEN, options).unwrap();
    TestApp {
        address,
        client,
        api,
        pool,
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

    /// `host:port` of the service, for raw connections.
    pub fn host(&self) -> &str {
        self.address.trim_start_matches("http://")
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
        let dates = (0..dates)
            .map(|n| NewDate {
                starts_at: chrono::Utc::now() + chrono::Duration::days(30 + n as i64),
                seats,
                price,
            })
            .collect();
        let concert = NewConcert {
            title: "Test Concert".to_string(),
            dates,
        };
        let answer = self.api.create_concert(&concert).await.expect("answered");
        assert_eq!(answer.status, StatusCode::CREATED);
        let scheduled: concert_client::Concert =
            answer.json("create concert", &[201]).expect("a concert");
        Concert {
            concert_id: scheduled.concert_id.to_string(),
            date_ids: scheduled
                .dates
                .iter()
                .map(|date| date.date_id.to_string())
                .collect(),
        }
    }

    /// A user token for `user_id`, minted by the service (admin route) on
    /// first use and kept by the client.
    pub async fn user_token(&self, user_id: Uuid) -> String {
        self.api.user_token(user_id).await.expect("a user token")
    }

    /// Enters the queue as `user_id`, signed in with their own token, and
    /// returns the answer body.
    pub async fn enter_queue(&self, user_id: Uuid, concert_id: &str) -> (StatusCode, Value) {
        let answer = self
            .api
            .enter_queue(user_id, uuid(concert_id))
            .await
            .expect("answered");
        let status = StatusCode::from_u16(answer.status).expect("a status");
        (status, json_of(&answer))
    }

    /// Waits until the scheduler admits the token.
    pub async fn wait_until_active(&self, token: &str) {
        for _ in 0..600 {
            let answer = self.api.current_token(token).await.expect("answered");
            if json_of(&answer)["status"] == "active" {
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
    pub async fn free_seats(&self, user: &User, concert: &Concert, date: usize) -> Vec<FreeSeat> {
        let (concert, date) = (uuid(&concert.concert_id), uuid(&concert.date_ids[date]));
        let answer = self
            .api
            .seats(&user.token, concert, date, 0, None)
            .await
            .expect("answered");
        let page: SeatPage = answer.json("free seats", &[200]).expect("a seat list");
        page.seats
    }

    /// The id of the first free seat of the concert's first date.
    pub async fn first_free_seat(&self, user: &User, concert: &Concert) -> String {
        let seats = self.free_seats(user, concert, 0).await;
        seats[0].seat_id.to_string()
    }

    /// Holds `seat_id` (a UUID; a malformed id is a raw `post`) with the
    /// user's queue token.
    pub async fn hold(&self, user: &User, seat_id: &str) -> Answer {
        self.api
            .hold(&user.token, uuid(seat_id))
            .await
            .expect("answered")
    }

    /// Charges `user_id`'s wallet, signed in as that user.
    pub async fn charge(&self, user_id: Uuid, amount: i64) -> Answer {
        self.api
            .charge(user_id, amount, None)
            .await
            .expect("answered")
    }

    /// Charges `user_id`'s wallet, which must be answered `200`: a charge
    /// refused by mistake would otherwise show only as the step after it
    /// failing (a payment refused, a balance off).
    pub async fn fund(&self, user_id: Uuid, amount: i64) {
        let charged = self.charge(user_id, amount).await;
        assert_eq!(
            charged.status,
            StatusCode::OK,
            "charge of {amount}: {}",
            charged.text()
        );
    }

    /// Pays `reservation_id` (a UUID; a malformed id is a raw `post`) with
    /// the user's queue token.
    pub async fn pay(&self, user: &User, reservation_id: &str) -> Answer {
        self.api
            .pay(&user.token, uuid(reservation_id), None)
            .await
            .expect("answered")
    }

    /// `user_id`'s balance, read as that user.
    pub async fn balance(&self, user_id: Uuid) -> i64 {
        let answer = self.api.balance(user_id).await.expect("answered");
        json_of(&answer)["balance"].as_i64().expect("a balance")
    }

    /// The status the holder reads back for a reservation.
    pub async fn reservation_status(&self, user: &User, reservation_id: &str) -> String {
        let path = format!("/reservations/{reservation_id}");
        let read = self.get_json(&path, Some(&user.token)).await;
        read["status"].as_str().expect("a status").to_string()
    }
}

/// An id the typed helpers take as text, as tests read it from bodies.
fn uuid(id: &str) -> Uuid {
    id.parse().expect("a UUID")
}

/// The answer's body as JSON, whatever its status.
pub fn json_of(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("a JSON body")
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

/// An answer a test judges: a raw `reqwest::Response` or the typed client's `Answer`.
pub trait Reply {
    /// Status, `Content-Type` (if any) and body.
    fn parts(self) -> impl Future<Output = (StatusCode, Option<String>, Vec<u8>)>;
}

impl Reply for Response {
    async fn parts(self) -> (StatusCode, Option<String>, Vec<u8>) {
        let status = self.status();
        let content_type = self
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        (status, content_type, self.bytes().await.unwrap().to_vec())
    }
}

impl Reply for Answer {
    async fn parts(self) -> (StatusCode, Option<String>, Vec<u8>) {
        let status = StatusCode::from_u16(self.status).expect("a status");
        let content_type = Some(self.content_type).filter(|t| !t.is_empty());
        (status, content_type, self.body)
    }
}

/// Reads a problem answer, checking its media type, and returns its code.
pub async fn problem_code(response: impl Reply) -> (StatusCode, String) {
    let (status, content_type, body) = response.parts().await;
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "status {status}"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"].as_u64(), Some(status.as_u16() as u64));
    for field in ["type", "title", "detail", "code"] {
        assert!(body[field].is_string(), "problem lacks {field}: {body}");
    }
    (status, body["code"].as_str().unwrap().to_string())
}

/// Asserts that `response` is a problem document with `status` and `code`.
pub async fn assert_problem(response: impl Reply, status: StatusCode, code: &str) {
    assert_problem_for("", response, status, code).await;
}

/// [`assert_problem`] for one of several cases, named in the failure message.
pub async fn assert_problem_for(
    case: impl std::fmt::Display,
    response: impl Reply,
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
