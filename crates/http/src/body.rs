//! The response body, watched: when its last frame is sent (or the client goes away),
//! the request is over, so `HttpRequest` ends and its duration is recorded then, not
//! when the guest merely set the headers.

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use wasmlens_telemetry::Instruments;
/// What the guest streams back, or what the host writes itself.
pub type ResponseBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A body made of one buffer, for responses the host writes itself.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What to do when the request is over: end the span, record the duration.
pub struct RequestEnd {
    pub cx: Context,
    pub started: Instant,
    pub instruments: Arc<Instruments>,
    pub duration_attrs: Vec<KeyValue>,
}

impl RequestEnd {
    fn finish(self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.instruments
            .http_server_request_duration
            .record(elapsed, &self.duration_attrs);
        self.cx.span().end();
    }
}

pub struct ObservedBody {
    inner: ResponseBody,
    end: Option<RequestEnd>,
}

impl ObservedBody {
    pub fn new(inner: ResponseBody, end: RequestEnd) -> Self {
        ObservedBody {
            inner,
            end: Some(end),
        }
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            && let Some(end) = self.end.take()
        {
            end.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    /// The client went away, or hyper dropped the body without polling its end (as it
    /// does for a body known to be empty): the request is over all the same.
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end.finish();
        }
    }
}
