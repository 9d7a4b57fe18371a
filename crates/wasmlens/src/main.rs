//! The `wasmlens` binary: parses flags and wires the crates together. Everything it does
//! lives in the library crates, where the tests can reach it.

// glibc's malloc spent about 10,800 instructions on a hello request, and 33,000 with
// telemetry on, where spans are allocated on the request threads and freed on the exporter's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmlens_command::{Command, RunOutcome};
use wasmlens_engine::{
    FailureKind, GuestEnv, GuestFailure, Limits, Preopen, Runtime, RuntimeOptions, component_names,
    parse_bytes, parse_duration,
};
use wasmlens_http::{
    HostPattern, OutboundPolicy, ProxyComponent, ProxySpec, Route, ServeOptions, Server,
};
use wasmlens_telemetry::names::trigger_type;
use wasmlens_telemetry::{InitOptions, Instruments, Telemetry, TelemetryConfig, propagation};
use wasmlens_workload::lifecycle::{Lifecycle, State};

const TELEMETRY_HELP: &str = "\
Telemetry is configured with the standard OpenTelemetry variables, for example:
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318   send traces, metrics and logs over OTLP
  OTEL_EXPORTER_OTLP_PROTOCOL=grpc                    (default http/protobuf; also http/json)
  OTEL_SERVICE_NAME=shop                              (default wasmlens)
  OTEL_TRACES_EXPORTER=console                        print spans instead (also otlp, none)
  OTEL_METRICS_EXPORTER=prometheus                    serve /metrics on localhost:9464
  OTEL_SDK_DISABLED=true                              record nothing
With no endpoint and no exporter set, nothing is exported. RUST_LOG filters the log on stderr.";

#[derive(Parser)]
#[command(
    name = "wasmlens",
    version,
    about = "Run and serve WebAssembly components, with traces, metrics and logs over OpenTelemetry",
    after_help = TELEMETRY_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a wasi:cli command component once, like `wasmtime run`.
    ///
    /// Everything after APP.wasm is given to the guest as its arguments. Its stdin,
    /// stdout and stderr are the host's, and its exit code becomes wasmlens's. A guest that
    /// traps or hits a limit exits with code 134 and a one-line reason on stderr.
    #[command(after_help = TELEMETRY_HELP)]
    Run(RunArgs),
    /// Serve a wasi:http proxy component over HTTP/1.1, like `wasmtime serve`.
    ///
    /// Each request gets a fresh instance. A guest that traps or hits a limit gets its
    /// request a 500; everyone else is served on. SIGINT or SIGTERM stops accepting, lets
    /// in-flight requests finish, flushes telemetry and exits 0.
    #[command(after_help = TELEMETRY_HELP)]
    Serve(ServeArgs),
    /// Start a workload from its manifest (wasmlens.toml): wasi:http components, each on
    /// its own route, and wasi:cli commands run once at start, each with its own limits,
    /// environment and outbound hosts.
    ///
    /// A manifest:
    ///
    ///   [workload]
    ///   name = "shop"
    ///   id = "shop-eu-1"             # workload_id in telemetry; default: the name
    ///
    ///   [[component]]
    ///   id = "api"
    ///   source = "api.wasm"          # relative to the manifest
    ///   route = "/api"               # serves /api and /api/...; the longest route wins
    ///   fuel = 50_000_000
    ///   max_memory = "64MiB"
    ///   timeout = "2s"
    ///   env = { GREETING = "hi" }
    ///   dirs = ["data::/data"]
    ///   allowed_outbound_hosts = ["127.0.0.1:8081"]
    ///   propagate_to = ["none"]      # default: every allowed host
    ///
    ///   [[component]]
    ///   id = "warm-cache"            # no route: a command, run once at start
    ///   source = "warm.wasm"
    ///   args = ["--all"]
    ///
    /// A workload of commands only stops when they are done, and exits with the first
    /// non-zero exit code (134 for a command that trapped or hit a limit).
    #[command(after_help = TELEMETRY_HELP, verbatim_doc_comment)]
    Up(UpArgs),
}

#[derive(Args)]
struct GuestArgs {
    /// Give the guest an environment variable: KEY=VALUE, or KEY to pass the host's value.
    /// Repeatable. The guest sees no other variable.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Give the guest a host directory, read-write, at GUEST (default: the same path).
    /// Repeatable. The guest sees no other file.
    #[arg(long = "dir", value_name = "HOST[::GUEST]", value_parser = Preopen::parse)]
    dirs: Vec<Preopen>,
}

