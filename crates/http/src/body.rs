//! The response body, watched: when its last frame is sent (or the client goes away),
//! the request is over, so `HttpRequest` ends and its duration is recorded then, not
//! when the guest merely set the headers.

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue, StringValue};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use wasmlens_telemetry::Instruments;
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
    pub method: &'static str,
    pub status: i64,
    /// `http.route`, absent when no route served the path.
    pub route: Option<KeyValue>,
    pub error_type: Option<StringValue>,
    /// Held until the request is over, and dropped with it; its instruments are the ones
    /// the request's end records into.
    pub active: ActiveRequest,
}

impl RequestEnd {
    fn finish(self, body_size: u64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let instruments = &self.active.instruments;
        let response = self.response.span();
        if response.is_recording() {
            response.set_attribute(KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, self.status));
            response.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_BODY_SIZE,
                body_size as i64,
            ));
        }
        response.end();

        // On the stack, in an order that lets `http.requests` take a prefix of
        // `http.server.request.duration`'s attributes.
        let method = KeyValue::new(attr::HTTP_REQUEST_METHOD, self.method);
        let status = KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, self.status);
        let scheme = KeyValue::new(attr::URL_SCHEME, "http");
        let error = self.error_type.map(|e| KeyValue::new(attr::ERROR_TYPE, e));
        let record = |attrs: &[KeyValue], counted: usize| {
            instruments
                .http_server_request_duration
                .record(elapsed, attrs);
            instruments.http_requests.add(1, &attrs[..counted]);
        };
        match (self.route, error) {
            (Some(route), Some(error)) => record(&[method, status, route, scheme, error], 3),
            (Some(route), None) => record(&[method, status, route, scheme], 3),
            (None, Some(error)) => record(&[method, status, scheme, error], 2),
            (None, None) => record(&[method, status, scheme], 2),
        }
        self.request.span().end();
    }
}

/// One place in `http.server.active_requests`, from a request's arrival until it is over
/// or abandoned: hyper drops the request's future when its client goes away before the
/// response, and the count must come down then too.
pub struct ActiveRequest {
    instruments: Arc<Instruments>,
    method: &'static str,
}

impl ActiveRequest {
    pub fn new(instruments: Arc<Instruments>, method: &'static str) -> Self {
        instruments
            .http_server_active_requests
            .add(1, &Self::attributes(method));
        ActiveRequest {
            instruments,
            method,
        }
    }

    fn attributes(method: &'static str) -> [KeyValue; 2] {
        [
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method),
            KeyValue::new(attr::URL_SCHEME, "http"),
        ]
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.instruments
            .http_server_active_requests
            .add(-1, &Self::attributes(self.method));
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
