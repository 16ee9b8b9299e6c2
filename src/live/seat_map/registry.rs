//! The registry of the loaded seat maps: by date, and each concert's dates.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{DateInfo, DateMap};

/// The maps by date, and the loaded dates of each concert: a seat is looked
/// for among the dates of its concert, not in every map held (15,000 maps
/// made each refused hold six times slower, and each payment twice).
#[derive(Default)]
pub(super) struct Registry {
    pub(super) dates: HashMap<Uuid, Arc<DateMap>>,
    pub(super) by_concert: HashMap<Uuid, Vec<Uuid>>,
}

impl Registry {
    /// Files the loaded map of `date_id` under its concert.
    pub(super) fn file(&mut self, date_id: Uuid, info: DateInfo) {
        let dates = self.by_concert.entry(info.concert_id).or_default();
        if !dates.contains(&date_id) {
            dates.push(date_id);
        }
    }

    /// The loaded maps of `concert_id`'s dates.
    pub(super) fn of_concert(&self, concert_id: Uuid) -> Vec<Arc<DateMap>> {
        let dates = self
            .by_concert
            .get(&concert_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        dates
            .iter()
            .filter_map(|date_id| self.dates.get(date_id))
            .cloned()
            .collect()
    }

    /// Drops the maps `keep` refuses, and their places under their concerts.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Arc<DateMap>) -> bool) {
        let by_concert = &mut self.by_concert;
        self.dates.retain(|date_id, map| {
            if keep(map) {
                return true;
            }
            if let Some(info) = map.info.get() {
                if let Some(dates) = by_concert.get_mut(&info.concert_id) {
                    dates.retain(|filed| filed != date_id);
                    if dates.is_empty() {
                        by_concert.remove(&info.concert_id);
                    }
                }
            }
            false
        });
    }
}