#[derive(Args)]
struct LimitArgs {
    /// Fuel for each invocation (roughly, wasm instructions); `_` separators are allowed.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    fuel: Option<u64>,

    /// Linear memory each instance may use, e.g. 64MiB or 1000000.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<usize>,

    /// Wall-clock time each invocation may take, e.g. 500ms or 2s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel,
            max_memory: self.max_memory,
            timeout: self.timeout,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    guest: GuestArgs,
    #[command(flatten)]
    limits: LimitArgs,

    /// The command component (.wasm, or its .wat text form).
    #[arg(value_name = "APP.wasm")]
    component: PathBuf,

    /// Arguments for the guest.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

#[derive(Args)]
struct ServerArgs {
    /// Address to listen on (port 0 picks a free one; the log says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Requests handled at once; more wait for a free slot. Slots are reserved address
    /// space; one that has served a request keeps up to 1 MiB of its guest's memory
    /// resident (reset in place, so the next request's instance starts afresh).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: u32,

    /// Size of the request line and headers together; larger requests get a 431.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = parse_bytes)]
    max_request_header_size: usize,

    /// Size of a request body; larger bodies get a 413 (or fail the guest's read).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    max_request_body_size: usize,

    /// How long in-flight requests may take to finish after SIGINT or SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_timeout: Duration,

    /// Serve metrics for Prometheus to scrape at http://ADDR/metrics, beside any OTLP
    /// export (as OTEL_METRICS_EXPORTER=prometheus does, on OTEL_EXPORTER_PROMETHEUS_HOST
    /// and _PORT, default localhost:9464).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    guest: GuestArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    server: ServerArgs,

    /// Let the guest's outgoing HTTP requests reach HOST[:PORT]. Repeatable; `*` allows any
    /// host, `*.example.com` any subdomain. Other requests fail in the guest with
    /// wasi:http's HTTP-request-denied error.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = HostPattern::parse)]
    allow_outbound: Vec<HostPattern>,

    /// Send trace context (traceparent, tracestate, baggage) only to HOST[:PORT] on the
    /// guest's outgoing requests. Repeatable; `none` for no host. By default, every host
    /// --allow-outbound allows. A traceparent tells its receiver which trace it is in:
    /// narrow this when the guest calls third parties.
    #[arg(long, value_name = "HOST[:PORT]|none")]
    propagate_to: Vec<String>,

    /// The wasi:http proxy component (.wasm, or its .wat text form).
    #[arg(value_name = "APP.wasm")]
    component: PathBuf,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// The workload manifest. Relative paths in it resolve against its folder.
    #[arg(value_name = "MANIFEST", default_value = "wasmlens.toml")]
    manifest: PathBuf,
}

/// `--propagate-to`: unset, every allowed host; `none`, no host; else these hosts.
fn propagate_to(values: &[String]) -> anyhow::Result<Option<Vec<HostPattern>>> {
    if values.is_empty() {
        return Ok(None);
    }
    if values.iter().any(|v| v.trim() == "none") {
        return Ok(Some(Vec::new()));
    }
    let patterns = values
        .iter()
        .map(|v| HostPattern::parse(v).map_err(|e| anyhow::anyhow!("--propagate-to {e}")));
    Ok(Some(patterns.collect::<anyhow::Result<_>>()?))
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("wasmlens: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Commands::Run(args) => run(args).await,
            Commands::Serve(args) => serve(args).await,
            Commands::Up(args) => up(args).await,
        };
        result.unwrap_or_else(|err| {
            eprintln!("wasmlens: {err:#}");
            1
        })
    });
    // Leave the runtime to the process exit: its blocking stdin reader may never return.
    std::mem::forget(runtime);
    std::process::exit(code);
}

/// Starts the telemetry pipeline; `metrics_listen` adds a Prometheus endpoint.
fn start_telemetry(
    default_log_filter: &'static str,
    metrics_listen: Option<&str>,
) -> anyhow::Result<Arc<Telemetry>> {
    let mut config = TelemetryConfig::from_env();
    if let Some(addr) = metrics_listen {
        config = config.with_metrics_listen(addr);
    }
    Ok(Arc::new(Telemetry::init(
        config,
        InitOptions { default_log_filter },
    )?))
}

