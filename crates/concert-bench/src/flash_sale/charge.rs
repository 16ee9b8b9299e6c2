//! Phase `1-charge`: every wallet is funded with the dearest seat's price.
//! A failed charge does not stop the sale: that user's payment will be
//! refused, and the money check expects their wallet to stay at 0.

use std::time::Instant;

use concert_client::Client;
use uuid::Uuid;

use super::{FlashSaleArgs, Phases};
use crate::api::charge;
use crate::common::for_each;
use crate::stats::Stats;

/// Charges every user `amount`; returns, by user, whether it worked.
pub(super) async fn fund_wallets(
    api: &Client,
    users: &[Uuid],
    amount: i64,
    args: &FlashSaleArgs,
    phases: &mut Phases,
) -> (Vec<bool>, Stats) {
    let stats = Stats::new();
    let started = Instant::now();
    let client = api.with_observer(stats.clone());
    let charged = for_each("charge", args.concurrency, users.to_vec(), move |user| {
        let api = client.clone();
        async move {
            charge(&api, user, amount)
                .await
                .map_err(|error| error.to_string())
        }
    })
    .await;
    phases.record("1-charge", started, &stats);
    if let Some(Err(error)) = charged.iter().find(|r| r.is_err()) {
        eprintln!("some charges failed, e.g. {error}");
    }
    (charged.iter().map(Result::is_ok).collect(), stats)
}
