//! Money: whole won, as a type of its own, so a price is never taken for a
//! seat number or a count, and a sum that would overflow is refused instead of
//! wrapping. Stored and sent as the bare integer it wraps (JSON and SQL alike).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of won: a price, a payment, a charge or a balance.
///
/// Only checked arithmetic: `checked_add` and `checked_sub` return `None`
/// where an `i64` would overflow.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Won(pub i64);

impl Won {
    /// Nothing: the balance of a wallet never charged.
    pub const ZERO: Won = Won(0);

    /// `self + other`, or `None` past the range of `i64`.
    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }

    /// `self - other`, or `None` past the range of `i64`.
    pub fn checked_sub(self, other: Won) -> Option<Won> {
        self.0.checked_sub(other.0).map(Won)
    }
}

impl fmt::Display for Won {
    /// The bare number, as error messages have always shown amounts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_past_the_range_are_refused() {
        assert_eq!(Won(2).checked_add(Won(3)), Some(Won(5)));
        assert_eq!(Won(2).checked_sub(Won(3)), Some(Won(-1)));
        assert_eq!(Won(i64::MAX).checked_add(Won(1)), None);
        assert_eq!(Won(i64::MIN).checked_sub(Won(1)), None);
    }

    #[test]
    fn an_amount_is_written_as_its_bare_number() {
        assert_eq!(serde_json::to_string(&Won(150_000)).unwrap(), "150000");
        assert_eq!(serde_json::from_str::<Won>("-5").unwrap(), Won(-5));
        assert_eq!(Won(150_000).to_string(), "150000");
    }
}
