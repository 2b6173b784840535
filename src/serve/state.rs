//! What the server serves: one immutable snapshot of the registry at a commit, with the rows
//! of the prompt list built once, swapped atomically when the tip moves. A request loads the
//! snapshot once and answers from it alone, so it never sees half of two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::git::oid::ObjectId;
use crate::model::cache::CachedClient;
use crate::registry::{Registry, Resolved};
use crate::render::CompiledPrompt;
use crate::serve::auth::Tokens;
use crate::serve::bounded::Bounded;
use crate::serve::current::Current;
use crate::serve::metrics::Metrics;

/// How often the server asks git whether the tip moved (two small file reads).
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// How many compiled prompts (and kept bodies) the server keeps, across snapshots.
const MAX_COMPILED: usize = 4096;

/// About how much memory the kept compiled prompts may take.
const MAX_COMPILED_BYTES: usize = 256 << 20;

/// How many bytes of kept response bodies the server holds.
const MAX_BODY_BYTES: usize = 128 << 20;

/// The state, as handlers hold it.
pub(crate) type Shared = Arc<State>;

/// The server's state, shared by every request.
pub(crate) struct State {
    pub registry: Registry,
    pub current: ArcSwap<Current>,
    /// Compiled prompts by id and version commit: a version's content never changes, so they
    /// outlive the snapshot that compiled them.
    compiled: Mutex<Bounded<(String, ObjectId), Arc<CompiledPrompt>>>,
    /// Response bodies of immutable representations (a prompt at one version), by ETag.
    bodies: Mutex<Bounded<Box<str>, axum::body::Bytes>>,
    pub metrics: Metrics,
    pub tokens: Option<Tokens>,
    /// Whether the write routes are on (`--allow-writes`).
    pub allow_writes: bool,
    /// The judge model of the analysis routes, when they are on (`--analyses`).
    pub analyst: Option<Analyst>,
    /// The change events of the snapshots swapped in.
    pub events: crate::serve::events::Events,
    /// The remote followed, if any, and how its fetches go.
    pub following: Option<crate::serve::follow::Following>,
    /// A tip that failed to load, not tried again until the tip moves.
    failed_tip: Mutex<Option<(String, String)>>,
    /// Writes go one at a time.
    pub write_lock: Mutex<()>,
    /// Snapshots are built one at a time: the tip poll, the follower and the writes all
    /// refresh, and two builds of the same tip would do the work twice and publish its event
    /// twice, while an older build finishing last would swap a newer snapshot out.
    refreshing: Mutex<()>,
    /// Where the registry is, for `/readyz`.
    pub root: String,
    /// Whether the web UI is served (its pages then have their own sign-in).
    pub ui: bool,
}

/// How far back a replica looks for a commit that loads when its remote's tip does not.
const LOOK_BACK: usize = 100;

/// The newest first-parent ancestor of the registry's tip that loads, and the tip's failure
/// (as the server reports it while degraded). `err` is why the tip itself did not load.
fn last_good(registry: &Registry, err: Error) -> Result<(Current, Option<(String, String)>)> {
    let Some(tip) = registry.current_tip()? else {
        return Err(err);
    };
    let mut next = tip;
    for _ in 0..LOOK_BACK {
        let parent = {
            let Some(repo) = registry.repo() else {
                return Err(err);
            };
            let objects = repo.objects()?;
            let links = objects.commit_links(next)?;
            links.first_parent
        };
        let Some(parent) = parent else {
            break;
        };
        next = parent;
        if let Ok(current) = Current::load(&registry.at_rev(&parent.to_string()), None) {
            let why = format!(
                "commit {} does not load: {err}; serving {}, the newest commit before it that does",
                tip.short(),
                parent.short()
            );
            return Ok((current, Some((tip.to_string(), why))));
        }
    }
    Err(err)
}

