//! Each charge is made once under its id. A keyed charge's id is derived from
//! its user and key, so a second charge under one id is a retry charged
//! again: the one way round the contract's "charges once", open once its
//! kept answer is forgotten and the wallet no longer remembers the id
//! among its last 1,000 charges (README).
//!
//! The walk keeps a 64-bit fingerprint of each id, not the id and where it
//! was made (79 MB more for a million charges), and PostgreSQL confirms
//! the ids whose fingerprint came twice (grouping every charge there
//! instead made the audit of a million charges 78 % slower).

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;
use uuid::Uuid;

use crate::ids::ChargeId;

use super::Violation;

/// The charge ids seen, as fingerprints, and those whose fingerprint was
/// seen before: made twice, or (about once in 10^7 audits of a million
/// charges) sharing a fingerprint with another id.
#[derive(Debug, Default)]
pub(super) struct ChargeIds {
    seen: HashSet<u64>,
    suspects: Vec<Uuid>,
}

impl ChargeIds {
    pub(super) fn apply(&mut self, ChargeId(id): ChargeId) {
        let (high, low) = id.as_u64_pair();
        // The multiplier (odd, so one-to-one) keeps ids that differ in one
        // bit of either half apart, which a plain xor of the halves merges.
        if !self
            .seen
            .insert(high.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ low)
        {
            self.suspects.push(id);
        }
    }

    /// Names every charge of the log up to position `upto` made under an id
    /// an earlier charge was made under.
    pub(super) async fn finish(
        self,
        pool: &PgPool,
        upto: i64,
        found: &mut Vec<Violation>,
    ) -> sqlx::Result<()> {
        if self.suspects.is_empty() {
            return Ok(());
        }
        let suspects: Vec<String> = self.suspects.iter().map(Uuid::to_string).collect();
        let charges: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "select payload->'Charged'->>'charge_id', position, aggregate_id, sequence
             from events
             where aggregate_type = 'Wallet' and event_type = 'Charged' and position <= $1
               and payload->'Charged'->>'charge_id' = any($2)
             order by position",
        )
        .bind(upto)
        .bind(&suspects)
        .fetch_all(pool)
        .await?;
        let label = |position, wallet: &str, sequence| {
            format!("#{position} Wallet/{wallet} seq {sequence} Charged")
        };
        // Each id's first charge: its position and label.
        let mut firsts: HashMap<String, (i64, String)> = HashMap::new();
        for (charge_id, position, wallet, sequence) in charges {
            let again = label(position, &wallet, sequence);
            match firsts.get(&charge_id) {
                Some((first, first_label)) => found.push(Violation::new(
                    "a charge is made once",
                    format!("charge {charge_id} made again (first at position {first})"),
                    vec![first_label.clone(), again],
                )),
                None => {
                    firsts.insert(charge_id, (position, again));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_seen_again_is_a_suspect_and_others_are_not() {
        let (once, twice) = (Uuid::now_v7(), Uuid::now_v7());
        let mut ids = ChargeIds::default();
        for id in [twice, once, twice] {
            ids.apply(ChargeId(id));
        }

        assert_eq!(ids.suspects, [twice]);
    }

    #[test]
    fn ids_that_differ_in_either_half_have_other_fingerprints() {
        let mut ids = ChargeIds::default();
        for id in [1u128, 1 << 64, (1 << 64) | 1, 2] {
            ids.apply(ChargeId(Uuid::from_u128(id)));
        }

        assert!(ids.suspects.is_empty(), "{:?}", ids.suspects);
    }
}
