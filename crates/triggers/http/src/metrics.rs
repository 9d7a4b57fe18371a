//! The HTTP server's metrics (`http.server.request.duration`, `http.requests`,
//! `http.server.active_requests`), bound to their attribute sets the first time a set
//! is seen: a request's measurements then go straight to their series, where the SDK
//! would otherwise hash the attributes and look them up for each one.

use opentelemetry::metrics::{BoundCounter, BoundHistogram, BoundUpDownCounter};
use opentelemetry::{KeyValue, StringValue};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use wasmlens_telemetry::names::{attr, url_scheme};
use wasmlens_telemetry::{KnownMethod, Telemetry};

/// Attribute sets bound per route: enough for the answers a route gives day to day
/// (`GET 200`, `GET 304`, `POST 201`, a failure or two). The rarer ones go through the
/// SDK's lookup as before: a guest chooses its status codes, and a bound series lives as
/// long as the process.
const MAX_BOUND_PER_ROUTE: usize = 16;

/// The server's metrics, shared by its requests.
pub(crate) struct HttpMetrics {
    telemetry: Arc<Telemetry>,
    /// `http.server.active_requests` by method.
    active: [OnceLock<BoundUpDownCounter<i64>>; KnownMethod::COUNT],
    /// One per route, in the order of the handler's routes, then one for the requests
    /// no route serves.
    answered: Vec<Answered>,
}

/// The requests a route (or no route) answered.
struct Answered {
    /// `http.route`.
    route: Option<KeyValue>,
    series: RwLock<Vec<AnsweredSeries>>,
}

struct AnsweredSeries {
    method: KnownMethod,
    status: u16,
    error_type: Option<StringValue>,
    requests: BoundCounter<u64>,
    duration: BoundHistogram<f64>,
}

/// What a request was answered with, for its metrics.
pub(crate) struct Answer<'a> {
    /// The handler's index of the route that served it; `None` when none did.
    pub route: Option<usize>,
    pub status: u16,
    pub error_type: Option<&'a StringValue>,
    /// From its arrival until its response body was sent.
    pub seconds: f64,
}

impl HttpMetrics {
    /// `routes`: each route's `http.route`, in the handler's order.
    pub fn new(telemetry: Arc<Telemetry>, routes: impl Iterator<Item = KeyValue>) -> Self {
        let answered = routes
            .map(Some)
            .chain([None])
            .map(|route| Answered {
                route,
                series: RwLock::default(),
            })
            .collect();
        HttpMetrics {
            telemetry,
            active: Default::default(),
            answered,
        }
    }

    fn instruments(&self) -> &wasmlens_telemetry::Instruments {
        self.telemetry.instruments()
    }

    /// Counts a request in `http.server.active_requests` until the guard is dropped.
    pub fn request_started(self: &Arc<Self>, method: KnownMethod) -> ActiveRequest {
        self.active(method).add(1);
        ActiveRequest {
            metrics: self.clone(),
            method,
        }
    }

    fn active(&self, method: KnownMethod) -> &BoundUpDownCounter<i64> {
        self.active[method.index()].get_or_init(|| {
            let instruments = self.telemetry.instruments();
            instruments.http_server_active_requests.bind(&[
                KeyValue::new(attr::HTTP_REQUEST_METHOD, method.name()),
                KeyValue::new(attr::URL_SCHEME, url_scheme::HTTP),
            ])
        })
    }

    /// Records `http.server.request.duration` and counts `http.requests`.
    fn request_answered(&self, method: KnownMethod, answer: Answer<'_>) {
        let answered = &self.answered[answer.route.unwrap_or(self.answered.len() - 1)];
        let matches = |series: &AnsweredSeries| {
            series.method == method
                && series.status == answer.status
                && series.error_type.as_ref().map(StringValue::as_str)
                    == answer.error_type.map(StringValue::as_str)
        };
        let record = |series: &AnsweredSeries| {
            series.duration.record(answer.seconds);
            series.requests.add(1);
        };
        let full = {
            let bound = answered
                .series
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = bound.iter().find(|s| matches(s)) {
                return record(series);
            }
            bound.len() >= MAX_BOUND_PER_ROUTE
        };
        if !full {
            let mut bound = answered
                .series
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if !bound.iter().any(matches) && bound.len() < MAX_BOUND_PER_ROUTE {
                let series =
                    answered.with_attributes(method, &answer, |attrs, counted| AnsweredSeries {
                        method,
                        status: answer.status,
                        error_type: answer.error_type.cloned(),
                        requests: self.instruments().http_requests.bind(&attrs[..counted]),
                        duration: self.instruments().http_server_request_duration.bind(attrs),
                    });
                bound.push(series);
            }
            if let Some(series) = bound.iter().find(|s| matches(s)) {
                return record(series);
            }
        }
        answered.with_attributes(method, &answer, |attrs, counted| {
            let instruments = self.instruments();
            instruments
                .http_server_request_duration
                .record(answer.seconds, attrs);
            instruments.http_requests.add(1, &attrs[..counted]);
        });
    }
}

impl Answered {
    /// Calls `f` with `http.server.request.duration`'s attributes, of which
    /// `http.requests` takes the first `counted`.
    fn with_attributes<R>(
        &self,
        method: KnownMethod,
        answer: &Answer<'_>,
        f: impl FnOnce(&[KeyValue], usize) -> R,
    ) -> R {
        let method = KeyValue::new(attr::HTTP_REQUEST_METHOD, method.name());
        let status = KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(answer.status));
        let scheme = KeyValue::new(attr::URL_SCHEME, url_scheme::HTTP);
        let error = answer
            .error_type
            .map(|e| KeyValue::new(attr::ERROR_TYPE, e.clone()));
        match (self.route.clone(), error) {
            (Some(route), Some(error)) => f(&[method, status, route, scheme, error], 3),
            (Some(route), None) => f(&[method, status, route, scheme], 3),
            (None, Some(error)) => f(&[method, status, scheme, error], 2),
            (None, None) => f(&[method, status, scheme], 2),
        }
    }
}

/// One place in `http.server.active_requests`, from a request's arrival until it is over
/// or abandoned: hyper drops the request's future when its client goes away before the
/// response, and the count must come down then too.
pub struct ActiveRequest {
    metrics: Arc<HttpMetrics>,
    method: KnownMethod,
}

impl ActiveRequest {
    pub(crate) fn method(&self) -> KnownMethod {
        self.method
    }

    /// The request was answered: records its duration and counts it.
    pub(crate) fn answered(&self, answer: Answer<'_>) {
        self.metrics.request_answered(self.method, answer);
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.metrics.active(self.method).add(-1);
    }
}
