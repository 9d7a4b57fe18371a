//! The `wasmlens` binary: parses flags and wires the crates together. Everything it does
//! lives in the library crates, where the tests can reach it.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmlens_command::{Command, RunOutcome};
use wasmlens_engine::{
    GuestEnv, Limits, Preopen, Runtime, RuntimeOptions, component_names, parse_bytes,
    parse_duration,
};
use wasmlens_http::{HostPattern, OutboundPolicy, ProxyComponent, Route, ServeOptions, Server};
use wasmlens_telemetry::{InitOptions, Instruments, Telemetry, TelemetryConfig, propagation};

const TELEMETRY_HELP: &str = "\
Telemetry is configured with the standard OpenTelemetry variables, for example:
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318   send traces, metrics and logs over OTLP
  OTEL_EXPORTER_OTLP_PROTOCOL=grpc                    (default http/protobuf; also http/json)
  OTEL_SERVICE_NAME=shop                              (default wasmlens)
  OTEL_TRACES_EXPORTER=console                        print spans instead (also otlp, none)
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
    /// Start a workload from its manifest (wasmlens.toml): several wasi:http components,
    /// each on its own route and with its own limits, environment and outbound hosts.
    ///
    /// A manifest:
    ///
    ///   [workload]
    ///   name = "shop"
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

    /// Requests handled at once; more wait for a free slot.
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

fn start_telemetry(default_log_filter: &'static str) -> anyhow::Result<Arc<Telemetry>> {
    Ok(Arc::new(Telemetry::init(
        TelemetryConfig::from_env(),
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

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let telemetry = start_telemetry("warn")?;
    let result = async {
        let instruments = Instruments::new(telemetry.meter());
        let limits = args.limits.limits();
        let runtime = Runtime::new(&RuntimeOptions {
            consume_fuel: limits.fuel.is_some(),
            pooled_instances: None,
        })?;
        let command = Command::load(&runtime, &args.component)?;
        let mut argv = vec![args.component.display().to_string()];
        argv.extend(args.args.iter().cloned());
        let env = guest_env(&args.guest, argv, true);
        // Continue the trace of whoever started this process: TRACEPARENT and friends, or
        // TRACECONTEXT as the containerd shim sets it.
        let parent =
            propagation::extract_from_env(telemetry.propagator(), |name| std::env::var(name).ok());
        command
            .run(&telemetry, &instruments, &env, &limits, &parent)
            .await
    }
    .await;
    stop_telemetry(telemetry).await;
    let outcome = result?;
    if let RunOutcome::Failed(failure) = &outcome {
        eprintln!("wasmlens: {}: {failure}", args.component.display());
    }
    Ok(outcome.exit_code())
}

async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let limits = args.limits.limits();
    let env = guest_env(
        &args.guest,
        vec![args.component.display().to_string()],
        false,
    );
    let outbound = OutboundPolicy::new(
        args.allow_outbound.clone(),
        propagate_to(&args.propagate_to)?,
    );
    let (id, _) = component_names(&args.component);
    let name = args.component.display().to_string();
    serve_routes(&args.server, &name, limits.fuel.is_some(), |runtime| {
        let component = ProxyComponent::load(runtime, &args.component, &id, env, limits, outbound)?;
        Ok(vec![Route {
            prefix: "/".to_owned(),
            component,
        }])
    })
    .await
}

async fn up(args: UpArgs) -> anyhow::Result<i32> {
    let workload = wasmlens_workload::load(&args.manifest)?;
    let fuel = workload.components.iter().any(|c| c.limits.fuel.is_some());
    let name = format!("workload {:?} ({})", workload.name, args.manifest.display());
    serve_routes(&args.server, &name, fuel, |runtime| {
        let mut routes = Vec::with_capacity(workload.components.len());
        for spec in &workload.components {
            let context = |err: anyhow::Error| anyhow::anyhow!("component {:?}: {err:#}", spec.id);
            let hosts = |list: &[String]| -> anyhow::Result<Vec<HostPattern>> {
                let parsed = list
                    .iter()
                    .map(|h| HostPattern::parse(h).map_err(anyhow::Error::msg));
                parsed.collect::<anyhow::Result<_>>().map_err(context)
            };
            let outbound = OutboundPolicy::new(
                hosts(&spec.allowed_outbound_hosts)?,
                spec.propagate_to.as_deref().map(hosts).transpose()?,
            );
            let env = GuestEnv {
                args: vec![spec.source.display().to_string()],
                env: spec.env.clone(),
                preopens: spec.preopens.clone(),
                inherit_stdin: false,
            };
            let component =
                ProxyComponent::load(runtime, &spec.source, &spec.id, env, spec.limits, outbound)
                    .map_err(context)?;
            tracing::info!(
                "{} -> component {:?} ({})",
                spec.route,
                spec.id,
                spec.source.display()
            );
            routes.push(Route {
                prefix: spec.route.clone(),
                component,
            });
        }
        Ok(routes)
    })
    .await
}

/// Serves routes until SIGINT or SIGTERM, then drains and flushes. `load` compiles the
/// components with the process's runtime.
async fn serve_routes(
    server: &ServerArgs,
    what: &str,
    consume_fuel: bool,
    load: impl FnOnce(&Runtime) -> anyhow::Result<Vec<Route>>,
) -> anyhow::Result<i32> {
    let shutdown = shutdown_signal()?;
    let telemetry = start_telemetry("info")?;
    let result = async {
        let instruments = Arc::new(Instruments::new(telemetry.meter()));
        let runtime = Runtime::new(&RuntimeOptions {
            consume_fuel,
            pooled_instances: Some(server.max_concurrent_requests),
        })?;
        let routes = load(&runtime)?;
        let options = ServeOptions {
            listen: server.listen,
            max_concurrent_requests: server.max_concurrent_requests as usize,
            max_header_bytes: server.max_request_header_size,
            max_body_bytes: server.max_request_body_size as u64,
            shutdown_timeout: server.shutdown_timeout,
        };
        let server = Server::bind(routes, telemetry.clone(), instruments, options).await?;
        tracing::info!("serving {what} on http://{}", server.local_addr());
        let took = server.run(shutdown).await;
        tracing::info!("stopped in {took:?}; flushing telemetry");
        anyhow::Ok(())
    }
    .await;
    stop_telemetry(telemetry).await;
    result.map(|()| 0)
}

/// Watches for SIGINT and SIGTERM from the moment it is called, so that a signal that
/// comes while the component is still compiling is not lost (nor kills the process
/// without a flush); the returned future resolves at the first of them.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
