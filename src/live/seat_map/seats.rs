//! One date's seats as the feed keeps them, read once from the read model: per seat number a letter (F, H,
//! S), the seat's id and price, and the sequence of the change the letter
//! shows. The same change may arrive twice and out of order (this instance's
//! own commit at once, then the log's copy, after older changes of other
//! instances), so a change older than what a seat shows is skipped.
//!
//! Snapshots are named by a position of the log, so they show the letters
//! as the log has brought them: an own commit shows at once in listings
//! and counts, and in snapshots once its copy from the log arrives (as a
//! change under its own position, which a snapshot must not already hold).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::super::changes::SeatStatus;
use super::DateInfo;
use crate::money::Won;
use crate::projections::available_seats::FreeSeatRow;

#[derive(Debug, Default)]
pub struct Seats {
    letters: Vec<u8>,
    ids: Vec<Uuid>,
    prices: Vec<Won>,
    /// The seat stream's sequence behind each letter; 0 as read from the
    /// read model, which any later change overrides.
    versions: Vec<u32>,
    index: HashMap<Uuid, usize>,
    /// How many letters are F.
    free: usize,
    /// Seats showing an own commit whose copy the log has not brought yet,
    /// with the letter the log last brought for each.
    ahead_of_log: HashMap<usize, u8>,
}

impl Seats {
    /// Seats numbered from 1 in the order given.
    pub fn new(ids: Vec<Uuid>, prices: Vec<Won>, letters: Vec<u8>) -> Self {
        let index = ids.iter().enumerate().map(|(at, id)| (*id, at)).collect();
        Self {
            free: letters
                .iter()
                .filter(|letter| **letter == SeatStatus::Free.letter())
                .count(),
            versions: vec![0; letters.len()],
            letters,
            ids,
            prices,
            index,
            ahead_of_log: HashMap::new(),
        }
    }

    /// The date's concert and size and its seats, from the read model in one
    /// query; `None` when there is no such date.
    pub async fn read(pool: &PgPool, date_id: Uuid) -> sqlx::Result<Option<(DateInfo, Self)>> {
        type Row = (
            Uuid,
            i32,
            DateTime<Utc>,
            Option<String>,
            Option<Vec<Uuid>>,
            Option<Vec<i64>>,
        );
        let row: Option<Row> = sqlx::query_as(
            "select d.concert_id, d.total_seats, d.starts_at, s.letters, s.ids, s.prices
             from concert_dates d
             left join lateral (
                 select string_agg(case status when 'free' then 'F' when 'held' then 'H' else 'S' end,
                                   '' order by seat_no) as letters,
                        array_agg(seat_id order by seat_no) as ids,
                        array_agg(price order by seat_no) as prices
                 from seats where date_id = d.date_id) s on true
             where d.date_id = $1",
        )
        .bind(date_id)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(
            |(concert_id, total_seats, starts_at, letters, ids, prices)| {
                let info = DateInfo {
                    concert_id,
                    total_seats,
                    starts_at,
                };
                let prices = prices.unwrap_or_default().into_iter().map(Won).collect();
                let letters = letters.unwrap_or_default().into_bytes();
                (info, Self::new(ids.unwrap_or_default(), prices, letters))
            },
        ))
    }

    /// Shows `status` as of `sequence`, whatever the seat shows now.
    pub fn put_back(&mut self, seat_id: Uuid, sequence: i64, status: SeatStatus) {
        let Some(&at) = self.index.get(&seat_id) else {
            return;
        };
        self.versions[at] = version(sequence);
        self.put_letter(at, status);
    }

    /// One letter per seat number from 1, own commits included.
    #[cfg(test)]
    pub fn letters(&self) -> &[u8] {
        &self.letters
    }

    /// The letters as the log has brought them: own commits whose copy has
    /// not come yet show what the seat showed before them.
    pub fn letters_from_log(&self) -> Cow<'_, [u8]> {
        if self.ahead_of_log.is_empty() {
            return Cow::Borrowed(&self.letters);
        }
        let mut letters = self.letters.clone();
        for (&at, &letter) in &self.ahead_of_log {
            letters[at] = letter;
        }
        Cow::Owned(letters)
    }

    /// Whether the date has a seat `seat_id`.
    pub fn contains(&self, seat_id: Uuid) -> bool {
        self.index.contains_key(&seat_id)
    }

    /// The letter `seat_id` shows, if the date has that seat.
    pub fn letter_of(&self, seat_id: Uuid) -> Option<u8> {
        self.index.get(&seat_id).map(|&at| self.letters[at])
    }

    /// A change the log brought (or the read model showed): shown unless
    /// the seat shows a later one, which is then an own commit still ahead
    /// of the log.
    pub fn set(&mut self, seat_id: Uuid, sequence: i64, status: SeatStatus) {
        let Some(&at) = self.index.get(&seat_id) else {
            return;
        };
        let sequence = version(sequence);
        if sequence >= self.versions[at] {
            self.ahead_of_log.remove(&at);
        } else if let Some(letter) = self.ahead_of_log.get_mut(&at) {
            *letter = status.letter();
        }
        self.show(at, sequence, status);
    }

    /// This instance's own commit, shown before the log brings its copy.
    pub fn set_own(&mut self, seat_id: Uuid, sequence: i64, status: SeatStatus) {
        let Some(&at) = self.index.get(&seat_id) else {
            return;
        };
        let sequence = version(sequence);
        if sequence > self.versions[at] {
            self.ahead_of_log.entry(at).or_insert(self.letters[at]);
        }
        self.show(at, sequence, status);
    }

    fn show(&mut self, at: usize, sequence: u32, status: SeatStatus) {
        if sequence > self.versions[at] {
            self.versions[at] = sequence;
            self.put_letter(at, status);
        }
    }

    fn put_letter(&mut self, at: usize, status: SeatStatus) {
        let free = SeatStatus::Free.letter();
        let (was, is) = (self.letters[at], status.letter());
        if was == free && is != free {
            self.free -= 1;
        } else if was != free && is == free {
            self.free += 1;
        }
        self.letters[at] = is;
    }

    /// How many seats are free, own commits included.
    pub fn free_count(&self) -> usize {
        self.free
    }

    /// Up to `limit` free seats numbered above `after_seat_no`, by number.
    pub fn free_after(&self, after_seat_no: i32, limit: usize) -> Vec<FreeSeatRow> {
        let from = usize::try_from(after_seat_no).unwrap_or(0);
        self.letters
            .iter()
            .enumerate()
            .skip(from)
            .filter(|(_, letter)| **letter == SeatStatus::Free.letter())
            .take(limit)
            .map(|(at, _)| FreeSeatRow {
                seat_id: self.ids[at],
                seat_no: at as i32 + 1,
                price: self.prices[at],
            })
            .collect()
    }
}

