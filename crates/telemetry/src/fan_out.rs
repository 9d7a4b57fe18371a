//! One span processor in front of several. With more than one processor the SDK hands
//! each a copy of every ended span and drops the original; in front of them, this one
//! hands all but the last a copy and the last the span itself: a `SpanData` copy fewer
//! per span (with the view and an exporter, the two the defaults have, half the copies).

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct FanOut(Vec<Box<dyn SpanProcessor>>);

impl FanOut {
    pub(crate) fn push(&mut self, processor: impl SpanProcessor + 'static) {
        self.0.push(Box::new(processor));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        for processor in &self.0 {
            processor.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Some((last, rest)) = self.0.split_last() {
            for processor in rest {
                processor.on_end(span.clone());
            }
            last.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        all(self.0.iter().map(|p| p.force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        all(self.0.iter().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        for processor in &mut self.0 {
            processor.set_resource(resource);
        }
    }
}
