//! How the answers of one test went: counted per kind, with every answer
//! that breaks the API's contract kept to show.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use concert_client::Call;
use serde_json::{json, Value};

/// How the answers of one test went.
#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub client_errors: AtomicU64,
    pub unavailable: AtomicU64,
    pub server_errors: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Answers that break the contract: a 5xx other than 503, or an error without a problem document.
    pub oddities: Mutex<Vec<String>>,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts one call the client made and keeps it if it broke the contract.
    pub(super) fn count(&self, call: &Call<'_>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let Ok(answer) = call.outcome else {
            self.transport_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let status = answer.status;
        let counter = match status {
            200..=299 => &self.ok,
            503 => &self.unavailable,
            400..=499 => &self.client_errors,
            _ => &self.server_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let odd = (status >= 500 && status != 503) || (status >= 400 && !answer.is_problem());
        if odd {
            self.oddities.lock().unwrap().push(format!(
                "{} -> {status} [{}] {}",
                call.endpoint,
                answer.content_type,
                answer.text().chars().take(300).collect::<String>()
            ));
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {}, 2xx {}, 4xx {}, 503 {}, other 5xx {}, no answer {}",
            Self::get(&self.sent),
            Self::get(&self.ok),
            Self::get(&self.client_errors),
            Self::get(&self.unavailable),
            Self::get(&self.server_errors),
            Self::get(&self.transport_errors)
        )
    }

    pub fn oddities(&self) -> Vec<String> {
        self.oddities.lock().unwrap().clone()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests_sent": Self::get(&self.sent),
            "answered_2xx": Self::get(&self.ok),
            "answered_4xx": Self::get(&self.client_errors),
            "answered_503": Self::get(&self.unavailable),
            "answered_other_5xx": Self::get(&self.server_errors),
            "not_answered": Self::get(&self.transport_errors),
            "contract_breaches": self.oddities.lock().unwrap().len(),
        })
    }
}
