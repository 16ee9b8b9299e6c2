//! Phase `2-enter-queue`: every user takes a queue token for the concert,
//! in one go, before anyone shops; admission happens during the sale.

use std::time::Instant;

use concert_client::Client;
use uuid::Uuid;

use super::{FlashSaleArgs, Phases};
use crate::common::{enter, for_each};
use crate::stats::Stats;

/// Each user's queue token, or why they got none.
pub(super) type Tokens = Vec<Result<String, String>>;

/// Enters every user into the concert's queue.
pub(super) async fn enter_everyone(
    api: &Client,
    users: &[Uuid],
    concert_id: Uuid,
    args: &FlashSaleArgs,
    phases: &mut Phases,
) -> (Tokens, Stats) {
    let stats = Stats::new();
    let started = Instant::now();
    let client = api.with_observer(stats.clone());
    let tokens = for_each(
        "enter queue",
        args.concurrency,
        users.to_vec(),
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
    phases.record("2-enter-queue", started, &stats);
    (tokens, stats)
}
