//! Phase `3-sale`: every user in entry order, `concurrency` at a time, waits
//! for admission, holds a seat (`hold`) and pays for it (`pay`). The CPU of
//! the server, its PostgreSQL and this process is sampled around the phase.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concert_client::Client;
use uuid::Uuid;

use super::hold::{hold_a_seat, Hold};
use super::queue::Tokens;
use super::{pay, FlashSaleArgs, Phases};
use crate::common::{for_each, wait_turn, Turn};
use crate::machine::{CpuMeter, CpuUse, MachineTicks};
use crate::stats::Stats;
use crate::BoxError;

/// How long a user may wait for admission.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(600);

/// How one user's attempt ended.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    Bought { reservation_id: Uuid, price: i64 },
    SoldOut,
    Failed(String),
}

/// What the shoppers share.
pub(super) struct Shop {
    pub api: Client,
    pub concert_id: Uuid,
    pub seat_page: u32,
    pub poll: Duration,
    pub idempotency_key: bool,
}

/// The sale's outcomes, by user, and its figures.
pub(super) struct Sale {
    pub outcomes: Vec<Outcome>,
    pub seconds: f64,
    pub requests: u64,
    pub machine_busy_percent: f64,
    pub cpu: Option<CpuUse>,
    pub stats: Stats,
}

/// Runs the sale for every user holding a queue token.
pub(super) async fn run(
    api: &Client,
    concert_id: Uuid,
    tokens: &Tokens,
    args: &FlashSaleArgs,
    phases: &mut Phases,
) -> Sale {
    let stats = Stats::new();
    let shop = Arc::new(Shop {
        api: api.with_observer(stats.clone()),
        concert_id,
        seat_page: args.seat_page,
        poll: Duration::from_millis(args.poll_ms),
        idempotency_key: args.idempotency_key,
    });
    let meter = args.server_pid.map(CpuMeter::new);
    let cpu_before = meter.as_ref().map(CpuMeter::sample);
    let machine_before = MachineTicks::read();
    let started = Instant::now();
    let outcomes = for_each("sale", args.concurrency, tokens.clone(), move |token| {
        let shop = shop.clone();
        async move {
            match token {
                Ok(token) => shop.buy(&token).await,
                Err(error) => Outcome::Failed(format!("no token: {error}")),
            }
        }
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let machine_busy_percent = MachineTicks::busy_percent(machine_before, MachineTicks::read());
    let requests: u64 = stats.summaries(None).values().map(|s| s.requests).sum();
    let cpu = match (&meter, cpu_before) {
        (Some(meter), Some(before)) => Some(CpuUse::between(
            before,
            meter.sample(),
            started.elapsed(),
            requests,
        )),
        _ => None,
    };
    phases.record_seconds("3-sale", seconds, &stats);
    Sale {
        outcomes,
        seconds,
        requests,
        machine_busy_percent,
        cpu,
        stats,
    }
}

impl Shop {
    /// One user's whole visit: wait for admission, find a seat, hold, pay.
    async fn buy(&self, token: &str) -> Outcome {
        match self.try_buy(token).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }

    async fn try_buy(&self, token: &str) -> Result<Outcome, BoxError> {
        let turn = wait_turn(&self.api, token, self.poll, ADMISSION_TIMEOUT, true).await?;
        if let Turn::SoldOut = turn {
            return Ok(Outcome::SoldOut);
        }
        match hold_a_seat(self, token).await? {
            Hold::Held(reservation) => pay::pay(self, token, reservation).await,
            Hold::Ended(outcome) => Ok(outcome),
        }
    }
}

impl Sale {
    /// (index of the user, reservation, price paid) of every purchase.
    pub fn bought(&self) -> Vec<(usize, Uuid, i64)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Outcome::Bought {
                    reservation_id,
                    price,
                } => Some((i, *reservation_id, *price)),
                _ => None,
            })
            .collect()
    }

    /// Users who found no seat left.
    pub fn sold_out(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::SoldOut))
            .count()
    }

    /// How many attempts failed, by reason.
    pub fn failures(&self) -> BTreeMap<String, usize> {
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for outcome in &self.outcomes {
            if let Outcome::Failed(why) = outcome {
                *failures.entry(why.clone()).or_default() += 1;
            }
        }
        failures
    }

    /// Purchases a second over the phase.
    pub fn purchases_per_second(&self) -> f64 {
        self.bought().len() as f64 / self.seconds.max(1e-9)
    }

    /// The sale in one line, and the ten commonest failures.
    pub fn print(&self) {
        let failures = self.failures();
        println!(
            "\nsale: {} bought, {} found no seat, {} failed, in {:.1} s ({:.0} purchases/s)",
            self.bought().len(),
            self.sold_out(),
            failures.values().sum::<usize>(),
            self.seconds,
            self.purchases_per_second()
        );
        for (why, count) in failures.iter().take(10) {
            println!("  {count} x {why}");
        }
    }
}
