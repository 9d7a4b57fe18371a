//! The host's own spans (a request's, an instance's, a plugin call's), started and ended
//! without the SDK's tracer in between. The SDK's `Span` carries its tracer (two shared
//! pointers to count), asks every processor `on_start`, takes attributes its callers
//! built before the sampler decided, and at its end moves its data into a new `SpanData`,
//! which the export queue then moves again into an `Arc`. A [`HostSpan`] asks the sampler
//! first, and keeps its data in the `Arc` that the export queue and the view will hold
//! (see `crate::fan_out`). Otherwise it does what the SDK's span does, in the same order
//! and with the same sampler, ids, limits and processors, so that what the exporters and
//! the view receive is the `SpanData` the SDK would have made: `tests` start the same
//! spans both ways and compare them.
//!
//! Where it differs, on purpose:
//! - processors are not asked `on_start` (wasmlens's do nothing there; a processor that
//!   needs it would see only the SDK tracer's spans, a guest's);
//! - where there is no processor, a span is never recording (the SDK's records, then
//!   drops what it recorded at the end); it is still sampled, so that the sampled flag
//!   passes on. With no processor, the provider's shutdown is not seen here: spans
//!   started after it still carry a trace context.
//! - samplers are shown no attributes or links: none of the SDK's reads them, and
//!   wasmlens offers no other.
//!
//! It reaches the `Context` as any span does (`Context::with_span`), so `tracing`'s
//! correlation, the propagators and the spans started under it work unchanged.

use crate::fan_out::FanOut;
use crate::ids::PresetIdGenerator;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    IdGenerator as _, Sampler, SamplingDecision, ShouldSample as _, SpanData, SpanEvents,
    SpanLimits, SpanLinks, SpanProcessor,
};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// The span processors, shared by the SDK's provider (for the spans its tracers start:
/// a guest's, through wasi:otel) and the host's tracer. The provider owns one of these;
/// its shutdown closes the processors to host spans as the provider's own flag closes
/// them to its spans.
#[derive(Debug, Clone)]
pub(crate) struct SharedProcessors(Arc<Processors>);

#[derive(Debug)]
struct Processors {
    fan_out: FanOut,
    closed: AtomicBool,
}

impl SharedProcessors {
    /// `fan_out` with the resource already set: the provider's `set_resource` cannot
    /// reach processors that are shared.
    pub fn new(mut fan_out: FanOut, resource: &Resource) -> Self {
        fan_out.set_resource(resource);
        SharedProcessors(Arc::new(Processors {
            fan_out,
            closed: AtomicBool::new(false),
        }))
    }

    fn is_empty(&self) -> bool {
        self.0.fan_out.is_empty()
    }
}

impl SpanProcessor for SharedProcessors {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.0.fan_out.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.fan_out.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.fan_out.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.closed.store(true, Ordering::Release);
        self.0.fan_out.shutdown_with_timeout(timeout)
    }

    /// Set once, at [`SharedProcessors::new`] (the pipeline gives it the provider's).
    fn set_resource(&mut self, _: &Resource) {}
}

/// Starts the host's spans; cheap to clone.
#[derive(Clone, Debug)]
pub struct HostTracer(Arc<Tracer>);

#[derive(Debug)]
struct Tracer {
    sampler: Sampler,
    ids: PresetIdGenerator,
    limits: SpanLimits,
    scope: InstrumentationScope,
    /// `None` when spans go nowhere: spans are then never recorded, only sampled (so that
    /// the sampled flag passes on to the services downstream).
    processors: Option<SharedProcessors>,
}

/// What a host span is: its name, kind, and the id it takes if it was drawn before it
/// started (see [`crate::ids`]).
#[derive(Clone, Debug)]
pub struct SpanStart {
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub span_id: Option<SpanId>,
}

impl SpanStart {
    pub fn new(name: impl Into<Cow<'static, str>>, kind: SpanKind) -> Self {
        SpanStart {
            name: name.into(),
            kind,
            span_id: None,
        }
    }

    pub fn with_span_id(self, span_id: SpanId) -> Self {
        SpanStart {
            span_id: Some(span_id),
            ..self
        }
    }
}

impl HostTracer {
    /// The processors' tracer for `scope`, sampling with `sampler` and within `limits`,
    /// as the provider that shares `processors` is configured.
    pub(crate) fn new(
        scope: InstrumentationScope,
        sampler: Sampler,
        limits: SpanLimits,
        processors: Option<SharedProcessors>,
    ) -> Self {
        HostTracer(Arc::new(Tracer {
            sampler,
            ids: PresetIdGenerator::default(),
            limits,
            scope,
            processors: processors.filter(|p| !p.is_empty()),
        }))
    }

