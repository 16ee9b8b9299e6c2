//! The event log as `concert events --json` prints it, with the sums and
//! the audit's invariant checks the tests make over it.

use std::collections::HashMap;

use concert::event_log::RawEvent;
use serde_json::Value;

/// The event log, as `concert events --json` prints it.
pub struct Log {
    pub events: Vec<Value>,
}

impl Log {
    pub fn parse(text: &str) -> Log {
        let events = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).expect("an event as JSON"))
            .collect();
        Log { events }
    }

    /// Events of one type, with their payload body (the value inside the variant).
    pub fn of_type<'a>(
        &'a self,
        event_type: &'a str,
    ) -> impl Iterator<Item = (&'a Value, &'a Value)> + 'a {
        self.events
            .iter()
            .filter(move |e| e["event_type"] == event_type)
            .map(move |e| (e, &e["payload"][event_type]))
    }

    pub fn count(&self, event_type: &str) -> usize {
        self.of_type(event_type).count()
    }

    /// The stream id of an event.
    pub fn id(event: &Value) -> &str {
        event["aggregate_id"].as_str().unwrap_or_default()
    }

    /// Sum of charges, minus payments, plus refunds, per wallet.
    pub fn balances(&self) -> HashMap<String, i64> {
        let mut balances = HashMap::new();
        for event in &self.events {
            let delta = match event["event_type"].as_str() {
                Some("Charged") => event["payload"]["Charged"]["amount"].as_i64().unwrap(),
                Some("Paid") => -event["payload"]["Paid"]["amount"].as_i64().unwrap(),
                Some("Refunded") => event["payload"]["Refunded"]["amount"].as_i64().unwrap(),
                _ => continue,
            };
            *balances.entry(Self::id(event).to_string()).or_insert(0) += delta;
        }
        balances
    }

    /// The audit's own rules over this history (`concert::audit::check_history`:
    /// a seat held by one at a time and sold once, payments debited once and
    /// ending sold or refunded, holds expired after their deadline, balances
    /// that add up and never go negative, tickets entered first). The log
    /// chain and the read models are checked by `concert audit` on the database.
    pub fn invariant_violations(&self) -> Vec<String> {
        let history = self.events.iter().map(|event| {
            RawEvent::from_logged(
                event["position"].as_i64().unwrap_or_default(),
                event["aggregate_type"].as_str().unwrap_or_default(),
                Self::id(event),
                event["sequence"].as_i64().unwrap_or_default(),
                event["event_type"].as_str().unwrap_or_default(),
                &event["payload"],
                serde_json::from_value(event["recorded_at"].clone()).ok(),
            )
        });
        // The active limit differs from test to test; `concert audit` checks it.
        concert::audit::check_history(history, u32::MAX)
            .into_iter()
            .map(|found| {
                format!(
                    "[{}] {} ({})",
                    found.rule,
                    found.detail,
                    found.events.join(", ")
                )
            })
            .collect()
    }
}
