//! A waiting ticket's estimated wait, from how fast its concert's line
//! moved lately (README, "Estimated wait").

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::projections::queue_pace::{RecentAdmissions, BURST_GAP_MS};

/// How fast a concert's waiting line moves, as far as a wait estimate needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdmissionPace {
    /// Tickets admitted lately into slots other tickets freed.
    admitted_to_freed: i64,
    /// The rounds (bursts) that admitted them.
    freed_rounds: i64,
    /// The usual time between those rounds.
    round_gap: Duration,
    /// How long since the line's latest admission.
    still_for: Duration,
    /// How many that admission's round admitted.
    last_round: i64,
    /// How long until every active token has lapsed, when any is active.
    active_left: Option<Duration>,
    /// Active slots taken now (when counted), and how many there are.
    active: Option<i64>,
    slots: i64,
    /// How long an admitted token stays active.
    active_ttl_secs: i64,
    /// How often the scheduler admits.
    round_ms: i64,
}

impl AdmissionPace {
    pub(super) fn of(
        config: &Config,
        admissions: &RecentAdmissions,
        now: DateTime<Utc>,
    ) -> AdmissionPace {
        let last_admitted = admissions.last_admitted.unwrap_or(now);
        let (freed_rounds, round_gap) = rounds_of(admissions, last_admitted);
        AdmissionPace {
            admitted_to_freed: admissions.admitted_to_freed,
            freed_rounds,
            round_gap,
            still_for: admissions
                .last_admitted
                .map_or(Duration::zero(), |admitted| now - admitted),
            active_left: admissions.active_until.map(|until| until - now),
            last_round: admissions.last_round,
            active: admissions.active,
            slots: i64::from(config.queue_active_max),
            active_ttl_secs: i64::try_from(config.queue_active_ttl_secs).unwrap_or(i64::MAX),
            round_ms: i64::try_from(config.scheduler_interval_ms).unwrap_or(i64::MAX),
        }
    }

    /// Seconds until a ticket with `position` tickets ahead is admitted.
    pub(super) fn wait_for(&self, position: i64) -> i64 {
        let turn = position.saturating_add(1);
        // Uncounted, a line that admits a hundred a minute has none free for long.
        let free = self.active.map_or(0, |active| (self.slots - active).max(0));
        // The scheduler's next round admits as many as there are free slots.
        let next_round = (self.round_ms.saturating_add(999) / 1000).max(1);
        if turn <= free {
            return next_round;
        }
        let later = turn - free;
        // At worst every active slot frees when its token times out: with
        // every slot taken, the first round of `slots` tickets waits for the
        // last active token to lapse (counting down, where a whole TTL did
        // not), each later round one active TTL more. (With slots free, the
        // tokens the next round admits to them lapse last.)
        // A lapsed token's slot frees when the scheduler records the lapse,
        // and is taken at its next admission round: up to a beat of each
        // after the TTL (a probe's line at 2 s beats and 3 s TTLs moved a
        // round every 6 s, and was told 3 s a round).
        let rounds = (later - 1) / self.slots.max(1) + 1;
        let settle_ms = self.round_ms.saturating_mul(2);
        let ttl_ms = self.active_ttl_secs.saturating_mul(1000);
        let first_round_ms = match self.active_left {
            Some(left) if free == 0 => left.num_milliseconds().max(0),
            _ if free > 0 => self.round_ms.saturating_add(ttl_ms),
            _ => ttl_ms,
        };
        let at_worst_ms = (rounds - 1)
            .saturating_mul(ttl_ms.saturating_add(settle_ms))
            .saturating_add(first_round_ms.saturating_add(settle_ms));
        let at_worst = (at_worst_ms.saturating_add(999) / 1000).max(next_round);
        // No slot freed lately (a sale's first round filled every one), or
        // one round that was all the sample held (a hundred tokens lapsed
        // together, their slots taken again at once): no pace to go by.
        if self.admitted_to_freed == 0
            || self.freed_rounds == 0
            || self.round_gap <= Duration::zero()
        {
            return at_worst;
        }
        // By rounds: the places ahead over a round's usual size, each round
        // the usual gap after the one before, the next one that gap after the
        // last. Counted by places, a line admitting five a round every 20 s
        // told the first in line 4 s just after a round (a probe: 1–5 s where
        // 20 s was true). ceil(later / (admitted_to_freed / freed_rounds)):
        let rounds_ahead = later
            .saturating_mul(self.freed_rounds)
            .saturating_add(self.admitted_to_freed - 1)
            / self.admitted_to_freed;
        let gap_ms = self.round_gap.num_milliseconds();
        let still_ms = self.still_for.num_milliseconds();
        // With slots free (their lapses recorded, not yet refilled), the
        // next round, within a beat, is the one that fills them, and these
        // places come in the rounds after it: counted from the last round,
        // the first place beyond the free ones was told the free ones' wait
        // in that beat (a probe: 2 s where 7.9 s was true).
        let by_rounds_ms = if free > 0 {
            rounds_ahead
                .saturating_mul(gap_ms)
                .saturating_add(self.round_ms)
        } else {
            (rounds_ahead - 1)
                .saturating_mul(gap_ms)
                .saturating_add((gap_ms - still_ms).max(0))
        };
        // A line standing still moves no faster than one round (as many as
        // its last round admitted) per half its standstill beyond a
        // scheduler round: a burst of admissions a minute ago says nothing of
        // a line whose active tokens all sit idle (told 2 s, a probe's first
        // in line waited 100 s). Half, so that a gap of twice the usual pace,
        // which a steady line has now and then, changes nothing; by rounds,
        // since a line admitting five at a time stands still between its
        // rounds (counted by places, the estimates of a steady line swung
        // to twice the truth midway between rounds).
        let beyond_a_round_ms = (still_ms - self.round_ms).max(0);
        let rounds_behind_last = (later - 1) / self.last_round.max(1) + 1;
        let by_standstill_ms = rounds_behind_last.saturating_mul(beyond_a_round_ms / 2);
        let wait_ms = by_rounds_ms.max(by_standstill_ms);
        (wait_ms.saturating_add(999) / 1000)
            .max(next_round)
            .min(at_worst)
    }
}

