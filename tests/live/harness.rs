//! What the live tests share: a PostgreSQL for the binary, fresh databases,
//! service instances in-process, and an event-stream reader.

use std::sync::OnceLock;
use std::time::Duration;

use concert::config::Config;
use concert::private_postgres::start_scratch;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

pub const ADMIN: &str = "live-test-admin";
/// Longest wait for one pushed event.
pub const PUSH_WAIT: Duration = Duration::from_secs(10);

/// The URL of database `db` on the tests' server (`DATABASE_URL`'s, or a
/// private one started once for this binary and stopped with it).
pub fn url_for(db: &str) -> String {
    static SERVER: OnceLock<String> = OnceLock::new();
    let base = SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => start_scratch("concert-live").expect("a private PostgreSQL"),
    });
    let mut url = url::Url::parse(base).expect("a database URL");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// A new, empty database (each service instance migrates it).
pub async fn fresh_database() -> PgPool {
    let name = format!("live_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url_for("postgres")).await.unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    PgPool::connect(&url_for(&name)).await.unwrap()
}

/// Holds the log's positioner back until the transaction ends: events
/// committed meanwhile are not positioned, so no feed brings them.
pub async fn positioner_held(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut positioner = pool.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(concert::event_log::POSITIONER_LOCK)
        .execute(&mut *positioner)
        .await
        .unwrap();
    positioner
}

pub fn config() -> Config {
    let mut config = Config::defaults();
    config.admin_token = Some(ADMIN.to_string());
    config.scheduler_interval_ms = 50;
    config
}

/// One running instance.
pub struct Instance {
    pub base: String,
    pub client: reqwest::Client,
    /// Opens a connection for each stream, as a browser's `EventSource`
    /// usually does: the server answers those without hyper.
    streams: reqwest::Client,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

pub async fn start(pool: &PgPool, config: Config) -> Instance {
    let app = concert::server::prepare(pool.clone(), config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        concert::server::serve(listener, app, stopped).await;
    });
    Instance {
        base,
        client: reqwest::Client::new(),
        streams: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        stop,
        server,
    }
}

impl Instance {
    pub async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = match method {
            "POST" => self.client.post(url).json(&body.unwrap_or(json!({}))),
            _ => self.client.get(url),
        };
        request = request.bearer_auth(token);
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A concert with one date of `seats` seats: (concert_id, date_id).
    pub async fn concert(&self, seats: u32) -> (String, String) {
        let body = json!({"title": "Live", "dates": [{"starts_at": "2030-01-01T19:00:00Z", "seats": seats, "price": 1000}]});
        let concert = self.send("POST", "/concerts", ADMIN, Some(body)).await;
        let date_id = concert["dates"][0]["date_id"].as_str().unwrap().to_string();
        (concert["concert_id"].as_str().unwrap().to_string(), date_id)
    }

    /// A new user's user token and queue token (not waited on).
    pub async fn queued_user(&self, concert_id: &str) -> (Uuid, String, String) {
        let user_id = Uuid::new_v4();
        let minted = self
            .send("POST", &format!("/users/{user_id}/tokens"), ADMIN, None)
            .await;
        let user_token = minted["token"].as_str().unwrap().to_string();
        let body = json!({"concert_id": concert_id});
        let entered = self
            .send("POST", "/queue/tokens", &user_token, Some(body))
            .await;
        (
            user_id,
            user_token,
            entered["token"].as_str().unwrap().to_string(),
        )
    }

    /// A new user's queue token once it is active.
    pub async fn active_token(&self, concert_id: &str) -> String {
        let (_, _, token) = self.queued_user(concert_id).await;
        self.until_active(&token).await;
        token
    }

    /// Waits until the scheduler admits the queue token.
    pub async fn until_active(&self, token: &str) {
        for _ in 0..400 {
            if self.send("GET", "/queue/tokens/current", token, None).await["status"] == "active" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the token was never admitted");
    }

    /// Holds seat `seat_no` of the date: the reservation.
    pub async fn hold(&self, token: &str, concert_id: &str, date_id: &str, seat_no: u32) -> Value {
        let path = format!(
            "/concerts/{concert_id}/dates/{date_id}/seats?after_seat_no={}&limit=1",
            seat_no - 1
        );
        let page = self.send("GET", &path, token, None).await;
        let seat_id = page["seats"][0]["seat_id"].clone();
        self.send(
            "POST",
            "/reservations",
            token,
            Some(json!({"seat_id": seat_id})),
        )
        .await
    }

    /// Funds the holder of `token` and pays `reservation` with it.
    pub async fn pay(&self, token: &str, reservation: &Value) {
        let user = self.send("GET", "/queue/tokens/current", token, None).await["user_id"].clone();
        let user = user.as_str().unwrap();
        let minted = self
            .send("POST", &format!("/users/{user}/tokens"), ADMIN, None)
            .await;
        self.send(
            "POST",
            &format!("/users/{user}/balance/charges"),
            minted["token"].as_str().unwrap(),
            Some(json!({"amount": 1000})),
        )
        .await;
        let payment = json!({"reservation_id": reservation["reservation_id"]});
        self.send("POST", "/payments", token, Some(payment)).await;
    }

    pub async fn subscribe(&self, path: &str, token: &str, last_event_id: Option<&str>) -> Events {
        let mut request = self
            .streams
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The answer to opening the stream at `path` with `token`, whatever it is.
    pub async fn open_stream(&self, path: &str, token: &str) -> reqwest::Response {
        self.streams
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("the service stops")
            .unwrap();
    }
}

/// One Server-Sent Event.
#[derive(Debug)]
pub struct Sse {
    pub event: String,
    pub id: String,
    pub data: Value,
    /// The reconnection time it sets, in milliseconds (`retry:`).
    pub retry: Option<u64>,
}

/// An open event stream, read event by event.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (comments skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                let mut retry = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    } else if let Some(value) = line.strip_prefix("retry:") {
                        retry = value.trim().parse().ok();
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                return Some(Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                    retry,
                });
            }
            let chunk = tokio::time::timeout(PUSH_WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next chunk of the body as sent, comments included, if one comes
    /// within `wait`.
    pub async fn next_chunk_within(&mut self, wait: Duration) -> Option<bytes::Bytes> {
        let chunk = tokio::time::timeout(wait, self.response.chunk()).await;
        chunk.ok()?.ok()?
    }

    /// The next event if one comes within `wait`; `None` if none does.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Sse> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }

    /// The next `seats` event's changes as (seat_no, status).
    pub async fn next_changes(&mut self) -> Vec<(u64, String)> {
        let event = self.next().await.expect("an event");
        assert_eq!(event.event, "seats", "{event:?}");
        event.data["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| {
                (
                    change["seat_no"].as_u64().unwrap(),
                    change["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

pub fn seats_path(concert_id: &str, date_id: &str) -> String {
    format!("/concerts/{concert_id}/dates/{date_id}/seats/events")
}
