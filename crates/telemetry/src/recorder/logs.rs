//! Recent log records within a size, oldest dropped first.

use super::view::LogView;
use opentelemetry::trace::TraceId;
use std::collections::VecDeque;

/// Which log records a listing shows.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// `component_id` of the record.
    pub component: Option<String>,
    /// Only records at least this severe (OTLP severity number: 9 info, 13 warn, 17 error).
    pub min_severity: Option<i32>,
    /// Only the records of this trace.
    pub trace_id: Option<TraceId>,
    /// Only records after this time (for a live tail).
    pub after_unix_nano: Option<u64>,
}

pub(super) struct LogStore {
    records: VecDeque<(LogView, usize)>,
    bytes: usize,
    budget: usize,
}

impl LogStore {
    pub fn new(budget: usize) -> Self {
        LogStore {
            records: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn add(&mut self, record: LogView) {
        let bytes = record.bytes();
        self.records.push_back((record, bytes));
        self.bytes += bytes;
        while self.bytes > self.budget {
            let Some((_, dropped)) = self.records.pop_front() else {
                break;
            };
            self.bytes -= dropped;
        }
    }

    pub fn list(&self, filter: &LogFilter, limit: usize) -> Vec<LogView> {
        let trace_id = filter.trace_id.map(|id| id.to_string());
        self.records
            .iter()
            .rev()
            .map(|(record, _)| record)
            .filter(|r| {
                filter
                    .component
                    .as_ref()
                    .is_none_or(|c| r.component_id.as_ref() == Some(c))
                    && filter.min_severity.is_none_or(|s| r.severity_number >= s)
                    && trace_id
                        .as_ref()
                        .is_none_or(|t| r.trace_id.as_ref() == Some(t))
                    && filter.after_unix_nano.is_none_or(|t| r.time_unix_nano > t)
            })
            .take(limit)
            .cloned()
            .collect()
    }
}
