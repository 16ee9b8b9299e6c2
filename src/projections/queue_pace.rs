//! How fast a concert's waiting line moves: its recent admissions, read in
//! the same statement as a ticket's place (a standing, a queue entry's plan,
//! a concert's line) as a few columns that take constant time however long
//! the line.

use chrono::{DateTime, Utc};

/// Admissions sampled to measure a concert's admission rate.
const RATE_SAMPLE: i64 = 100;
/// Seconds over which the admission rate is measured.
pub const RATE_WINDOW_SECS: i64 = 60;

/// Tickets of concert `$1` that left the waiting line, all stripes together.
pub(super) const LEFT_WAITING_TOTAL: &str =
    "coalesce((select sum(left_waiting) from queue_progress where concert_id = $1), 0)";

/// A concert's recent admissions, as a wait estimate needs them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecentAdmissions {
    /// Tickets admitted since the window's start (at most `RATE_SAMPLE`)
    /// into a slot another ticket freed: the line's first `active_max`
    /// admissions took slots that were free from the start, so they say
    /// nothing of how fast slots free.
    pub admitted_to_freed: i64,
    /// Those admissions as `Freed` has them, read in one pass over them.
    pub freed: Vec<i64>,
    /// Since when the sampled admissions are counted: the oldest of them
    /// (of either kind) once the sample is full, or else the window's start
    /// or the line's first admission, whichever is later.
    pub sample_start: DateTime<Utc>,
    /// The line's latest admission, if any.
    pub last_admitted: Option<DateTime<Utc>>,
    /// How many were admitted at that instant (by one scheduler round).
    pub last_round: i64,
    /// When the last of the concert's active tickets lapses, if any is active.
    pub active_until: Option<DateTime<Utc>>,
    /// The concert's active tickets, to tell whether a slot is free; read
    /// (up to the limit) only while the sample of admissions is not full:
    /// a line that admits a hundred a minute has no slot free for long,
    /// and counting its active tickets would cost every entry plan.
    pub active: Option<i64>,
}

/// Admissions closer than this belong to one burst (two scheduler ticks of
/// the default quarter second).
pub const BURST_GAP_MS: i64 = 500;

/// The admissions into freed slots: the scheduler rounds they came in
/// (one instant each), the earliest of them, and the gaps between them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Freed {
    pub rounds: i64,
    pub first: Option<DateTime<Utc>>,
    /// Gaps longer than `BURST_GAP_MS` (between bursts): how many, and
    /// their sum in milliseconds.
    pub long_gaps: i64,
    pub long_gaps_ms: i64,
    /// The sum of the others (within bursts), in milliseconds.
    pub short_gaps_ms: i64,
}

#[cfg(test)]
impl Freed {
    /// As `RecentAdmissions::freed` stores it: the earliest in microseconds
    /// since the Unix epoch.
    pub fn to_column(self) -> Vec<i64> {
        let first = self.first.map_or(0, |first| first.timestamp_micros());
        vec![
            self.rounds,
            first,
            self.long_gaps,
            self.long_gaps_ms,
            self.short_gaps_ms,
        ]
    }
}

impl RecentAdmissions {
    /// `freed` by name.
    pub fn freed(&self) -> Freed {
        match self.freed[..] {
            [rounds, first_us, long_gaps, long_gaps_ms, short_gaps_ms] => Freed {
                rounds,
                first: (rounds > 0)
                    .then(|| DateTime::from_timestamp_micros(first_us))
                    .flatten(),
                long_gaps,
                long_gaps_ms,
                short_gaps_ms,
            },
            _ => Freed::default(),
        }
    }

    /// A line that never admitted anyone.
    pub const NONE: RecentAdmissions = RecentAdmissions {
        admitted_to_freed: 0,
        freed: Vec::new(),
        sample_start: DateTime::UNIX_EPOCH,
        last_admitted: None,
        last_round: 0,
        active_until: None,
        active: None,
    };
}

/// The concert's latest admission.
const LAST_ADMITTED: &str =
    "(select max(admitted_at) from queue_tickets where concert_id = $1 and admitted_at is not null)";

/// The columns of `RecentAdmissions`: the concert's admissions since
/// `since`, at most `RATE_SAMPLE` of them, and, while fewer were admitted,
/// its active tickets counted up to `active_max` (all the estimate needs to
/// tell a free slot).
///
/// A sample that is not full is counted from the line's first admission
/// when that came after `since`: a sale that began 15 s ago has admitted
/// over 15 s, not the minute, and read over the minute its rate was 2–6
/// times too slow (a probe's sale: 4.0 times at 10–20 s, 1.9 at 30–40 s).
///
/// Of the sampled admissions, `admitted_to_freed` counts those beyond the line's
/// first `active_max`: the sample holds the latest admissions, and every
/// ticket that left the waiting line was admitted (a waiting ticket is
/// never expired), so the number left less `active_max`, when below the
/// sample, is how many of them took a freed slot. Counted whole, the
/// admissions that fill a sale's empty slots in its first round read as a
/// line moving a hundred places in a second, and the first in line was told
/// "a second" until the first active token freed its slot, up to
/// `CONCERT_QUEUE_ACTIVE_TTL_SECS` later.
pub(super) fn admission_columns(since: &str, active_max: &str) -> String {
    let sampled = |limit: &str| {
        format!(
            "select admitted_at from queue_tickets where concert_id = $1 and admitted_at >= {since}
             order by admitted_at desc limit {limit}"
        )
    };
    let admitted = format!(
        "(select count(*) from ({}) recent)",
        sampled(&RATE_SAMPLE.to_string())
    );
    let freed_limit =
        format!("least({RATE_SAMPLE}, greatest(0, {LEFT_WAITING_TOTAL} - {active_max}))");
    let freed = sampled(&freed_limit);
    format!(
        "least({admitted}, greatest(0, {LEFT_WAITING_TOTAL} - {active_max}))::bigint as admitted_to_freed,
         (select array[count(distinct admitted_at),
                       coalesce((extract(epoch from min(admitted_at)) * 1000000)::bigint, 0),
                       count(*) filter (where gap_ms > {BURST_GAP_MS}),
                       coalesce(sum(gap_ms) filter (where gap_ms > {BURST_GAP_MS}), 0),
                       coalesce(sum(gap_ms) filter (where gap_ms <= {BURST_GAP_MS}), 0)]::bigint[]
          from (select admitted_at,
                       (extract(epoch from admitted_at - lag(admitted_at) over (order by admitted_at)) * 1000)::bigint
                           as gap_ms
                from ({freed}) freed) gaps) as freed,
         coalesce((select admitted_at from queue_tickets where concert_id = $1 and admitted_at >= {since}
                   order by admitted_at desc offset {RATE_SAMPLE} - 1 limit 1),
                  greatest({since}, (select min(admitted_at) from queue_tickets
                                     where concert_id = $1 and admitted_at is not null))) as sample_start,
         {LAST_ADMITTED} as last_admitted,
         (select count(*) from queue_tickets where concert_id = $1 and admitted_at = {LAST_ADMITTED})
             as last_round,
         (select max(expires_at) from queue_tickets where concert_id = $1 and status = 'active')
             as active_until,
         case when {admitted} < {RATE_SAMPLE}
              then (select count(*) from (select 1 from queue_tickets where concert_id = $1 and status = 'active'
                                          limit {active_max}) taken)
         end as active"
    )
}
