//! The active limit by the times tickets were active, besides the log's
//! order: an admission appended at the end of the log, dated inside a
//! moment when every place of its concert was taken, found those places
//! free in the log's order (their tickets' expiries came before it) and
//! passed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::ids::ConcertId;

use super::active_limits::ActiveLimits;
use super::seats::CLOCKS_AGREE_WITHIN;
use super::Violation;

/// The rule, as the log-order count names it too.
pub(super) const RULE: &str = "admissions stay within the active limit";

/// When one ticket was active: from its admission to its deadline or its
/// end, whichever came first.
#[derive(Debug)]
pub(super) struct ActiveSpan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Its admission's place in the log, and label.
    pub position: i64,
    pub label: String,
}

/// Names the admissions that, by these times, made more tickets of a
/// concert active at once than the limit served then: of the tickets
/// active at such a moment, the one written last in the log, which is
/// where a forgery lands (naming the admission at that moment named an
/// honest one that a forged ticket's time overlapped). Not one the
/// log-order count named already (`named_already`). A ticket that ended
/// within the clocks' agreement after an admission does not count against
/// it: a payment decided on one instance and the round that filled its
/// place on another may read clocks that far apart.
pub(super) fn check(
    spans: HashMap<ConcertId, Vec<ActiveSpan>>,
    limits: &ActiveLimits,
    named_already: &HashSet<i64>,
    found: &mut Vec<Violation>,
) {
    let mut concerts: Vec<_> = spans.into_iter().collect();
    concerts.sort_unstable_by_key(|(concert, _)| *concert);
    let mut named = Vec::new();
    let mut blamed = HashSet::new();
    for (_, mut spans) in concerts {
        spans.sort_by_key(|span| (span.from, span.position));
        // The end of each span active so far, and its index in `spans`.
        let mut active: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = BinaryHeap::new();
        for (index, span) in spans.iter().enumerate() {
            while active
                .peek()
                .is_some_and(|Reverse((end, _))| *end <= span.from + CLOCKS_AGREE_WITHIN)
            {
                active.pop();
            }
            active.push(Reverse((span.to.max(span.from), index)));
            let limit = limits.at(span.position);
            if active.len() <= limit as usize {
                continue;
            }
            let mut at_once: Vec<&ActiveSpan> = (active.iter())
                .map(|Reverse((_, index))| &spans[*index])
                .collect();
            at_once.sort_by_key(|span| span.position);
            let Some(last) = at_once.pop() else { continue };
            if named_already.contains(&last.position) || !blamed.insert(last.position) {
                continue;
            }
            let others: Vec<String> = at_once
                .iter()
                .map(|span| span.position.to_string())
                .collect();
            let detail = format!(
                "{} tokens active at {} by their admission and end times, the limit is {limit}: \
                 this one, written last of them, and those admitted at positions {}",
                active.len(),
                span.from,
                others.join(", ")
            );
            named.push((
                last.position,
                Violation::new(RULE, detail, vec![last.label.clone()]),
            ));
        }
    }
    named.sort_by_key(|(position, _)| *position);
    found.extend(named.into_iter().map(|(_, violation)| violation));
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(1));

    fn span(position: i64, from: i64, to: i64) -> ActiveSpan {
        let at = |secs| DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(secs);
        ActiveSpan {
            from: at(from),
            to: at(to),
            position,
            label: format!("#{position}"),
        }
    }

    fn named(spans: Vec<ActiveSpan>, limit: u32) -> Vec<Violation> {
        let mut found = Vec::new();
        let limits = limit.into();
        check(
            HashMap::from([(CONCERT, spans)]),
            &limits,
            &HashSet::new(),
            &mut found,
        );
        found
    }

    #[test]
    fn an_admission_dated_while_every_place_was_taken_is_named_wherever_it_stands() {
        // Two places, taken 0–20 s and 5–30 s; the third, appended last, is
        // dated at 10 s; a fourth takes the place the first frees, at 21 s,
        // while the forged third still runs: the forgery alone is named.
        let spans = vec![
            span(1, 0, 20),
            span(2, 5, 30),
            span(9, 10, 25),
            span(3, 21, 40),
        ];

        let found = named(spans, 2);

        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].events, ["#9"]);
        assert!(
            found[0].detail.starts_with("3 tokens active at"),
            "{}",
            found[0].detail
        );
        assert!(
            found[0].detail.ends_with("positions 1, 2"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn a_place_freed_a_moment_after_the_admission_that_takes_it_is_no_violation() {
        // The first ends half a second after the second's admission.
        let mut first = span(1, 0, 20);
        first.to += chrono::TimeDelta::milliseconds(500);

        assert!(named(vec![first, span(2, 20, 40)], 1).is_empty());
        assert_eq!(named(vec![span(1, 0, 22), span(2, 20, 40)], 1).len(), 1);
    }
}
