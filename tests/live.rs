//! Live updates over HTTP, against real servers on a real PostgreSQL: a
//! date's seat stream sends a snapshot then every hold, expiry and sale; a
//! change committed through one instance reaches a subscriber of another;
//! `Last-Event-ID` replays a missed hold; the standing stream follows an
//! admission; and streams end cleanly when the service stops.

use std::sync::OnceLock;
use std::time::Duration;

use concert::config::Config;
use concert::private_postgres::PrivatePostgres;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

const ADMIN: &str = "live-test-admin";
/// Longest wait for one pushed event.
const PUSH_WAIT: Duration = Duration::from_secs(10);

/// The URL of database `db` on the tests' server (`DATABASE_URL`'s, or a
/// private one started once for this binary and stopped with it).
fn url_for(db: &str) -> String {
    static SERVER: OnceLock<String> = OnceLock::new();
    let base = SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let dir = std::env::temp_dir().join(format!("concert-live-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let server = PrivatePostgres::start(&dir).expect("a private PostgreSQL");
            Box::leak(Box::new(server)).database_url()
        }
    });
    let mut url = url::Url::parse(base).expect("a database URL");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// A new, empty database (each service instance migrates it).
async fn fresh_database() -> PgPool {
    let name = format!("live_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url_for("postgres")).await.unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    PgPool::connect(&url_for(&name)).await.unwrap()
}

fn config() -> Config {
    let mut config = Config::defaults();
    config.admin_token = Some(ADMIN.to_string());
    config.scheduler_interval_ms = 50;
    config
}

/// One running instance.
struct Instance {
    base: String,
    client: reqwest::Client,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

async fn start(pool: &PgPool, config: Config) -> Instance {
    let app = concert::server::prepare(pool.clone(), config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        concert::server::serve(listener, app, stopped)
            .await
            .unwrap();
    });
    Instance {
        base,
        client: reqwest::Client::new(),
        stop,
        server,
    }
}

impl Instance {
    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
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
    async fn concert(&self, seats: u32) -> (String, String) {
        let body = json!({"title": "Live", "dates": [{"starts_at": "2030-01-01T19:00:00Z", "seats": seats, "price": 1000}]});
        let concert = self.send("POST", "/concerts", ADMIN, Some(body)).await;
        let date_id = concert["dates"][0]["date_id"].as_str().unwrap().to_string();
        (concert["concert_id"].as_str().unwrap().to_string(), date_id)
    }

    /// A new user's user token and queue token (not waited on).
    async fn queued_user(&self, concert_id: &str) -> (Uuid, String, String) {
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
    async fn active_token(&self, concert_id: &str) -> String {
        let (_, _, token) = self.queued_user(concert_id).await;
        for _ in 0..400 {
            if self
                .send("GET", "/queue/tokens/current", &token, None)
                .await["status"]
                == "active"
            {
                return token;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the token was never admitted");
    }

    /// Holds seat `seat_no` of the date: the reservation.
    async fn hold(&self, token: &str, concert_id: &str, date_id: &str, seat_no: u32) -> Value {
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

    async fn subscribe(&self, path: &str, token: &str, last_event_id: Option<&str>) -> Events {
        let mut request = self
            .client
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

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("the service stops")
            .unwrap();
    }
}

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// An open event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                return Some(Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout(PUSH_WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `seats` event's changes as (seat_no, status).
    async fn next_changes(&mut self) -> Vec<(u64, String)> {
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

fn seats_path(concert_id: &str, date_id: &str) -> String {
    format!("/concerts/{concert_id}/dates/{date_id}/seats/events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_stream_sends_a_snapshot_then_each_hold_and_sale() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(5).await;
    let token = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;

    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["seats"], "FFFFF");
    assert_eq!(snapshot.data["total_seats"], 5);
    let reservation = service.hold(&token, &concert_id, &date_id, 2).await;
    assert_eq!(events.next_changes().await, vec![(2, "held".to_string())]);
    let holder = service
        .send("GET", "/queue/tokens/current", &token, None)
        .await["user_id"]
        .clone();
    let holder = holder.as_str().unwrap();
    let minted = service
        .send("POST", &format!("/users/{holder}/tokens"), ADMIN, None)
        .await;
    let charge = json!({"amount": 1000});
    service
        .send(
            "POST",
            &format!("/users/{holder}/balance/charges"),
            minted["token"].as_str().unwrap(),
            Some(charge),
        )
        .await;
    let payment = json!({"reservation_id": reservation["reservation_id"]});
    service
        .send("POST", "/payments", &token, Some(payment))
        .await;
    assert_eq!(events.next_changes().await, vec![(2, "sold".to_string())]);

    let again = service
        .subscribe(
            &seats_path(&concert_id, &date_id),
            &service.active_token(&concert_id).await,
            None,
        )
        .await
        .next()
        .await
        .unwrap();
    assert_eq!(again.data["seats"], "FSFFF");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_through_one_instance_reaches_a_subscriber_of_another() {
    let pool = fresh_database().await;
    let first = start(&pool, config()).await;
    let second = start(&pool, config()).await;
    let (concert_id, date_id) = first.concert(3).await;
    let watcher = first.active_token(&concert_id).await;
    let holder = first.active_token(&concert_id).await;
    let mut events = second
        .subscribe(&seats_path(&concert_id, &date_id), &watcher, None)
        .await;
    assert_eq!(events.next().await.unwrap().data["seats"], "FFF");

    first.hold(&holder, &concert_id, &date_id, 3).await;

    assert_eq!(events.next_changes().await, vec![(3, "held".to_string())]);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_after_a_missed_hold_replays_it() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(4).await;
    let token = service.active_token(&concert_id).await;
    let path = seats_path(&concert_id, &date_id);
    let snapshot = service
        .subscribe(&path, &token, None)
        .await
        .next()
        .await
        .unwrap();
    assert_eq!(snapshot.event, "snapshot");

    // The stream is closed; a hold is made meanwhile.
    service.hold(&token, &concert_id, &date_id, 1).await;
    let mut resumed = service.subscribe(&path, &token, Some(&snapshot.id)).await;

    let missed = resumed.next().await.unwrap();
    assert_eq!(
        missed.event, "seats",
        "a replay, not a new snapshot: {missed:?}"
    );
    assert_eq!(missed.data["changes"][0]["seat_no"], 1);
    assert_eq!(missed.data["changes"][0]["status"], "held");
    assert!(missed.id.parse::<i64>().unwrap() > snapshot.id.parse::<i64>().unwrap());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_expired_by_the_scheduler_reaches_subscribers() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.hold_ttl_secs = 1;
    let service = start(&pool, settings).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;
    events.next().await.unwrap();

    service.hold(&token, &concert_id, &date_id, 2).await;

    assert_eq!(events.next_changes().await, vec![(2, "held".to_string())]);
    assert_eq!(events.next_changes().await, vec![(2, "free".to_string())]);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standing_stream_follows_the_token_from_waiting_to_active() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    settings.queue_active_ttl_secs = 2;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(2).await;
    let first = service.active_token(&concert_id).await;
    let (_, _, second) = service.queued_user(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &second, None)
        .await;

    let waiting = events.next().await.unwrap();
    assert_eq!(waiting.event, "standing");
    assert_eq!(waiting.data["status"], "waiting");
    assert_eq!(waiting.data["position"], 0);
    assert_eq!(waiting.data["token"], second.as_str());

    // The first token times out after 2 s; the second is admitted then (a
    // new estimate of the wait may come first).
    let mut active = events.next().await.unwrap();
    while active.data["status"] == "waiting" {
        active = events.next().await.unwrap();
    }
    assert_eq!(active.data["status"], "active", "{active:?}");
    assert!(active.data["expires_at"].is_string());
    drop(first);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_cleanly_when_the_service_stops() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut seats = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;
    let mut standing = service
        .subscribe("/queue/tokens/current/events", &token, None)
        .await;
    seats.next().await.unwrap();
    standing.next().await.unwrap();

    let stopping = tokio::spawn(service.stop());

    assert!(seats.next().await.is_none(), "the seat stream ends");
    assert!(standing.next().await.is_none(), "the standing stream ends");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown is not held up by open streams")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_come_from_the_binary_and_sample_users_only_with_demo() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;

    for (path, kind) in [
        ("/", "text/html"),
        ("/audit", "text/html"),
        ("/assets/app.js", "text/javascript"),
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
