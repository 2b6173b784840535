//! The blocking pool that git reads, compiles and renders run on: a few at a time (two per
//! core), under the request's time limit, so the async workers stay free to answer everything
//! else (`/healthz` answers while hostile renders run).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::serve::http::Problem;

/// Runs `work` (git reads, compiles, renders) on the blocking pool, a few at a time, under the
/// render limit: a 503 when no slot frees up in that time, a 408 when the work does not
/// finish in what is left of it.
pub(crate) async fn on_pool(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    run(work).await.unwrap_or_else(|answer| answer)
}

/// [`on_pool`] for work whose answer is not a response yet (a page's diff or findings): its
/// value, or the answer (503 busy with `Retry-After`, 408, 500) to give instead.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    let started = std::time::Instant::now();
    let limit = render_limit();
    let Ok(Ok(permit)) = tokio::time::timeout(limit, renders().clone().acquire_owned()).await
    else {
        return Err(busy());
    };
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    });
    match tokio::time::timeout(limit.saturating_sub(started.elapsed()), work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the work stopped: {err}"),
        )
        .into_response()),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the answer did not finish within {} ms", limit.as_millis()),
        )
        .into_response()),
    }
}

/// How long a render may take, waiting for a slot included: the request's time limit.
/// `PROMPTREG_TEST_RENDER_LIMIT_MS` shortens it, so that the test suite can reach the 408 and
/// the 503 with renders that take a fraction of a second.
fn render_limit() -> std::time::Duration {
    static LIMIT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("PROMPTREG_TEST_RENDER_LIMIT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(
                crate::serve::http::REQUEST_TIMEOUT,
                std::time::Duration::from_millis,
            )
    })
}

/// The renders that may run at once: two per core.
fn renders() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static RENDERS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    RENDERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        std::sync::Arc::new(tokio::sync::Semaphore::new(cores * 2))
    })
}

/// The answer when every render slot stayed taken for the whole time limit.
fn busy() -> Response {
    crate::serve::http::unavailable(
        "too-many-renders",
        "every render slot stayed taken; try again",
        None,
        "1",
    )
}
