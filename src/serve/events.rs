//! Change events: for every snapshot swapped in, which prompts gained versions and which
//! defaults and labels moved, sent as Server-Sent Events (`GET /v1/events`) with
//! `Last-Event-ID` resumption, so a client's cache drops exactly what changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::response::sse::Event;
use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::serve::current::Current;

/// How many events are kept for clients that resume.
const KEPT: usize = 1024;

/// A prompt that gained versions.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub(crate) struct Gained {
    id: String,
    /// The new version numbers, oldest first.
    versions: Vec<u32>,
}

/// A default or label that moved (`null` on one side: set or removed).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub(crate) struct Moved {
    id: String,
    /// The label; absent for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    old: Option<u32>,
    new: Option<u32>,
}

/// What one new snapshot changed.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub(crate) struct Change {
    /// The event's number (`id:` of the stream; send it back as `Last-Event-ID`).
    pub(crate) seq: u64,
    commit: String,
    previous: String,
    /// Prompts that gained versions.
    versions: Vec<Gained>,
    /// Defaults that moved: the version `ID` resolves to.
    defaults: Vec<Moved>,
    /// Labels that moved.
    labels: Vec<Moved>,
    /// Prompts that appeared, and that went.
    added: Vec<String>,
    removed: Vec<String>,
}

/// What changed from `old` to `new`.
pub(crate) fn diff(seq: u64, old: &Current, new: &Current) -> Change {
    let before: BTreeMap<&str, &crate::serve::current::Row> =
        old.rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let after: BTreeMap<&str, &crate::serve::current::Row> =
        new.rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let ids: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut change = Change {
        seq,
        commit: new.commit.clone(),
        previous: old.commit.clone(),
        versions: Vec::new(),
        defaults: Vec::new(),
        labels: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
    };
    for id in ids {
        let (b, a) = (before.get(id), after.get(id));
        match (b, a) {
            (None, Some(_)) => change.added.push(id.to_string()),
            (Some(_), None) => change.removed.push(id.to_string()),
            _ => {}
        }
        let old_count = b.map_or(0, |r| r.versions);
        let new_count = a.map_or(0, |r| r.versions);
        if new_count > old_count {
            change.versions.push(Gained {
                id: id.to_string(),
                versions: (old_count + 1..=new_count).collect(),
            });
        }
        let (old_default, new_default) = (b.and_then(|r| r.default), a.and_then(|r| r.default));
        if old_default != new_default {
            change.defaults.push(Moved {
                id: id.to_string(),
                label: None,
                old: old_default,
                new: new_default,
            });
        }
        let empty = BTreeMap::new();
        let old_labels = b.map_or(&empty, |r| &r.labels);
        let new_labels = a.map_or(&empty, |r| &r.labels);
        let names: BTreeSet<&String> = old_labels.keys().chain(new_labels.keys()).collect();
        for label in names {
            let (o, n) = (
                old_labels.get(label).copied(),
                new_labels.get(label).copied(),
            );
            if o != n {
                change.labels.push(Moved {
                    id: id.to_string(),
                    label: Some(label.clone()),
                    old: o,
                    new: n,
                });
            }
        }
    }
    change
}

/// How many event streams may be open at once when `--max-event-streams` does not say.
#[cfg(feature = "cli")]
pub const MAX_STREAMS: usize = 1000;

/// The events sent so far (the newest [`KEPT`]) and the channel new ones go out on.
pub(crate) struct Events {
    kept: Mutex<VecDeque<Arc<Change>>>,
    pub(crate) sender: broadcast::Sender<Arc<Change>>,
    next: Mutex<u64>,
    /// Set when the server shuts down: open streams end, so that draining does not wait.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// The streams open now, and how many may be.
    open: Arc<std::sync::atomic::AtomicUsize>,
    max_streams: usize,
}

/// One open event stream, counted until it is dropped (the client went away, or the server
/// ended the stream).
pub(crate) struct StreamSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Events {
    pub(crate) fn new(max_streams: usize) -> Events {
        let (sender, _) = broadcast::channel(KEPT);
        Events {
            kept: Mutex::new(VecDeque::new()),
            sender,
            next: Mutex::new(1),
            closing: tokio::sync::watch::channel(false).0,
            open: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            max_streams,
        }
    }

    /// A slot for one more stream, or `None` when `max_streams` are open.
    pub(crate) fn open_stream(&self) -> Option<StreamSlot> {
        use std::sync::atomic::Ordering;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot(self.open.clone()))
    }

    /// The streams open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Ends every open stream.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Records the change from `old` to `new` and sends it.
    pub(crate) fn publish(&self, old: &Current, new: &Current) {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let change = Arc::new(diff(*next, old, new));
        *next += 1;
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push_back(change.clone());
        while kept.len() > KEPT {
            kept.pop_front();
        }
        // No subscriber is not an error.
        let _ = self.sender.send(change);
    }

    pub(crate) fn since(&self, seq: u64) -> Vec<Arc<Change>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter().filter(|c| c.seq > seq).cloned().collect()
    }
}

pub(crate) fn event(change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_default();
    Event::default()
        .id(change.seq.to_string())
        .event("snapshot")
        .data(data)
}

#[cfg(test)]
mod tests {
    use crate::serve::events::*;

    #[test]
    fn streams_are_counted_until_dropped_and_bounded() {
        let events = Events::new(2);
        let first = events.open_stream().expect("a first stream");
        let second = events.open_stream().expect("a second stream");
        assert!(
            events.open_stream().is_none(),
            "a third stream past the bound"
        );
        assert_eq!(events.open_streams(), 2);
        drop(first);
        assert_eq!(events.open_streams(), 1);
        let third = events.open_stream().expect("a slot freed by the first");
        drop((second, third));
        assert_eq!(events.open_streams(), 0);
    }
}
