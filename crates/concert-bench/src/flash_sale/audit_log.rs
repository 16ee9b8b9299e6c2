//! The check of the audit log: where the log ended before the sale, and that
//! after it at most one `SeatSold` was logged per seat of this concert, as
//! many as seats were sold.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use concert_client::{Client, Concert};

use super::Check;
use crate::api::audit_events;
use crate::BoxError;

const NAME: &str = "no seat sold twice (audit log)";

/// The last position of the audit log now (0 when empty); `None` when the
/// server has no audit API.
pub(super) async fn last_position(api: &Client) -> Result<Option<i64>, BoxError> {
    if audit_events(api, 0, 1).await?.is_none() {
        return Ok(None);
    }
    let is_empty_after = |after: i64| async move {
        let page = audit_events(api, after, 1)
            .await?
            .ok_or("audit API vanished")?;
        Ok::<_, BoxError>(page.events.is_empty())
    };
    // Exponential then binary search for the first `after` with an empty page.
    let mut low = 0i64; // a page after `low` is known not to be empty, or low = 0
    let mut high = 1024i64;
    while !is_empty_after(high).await? {
        low = high;
        high *= 2;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if is_empty_after(middle).await? {
            high = middle;
        } else {
            low = middle;
        }
    }
    // Nothing after `high`... but maybe nothing after `low` either when low = 0.
    Ok(Some(if is_empty_after(low).await? {
        low
    } else {
        high
    }))
}

/// The audit log check: the sales of the concert's seats logged after
/// `start` are `sold`, none of a seat sold before.
pub(super) async fn check(
    api: &Client,
    start: i64,
    concert: &Concert,
    expected_sold: usize,
    sold: usize,
) -> Check {
    let dates: HashSet<String> = concert
        .dates
        .iter()
        .map(|d| d.date_id.to_string())
        .collect();
    match scan_sales(api, start, &dates, expected_sold).await {
        Ok((sold_events, seats_sold_twice)) => Check {
            name: NAME,
            passed: seats_sold_twice == 0 && sold_events == sold,
            detail: format!(
                "{sold_events} SeatSold events for this concert, {seats_sold_twice} seats sold more than once"
            ),
        },
        Err(error) => Check {
            name: NAME,
            passed: false,
            detail: format!("could not read the log: {error}"),
        },
    }
}

/// Reads the log after `start` until it holds at least `expected` SeatSold
/// events of the concert's dates (positions are handed out a little after
/// commit) or stops growing; returns (SeatSold events, seats sold twice).
async fn scan_sales(
    api: &Client,
    start: i64,
    dates: &HashSet<String>,
    expected: usize,
) -> Result<(usize, usize), BoxError> {
    let mut ours: HashSet<String> = HashSet::new();
    let mut sales: HashMap<String, usize> = HashMap::new();
    let mut after = start;
    let mut idle_rounds = 0;
    loop {
        let page = audit_events(api, after, 1000)
            .await?
            .ok_or("no audit API")?;
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
