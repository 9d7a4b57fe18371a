//! The states a workload goes through, as the contract reports them: `WorkloadStart`
//! (pending, starting, running), `WorkloadStop` (stopping, stopped), a
//! `WorkloadStateChange` span with a `workload state transition` event for each step,
//! `workload.state_transitions`, and `workloads.active` while it runs.

use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::Instant;
use wasmlens_telemetry::names::{attr, shutdown_reason, span, workload_state};
use wasmlens_telemetry::{SpanStart, Telemetry, events};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => workload_state::PENDING,
            Self::Starting => workload_state::STARTING,
            Self::Running => workload_state::RUNNING,
            Self::Stopping => workload_state::STOPPING,
            Self::Stopped => workload_state::STOPPED,
            Self::Failed => workload_state::FAILED,
        }
    }
}

/// One workload's lifecycle. Created pending, inside its `WorkloadStart` span.
pub(crate) struct Lifecycle {
    telemetry: Arc<Telemetry>,
    id: String,
    state: State,
    /// The span of the current phase: `WorkloadStart`, then `WorkloadStop`.
    phase: Context,
    /// What the workload's spans continue: the trace of whoever started the process.
    parent: Context,
    stop_started: Option<Instant>,
}

impl Lifecycle {
    /// A workload about to start: `trigger_type` is `http`, `cli`, or both, comma-separated.
    pub fn begin(
        telemetry: Arc<Telemetry>,
        id: &str,
        name: &str,
        trigger_type: &str,
        parent: &Context,
    ) -> Self {
        let workload_start = SpanStart::new(span::WORKLOAD_START, SpanKind::Internal);
        let start = telemetry.host_tracer().start(parent, workload_start, || {
            vec![
                KeyValue::new(attr::WORKLOAD_ID, id.to_owned()),
                KeyValue::new(attr::WORKLOAD_NAME, name.to_owned()),
                KeyValue::new(attr::TRIGGER_TYPE, trigger_type.to_owned()),
            ]
        });
        Lifecycle {
            phase: parent.with_span(start),
            parent: parent.clone(),
            telemetry,
            id: id.to_owned(),
            state: State::Pending,
            stop_started: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The current phase's span (`WorkloadStart` or `WorkloadStop`), for work done in it.
    pub fn context(&self) -> &Context {
        &self.phase
    }

    fn transition(&mut self, to: State) {
        let from = self.state;
        let start = SpanStart::new(span::WORKLOAD_STATE_CHANGE, SpanKind::Internal);
        let change = self.telemetry.host_tracer().start(&self.phase, start, || {
            vec![
                KeyValue::new(attr::WORKLOAD_ID, self.id.clone()),
                KeyValue::new(attr::PREVIOUS_STATE, from.as_str()),
                KeyValue::new(attr::NEW_STATE, to.as_str()),
            ]
        });
        let cx = self.phase.with_span(change);
        events::workload_state_transition(
            &self.telemetry,
            &cx,
            &self.id,
            from.as_str(),
            to.as_str(),
        );
        let instruments = self.telemetry.instruments();
        instruments.workload_state_transitions.add(
            1,
            &[
                KeyValue::new(attr::PREVIOUS_STATE, from.as_str()),
                KeyValue::new(attr::NEW_STATE, to.as_str()),
            ],
        );
        cx.span().end();
        if let Some(recorder) = self.telemetry.recorder() {
            recorder.workload_state(&self.id, to.as_str());
        }
        self.state = to;
    }

    /// Pending to starting: its components are being loaded.
    pub fn starting(&mut self) {
        self.transition(State::Starting);
    }

    /// Starting to running: it serves, or runs its commands. Ends `WorkloadStart`.
    pub fn running(&mut self) {
        self.transition(State::Running);
        self.telemetry.instruments().workloads_running(1);
        self.phase.span().end();
    }

    /// Running to stopping, for `reason` (`SIGTERM`, `completed`, ...): starts `WorkloadStop`.
    pub fn stopping(&mut self, reason: &str) {
        let start = SpanStart::new(span::WORKLOAD_STOP, SpanKind::Internal);
        let stop = self.telemetry.host_tracer().start(&self.parent, start, || {
            vec![
                KeyValue::new(attr::WORKLOAD_ID, self.id.clone()),
                KeyValue::new(attr::SHUTDOWN_REASON, reason.to_owned()),
            ]
        });
        self.phase = self.parent.with_span(stop);
        self.stop_started = Some(Instant::now());
        self.transition(State::Stopping);
    }

    /// Stopping to stopped: ends `WorkloadStop` with how long stopping took.
    pub fn stopped(mut self) {
        self.transition(State::Stopped);
        self.end_stop();
    }

    /// To failed, from wherever it was, with the error event on the current phase's span.
    /// A running workload that fails stops first, with `shutdown_reason` `failed`.
    pub fn failed(mut self, error_type: &'static str, message: &str) {
        if self.state == State::Running {
            self.stopping(shutdown_reason::FAILED);
        }
        let was_running = self.state == State::Stopping;
        let what = events::Failed::Workload(&self.id);
        events::failed(&self.telemetry, &self.phase, what, error_type, message);
        self.transition(State::Failed);
        if was_running {
            self.end_stop();
        } else {
            self.phase.span().end();
        }
    }

    fn end_stop(&mut self) {
        self.telemetry.instruments().workloads_running(-1);
        let span = self.phase.span();
        if let Some(started) = self.stop_started {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            span.set_attribute(KeyValue::new(attr::SHUTDOWN_DURATION_MS, ms));
        }
        span.end();
    }
}
