//! Log records on the console: one line each, with the trace they belong to.

use super::{ConsoleFormat, write, write_json};
use crate::names::attr;
use opentelemetry::logs::AnyValue;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};
use std::fmt::Write as _;

#[derive(Debug)]
pub(crate) struct ConsoleLogExporter {
    format: ConsoleFormat,
    resource: ResourceAttributesWithSchema,
}

impl ConsoleLogExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        ConsoleLogExporter {
            format,
            resource: (&Resource::builder_empty().build()).into(),
        }
    }
}

impl LogExporter for ConsoleLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        match self.format {
            ConsoleFormat::Json => {
                let resource_logs = group_logs_by_resource_and_scope(&batch, &self.resource);
                write_json(&ExportLogsServiceRequest { resource_logs });
            }
            ConsoleFormat::Text => {
                let mut out = String::new();
                for (record, _) in batch.iter() {
                    line(&mut out, record);
                }
                write(&out);
            }
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// `log SEVERITY NAME: BODY [component_id] [trace ID]`.
fn line(out: &mut String, record: &SdkLogRecord) {
    let severity = record.severity_text().unwrap_or("-");
    // The contract's events by their name; anything else (a guest's line, the host's own
    // log) by where it comes from.
    let target = record.target().map(|t| t.as_ref());
    let name = match (target, record.event_name()) {
        (Some(crate::events::TARGET), Some(event)) => event,
        (Some(target), _) => target,
        (None, event) => event.unwrap_or("-"),
    };
    let _ = write!(out, "log {severity} {name}:");
    match record.body() {
        Some(AnyValue::String(body)) => {
            let _ = write!(out, " {body}");
        }
        Some(other) => {
            let _ = write!(out, " {other:?}");
        }
        None => {}
    }
    for (key, value) in record.attributes_iter() {
        if key.as_str() == attr::COMPONENT_ID
            && let AnyValue::String(id) = value
        {
            let _ = write!(out, " [component {id}]");
        }
    }
    if let Some(trace) = record.trace_context() {
        let _ = write!(out, " [trace {}]", trace.trace_id);
    }
    out.push('\n');
}
