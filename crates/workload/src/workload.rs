//! A workload's life: [`Workload::load`] checks, compiles and binds everything;
//! [`Workload::start`] serves its routes and runs its commands; a [`StopHandle`] stops
//! it for a reason; [`RunningWorkload::wait`] says how it ended. Each step is reported as
//! the contract's lifecycle (see [`crate::lifecycle`]).

use crate::lifecycle::{Lifecycle, State};
use crate::spec::{ComponentSpec, Trigger, WorkloadSpec};
use opentelemetry::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use wasmlens_command::{CliCommand, CommandComponent, RunOutcome};
use wasmlens_engine::{GuestFailure, RuntimeOptions};
use wasmlens_host::{Grants, Host, PluginBindFailed};
use wasmlens_http::{HttpProxy, Route, Server};
use wasmlens_telemetry::Telemetry;
use wasmlens_telemetry::names::{error_type, shutdown_reason, trigger_type};
use wasmlens_wasi::Passthrough;

/// What to do about a component that does not export what its trigger calls, by where
/// it was named: on the command line, or in a manifest.
struct Hints {
    proxy: &'static str,
    command: &'static str,
}

const COMMAND_LINE_HINTS: Hints = Hints {
    proxy: "`wasmlens serve` serves wasi:http proxies; run a wasi:cli command with `wasmlens run`",
    command: "`wasmlens run` runs wasi:cli commands; serve a wasi:http component with `wasmlens serve`",
};

const MANIFEST_HINTS: Hints = Hints {
    proxy: "A component with a `route` is served over HTTP, as a wasi:http proxy; to run a wasi:cli command once at start instead, drop its `route`",
    command: "A component without a `route` is run once at start, as a wasi:cli command; to serve a wasi:http proxy instead, give it a `route`",
};

/// The exit code of a workload whose commands were still running when it was stopped for
/// `reason` (and of a process that quits for it): as a shell reports a command killed by
/// that signal (128 + its number); 130, as for SIGINT, for any other reason.
pub fn interrupted_exit_code(reason: &str) -> i32 {
    match reason {
        shutdown_reason::SIGTERM => 128 + 15,
        _ => 128 + 2,
    }
}

/// A workload loaded and ready to start.
pub struct Workload {
    lifecycle: Lifecycle,
    /// Keeps the engine and the capabilities for as long as the workload runs.
    host: Host,
    server: Option<Server>,
    commands: Vec<Command>,
    /// What its commands' traces continue: whoever started it.
    parent: Context,
    shown: String,
    /// How long commands may go on once it is told to stop.
    grace: Duration,
}

struct Command {
    component: CommandComponent,
    source: PathBuf,
}

/// How a workload ended.
#[derive(Debug)]
pub struct Ended {
    /// The first non-zero exit code of its commands (134 for one that failed; 143 for
    /// ones cut short by SIGTERM, 130 by SIGINT or any other reason), else 0.
    pub exit_code: i32,
    /// The command that failed (trapped or hit a limit), if one did: its source, and why.
    pub failure: Option<(PathBuf, GuestFailure)>,
}

impl Ended {
    fn ok() -> Self {
        Ended {
            exit_code: 0,
            failure: None,
        }
    }

    /// A command from `source` ended so.
    fn record(&mut self, source: &Path, outcome: RunOutcome) {
        if self.exit_code == 0 {
            self.exit_code = outcome.exit_code();
        }
        if let RunOutcome::Failed(failure) = outcome
            && self.failure.is_none()
        {
            self.failure = Some((source.to_owned(), failure));
        }
    }

    /// Commands were still running when the workload was stopped for `reason`.
    fn cut_short(&mut self, reason: &str) {
        if self.exit_code == 0 {
            self.exit_code = interrupted_exit_code(reason);
        }
    }
}

