//! The few API calls the benchmark needs: a concert, active tokens, holds.

use std::time::Duration;

use concert::ids::{DateId, SeatId};
use serde_json::{json, Value};
use uuid::Uuid;

/// The service, with its admin token.
#[derive(Clone)]
pub struct Api {
    base: String,
    admin: String,
    client: reqwest::Client,
}

/// The benchmark's date.
#[derive(Clone)]
pub struct Date {
    pub concert_id: String,
    pub date_id: Uuid,
}

impl Api {
    pub fn new(base: &str, admin: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            admin: admin.to_string(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the service answers");
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    /// A concert with one date of `seats` seats.
    pub async fn concert(&self, seats: u32) -> Date {
        let body = json!({"title": "SSE bench", "dates": [{"starts_at": "2030-06-01T19:00:00Z", "seats": seats, "price": 1000}]});
        let concert = self.post("/concerts", &self.admin, body).await;
        Date {
            concert_id: concert["concert_id"].as_str().unwrap().to_string(),
            date_id: concert["dates"][0]["date_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        }
    }

    /// The queue token of a new user who entered the concert's line.
    pub async fn queue_token(&self, date: &Date) -> String {
        let user_id = Uuid::new_v4();
        let minted = self
            .post(&format!("/users/{user_id}/tokens"), &self.admin, json!({}))
            .await;
        let user_token = minted["token"].as_str().unwrap();
        let entered = self
            .post(
                "/queue/tokens",
                user_token,
                json!({"concert_id": date.concert_id}),
            )
            .await;
        entered["token"].as_str().unwrap().to_string()
    }

    /// `count` queue tokens of new users, once all are active.
    pub async fn active_tokens(&self, date: &Date, count: usize) -> Vec<String> {
        let mut tokens = Vec::new();
        for _ in 0..count {
            tokens.push(self.queue_token(date).await);
        }
        for token in &tokens {
            for _ in 0..400 {
                let current: Value = self
                    .client
                    .get(format!("{}/api/v1/queue/tokens/current", self.base))
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("the service answers")
                    .json()
                    .await
                    .expect("a JSON body");
                if current["status"] == "active" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokens
    }

    /// Holds seat `seat_no`; true when the service answered 201.
    pub async fn hold(&self, date: &Date, token: &str, seat_no: u32) -> bool {
        let seat_id = SeatId::of(DateId(date.date_id), seat_no).0;
        self.client
            .post(format!("{}/api/v1/reservations", self.base))
            .bearer_auth(token)
            .json(&json!({"seat_id": seat_id}))
            .send()
            .await
            .is_ok_and(|response| response.status() == 201)
    }
}
