//! One span processor in front of several. With more than one processor the SDK hands
//! each a copy of every ended span and drops the original. In front of them, this one
//! puts a span behind an `Arc` once for the processors that can share it (wasmlens's own:
//! the export queue and the view), and copies it only for the others (the console's),
//! the last of which gets the span itself if no one shares it.
//!
//! A host span (see `crate::host_spans`) is recorded behind an `Arc` from its start, and
//! comes here as it is, without a copy.

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::sync::Arc;
use std::time::Duration;

/// A processor that can keep a span shared with others rather than take a copy.
pub(crate) trait SharesSpans: SpanProcessor {
    fn on_end_shared(&self, span: Arc<SpanData>);
}

#[derive(Debug)]
enum Member {
    Sharing(Box<dyn SharesSpans>),
    Copying(Box<dyn SpanProcessor>),
}

impl Member {
    fn processor(&self) -> &dyn SpanProcessor {
        match self {
            Member::Sharing(p) => p.as_ref(),
            Member::Copying(p) => p.as_ref(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct FanOut {
    members: Vec<Member>,
    /// Whether any member shares spans.
    sharing: bool,
}

impl FanOut {
    /// A processor that takes spans of its own.
    pub(crate) fn push(&mut self, processor: impl SpanProcessor + 'static) {
        self.members.push(Member::Copying(Box::new(processor)));
    }

    /// A processor that shares spans.
    pub(crate) fn push_sharing(&mut self, processor: impl SharesSpans + 'static) {
        self.members.push(Member::Sharing(Box::new(processor)));
        self.sharing = true;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Hands `span` to every member: those that share it a reference each, the others a
    /// copy (the last of them the span itself, if no other holds it by then).
    pub(crate) fn on_end_shared(&self, span: Arc<SpanData>) {
        let Some((last, rest)) = self.members.split_last() else {
            return;
        };
        for member in rest {
            match member {
                Member::Sharing(p) => p.on_end_shared(span.clone()),
                Member::Copying(p) => p.on_end(SpanData::clone(&span)),
            }
        }
        match last {
            Member::Sharing(p) => p.on_end_shared(span),
            Member::Copying(p) => p.on_end(Arc::unwrap_or_clone(span)),
        }
    }
}

/// Every processor is asked (a failure does not skip the rest); the first failure is
/// the answer.
fn all(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let mut answer = Ok(());
    for result in results {
        if answer.is_ok() {
            answer = result;
        }
    }
    answer
}

impl SpanProcessor for FanOut {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for member in &self.members {
            member.processor().on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        match self.sharing {
            true => self.on_end_shared(Arc::new(span)),
            // No `Arc` for processors that would each copy out of it anyway.
            false => {
                if let Some((last, rest)) = self.members.split_last() {
                    for member in rest {
                        member.processor().on_end(span.clone());
                    }
                    last.processor().on_end(span);
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        all(self.members.iter().map(|m| m.processor().force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        all(self
            .members
            .iter()
            .map(|m| m.processor().shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        for member in &mut self.members {
            match member {
                Member::Sharing(p) => p.set_resource(resource),
                Member::Copying(p) => p.set_resource(resource),
            }
        }
    }
}