impl Workload {
    /// Loads the workload `spec` describes: checks what every component is granted,
    /// compiles and pre-instantiates each, and binds its listener. Its lifecycle begins
    /// (pending, then starting) in spans that continue `parent`; a failure ends it as
    /// failed, with the error event, and is returned.
    pub async fn load(
        telemetry: Arc<Telemetry>,
        spec: WorkloadSpec,
        parent: Context,
    ) -> anyhow::Result<Self> {
        let mut lifecycle = Lifecycle::begin(
            telemetry.clone(),
            &spec.id,
            &spec.name,
            spec.trigger_type(),
            &parent,
        );
        if let Some(recorder) = telemetry.recorder() {
            let pending = lifecycle.state().as_str();
            recorder.describe_workload(crate::shown::workload_view(&spec, pending));
        }
        lifecycle.starting();
        match load_components(&telemetry, &spec, lifecycle.context()).await {
            Ok((host, server, commands)) => Ok(Workload {
                lifecycle,
                host,
                server,
                commands,
                parent,
                shown: spec.shown(),
                grace: spec.server.shutdown_timeout,
            }),
            Err((error_type, err)) => {
                lifecycle.failed(error_type, &format!("{err:#}"));
                Err(err)
            }
        }
    }

    /// Where it serves HTTP, if it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::local_addr)
    }

    /// Starts it: it is running, serving its routes and running its commands once, until
    /// its commands are done (if it serves nothing) or it is told to stop.
    /// Its own task runs it; the [`RunningWorkload`] stops it and waits for it. (A front
    /// end that only waits for it can [`Workload::run_until`] instead.)
    pub fn start(mut self) -> RunningWorkload {
        self.lifecycle.running();
        let (stop, mut stopped) = watch::channel(None);
        let stop_reason = async move {
            let reason = stopped
                .wait_for(Option::is_some)
                .await
                .map(|reason| *reason);
            match reason {
                Ok(reason) => reason.unwrap_or(shutdown_reason::SIGTERM),
                // Nobody can stop it any more: it ends on its own.
                Err(_) => std::future::pending().await,
            }
        };
        let task = tokio::spawn(self.run(stop_reason));
        RunningWorkload {
            stop: StopHandle(Arc::new(stop)),
            task,
        }
    }

    /// Starts it and runs it in the calling task until it ends on its own or `stop`
    /// says why it must stop (`SIGINT`, say): [`Workload::start`], a stop and
    /// [`RunningWorkload::wait`] in one call, for a front end that has nothing else to do
    /// meanwhile (the `wasmlens` binary).
    pub async fn run_until(mut self, stop: impl Future<Output = &'static str>) -> Ended {
        self.lifecycle.running();
        self.run(stop).await
    }

    async fn run(self, stop: impl Future<Output = &'static str>) -> Ended {
        let Workload {
            mut lifecycle,
            host,
            server,
            commands,
            parent,
            shown,
            grace,
        } = self;
        let serves = server.is_some();
        let host = &host;
        let reason = async move {
            let reason = stop.await;
            // Said before anything running is dropped, so that it can say why it stopped.
            host.stopping(reason);
            reason
        };
        // Kept outside the commands' future, so that what the first ones did is not lost
        // when a stop cuts the rest short.
        let results = Mutex::new(Ended::ok());
        let commands = run_commands(&commands, &parent, &results);
        let cut_short = match server {
            Some(server) => {
                tracing::info!("serving {shown} on http://{}", server.local_addr());
                let stopping = |reason| lifecycle.stopping(reason);
                serve_until_stopped(server, commands, reason, stopping, grace).await
            }
            None => tokio::select! {
                () = commands => None,
                reason = reason => {
                    lifecycle.stopping(reason);
                    Some(reason)
                }
            },
        };
        let mut ended = results.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = cut_short {
            ended.cut_short(reason);
        }
        match (&ended.failure, serves) {
            // A workload of commands failed when one of them did.
            (Some((_, failure)), false) => {
                lifecycle.failed(failure.kind.as_str(), &failure.to_string())
            }
            _ => {
                if lifecycle.state() == State::Running {
                    lifecycle.stopping(shutdown_reason::COMPLETED);
                }
                lifecycle.stopped();
            }
        }
        host.shutdown();
        ended
    }
}