impl State {
    pub(crate) fn new(
        registry: Registry,
        tokens: Option<Tokens>,
        allow_writes: bool,
        follow: Option<crate::serve::follow::Follow>,
        metrics: Metrics,
        analyst: Option<Analyst>,
        max_event_streams: usize,
    ) -> Result<State> {
        let started = Instant::now();
        let (current, failed) = match Current::load(&registry, None) {
            Ok(current) => (current, None),
            // A replica whose remote's tip does not load starts from the newest commit before
            // it that does, and says so: replicas can restart and scale out while someone fixes
            // the remote.
            Err(err) if follow.is_some() => last_good(&registry, err)?,
            Err(err) => return Err(err),
        };
        metrics.snapshot(&current.commit, None, started.elapsed());
        metrics.degraded(failed.is_some());
        Ok(State {
            root: registry.root().display().to_string(),
            registry,
            current: ArcSwap::from_pointee(current),
            compiled: Mutex::new(Bounded::new(MAX_COMPILED, MAX_COMPILED_BYTES)),
            bodies: Mutex::new(Bounded::new(MAX_COMPILED, MAX_BODY_BYTES)),
            metrics,
            tokens,
            allow_writes,
            analyst,
            events: crate::serve::events::Events::new(max_event_streams),
            following: follow.map(crate::serve::follow::Following::new),
            failed_tip: Mutex::new(failed),
            write_lock: Mutex::new(()),
            refreshing: Mutex::new(()),
            ui: false,
        })
    }

    /// The state with the web UI on or off.
    pub(crate) fn with_ui(self, ui: bool) -> State {
        State { ui, ..self }
    }

    /// Loads a new snapshot when the tip moved; `Ok(true)` when it swapped one in.
    pub(crate) fn refresh(&self) -> Result<bool> {
        let _one_at_a_time = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.current.load();
        let tip = self.registry.current_tip()?;
        if tip.map(|t| t.to_string()).as_deref() == Some(now.commit.as_str()) {
            return Ok(false);
        }
        let started = Instant::now();
        let next = Current::load(&self.registry, Some(&now))?;
        self.metrics
            .snapshot(&next.commit, Some(&now.commit), started.elapsed());
        tracing::info!(commit = %next.commit, previous = %now.commit, took_ms = started.elapsed().as_millis() as u64, "snapshot swapped in");
        let next = Arc::new(next);
        self.current.store(next.clone());
        self.events.publish(&now, &next);
        Ok(true)
    }

