//! `flash-sale`: N signed-in users with funded wallets queue for a concert of S seats;
//! each admitted user lists dates and seats, holds a random free seat
//! (another on `409 seat_unavailable`, until none is free), and pays. The
//! store is then checked through the API: seats sold = min(N, S), no seat sold
//! twice, money debited = prices of the seats sold, no 5xx.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::api::{Api, BookableDate, Payment, Reservation, SeatPage, ServerArgs};
use crate::common::{
    enter, for_each, sign_in, wait_active, write_json, CpuMeter, CpuUse, MachineTicks, Memory,
};
use crate::stats::{print_table, EndpointSummary, Stats};
use crate::BoxError;

/// Most seats of one date (the API's limit).
const SEATS_PER_DATE: u32 = 50_000;
/// Most rounds of "list, try to hold" one user goes through before giving up.
const MAX_ROUNDS: usize = 200;

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

/// How one user's attempt ended.
#[derive(Debug, Clone)]
enum Outcome {
    Bought { reservation_id: Uuid, price: i64 },
    SoldOut,
    Failed(String),
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    passed: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Phase {
    seconds: f64,
    endpoints: BTreeMap<String, EndpointSummary>,
}

pub async fn run(args: FlashSaleArgs) -> Result<bool, BoxError> {
    let api = args.server.connect(args.concurrency).await?;
    let mut phases: BTreeMap<&str, Phase> = BTreeMap::new();
    let audit_start = if args.no_audit_log {
        None
    } else {
        last_position(&api).await?
    };

    // Setup: the concert, everyone signed in, funded wallets, everyone in the queue.
    let setup = api.with_stats(Stats::new());
    let started = Instant::now();
    let mut plan = Vec::new();
    let mut left = args.seats;
    let mut index = 0;
    while left > 0 {
        let seats = left.min(SEATS_PER_DATE);
        plan.push((seats, args.price + 1_000 * index));
        left -= seats;
        index += 1;
    }
    let concert = setup
        .create_concert(&format!("flash sale {}", Uuid::new_v4()), &plan)
        .await?;
    let concert_id = concert.concert_id;
    let max_price = plan.iter().map(|(_, p)| *p).max().unwrap_or(args.price);
    println!(
        "concert {concert_id}: {} seats on {} date(s), created in {:.1} s",
        args.seats,
        plan.len(),
        started.elapsed().as_secs_f64()
    );
    let users: Vec<Uuid> = (0..args.users).map(|_| Uuid::new_v4()).collect();

    // Every user signs in (a user token minted with the admin token) here in
    // the setup, `concurrency` at once, and not inside the timed phases: the
    // charge and queue-entry phases (and the checks) reuse the kept tokens, so
    // their figures time only their own endpoint, even with 20,000 users.
    let sign_in_stats = Stats::new();
    let started = Instant::now();
    sign_in(
        &api.with_stats(sign_in_stats.clone()),
        &users,
        args.concurrency,
    )
    .await?;
    phases.insert(
        "0-sign-in",
        Phase {
            seconds: started.elapsed().as_secs_f64(),
            endpoints: sign_in_stats.summaries(None),
        },
    );

    let charge_stats = Stats::new();
    let started = Instant::now();
    let client = api.with_stats(charge_stats.clone());
    let charged = for_each("charge", args.concurrency, users.clone(), move |user| {
        let api = client.clone();
        async move {
            match api.charge(user, max_price).await {
                Ok(answer) if answer.status == 200 => Ok(()),
                Ok(answer) => Err(format!("charge: HTTP {}", answer.status)),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await;
    phases.insert(
        "1-charge",
        Phase {
            seconds: started.elapsed().as_secs_f64(),
            endpoints: charge_stats.summaries(None),
        },
    );
    let charged_ok: Vec<bool> = charged.iter().map(Result::is_ok).collect();
    if let Some(Err(error)) = charged.iter().find(|r| r.is_err()) {
        eprintln!("some charges failed, e.g. {error}");
    }

    let enter_stats = Stats::new();
    let started = Instant::now();
    let client = api.with_stats(enter_stats.clone());
    let tokens = for_each(
        "enter queue",
        args.concurrency,
        users.clone(),
        move |user| {
            let api = client.clone();
            async move {
                enter(&api, user, concert_id)
                    .await
                    .map(|t| t.token)
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    phases.insert(
        "2-enter-queue",
        Phase {
            seconds: started.elapsed().as_secs_f64(),
            endpoints: enter_stats.summaries(None),
        },
    );

    // The sale: every user in entry order, `concurrency` at a time.
    let sale_stats = Stats::new();
    let sale_api = api.with_stats(sale_stats.clone());
    let shared = Arc::new(SaleContext {
        api: sale_api,
        concert_id,
        seat_page: args.seat_page,
        poll: Duration::from_millis(args.poll_ms),
        idempotency_key: args.idempotency_key,
    });
    let meter = args.server_pid.map(CpuMeter::new);
    let cpu_before = meter.as_ref().map(CpuMeter::sample);
    let machine_before = MachineTicks::read();
    let started = Instant::now();
    let work: Vec<Result<String, String>> = tokens.clone();
    let outcomes = for_each("sale", args.concurrency, work, move |token| {
        let context = shared.clone();
        async move {
            match token {
                Ok(token) => context.buy(&token).await,
                Err(error) => Outcome::Failed(format!("no token: {error}")),
            }
        }
    })
    .await;
    let sale_seconds = started.elapsed().as_secs_f64();
    let machine_busy_percent = MachineTicks::busy_percent(machine_before, MachineTicks::read());
    let sale_requests: u64 = sale_stats
        .summaries(None)
        .values()
        .map(|s| s.requests)
        .sum();
    let cpu = match (&meter, cpu_before) {
        (Some(meter), Some(before)) => Some(CpuUse::between(
            before,
            meter.sample(),
            started.elapsed(),
            sale_requests,
        )),
        _ => None,
    };
    phases.insert(
        "3-sale",
        Phase {
            seconds: sale_seconds,
            endpoints: sale_stats.summaries(None),
        },
    );

    // Checks through the API.
    let check_stats = Stats::new();
    let check_api = api.with_stats(check_stats.clone());
    let bought: Vec<(usize, Uuid, i64)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Outcome::Bought {
                reservation_id,
                price,
            } => Some((i, *reservation_id, *price)),
            _ => None,
        })
        .collect();
    let sold_out = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::SoldOut))
        .count();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in &outcomes {
        if let Outcome::Failed(why) = outcome {
            *failures.entry(why.clone()).or_default() += 1;
        }
    }
    println!(
        "\nsale: {} bought, {} found no seat, {} failed, in {:.1} s ({:.0} purchases/s)",
        bought.len(),
        sold_out,
        failures.values().sum::<usize>(),
        sale_seconds,
        bought.len() as f64 / sale_seconds.max(1e-9)
    );
    for (why, count) in failures.iter().take(10) {
        println!("  {count} x {why}");
    }

    let mut checks = Vec::new();
    let expected_sold = args.users.min(args.seats as usize);

    // Confirmed reservations, read back with each buyer's token.
    let client = check_api.clone();
    let reservation_reads: Vec<(Uuid, Uuid, i64)> =
        bought.iter().map(|(i, r, p)| (*r, users[*i], *p)).collect();
    let token_of: Arc<HashMap<Uuid, String>> = Arc::new(
        users
            .iter()
            .zip(tokens.iter())
            .filter_map(|(u, t)| t.as_ref().ok().map(|t| (*u, t.clone())))
            .collect(),
    );
    let tokens_for_check = token_of.clone();
    let reservations = for_each(
        "check holds",
        args.concurrency,
        reservation_reads,
        move |(reservation_id, user, _)| {
            let api = client.clone();
            let tokens = tokens_for_check.clone();
            async move {
                let token = tokens.get(&user).ok_or("no token")?;
                api.reservation(token, reservation_id)
                    .await?
                    .json::<Reservation>("reservation", &[200])
            }
        },
    )
    .await;
    let mut confirmed: Vec<Reservation> = Vec::new();
    let mut unreadable = 0;
    for reservation in reservations {
        match reservation {
            Ok(r) if r.status == "confirmed" => confirmed.push(r),
            _ => unreadable += 1,
        }
    }
    let distinct: HashSet<Uuid> = confirmed.iter().map(|r| r.seat_id).collect();
    checks.push(Check {
        name: "every payment confirmed its reservation",
        passed: unreadable == 0,
        detail: format!(
            "{} of {} paid reservations read back as confirmed",
            confirmed.len(),
            bought.len()
        ),
    });
    checks.push(Check {
        name: "seats sold = min(users, seats)",
        passed: confirmed.len() == expected_sold,
        detail: format!("{} sold, {} expected", confirmed.len(), expected_sold),
    });
    checks.push(Check {
        name: "no seat sold twice (reservations)",
        passed: distinct.len() == confirmed.len(),
        detail: format!(
            "{} confirmed reservations on {} distinct seats",
            confirmed.len(),
            distinct.len()
        ),
    });

    // Free seats per date, seen by a fresh admitted user.
    let checker = Uuid::new_v4();
    let checker_token = enter(&check_api, checker, concert_id).await?.token;
    wait_active(
        &check_api,
        &checker_token,
        Duration::from_millis(50),
        Duration::from_secs(120),
    )
    .await?;
    let listed: HashMap<Uuid, BookableDate> = check_api
        .dates(&checker_token, concert_id)
        .await?
        .into_iter()
        .map(|d| (d.date_id, d))
        .collect();
    let mut per_date = Vec::new();
    let mut seat_accounting_ok = true;
    for date in &concert.dates {
        let free = count_free_seats(&check_api, &checker_token, concert_id, date.date_id).await?;
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
    checks.push(Check {
        name: "free + sold = seats on every date (no hold left, listing agrees)",
        passed: seat_accounting_ok,
        detail: serde_json::to_string(&per_date)?,
    });

    // Money: what left the wallets is what the sold seats cost.
    let client = check_api.clone();
    let balances = for_each(
        "check wallets",
        args.concurrency,
        users.clone(),
        move |user| {
            let api = client.clone();
            async move { api.balance(user).await.map_err(|e| e.to_string()) }
        },
    )
    .await;
    let mut debited: i64 = 0;
    let mut balance_errors = 0;
    for (balance, charged) in balances.iter().zip(&charged_ok) {
        match (balance, charged) {
            (Ok(balance), true) => debited += max_price - balance,
            (Ok(0), false) => {}
            _ => balance_errors += 1,
        }
    }
    let prices: i64 = confirmed.iter().map(|r| r.price).sum();
    let paid_amounts: i64 = bought.iter().map(|(_, _, p)| *p).sum();
    checks.push(Check {
        name: "total debited = sum of prices of sold seats",
        passed: balance_errors == 0 && debited == prices && paid_amounts == prices,
        detail: format!(
            "debited {debited}, seats sold cost {prices}, payment answers sum {paid_amounts}, {balance_errors} unreadable wallets"
        ),
    });

    // The log: at most one SeatSold per seat of this concert.
    if let Some(start) = audit_start {
        let dates: HashSet<String> = concert
            .dates
            .iter()
            .map(|d| d.date_id.to_string())
            .collect();
        match scan_sales(&check_api, start, &dates, expected_sold).await {
            Ok((sold_events, seats_sold_twice)) => checks.push(Check {
                name: "no seat sold twice (audit log)",
                passed: seats_sold_twice == 0 && sold_events == confirmed.len(),
                detail: format!(
                    "{sold_events} SeatSold events for this concert, {seats_sold_twice} seats sold more than once"
                ),
            }),
            Err(error) => checks.push(Check {
                name: "no seat sold twice (audit log)",
                passed: false,
                detail: format!("could not read the log: {error}"),
            }),
        }
    }

    let all_stats = [
        &sign_in_stats,
        &charge_stats,
        &enter_stats,
        &sale_stats,
        &check_stats,
    ];
    let server_errors: u64 = all_stats.iter().map(|s| s.server_errors()).sum();
    let no_answer: u64 = all_stats.iter().map(|s| s.transport_errors()).sum();
    checks.push(Check {
        name: "no 5xx and no unanswered request",
        passed: server_errors == 0 && no_answer == 0,
        detail: format!("{server_errors} answers 5xx, {no_answer} without answer"),
    });
    phases.insert(
        "4-check",
        Phase {
            seconds: 0.0,
            endpoints: check_stats.summaries(None),
        },
    );
    let _ = setup;

    for (name, phase) in &phases {
        print_table(
            &format!("phase {name} ({:.1} s)", phase.seconds),
            &phase.endpoints,
        );
    }
    println!("\ninvariants:");
    for check in &checks {
        println!(
            "  [{}] {}: {}",
            if check.passed { "ok" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
    println!("\nsale phase: {sale_requests} requests, machine busy {machine_busy_percent:.0} % of all cores (every process)");
    if let Some(cpu) = &cpu {
        cpu.print();
    }
    let memory = args.server_pid.and_then(Memory::read);
    if let Some(memory) = &memory {
        memory.print();
    }
    let passed = checks.iter().all(|c| c.passed);
    println!("\nflash sale {}", if passed { "PASSED" } else { "FAILED" });
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({
                "command": "flash-sale",
                "args": args,
                "concert_id": concert_id,
                "bought": bought.len(),
                "sold_out": sold_out,
                "failed": failures,
                "sale_seconds": sale_seconds,
                "purchases_per_second": bought.len() as f64 / sale_seconds.max(1e-9),
                "phases": phases,
                "checks": checks,
                "passed": passed,
                "server_memory": memory,
                "sale_cpu": cpu,
                "sale_machine_busy_percent": machine_busy_percent,
            }),
        )?;
    }
    Ok(passed)
}

struct SaleContext {
    api: Api,
    concert_id: Uuid,
    seat_page: u32,
    poll: Duration,
    idempotency_key: bool,
}

impl SaleContext {
    /// One user's whole visit: wait for admission, find a seat, hold, pay.
    async fn buy(&self, token: &str) -> Outcome {
        match self.try_buy(token).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }

    async fn try_buy(&self, token: &str) -> Result<Outcome, BoxError> {
        wait_active(&self.api, token, self.poll, Duration::from_secs(600)).await?;
        for _ in 0..MAX_ROUNDS {
            let dates = self.api.dates(token, self.concert_id).await?;
            let Some(date) = pick_date(&dates) else {
                return Ok(Outcome::SoldOut);
            };
            let mut seats = self.free_seats(token, date).await?;
            seats.shuffle(&mut rand::thread_rng());
            for seat in seats {
                let answer = self.api.hold(token, seat).await?;
                match answer.status {
                    201 => {
                        let reservation: Reservation = answer.json("hold", &[201])?;
                        return self.pay(token, reservation).await;
                    }
                    409 if answer.code().as_deref() == Some("seat_unavailable") => continue,
                    status => {
                        return Ok(Outcome::Failed(format!(
                            "hold: HTTP {status} {}",
                            answer.code().unwrap_or_default()
                        )))
                    }
                }
            }
        }
        Ok(Outcome::Failed("gave up after too many rounds".into()))
    }

    /// A page of free seats of the date from a random seat number (from the
    /// start when that page is empty).
    async fn free_seats(&self, token: &str, date: &BookableDate) -> Result<Vec<Uuid>, BoxError> {
        let span = (date.total_seats as i64 - self.seat_page as i64).max(0);
        let after = if span > 0 {
            rand::thread_rng().gen_range(0..=span)
        } else {
            0
        };
        for after in [after, 0] {
            let page: SeatPage = self
                .api
                .seats(
                    token,
                    self.concert_id,
                    date.date_id,
                    after,
                    Some(self.seat_page),
                )
                .await?
                .json("seats", &[200])?;
            if !page.seats.is_empty() || after == 0 {
                return Ok(page.seats.into_iter().map(|s| s.seat_id).collect());
            }
        }
        Ok(Vec::new())
    }

    async fn pay(&self, token: &str, reservation: Reservation) -> Result<Outcome, BoxError> {
        let key = self
            .idempotency_key
            .then(|| format!("pay-{}", reservation.reservation_id));
        let answer = self
            .api
            .pay(token, reservation.reservation_id, key.as_deref())
            .await?;
        if answer.status != 201 {
            return Ok(Outcome::Failed(format!(
                "pay: HTTP {} {}",
                answer.status,
                answer.code().unwrap_or_default()
            )));
        }
        let payment: Payment = answer.json("pay", &[201])?;
        Ok(Outcome::Bought {
            reservation_id: reservation.reservation_id,
            price: payment.amount,
        })
    }
}

/// A listed date with free seats, chosen with odds by its free seats.
fn pick_date(dates: &[BookableDate]) -> Option<&BookableDate> {
    let total: i64 = dates.iter().map(|d| d.available_seats.max(0) as i64).sum();
    if total <= 0 {
        return None;
    }
    let mut ticket = rand::thread_rng().gen_range(0..total);
    for date in dates {
        let free = date.available_seats.max(0) as i64;
        if ticket < free {
            return Some(date);
        }
        ticket -= free;
    }
    dates.last()
}

/// Counts a date's free seats by paging through the listing.
async fn count_free_seats(
    api: &Api,
    token: &str,
    concert: Uuid,
    date: Uuid,
) -> Result<u64, BoxError> {
    let mut after = 0i64;
    let mut free = 0u64;
    loop {
        let page: SeatPage = api
            .seats(token, concert, date, after, Some(5_000))
            .await?
            .json("seats", &[200])?;
        free += page.seats.len() as u64;
        match page.next_after_seat_no {
            Some(next) => after = i64::from(next),
            None => return Ok(free),
        }
    }
}

/// The last position of the audit log now (0 when empty); `None` when the
/// server has no audit API.
async fn last_position(api: &Api) -> Result<Option<i64>, BoxError> {
    if api.audit_events(0, 1).await?.is_none() {
        return Ok(None);
    }
    // Exponential then binary search for the first `after` with an empty page.
    let mut low = 0i64; // a page after `low` is known not to be empty, or low = 0
    let mut high = 1024i64;
    loop {
        let page = api
            .audit_events(high, 1)
            .await?
            .ok_or("audit API vanished")?;
        if page.events.is_empty() {
            break;
        }
        low = high;
        high *= 2;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        let page = api
            .audit_events(middle, 1)
            .await?
            .ok_or("audit API vanished")?;
        if page.events.is_empty() {
            high = middle;
        } else {
            low = middle;
        }
    }
    // Nothing after `high`... but maybe nothing after `low` either when low = 0.
    let page = api
        .audit_events(low, 1)
        .await?
        .ok_or("audit API vanished")?;
    Ok(Some(if page.events.is_empty() { low } else { high }))
}

/// Reads the log after `start` until it holds at least `expected` SeatSold
/// events of the concert's dates (positions are handed out a little after
/// commit) or stops growing; returns (SeatSold events, seats sold twice).
async fn scan_sales(
    api: &Api,
    start: i64,
    dates: &HashSet<String>,
    expected: usize,
) -> Result<(usize, usize), BoxError> {
    let mut ours: HashSet<String> = HashSet::new();
    let mut sales: HashMap<String, usize> = HashMap::new();
    let mut after = start;
    let mut idle_rounds = 0;
    loop {
        let page = api.audit_events(after, 1000).await?.ok_or("no audit API")?;
        if page.events.is_empty() {
            let sold: usize = sales.values().sum();
            if sold >= expected || idle_rounds >= 20 {
                let twice = sales.values().filter(|n| **n > 1).count();
                return Ok((sold, twice));
            }
            idle_rounds += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        idle_rounds = 0;
        for event in &page.events {
            if event.aggregate_type != "Seat" {
                continue;
            }
            match event.event_type.as_str() {
                "SeatHeld" => {
                    let date = event.payload["SeatHeld"]["date_id"].as_str().unwrap_or("");
                    if dates.contains(date) {
                        ours.insert(event.aggregate_id.clone());
                    }
                }
                "SeatSold" if ours.contains(&event.aggregate_id) => {
                    *sales.entry(event.aggregate_id.clone()).or_default() += 1;
                }
                _ => {}
            }
        }
        after = page.next;
    }
}
