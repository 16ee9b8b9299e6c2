//! `history`: costs that must not grow with history, measured one request at
//! a time (no queueing): a charge to a wallet with a long history against a
//! charge to a fresh wallet, and a queue position lookup with many tickets
//! waiting ahead against one with few. The queue part needs a server that
//! keeps tickets waiting (e.g. CONCERT_QUEUE_ACTIVE_MAX=1).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use concert_client::{Client, QueueToken};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::api::{charge, create_concert, ServerArgs};
use crate::common::{enter, for_each, sign_in, write_json};
use crate::BoxError;

#[derive(Debug, Clone, Args, Serialize)]
pub struct HistoryArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerArgs,
    /// Past events of the long wallet (0 skips the wallet part).
    #[arg(long, default_value_t = 10_000)]
    pub wallet_events: usize,
    /// Tickets waiting ahead in the long queue (0 skips the queue part).
    #[arg(long, default_value_t = 100_000)]
    pub waiting: usize,
    /// Tickets waiting ahead in the short queue.
    #[arg(long, default_value_t = 100)]
    pub short_waiting: usize,
    /// Requests timed for each case, one at a time.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Concurrent clients for the setup.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Latencies of one case, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub name: String,
    pub p50: f64,
    pub p95: f64,
    pub mean: f64,
}

fn case(name: &str, mut latencies: Vec<f64>) -> Case {
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| {
        latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Case {
        name: name.to_string(),
        p50: at(0.50),
        p95: at(0.95),
        mean: latencies.iter().sum::<f64>() / latencies.len() as f64,
    }
}

async fn timed<F, Fut>(samples: usize, mut request: F) -> Result<Vec<f64>, BoxError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        request(i).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

pub async fn run(args: HistoryArgs) -> Result<bool, BoxError> {
    let api = args.server.connect(args.concurrency).await?;
    let mut results = Vec::new();
    let mut ratios = serde_json::Map::new();

    if args.wallet_events > 0 {
        // Every wallet's user signs in before the timing: a timed charge mints nothing.
        let fresh_users: Vec<Uuid> = (0..args.samples).map(|_| Uuid::new_v4()).collect();
        let long = Uuid::new_v4();
        let mut signing_in = fresh_users.clone();
        signing_in.push(long);
        sign_in(&api, &signing_in, args.concurrency).await?;
        let fresh = timed(args.samples, |i| {
            let api = api.clone();
            let user = fresh_users[i];
            async move { charge(&api, user, 1).await }
        })
        .await?;
        let client = api.clone();
        for_each(
            "wallet history",
            args.concurrency,
            (0..args.wallet_events).collect(),
            move |_| {
                let api = client.clone();
                async move { charge(&api, long, 1).await }
            },
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let old = timed(args.samples, |_| {
            let api = api.clone();
            async move { charge(&api, long, 1).await }
        })
        .await?;
        let fresh = case("charge, fresh wallet", fresh);
        let old = case(
            &format!("charge, wallet with {} events", args.wallet_events),
            old,
        );
        ratios.insert("wallet_p50".into(), (old.p50 / fresh.p50).into());
        results.push(fresh);
        results.push(old);
    }

    if args.waiting > 0 {
        let concert = create_concert(&api, "bench history", &[(10, 100_000)])
            .await?
            .concert_id;
        fill_queue(
            &api,
            "short queue",
            args.concurrency,
            concert,
            args.short_waiting + 1,
        )
        .await?;
        let short = enter(&api, Uuid::new_v4(), concert).await?;
        if short.status != "waiting" {
            println!(
                "queue part skipped: tickets are admitted at once (start the server with CONCERT_QUEUE_ACTIVE_MAX=1)"
            );
        } else {
            let short_latencies = timed(args.samples, |_| {
                let api = api.clone();
                let token = short.token.clone();
                async move { position(&api, &token).await }
            })
            .await?;
            let more = args.waiting.saturating_sub(args.short_waiting);
            fill_queue(&api, "long queue", args.concurrency, concert, more).await?;
            let long = enter(&api, Uuid::new_v4(), concert).await?;
            let long_latencies = timed(args.samples, |_| {
                let api = api.clone();
                let token = long.token.clone();
                async move { position(&api, &token).await }
            })
            .await?;
            let short_case = case(
                &format!("position lookup, {} ahead", short.position),
                short_latencies,
            );
            let long_case = case(
                &format!("position lookup, {} ahead", long.position),
                long_latencies,
            );
            ratios.insert("queue_p50".into(), (long_case.p50 / short_case.p50).into());
            results.push(short_case);
            results.push(long_case);
        }
    }

    println!(
        "\n{:<44} {:>8} {:>8} {:>8}",
        "case (one request at a time)", "p50 ms", "p95 ms", "mean ms"
    );
    for r in &results {
        println!(
            "{:<44} {:>8.2} {:>8.2} {:>8.2}",
            r.name, r.p50, r.p95, r.mean
        );
    }
    for (name, ratio) in &ratios {
        println!(
            "{name} ratio (long / short): {:.2}",
            ratio.as_f64().unwrap_or(0.0)
        );
    }
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({ "command": "history", "args": args, "cases": results, "ratios": ratios }),
        )?;
    }
    Ok(true)
}

/// Enters `users` new users (each signing in first) into the queue of
/// `concert`, `concurrency` at once.
async fn fill_queue(
    api: &Client,
    label: &str,
    concurrency: usize,
    concert: Uuid,
    users: usize,
) -> Result<(), BoxError> {
    let client = api.clone();
    for_each(label, concurrency, (0..users).collect(), move |_| {
        let api = client.clone();
        async move { enter(&api, Uuid::new_v4(), concert).await.map(|_| ()) }
    })
    .await
    .into_iter()
    .collect()
}

async fn position(api: &Client, token: &str) -> Result<(), BoxError> {
    let _: QueueToken = api
        .current_token(token)
        .await?
        .json("queue status", &[200])?;
    Ok(())
}
