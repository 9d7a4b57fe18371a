//! The command trigger: runs a wasi:cli command component once, like `wasmtime run`. Its
//! `ComponentInvocation` is the entry span (continuing the trace it is given), with the
//! instance made inside it.

use opentelemetry::Context;
use wasmlens_engine::GuestFailure;
use wasmlens_host::{CallOutcome, HostComponent, HostState, Nesting, World};
use wasmlens_telemetry::names::{function, trigger};
use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi::p2::bindings::{Command, CommandPre};

/// Exit code of a run whose guest failed (trapped, or hit a limit), as `wasmtime run`.
pub const FAILURE_EXIT_CODE: i32 = 134;

/// The wasi:cli command world: a component that exports `wasi:cli/run`.
pub struct CliCommand;

impl World for CliCommand {
    const EXPORT: &'static str = "wasi:cli/run";
    const FUNCTION_NAME: &'static str = function::CLI_RUN;
    const TRIGGER: &'static str = trigger::CLI;
    type Pre = CommandPre<HostState>;
    type Instance = Command;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        CommandPre::new(pre)
    }

    async fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Instance> {
        pre.instantiate_async(store).await
    }
}

/// A command component, loaded.
pub type CommandComponent = HostComponent<CliCommand>;

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

/// A guest's exit code: 0 is a success.
struct ExitCode(i32);

impl CallOutcome for ExitCode {
    fn is_ok(&self) -> bool {
        self.0 == 0
    }
}

/// Runs the command once under `parent` (the trace it continues, or an empty context).
/// Its stdout and stderr go where its WASI grant says.
pub async fn run(command: &CommandComponent, parent: &Context) -> RunOutcome {
    let ran = command
        .invoke(
            parent,
            Nesting::InstanceInsideInvocation,
            async |store, command| match command.wasi_cli_run().call_run(store).await {
                Ok(Ok(())) => Ok(ExitCode(0)),
                Ok(Err(())) => Ok(ExitCode(1)),
                Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    // `exit(n)` ends the run; it is not a failure of the guest.
                    Some(exit) => Ok(ExitCode(exit.0)),
                    None => Err(err),
                },
            },
        )
        .await;
    match ran {
        Ok(ExitCode(code)) => RunOutcome::Exited(code),
        Err(failure) => RunOutcome::Failed(failure),
    }
}
