//! The checks of the audit log: where the log ended before the sale; that
//! after it at most one `SeatSold` was logged per seat of this concert, as
//! many as seats were sold; and that the sale's events pass the audit's own
//! rules (`concert::audit::check_history`: catalogue, seats, wallets, payments, queue).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use concert::event_log::RawEvent;
use concert_client::{Client, Concert};

use super::Check;
use crate::api::audit_events;
use crate::BoxError;

const NAME: &str = "no seat sold twice (audit log)";
const RULES: &str = "the sale's events pass the audit's rules";

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
) -> Vec<Check> {
    let dates: HashSet<String> = concert
        .dates
        .iter()
        .map(|d| d.date_id.to_string())
        .collect();
    match scan_sales(api, start, &dates, expected_sold).await {
        Ok(scan) => vec![
            Check {
                name: NAME,
                passed: scan.seats_sold_twice == 0 && scan.sold_events == sold,
                detail: format!(
                    "{} SeatSold events for this concert, {} seats sold more than once",
                    scan.sold_events, scan.seats_sold_twice
                ),
            },
            judge_with_audit_rules(scan.history),
        ],
        Err(error) => [NAME, RULES]
            .into_iter()
            .map(|name| Check {
                name,
                passed: false,
                detail: format!("could not read the log: {error}"),
            })
            .collect(),
    }
}

/// The audit's rules over the streams that began during the sale (every
/// concert, seat, wallet and ticket of it is new); streams that began before
/// are left out, since their start is not in the slice.
fn judge_with_audit_rules(history: Vec<RawEvent>) -> Check {
    let events = history.len();
    let violations = concert::audit::check_history(history, u32::MAX);
    Check {
        name: RULES,
        passed: violations.is_empty(),
        detail: match violations.first() {
            None => format!("{events} events of streams begun in the sale, no violation"),
            Some(first) => format!(
                "{} violations in {events} events; first: [{}] {}",
                violations.len(),
                first.rule,
                first.detail
            ),
        },
    }
}

/// What the log shows after the sale's start.
struct Scan {
    sold_events: usize,
    seats_sold_twice: usize,
    /// The events of streams whose first event is in the slice.
    history: Vec<RawEvent>,
}

/// Reads the log after `start` until it holds at least `expected` SeatSold
/// events of the concert's dates (positions are handed out a little after
/// commit) or stops growing.
async fn scan_sales(
    api: &Client,
    start: i64,
    dates: &HashSet<String>,
    expected: usize,
) -> Result<Scan, BoxError> {
    let mut history = Vec::new();
    let mut begun: HashSet<(String, String)> = HashSet::new();
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
                return Ok(Scan {
                    sold_events: sold,
                    seats_sold_twice: sales.values().filter(|n| **n > 1).count(),
                    history,
                });
            }
            idle_rounds += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        idle_rounds = 0;
        for event in &page.events {
            let stream = (event.aggregate_type.clone(), event.aggregate_id.clone());
            if event.sequence == 1 {
                begun.insert(stream.clone());
            }
            if begun.contains(&stream) {
                history.push(RawEvent::from_logged(
                    event.position.unwrap_or_default(),
                    &event.aggregate_type,
                    &event.aggregate_id,
                    event.sequence,
                    &event.event_type,
                    &event.payload,
                    Some(event.recorded_at),
                ));
            }
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
