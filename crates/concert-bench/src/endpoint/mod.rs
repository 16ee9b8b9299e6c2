//! `endpoint`: one endpoint in a closed loop (each of C clients sends its next
//! request as soon as the previous one is answered) for T seconds, after the
//! setup that endpoint needs. Users are signed in (their user tokens minted)
//! during the setup, so the loop times only the endpoint. Each endpoint's
//! setup is in `prepare`, the loop and its probes in `closed_loop`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use concert_client::{Answer, Client};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::api::{create_concert, ServerArgs};
use crate::common::{active_users, entered_users, write_json};
use crate::machine::{CpuMeter, CpuUse, MachineTicks, Memory};
use crate::stats::{print_table, Stats};
use crate::BoxError;

use closed_loop::{closed_loop, Probes};
use prepare::{date_plan, interleave, list_seats_by_date, prepare_payments, SignedInUsers};

mod closed_loop;
mod prepare;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Name {
    /// POST /queue/tokens, a new user (signed in beforehand) each time.
    EnterQueue,
    /// POST /reservations, each client holding fresh seats with its own active token.
    Hold,
    /// POST /users/{id}/balance/charges, a new wallet (its user signed in beforehand) each time.
    Charge,
    /// POST /payments of seats held beforehand by funded users.
    Pay,
    /// GET /concerts/{id}/dates/{date}/seats with an active token.
    Seats,
    /// GET /concerts/{id}/dates with an active token.
    Dates,
    /// GET /queue/tokens/current with a token entered beforehand, waiting
    /// or active as the server's active limit leaves it: the look a hidden
    /// booking page takes at its place every 30 s.
    Standing,
    /// GET /healthz: a request without database work, through the same
    /// layers, answered by the same server; the HTTP floor under the others.
    Healthz,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct EndpointArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    /// The endpoint to drive.
    #[arg(long, value_enum)]
    pub name: Name,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Length of the measured loop.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Seats of the concert: for hold, how many can be held (default 100,000,
    /// in dates of 50,000); for seats, the size of the listed date (default 50).
    #[arg(long)]
    pub seats: Option<u32>,
    /// For hold: spread the seats over this many dates (default: dates of
    /// 50,000); for dates, how many the concert has (default 4, each of
    /// `seats`, default 50).
    #[arg(long)]
    pub dates: Option<u32>,
    /// For seats: the page size asked for (default: the API's default, 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Work prepared beforehand: for pay, held reservations (default 600 per
    /// second of the run); for enter-queue and charge, signed-in users, one a
    /// request (default 2,000 per second of the run). A client stops when
    /// they run out.
    #[arg(long)]
    pub prepared: Option<usize>,
    /// For pay and hold: send an Idempotency-Key with every request (as the
    /// booking page does).
    #[arg(long)]
    pub idempotency_key: bool,
    /// PID of the server, to report its peak RSS (VmHWM).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's database, with the pg_stat_statements extension loaded
    /// (shared_preload_libraries) and created: prints the statements run per
    /// request during the loop (the counters are reset after the setup).
    #[arg(long)]
    #[serde(skip)]
    pub profile_database_url: Option<String>,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

const PRICE: i64 = 100_000;
/// Signed-in users prepared per second of the run for enter-queue and charge:
/// about twice the best rate either endpoint reached on the benchmark machine.
const USERS_PER_SECOND: usize = 2_000;

pub async fn run(args: EndpointArgs) -> Result<bool, BoxError> {
    let api = args.server.connect(args.concurrency).await?;
    let setup_started = Instant::now();
    let measured = Stats::new();
    let run = api.with_observer(measured.clone());
    let c = args.concurrency;
    let deadline = Duration::from_secs(args.seconds);
    let profiler = match &args.profile_database_url {
        Some(url) => Some(crate::profile::Profiler::connect(url).await?),
        None => None,
    };
    let probes = Probes {
        profiler,
        meter: args.server_pid.map(CpuMeter::new),
        start: std::sync::Mutex::new(None),
    };
    let profiler_ref = &probes;
    let elapsed = match args.name {
        Name::EnterQueue => {
            let concert = create_concert(&api, "bench enter-queue", &[(100, PRICE)]).await?;
            let concert_id = concert.concert_id;
            // New users, signed in here: the loop sends only their queue entries.
            let step =
                move |api: Client, user| async move { api.enter_queue(user, concert_id).await };
            new_user_each_request(&api, run, profiler_ref, &args, setup_started, step).await?
        }
        Name::Charge => {
            // New wallets whose users are signed in here: the loop sends only charges.
            let step = |api: Client, user| async move { api.charge(user, PRICE, None).await };
            new_user_each_request(&api, run, profiler_ref, &args, setup_started, step).await?
        }
        Name::Healthz => {
            eprintln!("setup done in 0.0 s");
            closed_loop(profiler_ref, c, deadline, usize::MAX, move |_| {
                let api = run.clone();
                async move {
                    api.liveness().await?;
                    Ok(())
                }
            })
            .await
        }
        Name::Seats | Name::Dates => {
            // Seats lists the first date's page; dates lists every date.
            let dates = match args.name {
                Name::Seats => 1,
                _ => args.dates.unwrap_or(4) as usize,
            };
            let sizes = vec![(args.seats.unwrap_or(50), PRICE); dates];
            let concert = create_concert(&api, "bench listings", &sizes).await?;
            let (concert_id, date_id) = (concert.concert_id, concert.dates[0].date_id);
            let users = Arc::new(active_users(&api, concert_id, c, c).await?);
            let (name, limit) = (args.name, args.limit);
            eprintln!(
                "setup done in {:.1} s",
                setup_started.elapsed().as_secs_f64()
            );
            closed_loop(profiler_ref, c, deadline, usize::MAX, move |worker| {
                let api = run.clone();
                let users = users.clone();
                async move {
                    let token = &users[worker].1;
                    match name {
                        Name::Seats => api.seats(token, concert_id, date_id, 0, limit).await?,
                        _ => api.dates(token, concert_id).await?,
                    };
                    Ok(())
                }
            })
            .await
        }
        Name::Standing => {
            let concert = create_concert(&api, "bench standing", &[(100, PRICE)]).await?;
            let tokens = Arc::new(entered_users(&api, concert.concert_id, c, c).await?);
            eprintln!(
                "setup done in {:.1} s",
                setup_started.elapsed().as_secs_f64()
            );
            closed_loop(profiler_ref, c, deadline, usize::MAX, move |worker| {
                let api = run.clone();
                let tokens = tokens.clone();
                async move {
                    api.current_token(&tokens[worker].1).await?;
                    Ok(())
                }
            })
            .await
        }
        Name::Hold => {
            let total = args.seats.unwrap_or(100_000);
            let plan = match args.dates {
                Some(dates) => vec![(total.div_ceil(dates.max(1)), PRICE); dates.max(1) as usize],
                None => date_plan(total),
            };
            let concert = create_concert(&api, "bench hold", &plan).await?;
            let concert_id = concert.concert_id;
            let users = active_users(&api, concert_id, c, c).await?;
            // Seats of the dates taken in turn (date 1, date 2, ..., date 1, ...), so
            // concurrent holds spread over every date.
            let seats = interleave(list_seats_by_date(&api, &users[0].1, &concert).await?);
            // Worker w holds seats w, w + C, w + 2C, ...: no two clients want one seat.
            let per_worker: Vec<Vec<Uuid>> = (0..c)
                .map(|w| seats.iter().skip(w).step_by(c).copied().collect())
                .collect();
            let plan = Arc::new(
                users
                    .into_iter()
                    .zip(per_worker)
                    .map(|((_, token), seats)| (token, seats, AtomicUsize::new(0)))
                    .collect::<Vec<_>>(),
            );
            eprintln!(
                "setup done in {:.1} s ({} seats to hold)",
                setup_started.elapsed().as_secs_f64(),
                seats.len()
            );
            let idempotency_key = args.idempotency_key;
            closed_loop(profiler_ref, c, deadline, usize::MAX, move |worker| {
                let api = run.clone();
                let plan = plan.clone();
                async move {
                    let (token, seats, next) = &plan[worker];
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(seat) = seats.get(i) else {
                        return Err("out of seats".into());
                    };
                    let key = idempotency_key.then(|| format!("hold-{seat}"));
                    api.hold_with_key(token, *seat, key.as_deref()).await?;
                    Ok(())
                }
            })
            .await
        }
        Name::Pay => {
            let prepared = args.prepared.unwrap_or(600 * args.seconds as usize).max(c);
            let work = Arc::new(prepare_payments(&api, prepared, c).await?);
            eprintln!(
                "setup done in {:.1} s ({} held reservations)",
                setup_started.elapsed().as_secs_f64(),
                work.len()
            );
            let next = Arc::new(AtomicUsize::new(0));
            let idempotency_key = args.idempotency_key;
            closed_loop(profiler_ref, c, deadline, usize::MAX, move |_| {
                let api = run.clone();
                let work = work.clone();
                let next = next.clone();
                async move {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((token, reservation)) = work.get(i) else {
                        return Err("out of prepared reservations".into());
                    };
                    let key = idempotency_key.then(|| format!("pay-{reservation}"));
                    api.pay(token, *reservation, key.as_deref()).await?;
                    Ok(())
                }
            })
            .await
        }
    };
    let summaries = measured.summaries(Some(elapsed));
    let requests: u64 = summaries.values().map(|s| s.requests).sum();
    let (cpu_before, machine_before) = probes
        .start
        .lock()
        .expect("probe lock")
        .take()
        .unwrap_or((None, MachineTicks::read()));
    let machine_busy_percent = MachineTicks::busy_percent(machine_before, MachineTicks::read());
    let cpu = match (&probes.meter, cpu_before) {
        (Some(meter), Some(before)) => {
            Some(CpuUse::between(before, meter.sample(), elapsed, requests))
        }
        _ => None,
    };
    let profile = match &probes.profiler {
        Some(profiler) => Some(profiler.report(requests).await?),
        None => None,
    };
    print_table(
        &format!(
            "endpoint {:?}, {} clients, {:.1} s",
            args.name,
            c,
            elapsed.as_secs_f64()
        ),
        &summaries,
    );
    if let Some(cpu) = &cpu {
        cpu.print();
    }
    println!(
        "machine busy {machine_busy_percent:.0} % of all cores during the loop (every process)"
    );
    if let Some(profile) = &profile {
        profile.print();
    }
    let memory = args.server_pid.and_then(Memory::read);
    if let Some(memory) = &memory {
        memory.print();
    }
    let server_errors = measured.server_errors();
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({
                "command": "endpoint",
                "args": args,
                "seconds": elapsed.as_secs_f64(),
                "endpoints": summaries,
                "server_errors": server_errors,
                "server_memory": memory,
                "profile": profile,
                "cpu": cpu,
                "machine_busy_percent": machine_busy_percent,
            }),
        )?;
    }
    Ok(server_errors == 0)
}

/// Prepares the signed-in users of an endpoint that wants a new one each
/// request (`--prepared`, else 2,000 a second of the run), then runs the loop
/// with `step(client, user)`.
async fn new_user_each_request<F, Fut>(
    api: &Client,
    run: Client,
    probes: &Probes,
    args: &EndpointArgs,
    setup_started: Instant,
    step: F,
) -> Result<Duration, BoxError>
where
    F: Fn(Client, Uuid) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Answer, concert_client::Error>> + Send + 'static,
{
    let c = args.concurrency;
    let count = args
        .prepared
        .unwrap_or(USERS_PER_SECOND * args.seconds as usize)
        .max(c);
    let users = Arc::new(SignedInUsers::prepare(api, count, c).await?);
    eprintln!(
        "setup done in {:.1} s ({} users signed in)",
        setup_started.elapsed().as_secs_f64(),
        users.len()
    );
    let step = Arc::new(step);
    let deadline = Duration::from_secs(args.seconds);
    Ok(closed_loop(probes, c, deadline, usize::MAX, move |_| {
        let (api, user, step) = (run.clone(), users.next(), step.clone());
        async move {
            step(api, user?).await?;
            Ok(())
        }
    })
    .await)
}
