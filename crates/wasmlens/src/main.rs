//! The `wasmlens` binary: parses flags and wires the crates together. Everything it does
//! lives in the library crates, where the tests can reach it.

// glibc's malloc spent about 10,800 instructions on a hello request, and 33,000 with
// telemetry on, where spans are allocated on the request threads and freed on the exporter's.
#[global_allocator]
static ALLOCATOR: wasmlens_allocator::Mimalloc = wasmlens_allocator::Mimalloc;

mod view;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmlens_telemetry::names::shutdown_reason;
use wasmlens_telemetry::{Telemetry, TelemetryConfig, propagation};
use wasmlens_workload::{
    BoundsChecks, ComponentSpec, Grants, HostPattern, KeyValueConfig, Limits, OutboundPolicy,
    PoolMemory, Preopen, ServeOptions, StoreBackend, Trigger, WasiConfig, Workload, WorkloadSpec,
    component_names, parse_bytes, parse_config_flag, parse_duration, parse_store_flag,
};

const TELEMETRY_HELP: &str = "\
Telemetry is configured with the standard OpenTelemetry variables, for example:
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318   send traces, metrics and logs over OTLP
  OTEL_EXPORTER_OTLP_PROTOCOL=grpc                    (default http/protobuf; also http/json)
  OTEL_SERVICE_NAME=shop                              (default wasmlens)
  OTEL_TRACES_EXPORTER=console                        a tree of spans on stderr instead (also
                                                      OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER)
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
    /// traps or hits a limit exits with code 134 and a one-line reason on stderr. Ctrl-C
    /// (or SIGTERM) stops the guest, flushes its telemetry and exits with 130 (or 143); a
    /// second one quits at once.
    #[command(after_help = TELEMETRY_HELP)]
    Run(RunArgs),
    /// Serve a wasi:http proxy component over HTTP/1.1, like `wasmtime serve`.
    ///
    /// Each request gets a fresh instance. A guest that traps or hits a limit gets its
    /// request a 500; everyone else is served on. SIGINT or SIGTERM stops accepting, lets
    /// in-flight requests finish (up to --shutdown-timeout), flushes telemetry and exits 0;
    /// a second signal quits at once.
    ///
    /// Host plugins are given to a component that imports them: wasi:keyvalue
    /// (--keyvalue; a memory store if none is given), wasi:config (--config), wasi:logging
    /// (each call a log record on the invocation's trace) and wasi:otel (the guest's own
    /// spans, logs and metrics, exported with the host's).
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
    ///   [component.keyvalue]         # wasi:keyvalue stores, by name ("" is the default)
    ///   "" = "data/api.redb"         # memory, a file, or redis://HOST:PORT[/DB]
    ///   sessions = "redis://127.0.0.1:6379/0"
    ///
    ///   [component.config]           # what wasi:config answers
    ///   greeting = "hello"
    ///
    ///   [[component]]
    ///   id = "warm-cache"            # no route: a command, run once at start
    ///   source = "warm.wasm"
    ///   args = ["--all"]
    ///
    /// A workload of commands only stops when they are done (or at SIGINT or SIGTERM), and
    /// exits with the first non-zero exit code (134 for a command that trapped or hit a
    /// limit; 130 or 143 for commands the signal cut short).
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

/// The host plugins' settings. A plugin is given only to a component that imports it.
#[derive(Args)]
#[command(next_help_heading = "Host plugins")]
struct PluginArgs {
    /// A wasi:keyvalue store: NAME=BACKEND, or BACKEND for the default store "". BACKEND is
    /// `memory` (shared by the workload's instances, lost on exit), a file path (an
    /// embedded database that survives restarts), or redis://HOST:PORT[/DB] (shared by
    /// every host that names it). Repeatable. A component that imports wasi:keyvalue and
    /// is given no store gets a memory store.
    #[arg(long = "keyvalue", value_name = "[NAME=]BACKEND", value_parser = parse_store_flag)]
    keyvalue: Vec<(String, StoreBackend)>,

