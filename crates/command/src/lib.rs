//! `wasmlens run`: runs a wasi:cli command component once, like `wasmtime run`, inside a
//! `ComponentInvocation` span with its `ComponentInstantiation`.

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::TraceContextExt as _;
use std::path::Path;
use std::sync::Arc;
use wasmlens_engine::{
    ComponentTelemetry, GuestEnv, GuestFailure, GuestOutput, GuestState, Invoked, Limits,
    Passthrough, Runtime, component_names, load_exporting, mark_failed, new_store,
};
use wasmlens_telemetry::names::trigger;
use wasmlens_telemetry::propagation;
use wasmlens_telemetry::{GuestLogEmitter, GuestStream, Instruments, Telemetry};
use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::CommandPre;

/// Exit code of a run whose guest failed (trapped, or hit a limit), as `wasmtime run`.
pub const FAILURE_EXIT_CODE: i32 = 134;

/// A loaded command component, ready to run.
pub struct Command {
    pre: CommandPre<GuestState>,
    telemetry: ComponentTelemetry,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The guest returned or exited; this is its exit code.
    Exited(i32),
    /// The guest trapped or hit a limit.
    Failed(GuestFailure),
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::Exited(code) => *code,
            RunOutcome::Failed(_) => FAILURE_EXIT_CODE,
        }
    }
}

impl Command {
    /// Loads the component at `path`, refusing one that is not a wasi:cli command. `id`
    /// names it in its workload; `limits` apply to each run.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        id: &str,
        limits: Limits,
        telemetry: Arc<Telemetry>,
        instruments: &Instruments,
    ) -> anyhow::Result<Self> {
        let engine = runtime.engine();
        let component = load_exporting(
            engine,
            path,
            "wasi:cli/run",
            "`wasmlens run` runs wasi:cli commands; serve a wasi:http component with `wasmlens serve`",
        )?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(CommandPre::new)
            .map_err(|err| anyhow::anyhow!("{} cannot be run: {err:#}", path.display()))?;
        let (_, name) = component_names(path);
        let telemetry = ComponentTelemetry::new(
            id,
            &name,
            Invoked {
                trigger: trigger::CLI,
                function_name: "wasi:cli/run.run",
            },
            runtime,
            telemetry,
            instruments,
            limits,
        );
        Ok(Command { pre, telemetry })
    }

    pub fn id(&self) -> &str {
        &self.telemetry.id
    }

    /// Runs the command once under `parent` (the trace it continues, or an empty context).
    /// The guest's stdout and stderr pass through to the host's and become log records.
    pub async fn run(&self, env: &GuestEnv, parent: &Context) -> anyhow::Result<RunOutcome> {
        let component = &self.telemetry;
        let telemetry = component.telemetry();
        let limits = component.limits();
        let logs = telemetry
            .logger()
            .map(|logger| GuestLogEmitter::new(logger.clone(), component.id.clone()));
        let stdout = GuestOutput::new(GuestStream::Stdout, Passthrough::Raw, logs.clone());
        let stderr = GuestOutput::new(GuestStream::Stderr, Passthrough::Raw, logs);
        let invocation = component.start_invocation(parent, true, None);
        // The guest's TRACEPARENT is its invocation's, so what it starts continues the trace.
        let host_env = match telemetry.config().propagators.tracecontext {
            true => propagation::guest_env(invocation.cx.span().span_context()),
            false => Vec::new(),
        };
        let store = env.wasi_ctx(&host_env, stdout, stderr).and_then(|wasi| {
            let state = GuestState::new(wasi, limits, component.gauges());
            new_store(self.pre.engine(), state, limits)
        });
        let mut store = match store {
            Ok(store) => store,
            Err(err) => {
                invocation.cx.span().end();
                return Err(err);
            }
        };
        let instantiation = component.start_instantiation(&invocation.cx);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .with_context(instantiation.cx.clone())
            .await;
        let outcome = match component.end_instantiation(instantiation, &mut store, instance) {
            Err(failure) => {
                // The instantiation span carries the error event; the run's span says so too.
                mark_failed(&invocation.cx, &failure);
                component.end_invocation(invocation, &mut store, None, false);
                return Ok(RunOutcome::Failed(failure));
            }
            Ok(command) => {
                let result = command
                    .wasi_cli_run()
                    .call_run(&mut store)
                    .with_context(invocation.cx.clone())
                    .await;
                match result {
                    Ok(Ok(())) => RunOutcome::Exited(0),
                    Ok(Err(())) => RunOutcome::Exited(1),
                    Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                        Some(exit) => RunOutcome::Exited(exit.0),
                        None => {
                            tracing::debug!("guest failure: {err:?}");
                            RunOutcome::Failed(GuestFailure::classify(&err, false))
                        }
                    },
                }
            }
        };
        let failure = match &outcome {
            RunOutcome::Failed(failure) => Some(failure),
            RunOutcome::Exited(_) => None,
        };
        let ok = matches!(outcome, RunOutcome::Exited(0));
        component.end_invocation(invocation, &mut store, failure, ok);
        Ok(outcome)
    }
}