    /// [`State::refresh`] for the loops: a tip that fails to load is logged once, marks the
    /// server degraded, and is not tried again until the tip moves.
    pub(crate) fn refresh_logged(&self) {
        let tip = match self.registry.current_tip() {
            Ok(tip) => tip.map(|t| t.to_string()).unwrap_or_default(),
            Err(err) => {
                self.set_failed(String::new(), format!("the tip cannot be read: {err}"));
                return;
            }
        };
        let known_bad = self.failed().as_ref().is_some_and(|(bad, _)| *bad == tip);
        if known_bad {
            return;
        }
        match self.refresh() {
            Ok(_) => *self.failed() = None,
            Err(err) => {
                tracing::warn!(tip = %tip, error = %err, "the new tip does not load; still serving the last snapshot");
                let short =
                    crate::git::oid::ObjectId::from_hex(&tip).map_or(tip.clone(), |t| t.short());
                self.set_failed(tip, format!("commit {short} does not load: {err}"));
            }
        }
        self.metrics.degraded(self.degraded().is_some());
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Option<(String, String)>> {
        self.failed_tip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_failed(&self, tip: String, why: String) {
        *self.failed() = Some((tip, why));
    }

    /// Why the server serves an older snapshot than it should, if it does.
    pub(crate) fn degraded(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if let Some(following) = &self.following {
            if let Some(err) = &following.health().fetch_error {
                reasons.push(format!(
                    "fetching {} failed: {err}",
                    following.follow.remote
                ));
            }
        }
        if let Some((_, why)) = self.failed().as_ref() {
            reasons.push(why.clone());
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The compiled prompt `id` as `resolved` names it in `current`.
    pub(crate) fn compiled(
        &self,
        current: &Current,
        id: &str,
        resolved: &Resolved,
    ) -> Result<Arc<CompiledPrompt>> {
        let commit = match resolved {
            Resolved::Version { commit, .. } | Resolved::Tip { commit } => *commit,
            Resolved::Work => current.snapshot.commit(),
        };
        let key = (id.to_string(), commit);
        if let Some(found) = self.kept().get(&key) {
            return Ok(found);
        }
        let compiled = Arc::new(
            current
                .snapshot
                .registry()
                .load_resolved(id, resolved)?
                .compile()?,
        );
        let size = compiled.footprint();
        self.kept().insert(key, compiled.clone(), size);
        Ok(compiled)
    }

    /// Whether the compiled prompt `id` as `resolved` names it is kept: answering from it needs
    /// no git read and no compile.
    pub(crate) fn is_compiled(&self, current: &Current, id: &str, resolved: &Resolved) -> bool {
        self.kept_compiled(current, id, resolved).is_some()
    }

    /// The version compiled before, if it was.
    pub(crate) fn kept_compiled(
        &self,
        current: &Current,
        id: &str,
        resolved: &Resolved,
    ) -> Option<Arc<CompiledPrompt>> {
        let commit = match resolved {
            Resolved::Version { commit, .. } | Resolved::Tip { commit } => *commit,
            Resolved::Work => current.snapshot.commit(),
        };
        self.kept().get(&(id.to_string(), commit))
    }

    /// The body kept for `etag`, or `make`'s, kept from now on. Only for representations
    /// that never change while their ETag is the same.
    pub(crate) fn body<E>(
        &self,
        etag: &str,
        make: impl FnOnce() -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<axum::body::Bytes, E> {
        let lock = || {
            self.bodies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(found) = lock().get(etag) {
            return Ok(found);
        }
        let bytes = axum::body::Bytes::from(make()?);
        lock().insert(etag.into(), bytes.clone(), bytes.len());
        Ok(bytes)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Bounded<(String, ObjectId), Arc<CompiledPrompt>>> {
        // A cache: a panic while it was held leaves it usable.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The judge model the analyses run on, and how many may run at once.
pub(crate) struct Analyst {
    client: Arc<CachedClient>,
    slots: Arc<tokio::sync::Semaphore>,
    /// The compiled judge and the criteria of each analysis, by the commit they were read
    /// from: they change only with a commit, and compiling them is not per request.
    judges: Mutex<HashMap<(&'static str, ObjectId), Arc<Judge>>>,
    /// Analyses running or waiting for a slot; past [`Analyst::MAX_QUEUED`] per slot, one
    /// more is told to come back rather than hold a connection in an endless queue.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    jobs: usize,
}

/// One admitted analysis, counted until it is dropped.
pub(crate) struct Admitted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A judge prompt, compiled, with the score criteria it is given.
pub(crate) struct Judge {
    pub prompt: CompiledPrompt,
    pub criteria: Vec<serde_json::Value>,
}

impl Analyst {
    pub(crate) fn new(client: Arc<CachedClient>) -> Analyst {
        let jobs = client.client().config().jobs.max(1);
        Analyst {
            client,
            slots: Arc::new(tokio::sync::Semaphore::new(jobs)),
            judges: Mutex::new(HashMap::new()),
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            jobs,
        }
    }

    /// Analyses admitted per slot (running or waiting).
    pub(crate) const MAX_QUEUED: usize = 4;

    /// Admits one more analysis, or `None` when `jobs` × [`Analyst::MAX_QUEUED`] are in.
    pub(crate) fn admit(&self) -> Option<Admitted> {
        use std::sync::atomic::Ordering;
        let most = self.jobs.saturating_mul(Analyst::MAX_QUEUED);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(self.in_flight.clone()))
    }

    /// The judge of `analysis` at `commit`, made by `load` the first time.
    pub(crate) fn judge(
        &self,
        analysis: &'static str,
        commit: ObjectId,
        load: impl FnOnce() -> Result<Judge>,
    ) -> Result<Arc<Judge>> {
        let kept = || {
            self.judges
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(found) = kept().get(&(analysis, commit)) {
            return Ok(found.clone());
        }
        let judge = Arc::new(load()?);
        let mut judges = kept();
        // A few analyses of the commits served lately; older ones are made again if asked.
        if judges.len() >= 64 {
            judges.clear();
        }
        judges.insert((analysis, commit), judge.clone());
        Ok(judge)
    }

    /// The client, cached by content.
    pub(crate) fn client(&self) -> Arc<CachedClient> {
        self.client.clone()
    }

    /// Waits for one of the `jobs` slots.
    pub(crate) async fn slot(
        &self,
    ) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError> {
        self.slots.clone().acquire_owned().await
    }

    /// The longest an analysis may take: every try of the request, their back-offs, and a
    /// margin for the render.
    pub(crate) fn budget(&self) -> Duration {
        let config = self.client.client().config();
        let tries = config.retries.saturating_add(1);
        config
            .timeout
            .saturating_add(config.max_wait)
            .saturating_mul(tries)
            .saturating_add(Duration::from_secs(10))
    }
}