/// Serves until `reason` says why to stop (which `stopping` reports), then drains, while
/// the commands run; commands still running at the stop get `grace`, as in-flight
/// requests do, and are then cut short: the reason, if they were.
async fn serve_until_stopped(
    server: Server,
    commands: impl Future<Output = ()>,
    reason: impl Future<Output = &'static str>,
    mut stopping: impl FnMut(&'static str),
    grace: Duration,
) -> Option<&'static str> {
    let stopped = Notify::new();
    let stopped_for = OnceLock::new();
    let shutdown = async {
        let reason = reason.await;
        let _ = stopped_for.set(reason);
        stopping(reason);
        stopped.notify_one();
    };
    let commands = async {
        tokio::select! {
            () = commands => None,
            () = async { stopped.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("shutdown timeout passed with commands still running");
                stopped_for.get().copied()
            }
        }
    };
    let (took, cut_short) = tokio::join!(server.run(shutdown), commands);
    tracing::info!("stopped in {took:?}; flushing telemetry");
    cut_short
}

/// A workload that has started.
pub struct RunningWorkload {
    stop: StopHandle,
    task: tokio::task::JoinHandle<Ended>,
}

impl RunningWorkload {
    /// What stops it, from anywhere (a signal handler, a task service).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// What ends it at once, from anywhere: no drain, no grace, nothing more recorded
    /// of it (a `SIGKILL` from containerd). It then ends as killed by `SIGKILL` (137).
    pub fn kill_handle(&self) -> tokio::task::AbortHandle {
        self.task.abort_handle()
    }

