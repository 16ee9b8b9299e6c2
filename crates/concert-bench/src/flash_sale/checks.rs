//! The checks after the sale, through the API: every payment confirmed its
//! reservation, seats sold = min(users, seats), no seat sold twice, free +
//! sold = seats on every date, money debited = prices of the seats sold, and
//! no request answered 5xx or left unanswered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use concert_client::{BookableDate, Client, Reservation};
use indicatif::ProgressBar;
use serde_json::json;
use uuid::Uuid;

use super::queue::Tokens;
use super::setup::OnSale;
use super::Check;
use crate::api::{all_free_seats, balance, dates};
use crate::common::{enter, for_each, wait_active};
use crate::stats::Stats;
use crate::BoxError;

/// What the sale should have left behind.
pub(super) struct Bookings<'a> {
    pub on_sale: &'a OnSale,
    pub users: &'a [Uuid],
    pub tokens: &'a Tokens,
    /// By user: whether their wallet was charged.
    pub charged: &'a [bool],
    /// (index of the user, reservation, price paid) of every purchase.
    pub bought: &'a [(usize, Uuid, i64)],
    pub expected_sold: usize,
}

impl Bookings<'_> {
    /// The checks, in order, and the number of seats sold.
    pub async fn check(
        &self,
        api: &Client,
        concurrency: usize,
    ) -> Result<(Vec<Check>, usize), BoxError> {
        let (confirmed, unreadable) = self.read_reservations(api, concurrency).await;
        let distinct: HashSet<Uuid> = confirmed.iter().map(|r| r.seat_id).collect();
        let mut checks = vec![
            Check {
                name: "every payment confirmed its reservation",
                passed: unreadable == 0,
                detail: format!(
                    "{} of {} paid reservations read back as confirmed",
                    confirmed.len(),
                    self.bought.len()
                ),
            },
            Check {
                name: "seats sold = min(users, seats)",
                passed: confirmed.len() == self.expected_sold,
                detail: format!("{} sold, {} expected", confirmed.len(), self.expected_sold),
            },
            Check {
                name: "no seat sold twice (reservations)",
                passed: distinct.len() == confirmed.len(),
                detail: format!(
                    "{} confirmed reservations on {} distinct seats",
                    confirmed.len(),
                    distinct.len()
                ),
            },
        ];
        checks.push(self.seat_accounting(api, &confirmed).await?);
        checks.push(self.money(api, concurrency, &confirmed).await);
        Ok((checks, confirmed.len()))
    }

    /// Confirmed reservations, read back with each buyer's token; and how
    /// many were not confirmed or could not be read.
    async fn read_reservations(
        &self,
        api: &Client,
        concurrency: usize,
    ) -> (Vec<Reservation>, usize) {
        let reads: Vec<(Uuid, Uuid)> = self
            .bought
            .iter()
            .map(|(i, r, _)| (*r, self.users[*i]))
            .collect();
        let token_of: Arc<HashMap<Uuid, String>> = Arc::new(
            self.users
                .iter()
                .zip(self.tokens.iter())
                .filter_map(|(u, t)| t.as_ref().ok().map(|t| (*u, t.clone())))
                .collect(),
        );
        let client = api.clone();
        let reservations = for_each(
            "check holds",
            concurrency,
            reads,
            move |(reservation_id, user)| {
                let api = client.clone();
                let tokens = token_of.clone();
                async move {
                    let token = tokens.get(&user).ok_or("no token")?;
                    Ok::<_, BoxError>(
                        api.reservation(token, reservation_id)
                            .await?
                            .json::<Reservation>("reservation", &[200])?,
                    )
                }
            },
        )
        .await;
        let mut confirmed = Vec::new();
        let mut unreadable = 0;
        for reservation in reservations {
            match reservation {
                Ok(r) if r.status == "confirmed" => confirmed.push(r),
                _ => unreadable += 1,
            }
        }
        (confirmed, unreadable)
    }

    /// Free seats per date, seen by a fresh admitted user: free + sold =
    /// seats, no hold left, and the dates listing agrees.
    async fn seat_accounting(
        &self,
        api: &Client,
        confirmed: &[Reservation],
    ) -> Result<Check, BoxError> {
        let concert = &self.on_sale.concert;
        let checker = Uuid::new_v4();
        let token = enter(api, checker, concert.concert_id).await?.token;
        let poll = Duration::from_millis(50);
        wait_active(api, &token, poll, Duration::from_secs(120)).await?;
        let listed: HashMap<Uuid, BookableDate> = dates(api, &token, concert.concert_id)
            .await?
            .into_iter()
            .map(|d| (d.date_id, d))
            .collect();
        let mut per_date = Vec::new();
        let mut seat_accounting_ok = true;
        for date in &concert.dates {
            let hidden = ProgressBar::hidden();
            let free_seats =
                all_free_seats(api, &token, concert.concert_id, date.date_id, &hidden).await?;
            let free = free_seats.len() as u64;
            let sold_here = confirmed
                .iter()
                .filter(|r| r.date_id == date.date_id)
                .count() as u64;
            let listed_free = listed
                .get(&date.date_id)
                .map_or(0, |d| d.available_seats as u64);
            let consistent = free + sold_here == u64::from(date.seats) && listed_free == free;
            seat_accounting_ok &= consistent;
            per_date.push(json!({
                "date_id": date.date_id, "seats": date.seats, "price": date.price,
                "free": free, "sold": sold_here, "listed_available": listed_free,
            }));
        }
        Ok(Check {
            name: "free + sold = seats on every date (no hold left, listing agrees)",
            passed: seat_accounting_ok,
            detail: serde_json::to_string(&per_date)?,
        })
    }

    /// What left the wallets is what the sold seats cost, and what the
    /// payments answered.
    async fn money(&self, api: &Client, concurrency: usize, confirmed: &[Reservation]) -> Check {
        let client = api.clone();
        let balances = for_each(
            "check wallets",
            concurrency,
            self.users.to_vec(),
            move |user| {
                let api = client.clone();
                async move { balance(&api, user).await.map_err(|e| e.to_string()) }
            },
        )
        .await;
        let max_price = self.on_sale.max_price;
        let mut debited: i64 = 0;
        let mut balance_errors = 0;
        for (balance, charged) in balances.iter().zip(self.charged) {
            match (balance, charged) {
                (Ok(balance), true) => debited += max_price - balance,
                (Ok(0), false) => {}
                _ => balance_errors += 1,
            }
        }
        let prices: i64 = confirmed.iter().map(|r| r.price).sum();
        let paid_amounts: i64 = self.bought.iter().map(|(_, _, p)| *p).sum();
        Check {
            name: "total debited = sum of prices of sold seats",
            passed: balance_errors == 0 && debited == prices && paid_amounts == prices,
            detail: format!(
                "debited {debited}, seats sold cost {prices}, payment answers sum {paid_amounts}, {balance_errors} unreadable wallets"
            ),
        }
    }
}

/// No request of any phase answered 5xx or went unanswered.
pub(super) fn every_request_answered(all_stats: &[&Stats]) -> Check {
    let server_errors: u64 = all_stats.iter().map(|s| s.server_errors()).sum();
    let no_answer: u64 = all_stats.iter().map(|s| s.transport_errors()).sum();
    Check {
        name: "no 5xx and no unanswered request",
        passed: server_errors == 0 && no_answer == 0,
        detail: format!("{server_errors} answers 5xx, {no_answer} without answer"),
    }
}
