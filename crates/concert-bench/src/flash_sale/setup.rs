//! Setup of the flash sale: the concert (dates of at most 50,000 seats, each
//! 1,000 dearer than the last), and every user signed in.

use std::time::Instant;

use concert_client::{Client, Concert};
use uuid::Uuid;

use super::{FlashSaleArgs, Phases};
use crate::api::{create_concert as schedule, date_sizes};
use crate::common::sign_in;
use crate::stats::Stats;
use crate::BoxError;

/// The concert on sale and the price of its dearest seat (what each wallet
/// is charged, so that any seat is affordable).
pub(super) struct OnSale {
    pub concert: Concert,
    pub max_price: i64,
}

/// Schedules the concert of `args.seats` seats.
pub(super) async fn create_concert(api: &Client, args: &FlashSaleArgs) -> Result<OnSale, BoxError> {
    let started = Instant::now();
    let plan = date_plan(args.seats, args.price);
    let concert = schedule(api, &format!("flash sale {}", Uuid::new_v4()), &plan).await?;
    let max_price = plan.iter().map(|(_, p)| *p).max().unwrap_or(args.price);
    println!(
        "concert {}: {} seats on {} date(s), created in {:.1} s",
        concert.concert_id,
        args.seats,
        plan.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(OnSale { concert, max_price })
}

/// `(seats, price)` of each date: dates as large as the API allows, date i
/// costing `price + 1,000 * i`.
fn date_plan(seats: u32, price: i64) -> Vec<(u32, i64)> {
    date_sizes(seats)
        .into_iter()
        .zip(0..)
        .map(|(seats, i)| (seats, price + 1_000 * i))
        .collect()
}

/// Signs every user in (a user token minted with the admin token), phase
/// `0-sign-in`.
///
/// It happens here in the setup, `concurrency` at once, and not inside the
/// timed phases: the charge and queue-entry phases (and the checks) reuse the
/// kept tokens, so their figures time only their own endpoint, even with
/// 20,000 users.
pub(super) async fn sign_in_everyone(
    api: &Client,
    users: &[Uuid],
    args: &FlashSaleArgs,
    phases: &mut Phases,
) -> Result<Stats, BoxError> {
    let stats = Stats::new();
    let started = Instant::now();
    sign_in(&api.with_observer(stats.clone()), users, args.concurrency).await?;
    phases.record("0-sign-in", started, &stats);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_date_costs_1_000_more_than_the_last() {
        assert_eq!(
            date_plan(120_000, 100),
            [(50_000, 100), (50_000, 1_100), (20_000, 2_100)]
        );
        assert_eq!(date_plan(50, 100), [(50, 100)]);
    }
}
