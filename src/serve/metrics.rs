//! `/metrics` in Prometheus text format: requests by route and status, latency, and the
//! snapshot being served. The registry of metrics belongs to the server, not to the process.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The server's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    commit: IntGaugeVec,
    snapshot_loaded: Gauge,
    build_seconds: Gauge,
    swaps: IntCounter,
    fetches: IntCounterVec,
    degraded: Gauge,
    streams: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "promptreg_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "promptreg_http_request_duration_seconds",
                "Time to answer, by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["route"],
        )?;
        let commit = IntGaugeVec::new(
            Opts::new(
                "promptreg_snapshot_commit_info",
                "The commit being served (1 for the current one)",
            ),
            &["commit"],
        )?;
        let snapshot_loaded = Gauge::new(
            "promptreg_snapshot_loaded_timestamp_seconds",
            "When the snapshot being served was loaded (its age is time() minus this)",
        )?;
        let build_seconds = Gauge::new(
            "promptreg_snapshot_build_seconds",
            "How long the last snapshot (version index included) took to build",
        )?;
        let swaps = IntCounter::new(
            "promptreg_snapshot_swaps_total",
            "Snapshots swapped in after the history moved",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(commit.clone()))?;
        registry.register(Box::new(snapshot_loaded.clone()))?;
        registry.register(Box::new(build_seconds.clone()))?;
        registry.register(Box::new(swaps.clone()))?;
        let fetches = IntCounterVec::new(
            Opts::new(
                "promptreg_follow_fetches_total",
                "Fetches of the followed remote, by result",
            ),
            &["result"],
        )?;
        let degraded = Gauge::new(
            "promptreg_degraded",
            "1 while an older snapshot is served than should be (a fetch or a tip failed)",
        )?;
        let streams = Gauge::new(
            "promptreg_event_streams_open",
            "Event streams (GET /v1/events) open now",
        )?;
        registry.register(Box::new(fetches.clone()))?;
        registry.register(Box::new(degraded.clone()))?;
        registry.register(Box::new(streams.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            commit,
            snapshot_loaded,
            build_seconds,
            swaps,
            fetches,
            degraded,
            streams,
        })
    }

    pub(crate) fn request(
        &self,
        route: &str,
        method: &str,
        status: axum::http::StatusCode,
        took: Duration,
    ) {
        // Labels come from fixed sets: a client's made-up method would be a new series each.
        let method = method_label(method);
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }

    /// A snapshot was loaded: which commit, when, and how long it took.
    pub(crate) fn snapshot(&self, commit: &str, previous: Option<&str>, took: Duration) {
        if let Some(previous) = previous {
            let _ = self.commit.remove_label_values(&[previous]);
            self.swaps.inc();
        }
        self.commit.with_label_values(&[commit]).set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.snapshot_loaded.set(now);
        self.build_seconds.set(took.as_secs_f64());
    }

    /// A fetch of the followed remote ended.
    pub(crate) fn fetch(&self, ok: bool) {
        self.fetches
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Whether the server is degraded.
    pub(crate) fn degraded(&self, degraded: bool) {
        self.degraded.set(if degraded { 1.0 } else { 0.0 });
    }

    /// How many event streams are open.
    pub(crate) fn streams(&self, open: usize) {
        self.streams.set(open as f64);
    }

    /// Every metric, in the text format.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `method` label of a request: one of the methods the routes answer, or `OTHER`.
pub(crate) fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod method_tests {
    #[test]
    fn made_up_methods_share_one_label() {
        use crate::serve::metrics::method_label;
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("DELETE"), "DELETE");
        assert_eq!(method_label("FOO"), "OTHER");
        assert_eq!(method_label("get"), "OTHER");
    }
}