/// Flushes everything recorded, off the async workers (the exporters block).
async fn stop_telemetry(telemetry: Arc<Telemetry>) {
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

fn guest_env(args: &GuestArgs, argv: Vec<String>, inherit_stdin: bool) -> GuestEnv {
    let mut env = Vec::with_capacity(args.env.len());
    for item in &args.env {
        match item.split_once('=') {
            Some((key, value)) => env.push((key.to_owned(), value.to_owned())),
            None => match std::env::var(item) {
                Ok(value) => env.push((item.clone(), value)),
                Err(_) => tracing::warn!(
                    "--env {item}: not set in the host's environment; the guest will not see it"
                ),
            },
        }
    }
    GuestEnv {
        args: argv,
        env,
        preopens: args.dirs.clone(),
        inherit_stdin,
    }
}

/// What a command asks to start: a workload of HTTP and CLI components.
struct Plan {
    id: String,
    name: String,
    /// Errors and log lines name the component (a manifest's have ids the user chose).
    name_components: bool,
    /// How the log names it: the component's path, or the workload and its manifest.
    shown: String,
    http: Vec<HttpPlan>,
    cli: Vec<CliPlan>,
}

struct HttpPlan {
    id: String,
    path: PathBuf,
    route: String,
    env: GuestEnv,
    limits: Limits,
    outbound: OutboundPolicy,
}

struct CliPlan {
    id: String,
    path: PathBuf,
    env: GuestEnv,
    limits: Limits,
}

impl Plan {
    fn trigger_type(&self) -> &'static str {
        match (self.http.is_empty(), self.cli.is_empty()) {
            (false, true) => trigger_type::HTTP,
            (true, false) => trigger_type::CLI,
            _ => "http,cli",
        }
    }

    fn consume_fuel(&self) -> bool {
        let http = self.http.iter().map(|c| &c.limits);
        http.chain(self.cli.iter().map(|c| &c.limits))
            .any(|limits| limits.fuel.is_some())
    }
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let telemetry = start_telemetry("warn,wasmlens::event=off", None)?;
    let mut argv = vec![args.component.display().to_string()];
    argv.extend(args.args.iter().cloned());
    let (id, _) = component_names(&args.component);
    let plan = Plan {
        id: id.clone(),
        name: id.clone(),
        name_components: false,
        shown: args.component.display().to_string(),
        http: Vec::new(),
        cli: vec![CliPlan {
            id,
            path: args.component.clone(),
            env: guest_env(&args.guest, argv, true),
            limits: args.limits.limits(),
        }],
    };
    let result = start_workload(&telemetry, plan, None, std::future::pending()).await;
    stop_telemetry(telemetry).await;
    let ended = result?;
    if let Some((path, failure)) = &ended.failure {
        eprintln!("wasmlens: {}: {failure}", path.display());
    }
    Ok(ended.exit_code)
}

async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let shutdown = shutdown_signal()?;
    let telemetry = start_telemetry("info", args.server.metrics_listen.as_deref())?;
    let (id, _) = component_names(&args.component);
    let plan = propagate_to(&args.propagate_to).map(|propagate| Plan {
        id: id.clone(),
        name: id.clone(),
        name_components: false,
        shown: args.component.display().to_string(),
        http: vec![HttpPlan {
            id,
            path: args.component.clone(),
            route: "/".to_owned(),
            env: guest_env(
                &args.guest,
                vec![args.component.display().to_string()],
                false,
            ),
            limits: args.limits.limits(),
            outbound: OutboundPolicy::new(args.allow_outbound.clone(), propagate),
        }],
        cli: Vec::new(),
    });
    let result = match plan {
        Ok(plan) => start_workload(&telemetry, plan, Some(&args.server), shutdown).await,
        Err(err) => Err(err),
    };
    stop_telemetry(telemetry).await;
    result.map(|ended| ended.exit_code)
}

async fn up(args: UpArgs) -> anyhow::Result<i32> {
    let shutdown = shutdown_signal()?;
    let telemetry = start_telemetry("info", args.server.metrics_listen.as_deref())?;
    let result = async {
        let plan = match manifest_plan(&args.manifest) {
            Ok(plan) => plan,
            Err(err) => {
                // Refused before it had an id: the manifest names it.
                let shown = args.manifest.display().to_string();
                let instruments = Arc::new(Instruments::new(&telemetry));
                let lifecycle = Lifecycle::begin(
                    telemetry.clone(),
                    instruments,
                    &shown,
                    &shown,
                    "unknown",
                    &process_parent(&telemetry),
                );
                lifecycle.failed(FailureKind::ValidationError.as_str(), &format!("{err:#}"));
                return Err(err);
            }
        };
        start_workload(&telemetry, plan, Some(&args.server), shutdown).await
    }
    .await;
    stop_telemetry(telemetry).await;
    result.map(|ended| ended.exit_code)
}

