//! wasi:otel's tracing: the invocation's context for the guest, and the guest's ended
//! spans recorded through the host's tracer provider with their own ids and times.

use crate::bindings::wasi::otel::{tracing as wit, types};
use crate::{ON_END, ON_START, OtelCtxView, OtelGrant, SPAN_CONTEXT, convert};
use opentelemetry::trace::{
    Event, Link, Span as _, SpanBuilder, SpanContext, TraceContextExt as _, TraceState,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use wasmlens_telemetry::ids;
use wasmlens_telemetry::names::attr;
use wasmtime::component::Linker;

/// The span the guest runs in: its invocation's (the context is current while it runs).
fn current_context() -> wit::SpanContext {
    convert::to_guest(Context::current().span().span_context())
}

/// Links `current-span-context`, the name the function has had since rc.2, beside the
/// tag's `outer-span-context`, so that guests built from either WIT work.
pub fn link_renamed_context_function<T: crate::OtelView + 'static>(
    linker: &mut Linker<T>,
) -> anyhow::Result<()> {
    let mut tracing = linker.instance("wasi:otel/tracing@0.2.0-rc.2")?;
    tracing.func_wrap("current-span-context", |mut store, (): ()| {
        if let Some(grant) = &store.data_mut().otel().0.grant {
            grant.calls.count(SPAN_CONTEXT, true);
        }
        Ok((current_context(),))
    })?;
    Ok(())
}

impl types::Host for OtelCtxView<'_> {}

impl wit::Host for OtelCtxView<'_> {
    /// The host records a span when it ends: nothing to do until then.
    fn on_start(&mut self, _: wit::SpanContext) {
        if let Some(grant) = &self.0.grant {
            grant.calls.count(ON_START, true);
        }
    }

    fn on_end(&mut self, span: wit::SpanData) {
        let state = &mut *self.0;
        let Some(grant) = &state.grant else { return };
        grant.calls.count(ON_END, true);
        if state.spans >= crate::MAX_SPANS {
            grant.dropped_spans.add(1);
            return;
        }
        state.spans += 1;
        record(grant, span);
    }

    fn outer_span_context(&mut self) -> wit::SpanContext {
        if let Some(grant) = &self.0.grant {
            grant.calls.count(SPAN_CONTEXT, true);
        }
        current_context()
    }
}

/// Records a span the guest ended, with its own ids, under its parent.
fn record(grant: &OtelGrant, mut span: wit::SpanData) {
    let context = &span.span_context;
    let ids = (
        convert::trace_id(&context.trace_id),
        convert::span_id(&context.span_id),
    );
    let (Some(trace_id), Some(span_id)) = ids else {
        grant.dropped_spans.add(1);
        return;
    };
    let flags = convert::flags(context.trace_flags);
    if !flags.is_sampled() {
        return; // The guest chose not to record it.
    }
    let state = context.trace_state.iter();
    let state = state.map(|(k, v)| (k.as_str(), v.as_str()));
    let state = TraceState::from_key_value(state).unwrap_or_default();
    // Its parent, in its trace: the invocation, for a guest's outermost span.
    let parent = match convert::span_id(&span.parent_span_id) {
        Some(parent) => Context::new()
            .with_remote_span_context(SpanContext::new(trace_id, parent, flags, false, state)),
        None => Context::new(),
    };
    let Some(scope) = grant.scope(&span.instrumentation_scope) else {
        grant.dropped_spans.add(1);
        return;
    };
    let (builder, dropped) = builder(grant, &mut span);
    if dropped > 0 {
        grant.dropped_spans.add(dropped);
    }
    let mut started = ids::start_with_ids(trace_id, span_id, || {
        builder.start_with_context(&scope.tracer, &parent)
    });
    started.set_status(convert::status(span.status));
    started.end_with_timestamp(convert::time(span.end_time));
}

/// The SDK's builder for the guest's span (its name, times, attributes, events and links
/// taken out of it), and how many of its attributes, events and links were over the caps.
fn builder(grant: &OtelGrant, span: &mut wit::SpanData) -> (SpanBuilder, u64) {
    let (mut attributes, mut dropped) = convert::attributes(std::mem::take(&mut span.attributes));
    attributes.push(KeyValue::new(
        attr::COMPONENT_ID,
        Value::from(StringValue::from(grant.component_id.clone())),
    ));
    dropped += over_cap(span.events.len()) + over_cap(span.links.len());
    let mut events = Vec::with_capacity(span.events.len().min(convert::MAX_ITEMS));
    for event in std::mem::take(&mut span.events)
        .into_iter()
        .take(convert::MAX_ITEMS)
    {
        let (attributes, over) = convert::attributes(event.attributes);
        dropped += over;
        let name = convert::text(event.name);
        events.push(Event::new(
            name,
            convert::time(event.time),
            attributes,
            over,
        ));
    }
    let mut links = Vec::with_capacity(span.links.len().min(convert::MAX_ITEMS));
    for link in std::mem::take(&mut span.links)
        .into_iter()
        .take(convert::MAX_ITEMS)
    {
        let (attributes, over) = convert::attributes(link.attributes);
        dropped += over;
        match convert::span_context(&link.span_context) {
            Some(context) => links.push(Link::new(context, attributes, over)),
            None => dropped += 1,
        }
    }
    let builder = SpanBuilder::from_name(convert::text(std::mem::take(&mut span.name)))
        .with_kind(convert::kind(span.span_kind))
        .with_start_time(convert::time(span.start_time))
        .with_attributes(attributes)
        .with_events(events)
        .with_links(links);
    (builder, u64::from(dropped))
}

fn over_cap(len: usize) -> u32 {
    u32::try_from(len.saturating_sub(convert::MAX_ITEMS)).unwrap_or(u32::MAX)
}
