//! A whole number of a request's body, read with its range: whatever is
//! wrong with it (a fraction, a string, a number out of range) is refused in
//! the words of the range the request allows ("expected a whole number from
//! 1 to 1000000000"), not in those of the Rust type that holds it, which
//! would offer a client all of `i64`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, Error, Unexpected, Visitor};
use serde::Deserialize;

/// A whole number from `LOW` to `HIGH`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const LOW: i64, const HIGH: i64>(i64);

impl<const LOW: i64, const HIGH: i64> Bounded<LOW, HIGH> {
    pub fn get(self) -> i64 {
        self.0
    }

    /// The number as a narrower type, which the range fits in.
    pub fn narrow<T: TryFrom<i64>>(self) -> T {
        T::try_from(self.0)
            .ok()
            .expect("a range that fits the type it is narrowed to")
    }
}

impl<'de, const LOW: i64, const HIGH: i64> Deserialize<'de> for Bounded<LOW, HIGH> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(WholeNumberVisitor::<LOW, HIGH>(PhantomData))
    }
}

struct WholeNumberVisitor<const LOW: i64, const HIGH: i64>(PhantomData<()>);

impl<const LOW: i64, const HIGH: i64> Visitor<'_> for WholeNumberVisitor<LOW, HIGH> {
    type Value = Bounded<LOW, HIGH>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number from {LOW} to {HIGH}")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<Self::Value, E> {
        if (LOW..=HIGH).contains(&value) {
            Ok(Bounded(value))
        } else {
            Err(E::invalid_value(Unexpected::Signed(value), &self))
        }
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<Self::Value, E> {
        match i64::try_from(value) {
            Ok(value) => self.visit_i64(value),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Amount = Bounded<1, 1_000_000_000>;

    fn refusal(json: &str) -> String {
        serde_json::from_str::<Amount>(json)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_number_in_range_is_read_and_both_ends_are_in() {
        for (json, value) in [("1", 1), ("1000000000", 1_000_000_000), ("42", 42)] {
            assert_eq!(serde_json::from_str::<Amount>(json).unwrap().get(), value);
        }
        let seats: u32 = serde_json::from_str::<Bounded<1, 50_000>>("50000")
            .unwrap()
            .narrow();
        assert_eq!(seats, 50_000);
    }

    #[test]
    fn anything_else_is_refused_naming_the_range() {
        for json in [
            "0",
            "-5",
            "1000000001",
            "9223372036854775808",
            "99999999999999999999",
            "1.5",
            "1e3",
            "\"5\"",
            "true",
            "null",
            "[1]",
        ] {
            let refusal = refusal(json);
            assert!(
                refusal.contains("expected a whole number from 1 to 1000000000"),
                "{json}: {refusal}"
            );
        }
        assert!(refusal("-5").starts_with("invalid value: integer `-5`"));
    }
}
