//! `flash-sale`: N signed-in users with funded wallets queue for a concert of S seats;
//! each admitted user lists dates and seats, holds a random free seat
//! (another on `409 seat_unavailable`, until none is free), and pays. The
//! store is then checked through the API: seats sold = min(N, S), no seat sold
//! twice, money debited = prices of the seats sold, no 5xx.
//!
//! One file per phase, run in this order: setup (the concert, signing in),
//! charge, queue, sale (admission, hold, pay), checks (bookings, audit log),
//! report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use crate::api::ServerArgs;
use crate::stats::{EndpointSummary, Stats};
use crate::BoxError;

mod audit_log;
mod charge;
mod checks;
mod hold;
mod pay;
mod queue;
mod report;
mod sale;
mod setup;

#[derive(Debug, Clone, Args, Serialize)]
pub struct FlashSaleArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    /// Users who want a seat.
    #[arg(long, default_value_t = 2_000)]
    pub users: usize,
    /// Seats on sale (split into dates of at most 50,000).
    #[arg(long, default_value_t = 500)]
    pub seats: u32,
    /// Users served at once (concurrent HTTP clients).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Price of a seat of the first date; date i costs this + 1,000 * i.
    #[arg(long, default_value_t = 100_000)]
    pub price: i64,
    /// Seats asked for per listing, from a random seat number.
    #[arg(long, default_value_t = 100)]
    pub seat_page: u32,
    /// How often a waiting user polls its token, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Send an Idempotency-Key with every payment.
    #[arg(long)]
    pub idempotency_key: bool,
    /// Skip the check of the audit log (`GET /audit/events`).
    #[arg(long)]
    pub no_audit_log: bool,
    /// PID of the server, to report its peak RSS (VmHWM).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One invariant checked after the sale.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    passed: bool,
    detail: String,
}

/// The figures of one timed phase.
#[derive(Debug, Serialize)]
struct Phase {
    seconds: f64,
    endpoints: BTreeMap<String, EndpointSummary>,
}

/// Every timed phase by name; names sort in the order the phases ran.
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
struct Phases(BTreeMap<&'static str, Phase>);

impl Phases {
    /// Keeps what `stats` saw as the phase `name`, started at `started`.
    fn record(&mut self, name: &'static str, started: Instant, stats: &Stats) {
        self.record_seconds(name, started.elapsed().as_secs_f64(), stats);
    }

    fn record_seconds(&mut self, name: &'static str, seconds: f64, stats: &Stats) {
        let endpoints = stats.summaries(None);
        self.0.insert(name, Phase { seconds, endpoints });
    }
}

pub async fn run(args: FlashSaleArgs) -> Result<bool, BoxError> {
    let api = args.server.connect(args.concurrency).await?;
    let mut phases = Phases::default();
    let audit_start = if args.no_audit_log {
        None
    } else {
        audit_log::last_position(&api).await?
    };
    let on_sale = setup::create_concert(&api, &args).await?;
    let users: Vec<Uuid> = (0..args.users).map(|_| Uuid::new_v4()).collect();
    let sign_in_stats = setup::sign_in_everyone(&api, &users, &args, &mut phases).await?;
    let (charged, charge_stats) =
        charge::fund_wallets(&api, &users, on_sale.max_price, &args, &mut phases).await;
    let (tokens, enter_stats) =
        queue::enter_everyone(&api, &users, on_sale.concert.concert_id, &args, &mut phases).await;
    let sale = sale::run(
        &api,
        on_sale.concert.concert_id,
        &tokens,
        &args,
        &mut phases,
    )
    .await;
    sale.print();

    let check_stats = Stats::new();
    let check_api = api.with_observer(check_stats.clone());
    let expected_sold = args.users.min(args.seats as usize);
    let bookings = checks::Bookings {
        on_sale: &on_sale,
        users: &users,
        tokens: &tokens,
        charged: &charged,
        bought: &sale.bought(),
        expected_sold,
    };
    let (mut checks, sold) = bookings.check(&check_api, args.concurrency).await?;
    if let Some(start) = audit_start {
        let log_checks = audit_log::check(&check_api, start, &on_sale.concert, expected_sold, sold);
        checks.extend(log_checks.await);
    }
    let all_stats = [
        &sign_in_stats,
        &charge_stats,
        &enter_stats,
        &sale.stats,
        &check_stats,
    ];
    checks.push(checks::every_request_answered(&all_stats));
    phases.record_seconds("4-check", 0.0, &check_stats);

    report::report(&args, on_sale.concert.concert_id, &phases, &sale, &checks)
}
