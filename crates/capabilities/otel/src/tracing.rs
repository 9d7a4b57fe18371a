//! wasi:otel's tracing: the invocation's context for the guest, and the guest's ended
//! spans recorded through the host's tracer provider with their own ids and times.

use crate::bindings::wasi::otel::{tracing as wit, types};
use crate::{OtelCtxView, convert};
use opentelemetry::trace::{Event, Link, SpanBuilder, TraceContextExt as _, TraceState};
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
pub fn link_renamed_context_function<T: 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    let mut tracing = linker.instance("wasi:otel/tracing@0.2.0-rc.2")?;
    tracing.func_wrap("current-span-context", |_, (): ()| Ok((current_context(),)))?;
    Ok(())
}

impl types::Host for OtelCtxView<'_> {}

impl wit::Host for OtelCtxView<'_> {
    /// The host records a span when it ends: nothing to do until then.
    fn on_start(&mut self, _: wit::SpanContext) {}

    fn on_end(&mut self, span: wit::SpanData) {
        let state = &mut *self.0;
        let Some(grant) = &state.grant else { return };
        if state.spans >= crate::MAX_SPANS {
            grant.dropped_spans.add(1);
            return;
        }
        state.spans += 1;
        let context = &span.span_context;
        let (Some(trace_id), Some(span_id)) = (
            convert::trace_id(&context.trace_id),
            convert::span_id(&context.span_id),
        ) else {
            grant.dropped_spans.add(1);
            return;
        };
        let flags = convert::flags(context.trace_flags);
        if !flags.is_sampled() {
            return; // The guest chose not to record it.
        }
        // Its parent, in its trace: the invocation for a guest's outermost span.
        let parent = match convert::span_id(&span.parent_span_id) {
            Some(parent) => {
                Context::new().with_remote_span_context(opentelemetry::trace::SpanContext::new(
                    trace_id,
                    parent,
                    flags,
                    false,
                    TraceState::default(),
                ))
            }
            None => Context::new(),
        };
        let (mut attributes, _) = convert::attributes(span.attributes);
        attributes.push(KeyValue::new(
            attr::COMPONENT_ID,
            Value::from(StringValue::from(grant.component_id.clone())),
        ));
        let events = span
            .events
            .into_iter()
            .take(convert::MAX_ITEMS)
            .map(|event| {
                let (attributes, dropped) = convert::attributes(event.attributes);
                Event::new(event.name, convert::time(event.time), attributes, dropped)
            });
        let links = span
            .links
            .into_iter()
            .take(convert::MAX_ITEMS)
            .filter_map(|link| {
                let (attributes, dropped) = convert::attributes(link.attributes);
                Some(Link::new(
                    convert::span_context(&link.span_context)?,
                    attributes,
                    dropped,
                ))
            });
        let builder = SpanBuilder::from_name(span.name)
            .with_kind(convert::kind(span.span_kind))
            .with_start_time(convert::time(span.start_time))
            .with_attributes(attributes)
            .with_events(events.collect())
            .with_links(links.collect());
        let status = convert::status(span.status);
        let end = convert::time(span.end_time);
        grant.scope(span.instrumentation_scope, |scope| {
            let tracer = &scope.tracer;
            let mut started = ids::start_with_ids(trace_id, span_id, || {
                builder.start_with_context(tracer, &parent)
            });
            opentelemetry::trace::Span::set_status(&mut started, status);
            opentelemetry::trace::Span::end_with_timestamp(&mut started, end);
        });
    }

    fn outer_span_context(&mut self) -> wit::SpanContext {
        current_context()
    }
}
