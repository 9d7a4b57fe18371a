//! The built-in telemetry view: what the pipeline's recorder keeps (recent traces, log
//! records and metric time series), served over HTTP as a page (`/`, `/traces`,
//! `/traces/{trace_id}`, `/logs`, `/workload`) and the JSON API behind it, on loopback
//! unless told otherwise.
//!
//! | path | answers |
//! |---|---|
//! | `GET /api/traces?route=&component=&status=&errors=true&min_duration_ms=&limit=` | finished traces, newest first ([`TraceSummary`]) |
//! | `GET /api/traces/{trace_id}` | one trace: its summary, spans and log records ([`TraceView`]) |
//! | `GET /api/traces/{trace_id}/otlp.json` | the trace as an OTLP/JSON export request, as a download |
//! | `GET /api/logs?component=&min_severity=&trace_id=&after=&limit=` | log records, newest first ([`LogView`]) |
//! | `GET /api/overview?resolution=1s\|10s\|1m` | per route and component, plots over the last 5 minutes or hour ([`Overview`]) |
//! | `GET /api/metrics?name=&resolution=` | every metric stream's points ([`MetricSeries`]) |
//! | `GET /api/workloads` | the workloads: components, routes, limits, grants, state ([`WorkloadView`]) |
//! | `GET /api/memory` | what the recorder holds against its bound ([`MemoryView`]) |
//!
//! [`TraceSummary`]: wasmlens_telemetry::recorder::TraceSummary
//! [`TraceView`]: wasmlens_telemetry::recorder::TraceView
//! [`LogView`]: wasmlens_telemetry::recorder::LogView
//! [`MemoryView`]: wasmlens_telemetry::recorder::MemoryView
//! [`Overview`]: wasmlens_telemetry::recorder::Overview
//! [`MetricSeries`]: wasmlens_telemetry::recorder::MetricSeries
//! [`WorkloadView`]: wasmlens_telemetry::recorder::WorkloadView

mod api;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use wasmlens_telemetry::recorder::Recorder;

/// The address the view listens on when not told: loopback, beside `serve`'s 8080.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// Serves the view on `listener` until the process ends; returns its address.
pub fn serve(listener: TcpListener, recorder: Arc<Recorder>) -> SocketAddr {
    wasmlens_telemetry::local_http::serve(listener, move |request| api::answer(&recorder, request))
}