    /// Waits until it has ended: its commands done (if it serves nothing), or stopped and
    /// drained, or killed.
    pub async fn wait(self) -> Ended {
        match self.task.await {
            Ok(ended) => ended,
            Err(err) if err.is_cancelled() => Ended {
                exit_code: 128 + 9,
                failure: None,
            },
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
}

/// Stops a running workload: it stops accepting requests and lets those in flight finish,
/// within the shutdown timeout, as it does its commands; a workload that serves nothing
/// stops its commands at once. It ends `stopped` (or `failed`, for a workload of
/// commands one of which failed).
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<Option<&'static str>>>);

impl StopHandle {
    /// Stops the workload for `reason` (`shutdown_reason`: `SIGTERM`, `SIGINT`, ...).
    /// Only the first reason counts.
    pub fn stop(&self, reason: &'static str) {
        self.0.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }
}

/// Reports a workload refused before it could be described (a manifest that cannot be
/// read, or is wrong), as one that failed to start: `shown` names it.
pub fn report_refused(
    telemetry: &Arc<Telemetry>,
    shown: &str,
    error: &anyhow::Error,
    parent: &Context,
) {
    let lifecycle = Lifecycle::begin(
        telemetry.clone(),
        shown,
        shown,
        trigger_type::UNKNOWN,
        parent,
    );
    lifecycle.failed(error_type::VALIDATION_ERROR, &format!("{error:#}"));
}

/// The host with the workload's components loaded, its server bound (if it serves), and
/// its commands. Each HTTP component is instantiated once, under `starting` (the
/// workload's start span), so that one that cannot start fails the workload rather than
/// every request. A failure says what kind of failure it was, for the workload's error
/// event.
async fn load_components(
    telemetry: &Arc<Telemetry>,
    spec: &WorkloadSpec,
    starting: &Context,
) -> Result<(Host, Option<Server>, Vec<Command>), (&'static str, anyhow::Error)> {
    let invalid = |err: anyhow::Error| (error_type::VALIDATION_ERROR, err);
    // A component that cannot be loaded is invalid, unless a plugin could not be bound.
    let not_loaded = |err: anyhow::Error| match err.downcast_ref::<PluginBindFailed>() {
        Some(_) => (error_type::PLUGIN_BIND_FAILURE, err),
        None => (error_type::VALIDATION_ERROR, err),
    };
    let serves = spec.serves();
    // A slot for each request at once, and one for each command, which may run meanwhile.
    let commands = spec.components.len() - spec.routes().count();
    let slots = spec.server.max_concurrent_requests.saturating_add(commands);
    let max_instances = u32::try_from(slots).unwrap_or(u32::MAX);
    let options = RuntimeOptions {
        consume_fuel: spec.meters_fuel(),
        pooled_instances: serves.then_some(max_instances),
        memory: spec.pool_memory,
    };
    let host = Host::new(telemetry.clone(), &spec.id, &options).map_err(invalid)?;
    let (named_components, hints) = match spec.manifest {
        Some(_) => (true, MANIFEST_HINTS),
        None => (false, COMMAND_LINE_HINTS),
    };
    // Context, not a new error: what kind of failure it was stays readable below it.
    let named = |component: &ComponentSpec, err: anyhow::Error| match named_components {
        true => err.context(format!("component {:?}", component.id)),
        false => err,
    };
    // Every component's grants are checked before any is compiled.
    let mut bound = Vec::with_capacity(spec.components.len());
    for component in &spec.components {
        let grants = grants(component);
        let checked = host
            .bind(&component.id, &component.source, component.limits, &grants)
            .await;
        bound.push(checked.map_err(|err| invalid(named(component, err)))?);
    }
    let mut routes = Vec::new();
    let mut commands = Vec::new();
    for (component, bound) in spec.components.iter().zip(bound) {
        match &component.trigger {
            Trigger::Http { route } => {
                let proxy = host.load::<HttpProxy>(bound, hints.proxy, starting).await;
                let proxy = proxy.map_err(|err| not_loaded(named(component, err)))?;
                if let Err(failure) = proxy.try_instantiate(starting).await {
                    let err = named(component, anyhow::anyhow!("{failure}"));
                    return Err((failure.kind.as_str(), err));
                }
                if named_components {
                    let source = component.source.display();
                    tracing::info!("{route} -> component {:?} ({source})", component.id);
                }
                routes.push(Route {
                    prefix: route.clone(),
                    component: proxy,
                });
            }
            Trigger::Cli { .. } => {
                let command = host
                    .load::<CliCommand>(bound, hints.command, starting)
                    .await;
                commands.push(Command {
                    component: command.map_err(|err| not_loaded(named(component, err)))?,
                    source: component.source.clone(),
                });
            }
        }
    }
    let server = match routes.is_empty() {
        true => None,
        false => {
            let server = Server::bind(routes, telemetry.clone(), spec.server.clone()).await;
            Some(server.map_err(|err| (error_type::LISTEN_FAILURE, err))?)
        }
    };
    Ok((host, server, commands))
}

/// What a component is granted, with what follows from its trigger: its arguments (the
/// program name the front end gave as `wasi.args[0]`, else its source; then a command's
/// own) and how its output reaches the host's (as written for a command; a whole line at a
/// time for a server, whose concurrent requests' lines must not interleave).
fn grants(component: &ComponentSpec) -> Grants {
    let mut grants = component.grants.clone();
    let program = (grants.wasi.args.first().cloned())
        .unwrap_or_else(|| component.source.display().to_string());
    let (args, output) = match &component.trigger {
        Trigger::Http { .. } => (vec![program], Passthrough::Lines),
        Trigger::Cli { args } => {
            let argv = std::iter::once(program).chain(args.iter().cloned());
            (argv.collect(), Passthrough::Raw)
        }
    };
    grants.wasi.args = args;
    grants.wasi.output = output;
    grants
}

/// Runs the commands once, in order, each continuing `parent`'s trace, and notes how
/// each ended in `results` as it does.
async fn run_commands(commands: &[Command], parent: &Context, results: &Mutex<Ended>) {
    for command in commands {
        let outcome = wasmlens_command::run(&command.component, parent).await;
        if let RunOutcome::Exited(code) = outcome {
            // A failure has said so already, in its `component failed` event.
            let id = command.component.id();
            tracing::info!("command {id:?} exited with code {code}");
        }
        let mut results = results.lock().unwrap_or_else(PoisonError::into_inner);
        results.record(&command.source, outcome);
    }
}
