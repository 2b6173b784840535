//! Change events: for every snapshot swapped in, which prompts gained versions and which
//! defaults and labels moved, sent as Server-Sent Events (`GET /v1/events`) with
//! `Last-Event-ID` resumption, so a client's cache drops exactly what changed.
//!
//! An event's id is the commit it brings the client to: the same on every replica of one
//! history and across restarts. A client that resumes from a commit the server has an event
//! for gets the events after it; from any other id (a restart, another replica, a rewritten
//! history, an id from the future) it gets a `resync` event, never silence.

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
    /// After a history rewrite (a force-push): the versions whose content changed, or that no
    /// longer exist, by number. A cache of `ID@N` drops exactly these.
    rewritten: Vec<Gained>,
}

/// The versions of `old` whose content differs in `new`, or that `new` does not have: empty
/// unless the history was rewritten (an extended history keeps every version as it was).
fn rewritten(old: &Current, new: &Current) -> Vec<Gained> {
    let (Ok(before), Ok(after)) = (old.snapshot.index(), new.snapshot.index()) else {
        return Vec::new();
    };
    let mut changed: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let ids: BTreeMap<&str, &str> = old
        .snapshot
        .discovery()
        .prompts
        .iter()
        .chain(new.snapshot.discovery().prompts.iter())
        .map(|(id, file)| (file.as_str(), id.as_str()))
        .collect();
    for (file, versions) in &before.files {
        let now = after.versions(file);
        for version in versions.iter() {
            let same = (version.number as usize)
                .checked_sub(1)
                .and_then(|i| now.get(i))
                .is_some_and(|v| {
                    v.blob == version.blob && after.commit(v).id == before.commit(version).id
                });
            if !same {
                let id = ids
                    .get(file.as_str())
                    .map_or_else(|| file.clone(), |id| id.to_string());
                changed.entry(id).or_default().push(version.number);
            }
        }
    }
    changed
        .into_iter()
        .map(|(id, versions)| Gained { id, versions })
        .collect()
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
        rewritten: rewritten(old, new),
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

    /// What a client that last saw the event `id` (a commit) missed: the events after the
    /// newest one for that commit, or `None` when no kept event has that id (the server
    /// restarted, the id is another replica's, or the history was rewritten).
    pub(crate) fn after(&self, id: &str) -> Option<Vec<Arc<Change>>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = kept.iter().rposition(|c| c.commit == id) {
            return Some(kept.iter().skip(at + 1).cloned().collect());
        }
        // An id the server gave without an event (a resync's): the events from the state it
        // names on.
        let from = kept.iter().rposition(|c| c.previous == id)?;
        Some(kept.iter().skip(from).cloned().collect())
    }
}

pub(crate) fn event(change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_default();
    Event::default()
        .id(change.commit.clone())
        .event("snapshot")
        .data(data)
}

/// Told to a client that resumes from an id the server has no event for: what it holds may be
/// out of date in ways no event here says, so it should drop its cache.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Resync {
    /// The commit served now (the event's id).
    commit: String,
    /// The id the client resumed from.
    after: String,
    /// Why.
    reason: String,
}

pub(crate) fn resync(commit: &str, after: &str) -> Event {
    let data = serde_json::to_string(&Resync {
        commit: commit.to_string(),
        after: after.to_string(),
        reason: "this server has no event for that id (it restarted, the id is another server's, or the history was rewritten): drop what you hold and read again".into(),
    })
    .unwrap_or_default();
    Event::default().id(commit).event("resync").data(data)
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
