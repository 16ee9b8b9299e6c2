//! The audit API (admin token): the whole event log in commit order, a page
//! at a time, and one aggregate's history.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::answer::Answer;
use crate::client::Client;
use crate::error::Error;

/// One event of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// `None` for an event not yet given its place in the log.
    pub position: Option<i64>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// `200` of `GET /audit/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<LoggedEvent>,
    /// Pass as `after` for the next page.
    pub next: i64,
}

/// `200` of `GET /audit/streams/{type}/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<LoggedEvent>,
}

impl Client {
    /// `GET /audit/events?after=&limit=` (admin), endpoint `audit-events`.
    pub async fn audit_events(&self, after: i64, limit: u32) -> Result<Answer, Error> {
        let request = self.as_admin(
            Method::GET,
            &format!("/audit/events?after={after}&limit={limit}"),
        );
        self.send("audit-events", request).await
    }

    /// `GET /audit/streams/{aggregate_type}/{aggregate_id}` (admin), endpoint
    /// `audit-stream`.
    pub async fn audit_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Answer, Error> {
        let request = self.as_admin(
            Method::GET,
            &format!("/audit/streams/{aggregate_type}/{aggregate_id}"),
        );
        self.send("audit-stream", request).await
    }
}
