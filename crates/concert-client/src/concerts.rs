//! Concerts, their dates and their free seats: scheduling a concert (admin),
//! listing concerts (public), and, with an active queue token, the dates still
//! on sale and a page of a date's free seats.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::Client;
use crate::error::Error;

/// Body of `POST /concerts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewConcert {
    pub title: String,
    pub dates: Vec<NewDate>,
}

/// One date of a [`NewConcert`]; its seats are numbered 1..=seats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewDate {
    pub starts_at: DateTime<Utc>,
    pub seats: u32,
    pub price: i64,
}

/// `201` of `POST /concerts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Concert {
    pub concert_id: Uuid,
    pub title: String,
    pub dates: Vec<ScheduledDate>,
}

/// A date as scheduled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduledDate {
    pub date_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub seats: u32,
    pub price: i64,
}

/// `200` of `GET /concerts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConcertList {
    pub concerts: Vec<ConcertSummary>,
}

/// A concert in the list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConcertSummary {
    pub concert_id: Uuid,
    pub title: String,
}

/// `200` of `GET /concerts/{concert}/dates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DateList {
    pub dates: Vec<BookableDate>,
}

/// A date still ahead with at least one free seat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookableDate {
    pub date_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub price: i64,
    pub total_seats: i32,
    pub available_seats: i32,
}

/// `200` of `GET /concerts/{concert}/dates/{date}/seats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatPage {
    pub seats: Vec<FreeSeat>,
    /// Pass as `after_seat_no` for the next page; `None` when none remain.
    pub next_after_seat_no: Option<i32>,
}

/// A seat neither held nor sold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FreeSeat {
    pub seat_id: Uuid,
    pub seat_no: i32,
    pub price: i64,
}

impl Client {
    /// `POST /concerts` (admin), endpoint `create-concert`.
    pub async fn create_concert(&self, concert: &NewConcert) -> Result<Answer, Error> {
        let request = self.as_admin(Method::POST, "/concerts").json(concert);
        self.send("create-concert", request).await
    }

    /// `GET /concerts` (public), endpoint `concerts`.
    pub async fn concerts(&self) -> Result<Answer, Error> {
        let request = self.request(Method::GET, "/concerts");
        self.send("concerts", request).await
    }

    /// `GET /concerts/{concert}/dates` with a queue token, endpoint `dates`.
    pub async fn dates(&self, token: &str, concert: Uuid) -> Result<Answer, Error> {
        let request = self
            .request(Method::GET, &format!("/concerts/{concert}/dates"))
            .bearer_auth(token);
        self.send("dates", request).await
    }

    /// `GET /concerts/{concert}/dates/{date}/seats` with a queue token,
    /// endpoint `seats`: free seats after `after_seat_no`, at most `limit`
    /// (the server's default when `None`).
    pub async fn seats(
        &self,
        token: &str,
        concert: Uuid,
        date: Uuid,
        after_seat_no: i64,
        limit: Option<u32>,
    ) -> Result<Answer, Error> {
        let request = self
            .request(
                Method::GET,
                &seats_path(concert, date, after_seat_no, limit),
            )
            .bearer_auth(token);
        self.send("seats", request).await
    }
}

fn seats_path(concert: Uuid, date: Uuid, after_seat_no: i64, limit: Option<u32>) -> String {
    let mut path = format!("/concerts/{concert}/dates/{date}/seats?after_seat_no={after_seat_no}");
    if let Some(limit) = limit {
        path.push_str(&format!("&limit={limit}"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_page_names_its_start_and_its_limit_when_given() {
        let (concert, date) = (Uuid::nil(), Uuid::max());

        assert_eq!(
            seats_path(concert, date, 40, Some(100)),
            format!("/concerts/{concert}/dates/{date}/seats?after_seat_no=40&limit=100")
        );
        assert_eq!(
            seats_path(concert, date, 0, None),
            format!("/concerts/{concert}/dates/{date}/seats?after_seat_no=0")
        );
    }
}
