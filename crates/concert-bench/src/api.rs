//! A thin client of the concert REST API (version 1, revision 2) over one
//! keep-alive reqwest client. Every call is timed into the current `Stats`
//! under its endpoint name; the caller decides what an answer's status means.
//!
//! Users sign in with a user token that the client mints with the admin token
//! (`POST /users/{user}/tokens`, timed as `sign-in`) the first time it acts
//! for a user, and keeps for every clone of the client; entering the queue,
//! charging and reading a balance send it. A scenario that times one of those
//! calls signs its users in during its setup (`sign_in`), so the timed phase
//! mints nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Args;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::stats::Stats;
use crate::BoxError;

/// An HTTP answer: status and body bytes.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T` when the status is one of `expected`, else an error naming both.
    pub fn json<T: DeserializeOwned>(&self, what: &str, expected: &[u16]) -> Result<T, BoxError> {
        if !expected.contains(&self.status) {
            return Err(format!(
                "{what}: HTTP {} {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
            .into());
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("{what}: bad body: {e}").into())
    }

    /// The problem document's `code`, if the body is one.
    pub fn code(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Problem {
            code: String,
        }
        serde_json::from_slice::<Problem>(&self.body)
            .ok()
            .map(|p| p.code)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduledDate {
    pub date_id: Uuid,
    pub seats: u32,
    pub price: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Concert {
    pub concert_id: Uuid,
    pub dates: Vec<ScheduledDate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    pub token: String,
    pub status: String,
    #[allow(dead_code)]
    pub position: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookableDate {
    pub date_id: Uuid,
    pub total_seats: i32,
    pub available_seats: i32,
}

#[derive(Debug, Deserialize)]
struct DateList {
    dates: Vec<BookableDate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FreeSeat {
    pub seat_id: Uuid,
    #[allow(dead_code)]
    pub seat_no: i32,
    #[allow(dead_code)]
    pub price: i64,
}

#[derive(Debug, Deserialize)]
pub struct SeatPage {
    pub seats: Vec<FreeSeat>,
    pub next_after_seat_no: Option<i32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub date_id: Uuid,
    pub price: i64,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    #[allow(dead_code)]
    pub payment_id: Uuid,
    pub amount: i64,
}

#[derive(Debug, Deserialize)]
struct Balance {
    balance: i64,
}

#[derive(Debug, Deserialize)]
struct UserToken {
    token: String,
}

/// Life of a minted user token: a day, longer than any run.
const USER_TOKEN_TTL_SECS: u64 = 86_400;

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct EventPage {
    pub events: Vec<LoggedEvent>,
    pub next: i64,
}

/// Where the server under load is, as every scenario takes it.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ServerArgs {
    /// Server root, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "CONCERT_BENCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The server's CONCERT_ADMIN_TOKEN.
    #[arg(long, env = "CONCERT_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub admin_token: String,
}

impl ServerArgs {
    /// A client for `concurrency` clients of this server, once it answers.
    pub async fn connect(&self, concurrency: usize) -> Result<Api, BoxError> {
        let api = Api::new(&self.url, &self.admin_token, concurrency)?;
        if !api.healthy().await {
            return Err(format!("no server answers at {}", self.url).into());
        }
        Ok(api)
    }
}

/// The API of one server.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    admin_token: String,
    pub stats: Stats,
    /// User tokens minted so far, by user; shared by every clone.
    user_tokens: Arc<Mutex<HashMap<Uuid, String>>>,
}

impl Api {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:8080`), keeping
    /// up to `connections` idle keep-alive connections.
    pub fn new(url: &str, admin_token: &str, connections: usize) -> Result<Self, BoxError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1) * 2)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            base: format!("{}/api/v1", url.trim_end_matches('/')),
            admin_token: admin_token.to_string(),
            stats: Stats::new(),
            user_tokens: Arc::default(),
        })
    }

    /// The same client and server, recording into `stats`.
    pub fn with_stats(&self, stats: Stats) -> Self {
        Self {
            stats,
            ..self.clone()
        }
    }

    async fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, BoxError> {
        let started = Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                body: body.to_vec(),
            })
        }
        .await;
        match outcome {
            Ok(answer) => {
                self.stats.record(endpoint, started, answer.status);
                Ok(answer)
            }
            Err(error) => {
                self.stats.record_transport_error(endpoint, started);
                Err(format!("{endpoint}: {error}").into())
            }
        }
    }

    /// `GET /healthz`.
    pub async fn healthy(&self) -> bool {
        let url = self.base.trim_end_matches("/api/v1").to_string() + "/healthz";
        matches!(self.client.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// Schedules a concert with dates of `(seats, price)`, starting in 30 days.
    pub async fn create_concert(
        &self,
        title: &str,
        dates: &[(u32, i64)],
    ) -> Result<Concert, BoxError> {
        let start: DateTime<Utc> = Utc::now() + chrono::Duration::days(30);
        let dates: Vec<_> = dates
            .iter()
            .enumerate()
            .map(|(i, (seats, price))| {
                json!({
                    "starts_at": (start + chrono::Duration::hours(i as i64)).to_rfc3339(),
                    "seats": seats,
                    "price": price,
                })
            })
            .collect();
        let request = self
            .client
            .post(format!("{}/concerts", self.base))
            .bearer_auth(&self.admin_token)
            .json(&json!({ "title": title, "dates": dates }));
        self.send("create-concert", request)
            .await?
            .json("create concert", &[201])
    }

    /// The user token of `user`: the one kept from an earlier call, or one
    /// minted now with the admin token (`POST /users/{user}/tokens`, timed as
    /// `sign-in`) and kept for every clone of this client.
    pub async fn user_token(&self, user: Uuid) -> Result<String, BoxError> {
        if let Some(token) = self.user_tokens.lock().expect("token lock").get(&user) {
            return Ok(token.clone());
        }
        let request = self
            .client
            .post(format!("{}/users/{user}/tokens", self.base))
            .bearer_auth(&self.admin_token)
            .json(&json!({ "ttl_secs": USER_TOKEN_TTL_SECS }));
        let minted: UserToken = self
            .send("sign-in", request)
            .await?
            .json("sign in", &[201])?;
        // Two first calls at once may both mint; either token is good.
        Ok(self
            .user_tokens
            .lock()
            .expect("token lock")
            .entry(user)
            .or_insert(minted.token)
            .clone())
    }

    /// `POST /users/{user}/balance/charges` with the user's token.
    pub async fn charge(&self, user: Uuid, amount: i64) -> Result<Answer, BoxError> {
        let token = self.user_token(user).await?;
        let request = self
            .client
            .post(format!("{}/users/{user}/balance/charges", self.base))
            .bearer_auth(token)
            .json(&json!({ "amount": amount }));
        self.send("charge", request).await
    }

    /// `POST /queue/tokens` with the user's token.
    pub async fn enter_queue(&self, user: Uuid, concert: Uuid) -> Result<Answer, BoxError> {
        let token = self.user_token(user).await?;
        let request = self
            .client
            .post(format!("{}/queue/tokens", self.base))
            .bearer_auth(token)
            .json(&json!({ "concert_id": concert }));
        self.send("enter-queue", request).await
    }

    /// `GET /queue/tokens/current`.
    pub async fn current_token(&self, token: &str) -> Result<Answer, BoxError> {
        let request = self
            .client
            .get(format!("{}/queue/tokens/current", self.base))
            .bearer_auth(token);
        self.send("queue-status", request).await
    }

    /// `GET /concerts/{concert}/dates`.
    pub async fn dates(&self, token: &str, concert: Uuid) -> Result<Vec<BookableDate>, BoxError> {
        let request = self
            .client
            .get(format!("{}/concerts/{concert}/dates", self.base))
            .bearer_auth(token);
        let list: DateList = self.send("dates", request).await?.json("dates", &[200])?;
        Ok(list.dates)
    }

    /// `GET /concerts/{concert}/dates/{date}/seats`.
    pub async fn seats(
        &self,
        token: &str,
        concert: Uuid,
        date: Uuid,
        after_seat_no: i64,
        limit: Option<u32>,
    ) -> Result<Answer, BoxError> {
        let mut url = format!(
            "{}/concerts/{concert}/dates/{date}/seats?after_seat_no={after_seat_no}",
            self.base
        );
        if let Some(limit) = limit {
            url.push_str(&format!("&limit={limit}"));
        }
        let request = self.client.get(url).bearer_auth(token);
        self.send("seats", request).await
    }

    /// `POST /reservations`.
    pub async fn hold(&self, token: &str, seat: Uuid) -> Result<Answer, BoxError> {
        let request = self
            .client
            .post(format!("{}/reservations", self.base))
            .bearer_auth(token)
            .json(&json!({ "seat_id": seat }));
        self.send("hold", request).await
    }

    /// `POST /payments`, with an `Idempotency-Key` when given.
    pub async fn pay(
        &self,
        token: &str,
        reservation: Uuid,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, BoxError> {
        let mut request = self
            .client
            .post(format!("{}/payments", self.base))
            .bearer_auth(token)
            .json(&json!({ "reservation_id": reservation }));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        self.send("pay", request).await
    }

    /// `GET /reservations/{id}` with the holder's token.
    pub async fn reservation(&self, token: &str, reservation: Uuid) -> Result<Answer, BoxError> {
        let request = self
            .client
            .get(format!("{}/reservations/{reservation}", self.base))
            .bearer_auth(token);
        self.send("reservation", request).await
    }

    /// `GET /users/{user}/balance` with the user's token.
    pub async fn balance(&self, user: Uuid) -> Result<i64, BoxError> {
        let token = self.user_token(user).await?;
        let request = self
            .client
            .get(format!("{}/users/{user}/balance", self.base))
            .bearer_auth(token);
        let balance: Balance = self
            .send("balance", request)
            .await?
            .json("balance", &[200])?;
        Ok(balance.balance)
    }

    /// `GET /audit/events` (admin); `None` when the server has no audit API.
    pub async fn audit_events(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Option<EventPage>, BoxError> {
        let request = self
            .client
            .get(format!(
                "{}/audit/events?after={after}&limit={limit}",
                self.base
            ))
            .bearer_auth(&self.admin_token);
        let answer = self.send("audit-events", request).await?;
        if answer.status == 404 || answer.status == 405 {
            return Ok(None);
        }
        Ok(Some(answer.json("audit events", &[200])?))
    }
}