fn version(sequence: i64) -> u32 {
    u32::try_from(sequence).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(letters: &str) -> (Seats, Vec<Uuid>) {
        let ids: Vec<Uuid> = letters.chars().map(|_| Uuid::new_v4()).collect();
        let prices = (1..=letters.len() as i64).map(Won).collect();
        let table = Seats::new(ids.clone(), prices, letters.as_bytes().to_vec());
        (table, ids)
    }

    #[test]
    fn a_change_older_than_what_a_seat_shows_is_skipped() {
        let (mut table, ids) = seats("FF");

        table.set(ids[0], 5, SeatStatus::Held);
        table.set(ids[0], 4, SeatStatus::Free);
        assert_eq!(table.letters(), b"HF");
        table.set(ids[0], 5, SeatStatus::Held);
        table.set(ids[0], 6, SeatStatus::Sold);
        assert_eq!(table.letters(), b"SF");
        assert_eq!(table.free_count(), 1);
        table.set(ids[0], 7, SeatStatus::Free);
        table.set(ids[1], 1, SeatStatus::Free);
        assert_eq!(
            table.free_count(),
            2,
            "a free seat set free again counts once"
        );
    }

    #[test]
    fn an_own_commit_is_left_out_of_the_letters_from_the_log_until_its_copy_comes() {
        let (mut table, ids) = seats("FFF");

        table.set_own(ids[0], 2, SeatStatus::Held);
        table.set_own(ids[0], 3, SeatStatus::Sold);
        assert_eq!(table.letters(), b"SFF");
        assert_eq!(table.free_count(), 2);
        assert_eq!(&*table.letters_from_log(), b"FFF");
        table.set(ids[0], 2, SeatStatus::Held);
        assert_eq!(&*table.letters_from_log(), b"HFF", "the log's older change");
        assert_eq!(table.letters(), b"SFF");
        table.set(ids[0], 3, SeatStatus::Sold);
        assert_eq!(&*table.letters_from_log(), b"SFF");
        assert!(matches!(table.letters_from_log(), Cow::Borrowed(_)));
    }

    #[test]
    fn an_own_commit_the_log_brought_first_is_not_ahead_of_it() {
        let (mut table, ids) = seats("FF");

        table.set(ids[1], 4, SeatStatus::Held);
        table.set_own(ids[1], 4, SeatStatus::Held);

        assert_eq!(&*table.letters_from_log(), b"FH");
    }

    #[test]
    fn any_change_overrides_the_letter_read_from_the_read_model() {
        let (mut table, ids) = seats("H");

        table.set(ids[0], 1, SeatStatus::Free);

        assert_eq!(table.letters(), b"F");
    }

    #[test]
    fn the_free_seats_after_a_number_come_by_number_up_to_the_limit() {
        let (table, ids) = seats("FHFSFF");

        let page = table.free_after(1, 2);

        let numbers: Vec<i32> = page.iter().map(|seat| seat.seat_no).collect();
        assert_eq!(numbers, vec![3, 5]);
        assert_eq!(page[0].seat_id, ids[2]);
        assert_eq!(page[1].price, Won(5));
        assert!(table.free_after(6, 10).is_empty());
    }

    #[test]
    fn a_seat_of_another_date_changes_nothing() {
        let (mut table, _) = seats("F");

        table.set(Uuid::new_v4(), 9, SeatStatus::Sold);

        assert_eq!(table.letters(), b"F");
        assert!(!table.contains(Uuid::new_v4()));
        assert_eq!(table.letter_of(Uuid::new_v4()), None);
    }
}
