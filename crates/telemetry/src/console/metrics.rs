//! Metrics on the console: at each export, one line a series.

use super::{ConsoleFormat, write, write_json};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::fmt::{Display, Write as _};
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct ConsoleMetricExporter {
    format: ConsoleFormat,
}

impl ConsoleMetricExporter {
    pub fn new(format: ConsoleFormat) -> Self {
        ConsoleMetricExporter { format }
    }
}

impl PushMetricExporter for ConsoleMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        match self.format {
            ConsoleFormat::Json => write_json(&ExportMetricsServiceRequest::from(metrics)),
            ConsoleFormat::Text => {
                let mut out = String::new();
                for scope in metrics.scope_metrics() {
                    for metric in scope.metrics() {
                        let (name, unit) = (metric.name(), metric.unit());
                        match metric.data() {
                            AggregatedMetrics::F64(data) => series(&mut out, name, unit, data),
                            AggregatedMetrics::U64(data) => series(&mut out, name, unit, data),
                            AggregatedMetrics::I64(data) => series(&mut out, name, unit, data),
                        }
                    }
                }
                write(&out);
            }
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// `metric NAME{ATTRIBUTES} VALUE UNIT` for each point; a histogram's count and sum.
fn series<T: Display + Copy>(out: &mut String, name: &str, unit: &str, data: &MetricData<T>) {
    let mut point = |attributes: &mut dyn Iterator<Item = &KeyValue>, value: String| {
        let attributes: Vec<String> = attributes
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        let attributes = match attributes.is_empty() {
            true => String::new(),
            false => format!("{{{}}}", attributes.join(",")),
        };
        let _ = writeln!(out, "metric {name}{attributes} {value} {unit}");
    };
    match data {
        MetricData::Gauge(gauge) => {
            for p in gauge.data_points() {
                point(&mut p.attributes(), p.value().to_string());
            }
        }
        MetricData::Sum(sum) => {
            for p in sum.data_points() {
                point(&mut p.attributes(), p.value().to_string());
            }
        }
        MetricData::Histogram(histogram) => {
            for p in histogram.data_points() {
                point(
                    &mut p.attributes(),
                    format!("count={} sum={}", p.count(), p.sum()),
                );
            }
        }
        MetricData::ExponentialHistogram(histogram) => {
            for p in histogram.data_points() {
                point(
                    &mut p.attributes(),
                    format!("count={} sum={}", p.count(), p.sum()),
                );
            }
        }
    }
}