/// Reads a manifest into a plan, checking what the manifest alone cannot (host patterns).
fn manifest_plan(path: &std::path::Path) -> anyhow::Result<Plan> {
    let workload = wasmlens_workload::load(path)?;
    let mut http = Vec::new();
    for (spec, route) in workload.http_components() {
        let context = |err: anyhow::Error| anyhow::anyhow!("component {:?}: {err:#}", spec.id);
        let hosts = |list: &[String]| -> anyhow::Result<Vec<HostPattern>> {
            let parsed = list
                .iter()
                .map(|h| HostPattern::parse(h).map_err(anyhow::Error::msg));
            parsed.collect::<anyhow::Result<_>>().map_err(context)
        };
        http.push(HttpPlan {
            id: spec.id.clone(),
            path: spec.source.clone(),
            route: route.to_owned(),
            env: GuestEnv {
                args: vec![spec.source.display().to_string()],
                env: spec.env.clone(),
                preopens: spec.preopens.clone(),
                inherit_stdin: false,
            },
            limits: spec.limits,
            outbound: OutboundPolicy::new(
                hosts(&spec.allowed_outbound_hosts)?,
                spec.propagate_to.as_deref().map(hosts).transpose()?,
            ),
        });
    }
    let cli = workload
        .cli_components()
        .map(|(spec, args)| {
            let mut argv = vec![spec.source.display().to_string()];
            argv.extend(args.iter().cloned());
            CliPlan {
                id: spec.id.clone(),
                path: spec.source.clone(),
                env: GuestEnv {
                    args: argv,
                    env: spec.env.clone(),
                    preopens: spec.preopens.clone(),
                    inherit_stdin: false,
                },
                limits: spec.limits,
            }
        })
        .collect();
    Ok(Plan {
        shown: format!("workload {:?} ({})", workload.name, path.display()),
        id: workload.id,
        name: workload.name,
        name_components: true,
        http,
        cli,
    })
}

/// The trace this process continues, if whoever started it said: TRACEPARENT and
/// friends, or TRACECONTEXT as the containerd shim sets it.
fn process_parent(telemetry: &Telemetry) -> opentelemetry::Context {
    propagation::extract_from_env(telemetry.propagator(), |name| std::env::var(name).ok())
}

/// How a workload ended.
struct Ended {
    exit_code: i32,
    /// The CLI component that failed (trapped or hit a limit), if one did.
    failure: Option<(PathBuf, GuestFailure)>,
}

/// Starts a workload and goes through its lifecycle: loads its components, serves its
/// routes (if it has any, until `shutdown`) and runs its commands once, then stops.
async fn start_workload(
    telemetry: &Arc<Telemetry>,
    plan: Plan,
    server: Option<&ServerArgs>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<Ended> {
    let instruments = Arc::new(Instruments::new(telemetry));
    let parent = process_parent(telemetry);
    let mut lifecycle = Lifecycle::begin(
        telemetry.clone(),
        instruments.clone(),
        &plan.id,
        &plan.name,
        plan.trigger_type(),
        &parent,
    );
    lifecycle.starting();
    let loaded = load_workload(telemetry, &instruments, &plan, server).await;
    let shutdown_timeout = server.map(|args| args.shutdown_timeout);
    let (server, commands, _runtime) = match loaded {
        Ok(loaded) => loaded,
        Err((error_type, err)) => {
            lifecycle.failed(error_type.as_str(), &format!("{err:#}"));
            return Err(err);
        }
    };
    lifecycle.running();

    let run_commands = async {
        let mut ended = Ended {
            exit_code: 0,
            failure: None,
        };
        for (command, env, path) in &commands {
            // A command's own trace continues the process's, as under `wasmlens run`.
            match command.run(env, &parent).await {
                Ok(RunOutcome::Exited(0)) => {}
                Ok(outcome @ RunOutcome::Exited(_)) => {
                    if ended.exit_code == 0 {
                        ended.exit_code = outcome.exit_code();
                    }
                }
                Ok(RunOutcome::Failed(failure)) => {
                    if ended.failure.is_none() {
                        ended.exit_code = wasmlens_command::FAILURE_EXIT_CODE;
                        ended.failure = Some((path.clone(), failure));
                    }
                }
                Err(err) => {
                    let failure = GuestFailure {
                        kind: FailureKind::InstantiationFailure,
                        message: format!("{err:#}"),
                    };
                    if ended.failure.is_none() {
                        ended.exit_code = 1;
                        ended.failure = Some((path.clone(), failure));
                    }
                }
            }
        }
        ended
    };
    let ended = match server {
        Some(server) => {
            tracing::info!("serving {} on http://{}", plan.shown, server.local_addr());
            // Commands still running at shutdown get the same time to finish as requests.
            let stopping = tokio::sync::Notify::new();
            let shutdown = async {
                let signal = shutdown.await;
                lifecycle.stopping(signal);
                stopping.notify_one();
            };
            let grace = shutdown_timeout.unwrap_or_default();
            let commands = async {
                tokio::select! {
                    ended = run_commands => ended,
                    () = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
                        tracing::warn!("shutdown timeout passed with commands still running");
                        Ended { exit_code: 130, failure: None }
                    }
                }
            };
            let (took, ended) = tokio::join!(server.run(shutdown), commands);
            tracing::info!("stopped in {took:?}; flushing telemetry");
            ended
        }
        None => {
            tokio::select! {
                ended = run_commands => ended,
                signal = shutdown => {
                    lifecycle.stopping(signal);
                    Ended { exit_code: 130, failure: None }
                }
            }
        }
    };
    match (&ended.failure, plan.http.is_empty()) {
        // A workload of commands failed when one of them did.
        (Some((_, failure)), true) => lifecycle.failed(failure.kind.as_str(), &failure.to_string()),
        _ => {
            if lifecycle.state() == State::Running {
                lifecycle.stopping("completed");
            }
            lifecycle.stopped();
        }
    }
    Ok(ended)
}