    /// A wasi:config value: KEY=VALUE. Repeatable. A key not given reads as none.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config_flag)]
    config: Vec<(String, String)>,
}

impl PluginArgs {
    /// Adds the plugins' settings to `grants`. A store or key given twice is refused:
    /// which one was meant cannot be guessed.
    fn grant(self, grants: Grants) -> anyhow::Result<Grants> {
        let mut stores = std::collections::BTreeMap::new();
        for (name, backend) in self.keyvalue {
            if stores.insert(name.clone(), backend).is_some() {
                anyhow::bail!("--keyvalue names the store {name:?} twice");
            }
        }
        let mut config = std::collections::BTreeMap::new();
        for (key, value) in self.config {
            if config.insert(key.clone(), value).is_some() {
                anyhow::bail!("--config gives {key:?} twice");
            }
        }
        Ok(Grants {
            keyvalue: KeyValueConfig { stores },
            config,
            ..grants
        })
    }
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
    // Last of the options: its help heading applies to what follows it.
    #[command(flatten)]
    plugins: PluginArgs,

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
    /// Address to listen on: HOST:PORT, where HOST is an IP address or a name such as
    /// localhost (port 0 picks a free one; the log says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    listen: SocketAddr,

    /// Requests handled at once; more wait for a free slot (--max-queued-requests). Slots are reserved address
    /// space; one that has served a request keeps up to --keep-resident of its guest's
    /// memory resident (reset in place, so the next request's instance starts afresh).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: u32,

    /// Requests that may wait for a slot when all are taken; beyond, a request gets a 503
    /// with Retry-After at once (0: no queue). Shed requests are traced and counted with
    /// error.type QueueFull.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_queued_requests: u32,

    /// How long a request may wait for a slot; then it gets a 503 with Retry-After
    /// (error.type QueueTimeout).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    queue_timeout: Duration,

    /// How long a client has to send a request's line and headers, from when the
    /// connection is accepted, or from the first byte of a later request on a kept-alive
    /// connection; a slower client is disconnected.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,

    /// How long a kept-alive connection may stay idle (no byte either way, no request
    /// being handled) before it is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Size of the request line and headers together, as sent; larger requests get a 431
    /// (as do requests with more than 100 headers).
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

    /// Log a line on stderr for each request: method, path (without its query), status,
    /// duration and trace id.
    #[arg(long)]
    access_log: bool,

    /// Memory a slot keeps resident between requests, per memory and table, and resets in
    /// place; what a guest dirtied beyond it is handed back to the kernel (madvise), which
    /// costs every CPU a TLB flush and the next request its page faults. Without
    /// PAGEMAP_SCAN (Linux before 6.7) the first SIZE bytes are zeroed at every request.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_bytes)]
    keep_resident: usize,

    /// How a guest's accesses outside its memory are caught. guard-pages: by the MMU, at
    /// no cost in compiled code, but a guest whose heap grows (as C, Rust and Python
    /// guests do at their first allocation) costs mprotect calls at every request, and
    /// so a TLB flush on every CPU. explicit: by a check before each access; slots keep
    /// grown memory accessible and reset it in place (no system call per request, about
    /// 2x the requests/s for such guests here), memory-heavy code runs about a fifth
    /// slower, and wasmtime applies no Spectre mitigation to these checks.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = BoundsChecksArg::GuardPages)]
    bounds_checks: BoundsChecksArg,

    #[command(flatten)]
    view: view::ViewArgs,
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

    // Last of the options: its help heading applies to what follows it.
    #[command(flatten)]
    plugins: PluginArgs,

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

/// `--bounds-checks`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum BoundsChecksArg {
    GuardPages,
    Explicit,
}

