//! A route's time limit: a request not answered within it is answered with a status (408, or
//! 504 for an analysis) and its handler dropped.
//!
//! Like `tower_http::timeout`, except that the timer is only started for a request that is not
//! answered at its first poll: most reads are answered at once from a snapshot's kept answers,
//! and registering and dropping a timer for each of them was about a twentieth of the server's
//! CPU under load. The deadline still counts from the request's arrival.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response, StatusCode};
use tokio::time::{Instant, Sleep};

/// The layer: each request gets `limit`, then `status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    limit: Duration,
    status: StatusCode,
}

impl Limit {
    pub(crate) fn new(status: StatusCode, limit: Duration) -> Self {
        Limit { limit, status }
    }
}

impl<S> tower::Layer<S> for Limit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            limit: *self,
        }
    }
}

/// A service under a [`Limit`].
#[derive(Debug, Clone)]
pub(crate) struct Limited<S> {
    inner: S,
    limit: Limit,
}

impl<S, A, B> tower::Service<Request<A>> for Limited<S>
where
    S: tower::Service<Request<A>, Response = Response<B>>,
    B: Default,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<A>) -> Self::Future {
        Answer {
            inner: self.inner.call(request),
            deadline: Instant::now() + self.limit.limit,
            sleep: None,
            status: self.limit.status,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Limited`] service: the inner answer, or `status` at the deadline.
    pub(crate) struct Answer<F> {
        #[pin]
        inner: F,
        deadline: Instant,
        // Made at the first poll that finds the inner answer not ready.
        sleep: Option<Pin<Box<Sleep>>>,
        status: StatusCode,
    }
}

impl<F, B, E> Future for Answer<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        let deadline = *this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let mut response = Response::new(B::default());
                *response.status_mut() = *this.status;
                Poll::Ready(Ok(response))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn run<T>(future: impl Future<Output = T>) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(future),
            Err(e) => panic!("no runtime: {e}"),
        }
    }

    fn answer(status: StatusCode) -> Result<Response<String>, std::convert::Infallible> {
        let mut response = Response::new(String::from("answered"));
        *response.status_mut() = status;
        Ok(response)
    }

    #[test]
    fn an_answer_ready_at_once_is_answered_even_with_no_time_at_all() {
        let limit = Limit::new(StatusCode::REQUEST_TIMEOUT, Duration::ZERO);
        let service = limit.layer(tower::service_fn(|_: Request<()>| async {
            answer(StatusCode::OK)
        }));
        let got = run(service.oneshot(Request::new(())));
        let got = got.map(|r| (r.status(), r.into_body()));
        assert_eq!(got, Ok((StatusCode::OK, "answered".to_string())));
    }

    #[test]
    fn an_answer_that_never_comes_is_the_status_at_the_deadline() {
        let limit = Limit::new(StatusCode::GATEWAY_TIMEOUT, Duration::from_millis(30));
        let mut service = limit.layer(tower::service_fn(|_: Request<()>| async {
            std::future::pending::<()>().await;
            answer(StatusCode::OK)
        }));
        let got = run(service.call(Request::new(())));
        let got = got.map(|r| (r.status(), r.into_body()));
        assert_eq!(got, Ok((StatusCode::GATEWAY_TIMEOUT, String::new())));
    }

    #[test]
    fn an_answer_that_waits_within_the_limit_is_answered() {
        let limit = Limit::new(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(600));
        let service = limit.layer(tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            answer(StatusCode::CREATED)
        }));
        let got = run(service.oneshot(Request::new(())));
        assert_eq!(got.map(|r| r.status()), Ok(StatusCode::CREATED));
    }
}