    /// Starts a span under `parent` as the SDK's tracer would. `attributes` is called only
    /// if the span is recorded: the sampler decides first.
    pub fn start(
        &self,
        parent: &Context,
        start: SpanStart,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> HostSpan {
        let tracer = &self.0;
        let closed = tracer
            .processors
            .as_ref()
            .is_some_and(|p| p.0.closed.load(Ordering::Acquire));
        if parent.is_telemetry_suppressed() || closed {
            return HostSpan::empty();
        }
        let span_id = start.span_id.unwrap_or_else(|| tracer.ids.new_span_id());
        let parent_span = parent.span();
        let parent_context = Some(parent_span.span_context()).filter(|sc| sc.is_valid());
        let trace_id = match parent_context {
            Some(sc) => sc.trace_id(),
            None => tracer.ids.new_trace_id(),
        };
        let sampling = tracer.sampler.should_sample(
            Some(parent),
            trace_id,
            &start.name,
            &start.kind,
            &[],
            &[],
        );
        let parent_flags = parent_context.map_or(TraceFlags::default(), |sc| sc.trace_flags());
        let sampled = match sampling.decision {
            SamplingDecision::RecordAndSample => true,
            SamplingDecision::RecordOnly => false,
            SamplingDecision::Drop => {
                let sc = SpanContext::new(
                    trace_id,
                    span_id,
                    TraceFlags::default(),
                    false,
                    sampling.trace_state,
                );
                return HostSpan::not_recorded(sc);
            }
        };
        let span_context = SpanContext::new(
            trace_id,
            span_id,
            parent_flags.with_sampled(sampled),
            false,
            sampling.trace_state,
        );
        if tracer.processors.is_none() {
            return HostSpan::not_recorded(span_context);
        }
        let mut attributes = attributes();
        attributes.extend(sampling.attributes);
        let limit = tracer.limits.max_attributes_per_span as usize;
        let dropped_attributes_count = attributes.len().saturating_sub(limit) as u32;
        attributes.truncate(limit);
        let start_time = opentelemetry::time::now();
        let data = SpanData {
            span_context: span_context.clone(),
            parent_span_id: parent_context.map_or(SpanId::INVALID, |sc| sc.span_id()),
            parent_span_is_remote: parent_context.is_some_and(|sc| sc.is_remote()),
            span_kind: start.kind,
            name: start.name,
            start_time,
            end_time: start_time,
            attributes,
            dropped_attributes_count,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: tracer.scope.clone(),
        };
        HostSpan {
            span_context,
            recording: Some(Recording {
                data: Arc::new(data),
                tracer: self.0.clone(),
            }),
        }
    }
}

/// A span of the host's, recording until it ends (explicitly, or when dropped).
#[derive(Debug)]
pub struct HostSpan {
    span_context: SpanContext,
    recording: Option<Recording>,
}

#[derive(Debug)]
struct Recording {
    /// Behind an `Arc` from the start, as the export queue and the view keep it: it
    /// reaches them without a copy. No one else holds it until the span ends.
    data: Arc<SpanData>,
    tracer: Arc<Tracer>,
}

impl HostSpan {
    fn empty() -> Self {
        Self::not_recorded(SpanContext::empty_context())
    }

    fn not_recorded(span_context: SpanContext) -> Self {
        HostSpan {
            span_context,
            recording: None,
        }
    }

    /// The span's data and its tracer, while it records.
    fn recording(&mut self) -> Option<(&mut SpanData, &Tracer)> {
        let recording = self.recording.as_mut()?;
        let data = Arc::get_mut(&mut recording.data);
        debug_assert!(data.is_some(), "a span's data is shared only once it ended");
        Some((data?, &recording.tracer))
    }

    fn end_now(&mut self, timestamp: Option<SystemTime>) {
        let Some(Recording { mut data, tracer }) = self.recording.take() else {
            return;
        };
        let end = Arc::get_mut(&mut data);
        debug_assert!(end.is_some(), "a span's data is shared only once it ended");
        let (Some(processors), Some(end)) = (&tracer.processors, end) else {
            return;
        };
        if processors.0.closed.load(Ordering::Acquire) {
            return;
        }
        match timestamp {
            Some(timestamp) => end.end_time = timestamp,
            None if end.end_time == end.start_time => {
                end.end_time = opentelemetry::time::now();
            }
            None => {}
        }
        processors.0.fan_out.on_end_shared(data);
    }
}

impl Drop for HostSpan {
    fn drop(&mut self) {
        self.end_now(None);
    }
}

/// As the SDK's span does each, limits included.
impl opentelemetry::trace::Span for HostSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        mut attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let Some((data, tracer)) = self.recording() else {
            return;
        };
        let limits = &tracer.limits;
        let (per_span, per_event) = (limits.max_events_per_span, limits.max_attributes_per_event);
        let events = &mut data.events;
        match admit(events.events.len(), per_span, &mut attributes, per_event) {
            Some(dropped) => events
                .events
                .push(Event::new(name, timestamp, attributes, dropped)),
            None => events.dropped_count += 1,
        }
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        let Some((data, tracer)) = self.recording() else {
            return;
        };
        if data.attributes.len() < tracer.limits.max_attributes_per_span as usize {
            data.attributes.push(attribute);
        } else {
            data.dropped_attributes_count += 1;
        }
    }

    fn set_status(&mut self, status: Status) {
        if let Some((data, _)) = self.recording()
            && status > data.status
        {
            data.status = status;
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some((data, _)) = self.recording() {
            data.name = new_name.into();
        }
    }

    fn add_link(&mut self, span_context: SpanContext, mut attributes: Vec<KeyValue>) {
        let Some((data, tracer)) = self.recording() else {
            return;
        };
        let limits = &tracer.limits;
        let (per_span, per_link) = (limits.max_links_per_span, limits.max_attributes_per_link);
        let links = &mut data.links;
        match admit(links.links.len(), per_span, &mut attributes, per_link) {
            Some(dropped) => links
                .links
                .push(Link::new(span_context, attributes, dropped)),
            None => links.dropped_count += 1,
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.end_now(Some(timestamp));
    }
}

/// Whether one more event or link fits beside the `count` a span has, within `limit`:
/// if so, its `attributes` are cut to `attribute_limit`, and how many were cut is the
/// answer (the SDK's span counts them so).
fn admit(
    count: usize,
    limit: u32,
    attributes: &mut Vec<KeyValue>,
    attribute_limit: u32,
) -> Option<u32> {
    if count >= limit as usize {
        return None;
    }
    let dropped = attributes.len().saturating_sub(attribute_limit as usize);
    attributes.truncate(attribute_limit as usize);
    Some(dropped as u32)
}

#[cfg(test)]
mod tests;
