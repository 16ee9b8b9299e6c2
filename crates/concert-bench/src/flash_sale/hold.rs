//! The hold of one admitted user: pick a date with odds by its free seats,
//! list a page of its free seats from a random seat number, and try them in a
//! random order. `409 seat_unavailable` means someone else was quicker, so
//! the next seat is tried; a new round starts when the page runs out.

use concert_client::{BookableDate, Reservation};
use rand::seq::SliceRandom;
use rand::Rng;
use uuid::Uuid;

use super::sale::{Outcome, Shop};
use crate::api::{dates, seat_page};
use crate::BoxError;

/// Most rounds of "list, try to hold" one user goes through before giving up.
const MAX_ROUNDS: usize = 200;

/// A seat held, or how the visit ended without one.
pub(super) enum Hold {
    Held(Reservation),
    Ended(Outcome),
}

/// Holds a free seat of the concert for the token's user.
pub(super) async fn hold_a_seat(shop: &Shop, token: &str) -> Result<Hold, BoxError> {
    for _ in 0..MAX_ROUNDS {
        let dates = dates(&shop.api, token, shop.concert_id).await?;
        let Some(date) = pick_date(&dates) else {
            return Ok(Hold::Ended(Outcome::SoldOut));
        };
        let mut seats = free_seats(shop, token, date).await?;
        seats.shuffle(&mut rand::thread_rng());
        for seat in seats {
            let answer = shop.api.hold(token, seat).await?;
            match answer.status {
                201 => return Ok(Hold::Held(answer.json("hold", &[201])?)),
                409 if answer.code().as_deref() == Some("seat_unavailable") => continue,
                status => {
                    return Ok(Hold::Ended(Outcome::Failed(format!(
                        "hold: HTTP {status} {}",
                        answer.code().unwrap_or_default()
                    ))))
                }
            }
        }
    }
    Ok(Hold::Ended(Outcome::Failed(
        "gave up after too many rounds".into(),
    )))
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

/// A page of free seats of the date from a random seat number (from the
/// start when that page is empty).
async fn free_seats(shop: &Shop, token: &str, date: &BookableDate) -> Result<Vec<Uuid>, BoxError> {
    let span = (date.total_seats as i64 - shop.seat_page as i64).max(0);
    let after = if span > 0 {
        rand::thread_rng().gen_range(0..=span)
    } else {
        0
    };
    for after in [after, 0] {
        let limit = Some(shop.seat_page);
        let page = seat_page(
            &shop.api,
            token,
            shop.concert_id,
            date.date_id,
            after,
            limit,
        )
        .await?;
        if !page.seats.is_empty() || after == 0 {
            return Ok(page.seats.into_iter().map(|s| s.seat_id).collect());
        }
    }
    Ok(Vec::new())
}
