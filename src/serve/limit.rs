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
