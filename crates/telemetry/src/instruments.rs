//! The metric instruments of the contract, created once per process.

use crate::names::metric;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// Bucket boundaries (seconds) for request and invocation durations: a wasm request is
/// served in tens of microseconds to seconds, so the buckets start at 50 µs rather than
/// at the 5 ms where the semantic conventions' advice starts.
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

pub struct Instruments {
    pub http_server_request_duration: Histogram<f64>,
    pub http_client_request_duration: Histogram<f64>,
    pub component_invocations: Counter<u64>,
}

impl Instruments {
    pub fn new(meter: &Meter) -> Self {
        Instruments {
            http_server_request_duration: meter
                .f64_histogram(metric::HTTP_SERVER_REQUEST_DURATION)
                .with_unit("s")
                .with_description(
                    "Duration of HTTP server requests, until the response body is sent",
                )
                .with_boundaries(REQUEST_DURATION_BUCKETS.to_vec())
                .build(),
            http_client_request_duration: meter
                .f64_histogram(metric::HTTP_CLIENT_REQUEST_DURATION)
                .with_unit("s")
                .with_description("Duration of a guest's outgoing HTTP requests, until the response headers arrive")
                .with_boundaries(REQUEST_DURATION_BUCKETS.to_vec())
                .build(),
            component_invocations: meter
                .u64_counter(metric::COMPONENT_INVOCATIONS)
                .with_unit("{invocation}")
                .with_description("Calls into a component export, by outcome")
                .build(),
        }
    }
}
