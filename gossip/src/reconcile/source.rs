//! Where a session's items come from: the log on a node, plain maps in the simulator.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use super::item::SortedItems;
use crate::topic::Topic;

/// Something that holds items per topic.
pub trait ItemSource {
    /// Why items could not be read.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The items of `topic` with a timestamp at or after `since_ms`, ascending.
    fn items_since(&self, topic: &Topic, since_ms: u64) -> Result<SortedItems, Self::Error>;
}

fn window(items: Option<&SortedItems>, since_ms: u64) -> SortedItems {
    // A suffix of a sorted set is sorted: no need to sort again.
    SortedItems::from_sorted(
        items
            .map(|s| s.since(since_ms).to_vec())
            .unwrap_or_default(),
    )
    .unwrap_or_default()
}

impl ItemSource for BTreeMap<Topic, SortedItems> {
    type Error = Infallible;
    fn items_since(&self, topic: &Topic, since_ms: u64) -> Result<SortedItems, Infallible> {
        Ok(window(self.get(topic), since_ms))
    }
}

impl ItemSource for HashMap<Topic, SortedItems> {
    type Error = Infallible;
    fn items_since(&self, topic: &Topic, since_ms: u64) -> Result<SortedItems, Infallible> {
        Ok(window(self.get(topic), since_ms))
    }
}
