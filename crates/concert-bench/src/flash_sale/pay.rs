//! The payment of a held seat, with an `Idempotency-Key` when the run asks
//! for one (`pay-<reservation>`, so a retry would pay once).

use concert_client::{Payment, Reservation};

use super::sale::{Outcome, Shop};
use crate::BoxError;

/// Pays the reservation; any answer but `201` ends the visit as failed.
pub(super) async fn pay(
    shop: &Shop,
    token: &str,
    reservation: Reservation,
) -> Result<Outcome, BoxError> {
    let key = shop
        .idempotency_key
        .then(|| format!("pay-{}", reservation.reservation_id));
    let answer = shop
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
