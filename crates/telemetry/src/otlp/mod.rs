//! wasmlens's own path for spans over OTLP HTTP/protobuf, the default protocol.
//!
//! The SDK's exporter converts every span of a batch into opentelemetry-proto's messages
//! (a `String` for every key and value) and prost then sizes each nested message again
//! at every level above it: about 40,000 instructions for a request's four spans, most
//! of what full telemetry costs a request. [`encode`] writes the same bytes straight from
//! the SDK's spans, into a buffer kept between batches, with the resource and each scope
//! encoded once; [`exporter`] sends them as opentelemetry-otlp's HTTP exporter does. Spans
//! are still the SDK's (sampler, ids, limits, processors); they reach the exporter through
//! `crate::shared_batch`, which batches as the SDK does and shares each span with the
//! built-in view. gRPC and HTTP/JSON keep the SDK's exporter.

mod encode;
mod exporter;

pub(crate) use exporter::HttpSpanExporter;

#[cfg(test)]
mod tests;
