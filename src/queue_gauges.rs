//! The queue gauges by concert (`concert_queue_waiting`, `concert_queue_active`),
//! written into `/metrics` here rather than through the exporter: the
//! exporter cannot drop one series, so every concert that ever had a queue
//! kept two series at zero (60,000 series and 4.5 MB a scrape at 30,000
//! concerts). Here a concert shows while it has live tokens, and leaves the
//! page once its queue drains.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// One concert's live tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSizes {
    pub concert_id: Uuid,
    pub waiting: i64,
    pub active: i64,
}

/// The last sample of each sampler of the process (one per server; tests run several).
static SAMPLED: Mutex<BTreeMap<u64, Vec<QueueSizes>>> = Mutex::new(BTreeMap::new());
static NEXT_SAMPLER: AtomicU64 = AtomicU64::new(0);

/// One sampler's place in the gauges; its concerts leave the page when it is dropped.
#[derive(Debug)]
pub struct QueueGauges {
    sampler: u64,
}

impl Default for QueueGauges {
    fn default() -> Self {
        Self {
            sampler: NEXT_SAMPLER.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl QueueGauges {
    /// Replaces this sampler's concerts with `sizes` (only concerts with live tokens).
    pub fn set(&self, sizes: Vec<QueueSizes>) {
        sampled().insert(self.sampler, sizes);
    }
}

impl Drop for QueueGauges {
    fn drop(&mut self) {
        sampled().remove(&self.sampler);
    }
}

fn sampled() -> std::sync::MutexGuard<'static, BTreeMap<u64, Vec<QueueSizes>>> {
    SAMPLED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A family's name, help text and value of one concert.
type Family = (&'static str, &'static str, fn(&QueueSizes) -> i64);

/// Appends both families, in the Prometheus text format, to `page`.
pub fn render(page: &mut String) {
    if !page.is_empty() && !page.ends_with('\n') {
        page.push('\n');
    }
    let sampled = sampled();
    let families: [Family; 2] = [
        (
            "concert_queue_waiting",
            "Waiting queue tokens, by concert",
            |s| s.waiting,
        ),
        (
            "concert_queue_active",
            "Active queue tokens, by concert",
            |s| s.active,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(page, "# HELP {name} {help}\n# TYPE {name} gauge");
        for sizes in sampled.values().flatten() {
            let _ = writeln!(
                page,
                "{name}{{concert_id=\"{}\"}} {}",
                sizes.concert_id,
                value(sizes)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> String {
        let mut page = String::from("concert_event_log_position 7");
        render(&mut page);
        page
    }

    #[test]
    fn a_concert_shows_while_it_has_live_tokens_and_leaves_once_drained() {
        let (first, second) = (QueueGauges::default(), QueueGauges::default());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        first.set(vec![QueueSizes {
            concert_id: a,
            waiting: 3,
            active: 100,
        }]);
        second.set(vec![QueueSizes {
            concert_id: b,
            waiting: 0,
            active: 1,
        }]);

        let page = rendered();
        assert!(
            page.starts_with("concert_event_log_position 7\n# HELP concert_queue_waiting "),
            "{page}"
        );
        assert!(
            page.contains(&format!("concert_queue_waiting{{concert_id=\"{a}\"}} 3\n")),
            "{page}"
        );
        assert!(
            page.contains(&format!("concert_queue_active{{concert_id=\"{a}\"}} 100\n")),
            "{page}"
        );
        assert!(
            page.contains(&format!("concert_queue_active{{concert_id=\"{b}\"}} 1\n")),
            "{page}"
        );
        assert_eq!(
            page.matches("# TYPE concert_queue_active gauge\n").count(),
            1
        );

        first.set(Vec::new());
        drop(second);
        let page = rendered();
        assert!(!page.contains(&a.to_string()), "drained: {page}");
        assert!(
            !page.contains(&b.to_string()),
            "its sampler stopped: {page}"
        );
    }
}