type Loaded = (Option<Server>, Vec<(Command, GuestEnv, PathBuf)>, Runtime);

/// Compiles a workload's components and binds its listener. A failure says what kind
/// of failure it was, for the workload's error event.
async fn load_workload(
    telemetry: &Arc<Telemetry>,
    instruments: &Arc<Instruments>,
    plan: &Plan,
    server: Option<&ServerArgs>,
) -> Result<Loaded, (FailureKind, anyhow::Error)> {
    let invalid = |err: anyhow::Error| (FailureKind::ValidationError, err);
    let runtime = Runtime::new(&RuntimeOptions {
        consume_fuel: plan.consume_fuel(),
        pooled_instances: server
            .filter(|_| !plan.http.is_empty())
            .map(|s| s.max_concurrent_requests),
    })
    .map_err(invalid)?;
    let named = |id: &str, err: anyhow::Error| match plan.name_components {
        true => anyhow::anyhow!("component {id:?}: {err:#}"),
        false => err,
    };
    // A grant that cannot be given refuses the workload before anything is compiled.
    let envs = plan.http.iter().map(|c| (&c.id, &c.env));
    for (id, env) in envs.chain(plan.cli.iter().map(|c| (&c.id, &c.env))) {
        env.check().map_err(|err| invalid(named(id, err)))?;
    }
    let mut routes = Vec::with_capacity(plan.http.len());
    for component in &plan.http {
        let spec = ProxySpec {
            path: &component.path,
            id: &component.id,
            env: component.env.clone(),
            limits: component.limits,
            outbound: component.outbound.clone(),
        };
        let proxy = ProxyComponent::load(&runtime, spec, telemetry.clone(), instruments)
            .map_err(|err| invalid(named(&component.id, err)))?;
        if plan.name_components {
            tracing::info!(
                "{} -> component {:?} ({})",
                component.route,
                component.id,
                component.path.display()
            );
        }
        routes.push(Route {
            prefix: component.route.clone(),
            component: proxy,
        });
    }
    let mut commands = Vec::with_capacity(plan.cli.len());
    for component in &plan.cli {
        let command = Command::load(
            &runtime,
            &component.path,
            &component.id,
            component.limits,
            telemetry.clone(),
            instruments,
        )
        .map_err(|err| invalid(named(&component.id, err)))?;
        commands.push((command, component.env.clone(), component.path.clone()));
    }
    let server = match (server, routes.is_empty()) {
        (Some(args), false) => {
            let options = ServeOptions {
                listen: args.listen,
                max_concurrent_requests: args.max_concurrent_requests as usize,
                max_header_bytes: args.max_request_header_size,
                max_body_bytes: args.max_request_body_size as u64,
                shutdown_timeout: args.shutdown_timeout,
            };
            let server = Server::bind(routes, telemetry.clone(), instruments.clone(), options)
                .await
                .map_err(|err| (FailureKind::ListenFailure, err))?;
            Some(server)
        }
        _ => None,
    };
    Ok((server, commands, runtime))
}

/// Watches for SIGINT and SIGTERM from the moment it is called, so that a signal that
/// comes while the component is still compiling is not lost (nor kills the process
/// without a flush); the returned future resolves at the first of them, with its name.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name} received");
        name
    })
}
