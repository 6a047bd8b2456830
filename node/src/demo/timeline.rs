//! The demo's timeline: script steps and the nodes' own fork and membership events, stamped
//! with the time since the demo started, printed as they happen.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::harness::LocalNode;
use crate::api::views::EventView;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at_ms: u64,
    pub node: String,
    pub what: String,
}

#[derive(Clone)]
pub struct Timeline {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
    print: bool,
}

impl Timeline {
    pub fn new(print: bool) -> Self {
        Self {
            start: Instant::now(),
            entries: Arc::default(),
            print,
        }
    }

    pub fn note(&self, node: &str, what: &str) {
        let entry = Entry {
            at_ms: self.start.elapsed().as_millis() as u64,
            node: node.to_string(),
            what: what.to_string(),
        };
        if self.print {
            println!(
                "{:>7.2}s  {:<4} {}",
                entry.at_ms as f64 / 1000.0,
                entry.node,
                entry.what
            );
        }
        self.entries.lock().expect("timeline lock").push(entry);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().expect("timeline lock").clone()
    }

    /// Adds the node's fork and membership events to the timeline as they come.
    pub fn follow(&self, node: &LocalNode) -> anyhow::Result<()> {
        let client = node.client()?.clone();
        let name = node.name.clone();
        let tl = self.clone();
        tokio::spawn(async move {
            let Ok(mut lines) = client.events().await else {
                return;
            };
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<EventView>(&line) else {
                    continue;
                };
                let what = match event {
                    EventView::ForkDetected { epoch, commits, .. } => {
                        format!("fork detected at epoch {epoch}: {commits} competing commits")
                    }
                    EventView::BranchSwitched {
                        epoch,
                        resent,
                        reissued,
                        ..
                    } => format!(
                        "switched to the winning branch (epoch {epoch}); re-sent {resent} messages, re-issued {reissued} changes"
                    ),
                    EventView::GroupJoined { epoch, .. } => {
                        format!("joined the group at epoch {epoch}")
                    }
                    EventView::Readded { epoch, resent, .. } => {
                        format!(
                            "added to the group again at epoch {epoch}; re-sent {resent} messages"
                        )
                    }
                    EventView::ForkBeyondWindow { epoch, .. } => {
                        format!("split beyond the window at epoch {epoch}")
                    }
                    EventView::SplitHealed {
                        epoch, redelivered, ..
                    } => format!(
                        "split healed: rejoined the winning branch (epoch {epoch}); re-delivered {redelivered} messages"
                    ),
                    EventView::KeyChanged { handle, .. } => format!("key change seen for {handle}"),
                    _ => continue,
                };
                tl.note(&name, &what);
            }
        });
        Ok(())
    }
}
