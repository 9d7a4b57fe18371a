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
use wasmlens_http::{HostPattern, OutboundPolicy, ProxyComponent, ServeOptions, Server};
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
struct ServeArgs {
    #[command(flatten)]
    guest: GuestArgs,
    #[command(flatten)]
    limits: LimitArgs,

    /// Address to listen on (port 0 picks a free one; the log says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

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

    /// The wasi:http proxy component (.wasm, or its .wat text form).
    #[arg(value_name = "APP.wasm")]
    component: PathBuf,
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
    let shutdown = shutdown_signal()?;
    let telemetry = start_telemetry("info")?;
    let result = async {
        let instruments = Arc::new(Instruments::new(telemetry.meter()));
        let limits = args.limits.limits();
        let runtime = Runtime::new(&RuntimeOptions {
            consume_fuel: limits.fuel.is_some(),
            pooled_instances: Some(args.max_concurrent_requests),
        })?;
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
        let component =
            ProxyComponent::load(&runtime, &args.component, &id, env, limits, outbound)?;
        let options = ServeOptions {
            listen: args.listen,
            max_concurrent_requests: args.max_concurrent_requests as usize,
            max_header_bytes: args.max_request_header_size,
            max_body_bytes: args.max_request_body_size as u64,
            shutdown_timeout: args.shutdown_timeout,
            route: "/*".to_owned(),
        };
        let server = Server::bind(component, telemetry.clone(), instruments, options).await?;
        tracing::info!(
            "serving {} on http://{}",
            args.component.display(),
            server.local_addr()
        );
        let report = server.run(shutdown).await;
        tracing::info!("stopped in {:?}; flushing telemetry", report.took);
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
