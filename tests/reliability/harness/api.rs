//! The API's typed client (`concert-client`) over a test's servers, every
//! answer counted in `Stats`, with signing in through restarts, retries of
//! what is safe to repeat, and the waits for admission and read models.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concert_client::{
    Answer, Call, Client, Concert, Error as ClientError, FreeSeat, NewConcert, NewDate, Options,
    QueueToken, SeatPage,
};
use serde_json::Value;
use uuid::Uuid;

use super::stats::Stats;
use super::ADMIN;

/// How long a minted user token lives: longer than any test.
const USER_TOKEN_TTL_SECS: u64 = 3600;

/// The typed client of the API over the test's servers (round-robin), whose
/// every call but signing in is counted and checked in `stats`, with what
/// the tests add on top: signing in through restarts, retrying what is safe
/// to repeat, and waiting for admission or for the read models.
pub struct Api {
    pub client: Client,
    pub stats: Arc<Stats>,
}

impl Api {
    pub fn new(bases: Vec<String>, timeout: Duration) -> Api {
        let options = Options {
            // Room for the largest crowd of concurrent callers (1,000).
            connections: 1024,
            timeout,
            idle_timeout: Duration::from_secs(5),
            user_token_ttl_secs: USER_TOKEN_TTL_SECS,
        };
        let stats = Arc::new(Stats::default());
        let counted = stats.clone();
        let client = Client::new(&bases, ADMIN, options)
            .expect("a client of the test servers")
            .with_observer(move |call: &Call<'_>| {
                // Signing in is not part of the workload a test measures.
                if call.endpoint != "sign-in" {
                    counted.count(call);
                }
            });
        Api { client, stats }
    }

    /// The user token of `user` (`Authorization: Bearer` for entering the
    /// queue and for that user's wallet): minted on first use with the admin
    /// token and kept by the client, so later calls send no request. The
    /// signing key lives in the database and is shared by every instance, so
    /// a token outlives restarts and works on each.
    ///
    /// Minting is retried through 503s and lost connections (a restart) for
    /// 30 s; any other answer fails the test. Mint before a race on one user,
    /// so that the race does not mint.
    pub async fn user_token(&self, user: Uuid) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.client.user_token(user).await {
                Ok(token) => return token,
                Err(ClientError::Transport { .. }) => {}
                Err(error) if error.status() == Some(503) => {}
                Err(error) => panic!("no user token for {user}: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "no user token for {user} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes `call` until an answer other than 503 comes, or `limit` passes
    /// (then `None`). Only for calls that are safe to repeat.
    pub async fn retry<F, Fut>(&self, limit: Duration, mut call: F) -> Option<Answer>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Answer, ClientError>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(answer) = call().await {
                if answer.status != 503 {
                    return Some(answer);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/readyz` reports read models caught up with the log (the
    /// scheduler applies updates lost to a failed connection).
    pub async fn wait_caught_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(ready) = self.client.readiness().await {
                if ready.status == 200 && projection_lag(&ready) == 0 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "read models still behind: {}",
                    ready.text()
                );
            }
            assert!(Instant::now() < deadline, "/readyz does not answer");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates a concert of one date (`seats` seats at `price`) as admin;
    /// returns its id and the date's.
    pub async fn create_concert(&self, seats: u32, price: i64) -> (Uuid, Uuid) {
        let concert = NewConcert {
            title: "Reliability".into(),
            dates: vec![NewDate {
                starts_at: chrono::Utc::now() + chrono::Duration::days(30),
                seats,
                price,
            }],
        };
        let created: Concert = self
            .retry(Duration::from_secs(30), || {
                self.client.create_concert(&concert)
            })
            .await
            .expect("the concert is created")
            .json("create concert", &[201])
            .unwrap();
        (created.concert_id, created.dates[0].date_id)
    }

    /// Enters the queue as `user`, signed in with their user token (retrying:
    /// a repeated entry returns the same ticket).
    pub async fn enter(&self, user: Uuid, concert: Uuid, limit: Duration) -> Option<Answer> {
        self.user_token(user).await;
        self.retry(limit, || self.client.enter_queue(user, concert))
            .await
    }

    /// The token's status (`waiting`, `active`, `expired`), polling until it
    /// is not `waiting` or `limit` passes.
    pub async fn wait_admitted(&self, token: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(answer) = self.client.current_token(token).await {
                if let Ok(ticket) = answer.json::<QueueToken>("queue status", &[200]) {
                    if ticket.status != "waiting" {
                        return Some(ticket.status);
                    }
                }
                if answer.status == 401 {
                    return Some("invalid".into());
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Free seats of a date, first page of `limit`.
    pub async fn free_seats(
        &self,
        token: &str,
        concert: Uuid,
        date: Uuid,
        limit: u32,
    ) -> Option<Vec<FreeSeat>> {
        let answer = self
            .client
            .seats(token, concert, date, 0, Some(limit))
            .await
            .ok()?;
        if answer.status != 200 {
            return None;
        }
        let page: SeatPage = answer.json("free seats", &[200]).ok()?;
        Some(page.seats)
    }
}

/// `projection_lag_events` of a `/readyz` answer (0 when absent).
pub fn projection_lag(ready: &Answer) -> i64 {
    body(ready)["projection_lag_events"].as_i64().unwrap_or(0)
}

/// The body of an answer as JSON (`null` when it is not JSON), for the
/// fields no response type of the client names.
pub fn body(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
}