/// The rounds the admissions into freed slots came in, and the usual gap
/// between them. Tokens admitted together lapse together, and their slots
/// are taken again together; but a round's admissions come over two or
/// three scheduler ticks when its entries did, and counted tick by tick, a
/// line admitting five every 10 s told its first in line 1 s (a probe). So
/// admissions less than `BURST_GAP_MS` apart are one burst, when the line
/// spends more of its time between bursts than within them; a line that
/// moves at every tick is counted tick by tick.
fn rounds_of(admissions: &RecentAdmissions, last_admitted: DateTime<Utc>) -> (i64, Duration) {
    let freed = admissions.freed();
    let Some(first) = freed.first else {
        return (0, Duration::zero());
    };
    // Before the first: since the sample's start (a sale's first round, or
    // the window's start).
    let lead_ms = (first - admissions.sample_start).num_milliseconds().max(0);
    let (mut long, mut long_ms, mut short_ms) =
        (freed.long_gaps, freed.long_gaps_ms, freed.short_gaps_ms);
    if lead_ms > BURST_GAP_MS {
        (long, long_ms) = (long + 1, long_ms + lead_ms);
    } else {
        short_ms += lead_ms;
    }
    if long > 0 && long_ms >= short_ms {
        return (freed.long_gaps + 1, Duration::milliseconds(long_ms / long));
    }
    match freed.rounds {
        rounds if rounds >= 2 => (rounds, (last_admitted - first) / (rounds - 1) as i32),
        rounds => (rounds, last_admitted - admissions.sample_start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::queue_pace::Freed;

    /// `admitted_to_freed` admitted one a round over the last minute.
    fn pace(admitted_to_freed: i64, active: Option<i64>) -> AdmissionPace {
        AdmissionPace {
            admitted_to_freed,
            freed_rounds: admitted_to_freed,
            round_gap: Duration::seconds(60) / admitted_to_freed.max(1) as i32,
            still_for: Duration::zero(),
            last_round: 1,
            active_left: None,
            active,
            slots: 10,
            active_ttl_secs: 600,
            round_ms: 250,
        }
    }

    #[test]
    fn tickets_that_free_slots_take_wait_for_the_scheduler_s_next_round() {
        // Nobody admitted yet, four of ten slots taken: six are admitted next round.
        assert_eq!(pace(0, Some(4)).wait_for(0), 1);
        assert_eq!(pace(0, Some(4)).wait_for(5), 1);
        // The seventh waits for a slot to time out, the lapse to be
        // recorded and the next round (a beat each, 0.25 s).
        assert_eq!(pace(0, Some(4)).wait_for(6), 601);
        assert_eq!(pace(0, Some(4)).wait_for(15), 601);
        assert_eq!(pace(0, Some(4)).wait_for(16), 1202);
    }

    #[test]
    fn with_every_slot_taken_the_recent_admission_rate_sets_the_wait() {
        // Thirty admitted over the last minute: one every two seconds.
        assert_eq!(pace(30, Some(10)).wait_for(0), 2);
        assert_eq!(pace(30, Some(10)).wait_for(9), 20);
        // Two free slots go first, at the next round; the rate counts the
        // rest from that round.
        assert_eq!(pace(30, Some(8)).wait_for(2), 3);
        // More active than slots (the maximum was lowered) frees none.
        assert_eq!(pace(0, Some(12)).wait_for(0), 601);
    }

    #[test]
    fn the_wait_never_exceeds_every_active_token_timing_out() {
        // Three slots of 20 s, three freed and refilled one a round, 20 s
        // apart: the rate says 20 s a place, but each round of three waits
        // 20.5 s at most (the TTL, the lapse recorded, the next round).
        let start_of_a_sale = AdmissionPace {
            admitted_to_freed: 3,
            freed_rounds: 3,
            round_gap: Duration::seconds(20),
            still_for: Duration::zero(),
            last_round: 1,
            active_left: None,
            active: Some(3),
            slots: 3,
            active_ttl_secs: 20,
            round_ms: 250,
        };
        assert_eq!(start_of_a_sale.wait_for(0), 20);
        assert_eq!(start_of_a_sale.wait_for(4), 41);
        assert_eq!(start_of_a_sale.wait_for(8), 62);
        // A line moving faster than timeouts keeps its rate.
        assert_eq!(pace(30, Some(10)).wait_for(9), 20);
    }

    #[test]
    fn the_worst_case_counts_the_scheduler_s_beats_after_each_lapse() {
        // Three slots of 3 s, the scheduler looking every 2 s: a round of
        // three every 7 s at worst (a probe's line moved every 6 s, and was
        // told 3 s a round, half the truth).
        let coarse = AdmissionPace {
            round_ms: 2_000,
            active_ttl_secs: 3,
            slots: 3,
            ..pace(0, Some(3))
        };
        assert_eq!(coarse.wait_for(0), 7);
        assert_eq!(coarse.wait_for(14), 35);
        // By a measured pace of a round every 6 s, that pace.
        let measured = AdmissionPace {
            admitted_to_freed: 30,
            freed_rounds: 10,
            round_gap: Duration::seconds(6),
            last_round: 3,
            ..coarse
        };
        assert_eq!(measured.wait_for(14), 30);
        // Between the beat that records a round's lapses and the one that
        // fills their slots, 4 s after that round: the first three go next
        // beat, the fourth a round after.
        let slots_freed = AdmissionPace {
            active: Some(0),
            still_for: Duration::seconds(4),
            ..measured
        };
        assert_eq!(slots_freed.wait_for(2), 2);
        assert_eq!(slots_freed.wait_for(3), 8);
        assert_eq!(slots_freed.wait_for(6), 14);
    }

    #[test]
    fn the_worst_case_counts_down_to_the_last_active_token_s_lapse() {
        let lapsing = |left_ms| AdmissionPace {
            active_left: Some(Duration::milliseconds(left_ms)),
            ..pace(0, Some(10))
        };
        // The last active token lapses in 42.1 s (42.6 s once recorded and
        // its slot taken); a round later, 600.5 s more.
        assert_eq!(lapsing(42_100).wait_for(0), 43);
        assert_eq!(lapsing(42_100).wait_for(9), 43);
        assert_eq!(lapsing(42_100).wait_for(10), 644);
        // Lapsed but not yet recorded: the next round frees its slot.
        assert_eq!(lapsing(-500).wait_for(0), 1);
        // With a slot free, the token admitted to it next round lapses last.
        let one_free = AdmissionPace {
            active: Some(9),
            ..lapsing(42_100)
        };
        assert_eq!(one_free.wait_for(1), 601);
        // The rate, when nearer, still sets the wait.
        let moving = AdmissionPace {
            active_left: Some(Duration::seconds(300)),
            ..pace(30, Some(10))
        };
        assert_eq!(moving.wait_for(9), 20);
    }

    #[test]
    fn a_line_standing_still_moves_no_faster_than_half_its_standstill() {
        // Two seconds a place by the rate, and nobody admitted for 14.25 s:
        // 7 s a place (14 s beyond the 0.25 s round, halved).
        let stalled = AdmissionPace {
            still_for: Duration::milliseconds(14_250),
            ..pace(30, Some(10))
        };
        assert_eq!(stalled.wait_for(0), 7);
        assert_eq!(stalled.wait_for(9), 70);
        // Still no later than every active token timing out.
        let long_stalled = AdmissionPace {
            still_for: Duration::milliseconds(200_250),
            ..pace(30, Some(10))
        };
        assert_eq!(long_stalled.wait_for(0), 100);
        assert_eq!(long_stalled.wait_for(9), 601);
        // A gap of twice the pace, as a steady line has now and then, changes nothing.
        let steady = AdmissionPace {
            still_for: Duration::milliseconds(4_250),
            ..pace(30, Some(10))
        };
        assert_eq!(steady.wait_for(9), 20);
        // A line admitting five a round every 3 s stands still between its
        // rounds: 3 s into one, 55 places are the next round and ten more
        // (30 s), not 11 rounds of half the standstill (15 s). Counted by
        // places, 76 s.
        let batched = AdmissionPace {
            freed_rounds: 20,
            round_gap: Duration::seconds(3),
            still_for: Duration::milliseconds(3_000),
            last_round: 5,
            ..pace(100, None)
        };
        assert_eq!(batched.wait_for(54), 30);
        let stalled_batch = AdmissionPace {
            still_for: Duration::milliseconds(40_250),
            last_round: 5,
            ..pace(30, Some(10))
        };
        assert_eq!(stalled_batch.wait_for(4), 20);
        assert_eq!(stalled_batch.wait_for(5), 40);
    }

    #[test]
    fn a_line_admitting_several_a_round_waits_a_round_s_gap_for_each_round_ahead() {
        // Five a round every 20 s: 15 over the minute, 4 s a place by the rate.
        let just_after_a_round = AdmissionPace {
            admitted_to_freed: 15,
            freed_rounds: 3,
            round_gap: Duration::seconds(20),
            last_round: 5,
            ..pace(0, Some(10))
        };
        // The next round takes the first five places, 20 s on, not 4–20 s.
        assert_eq!(just_after_a_round.wait_for(0), 20);
        assert_eq!(just_after_a_round.wait_for(4), 20);
        assert_eq!(just_after_a_round.wait_for(5), 40);
        // 12 s on, it is 8 s away.
        let midway = AdmissionPace {
            still_for: Duration::seconds(12),
            ..just_after_a_round
        };
        assert_eq!(midway.wait_for(0), 8);
        assert_eq!(midway.wait_for(9), 28);
        // Overdue by 10 s, half the standstill sets it.
        let overdue = AdmissionPace {
            still_for: Duration::milliseconds(30_250),
            ..just_after_a_round
        };
        assert_eq!(overdue.wait_for(0), 15);
        assert_eq!(overdue.wait_for(5), 30);
    }

    #[test]
    fn one_round_that_filled_the_whole_sample_tells_no_pace() {
        // A hundred tokens admitted together lapsed together, and their
        // slots were taken again in one round: the sample is that round.
        let one_round = AdmissionPace {
            admitted_to_freed: 100,
            freed_rounds: 1,
            round_gap: Duration::zero(),
            active_left: Some(Duration::seconds(600)),
            slots: 100,
            ..pace(0, Some(100))
        };
        // Not "a second" for everyone: the worst case.
        assert_eq!(one_round.wait_for(0), 601);
        assert_eq!(one_round.wait_for(100), 1201);
    }

    #[test]
    fn admissions_over_neighbouring_ticks_are_one_burst_in_a_line_that_moves_by_bursts() {
        let at = |ms: i64| DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(ms);
        let sampled =
            |first_ms, last_ms, rounds, [long_gaps, long_gaps_ms, short_gaps_ms]: [i64; 3]| {
                let freed = Freed {
                    rounds,
                    first: Some(at(first_ms)),
                    long_gaps,
                    long_gaps_ms,
                    short_gaps_ms,
                };
                RecentAdmissions {
                    last_admitted: Some(at(last_ms)),
                    freed: freed.to_column(),
                    ..RecentAdmissions::NONE
                }
            };
        // A sale's first five admitted at 0 s lapse at 9.46 and 9.74 s, and
        // their slots are taken again so: one burst 9.46 s after the first
        // round, not two 0.28 s apart (the first in line was told 1 s).
        let one = sampled(9_460, 9_740, 2, [0, 0, 280]);
        assert_eq!(
            rounds_of(&one, at(9_740)),
            (1, Duration::milliseconds(9_460))
        );
        // Three such bursts, 9.7 s apart.
        let three = sampled(9_460, 29_140, 6, [2, 19_400, 840]);
        assert_eq!(
            rounds_of(&three, at(29_140)),
            (3, Duration::milliseconds(9_620))
        );
        // A line that moves at every tick of a quarter second is counted
        // tick by tick.
        let steady = sampled(100, 24_850, 100, [0, 0, 24_750]);
        let (rounds, gap) = rounds_of(&steady, at(24_850));
        assert_eq!(
            (rounds, (gap.num_microseconds().unwrap() + 500) / 1000),
            (100, 250)
        );
        // Nothing freed: no rounds.
        assert_eq!(rounds_of(&RecentAdmissions::NONE, at(0)).0, 0);
    }

    #[test]
    fn a_busy_line_whose_active_tickets_were_not_counted_waits_by_the_rate() {
        assert_eq!(pace(100, None).wait_for(0), 1);
        assert_eq!(pace(100, None).wait_for(99), 60);
    }

    #[test]
    fn a_huge_position_saturates_instead_of_overflowing() {
        assert!(pace(1, Some(10)).wait_for(i64::MAX) > 0);
        assert!(pace(0, Some(10)).wait_for(i64::MAX) > 0);
    }
}