impl ServerArgs {
    fn pool_memory(&self) -> PoolMemory {
        PoolMemory {
            keep_resident: self.keep_resident,
            bounds_checks: match self.bounds_checks {
                BoundsChecksArg::GuardPages => BoundsChecks::GuardPages,
                BoundsChecksArg::Explicit => BoundsChecks::Explicit,
            },
        }
    }

    fn options(&self) -> ServeOptions {
        ServeOptions {
            listen: self.listen,
            max_concurrent_requests: self.max_concurrent_requests as usize,
            max_queued_requests: self.max_queued_requests as usize,
            queue_timeout: self.queue_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_header_bytes: self.max_request_header_size,
            max_body_bytes: self.max_request_body_size as u64,
            shutdown_timeout: self.shutdown_timeout,
            access_log: self.access_log,
        }
    }
}

impl GuestArgs {
    /// What the guest is granted of WASI: `--env` and `--dir`.
    fn wasi(&self, inherit_stdin: bool) -> WasiConfig {
        let mut env = Vec::with_capacity(self.env.len());
        for item in &self.env {
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
        WasiConfig {
            env,
            dirs: self.dirs.clone(),
            inherit_stdin,
            ..WasiConfig::default()
        }
    }
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

/// `HOST:PORT`, with HOST an address or a name. A name that has IPv4 addresses listens on
/// the first of them, so that `localhost:8080` is reached at 127.0.0.1 as most tools try.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|err| format!("{text:?} is not an address to listen on ({err}); use HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080"))?
        .collect();
    let first_v4 = addrs.iter().find(|addr| addr.is_ipv4());
    first_v4
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} names no address"))
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

fn main() {
    let cli = Cli::parse();
    let runtime = match wasmlens_workload::async_runtime() {
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

/// Starts the telemetry pipeline; `metrics_listen` adds a Prometheus endpoint,
/// `recording` keeps recent telemetry in memory for the view.
fn start_telemetry(
    default_log_filter: &str,
    metrics_listen: Option<&str>,
    recording: Option<usize>,
) -> anyhow::Result<Arc<Telemetry>> {
    let mut config = TelemetryConfig::from_env();
    if let Some(addr) = metrics_listen {
        config = config.with_metrics_listen(addr);
    }
    if let Some(bytes) = recording {
        config = config.with_recording(bytes);
    }
    Ok(Arc::new(Telemetry::init(config, default_log_filter)?))
}

/// The telemetry pipeline of a server (`serve`, `up`), and its view.
async fn start_server_telemetry(server: &ServerArgs) -> anyhow::Result<Arc<Telemetry>> {
    let telemetry = start_telemetry(
        "info",
        server.metrics_listen.as_deref(),
        server.view.recording(),
    )?;
    if let Err(err) = server.view.start(&telemetry).await {
        stop_telemetry(telemetry).await;
        return Err(err);
    }
    Ok(telemetry)
}

/// Flushes everything recorded, off the async workers (the exporters block).
async fn stop_telemetry(telemetry: Arc<Telemetry>) {
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
}

/// The trace this process continues, if whoever started it said: TRACEPARENT and
/// friends, or TRACECONTEXT as the containerd shim sets it.
fn process_parent(telemetry: &Telemetry) -> opentelemetry::Context {
    propagation::extract_from_env(telemetry.propagator(), |name| std::env::var(name).ok())
}

/// A workload of the one component named on the command line.
fn single(component: ComponentSpec, server: ServeOptions) -> WorkloadSpec {
    WorkloadSpec {
        id: component.id.clone(),
        name: component.id.clone(),
        manifest: None,
        components: vec![component],
        server,
        pool_memory: PoolMemory::default(),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let grants = args.plugins.grant(Grants {
        wasi: args.guest.wasi(true),
        ..Grants::default()
    })?;
    let shutdown = shutdown_signal()?;
    let telemetry = start_telemetry("warn,wasmlens::event=off", None, None)?;
    let (id, _) = component_names(&args.component);
    let component = ComponentSpec {
        id,
        source: args.component.clone(),
        trigger: Trigger::Cli { args: args.args },
        limits: args.limits.limits(),
        grants,
    };
    let spec = single(component, ServeOptions::default());
    let result = run_workload(&telemetry, spec, shutdown).await;
    stop_telemetry(telemetry).await;
    let ended = result?;
    if let Some((path, failure)) = &ended.failure {
        eprintln!("wasmlens: {}: {failure}", path.display());
    }
    Ok(ended.exit_code)
}

async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let grants = args.plugins.grant(Grants {
        wasi: args.guest.wasi(false),
        ..Grants::default()
    })?;
    let shutdown = shutdown_signal()?;
    let telemetry = start_server_telemetry(&args.server).await?;
    let result = match propagate_to(&args.propagate_to) {
        Ok(propagate_to) => {
            let (id, _) = component_names(&args.component);
            let outbound = OutboundPolicy::new(args.allow_outbound, propagate_to);
            let component = ComponentSpec {
                id,
                source: args.component.clone(),
                trigger: Trigger::Http {
                    route: "/".to_owned(),
                },
                limits: args.limits.limits(),
                grants: Grants {
                    outbound_http: outbound,
                    ..grants
                },
            };
            let mut spec = single(component, args.server.options());
            spec.pool_memory = args.server.pool_memory();
            run_workload(&telemetry, spec, shutdown).await
        }
        Err(err) => Err(err),
    };
    stop_telemetry(telemetry).await;
    result.map(|ended| ended.exit_code)
}

async fn up(args: UpArgs) -> anyhow::Result<i32> {
    let shutdown = shutdown_signal()?;
    let telemetry = start_server_telemetry(&args.server).await?;
    let result = match wasmlens_workload::manifest::load(&args.manifest) {
        Ok(mut spec) => {
            spec.server = args.server.options();
            spec.pool_memory = args.server.pool_memory();
            run_workload(&telemetry, spec, shutdown).await
        }
        Err(err) => {
            // Refused before it had an id: the manifest names it.
            let shown = args.manifest.display().to_string();
            let parent = process_parent(&telemetry);
            wasmlens_workload::report_refused(&telemetry, &shown, &err, &parent);
            Err(err)
        }
    };
    stop_telemetry(telemetry).await;
    result.map(|ended| ended.exit_code)
}

/// Loads and starts the workload, stops it when `shutdown` resolves (with the signal's
/// name as the reason), and says how it ended.
async fn run_workload(
    telemetry: &Arc<Telemetry>,
    spec: WorkloadSpec,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<wasmlens_workload::Ended> {
    let parent = process_parent(telemetry);
    let workload = Workload::load(telemetry.clone(), spec, parent).await?;
    Ok(workload.run_until(shutdown).await)
}

/// Watches for SIGINT and SIGTERM from the moment it is called, so that a signal that
/// comes while the component is still compiling is not lost (nor kills the process
/// without a flush); the returned future resolves at the first of them, with its name.
/// A second signal ends the process at once, without waiting for anything.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => shutdown_reason::SIGINT,
            _ = terminate.recv() => shutdown_reason::SIGTERM,
        };
        tracing::info!("{name} received; stopping (again to quit at once)");
        tokio::spawn(async move {
            let again = tokio::select! {
                _ = interrupt.recv() => shutdown_reason::SIGINT,
                _ = terminate.recv() => shutdown_reason::SIGTERM,
            };
            eprintln!("wasmlens: {again} received again: quitting without waiting or flushing");
            std::process::exit(wasmlens_workload::interrupted_exit_code(again));
        });
        name
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--keep-resident`'s default is written for `--help` ("1MiB"): it must be the
    /// engine's, which the library's users get.
    #[test]
    fn the_flags_defaults_are_the_engines() {
        let cli = Cli::try_parse_from(["wasmlens", "serve", "app.wasm"]).unwrap();
        let Commands::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.server.pool_memory(), PoolMemory::default());
    }
}
