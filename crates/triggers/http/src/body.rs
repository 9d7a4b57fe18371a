//! The response body, watched: when its last frame is sent (or the client goes away),
//! the request is over, so `HttpRequest` ends and its duration is recorded then, not
//! when the guest merely set the headers.

use crate::metrics::{ActiveRequest, Answer};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue, StringValue};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;
use wasmlens_telemetry::ACCESS_LOG_TARGET;
use wasmlens_telemetry::names::attr;

/// What the guest streams back, or what the host writes itself.
pub type ResponseBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A body made of one buffer, for responses the host writes itself.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What to do when the request is over: end `HttpResponse` and `HttpRequest`, record
/// the request's duration and count it.
pub struct RequestEnd {
    /// `HttpRequest`'s context.
    pub request: Context,
    /// `HttpResponse`'s context, a child of `request`.
    pub response: Context,
    pub started: Instant,
    pub status: u16,
    /// The handler's index of the route that served the request, if one did.
    pub route: Option<usize>,
    pub error_type: Option<StringValue>,
    /// Held until the request is over, and dropped with it; the request's metrics are
    /// recorded through it.
    pub active: ActiveRequest,
    /// The request's path (without its query), where the access log is on.
    pub access_path: Option<String>,
}

impl RequestEnd {
    fn finish(self, body_size: u64) {
        let seconds = self.started.elapsed().as_secs_f64();
        let response = self.response.span();
        if response.is_recording() {
            response.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_STATUS_CODE,
                i64::from(self.status),
            ));
            response.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_BODY_SIZE,
                body_size as i64,
            ));
        }
        response.end();
        if let Some(path) = &self.access_path {
            self.log_access(path, seconds);
        }
        self.active.answered(Answer {
            route: self.route,
            status: self.status,
            error_type: self.error_type.as_ref(),
            seconds,
        });
        self.request.span().end();
    }
}

impl RequestEnd {
    /// One line: method, path, status, duration, and the trace to look up.
    fn log_access(&self, path: &str, seconds: f64) {
        let method = self.active.method().name();
        let span = self.request.span();
        let trace = span.span_context().trace_id();
        let trace = match trace == TraceId::INVALID {
            true => "-".to_owned(),
            false => trace.to_string(),
        };
        let (status, ms) = (self.status, seconds * 1000.0);
        tracing::info!(target: ACCESS_LOG_TARGET, "{method} {path} {status} {ms:.3} ms trace {trace}");
    }
}

pub struct ObservedBody {
    inner: ResponseBody,
    end: Option<RequestEnd>,
    /// Bytes of the body sent so far (`http.response.body.size`).
    sent: u64,
}

impl ObservedBody {
    pub fn new(inner: ResponseBody, end: RequestEnd) -> Self {
        ObservedBody {
            inner,
            end: Some(end),
            sent: 0,
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
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            && let Some(end) = self.end.take()
        {
            end.finish(self.sent);
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
            end.finish(self.sent);
        }
    }
}
