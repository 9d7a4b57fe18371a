//! The WASI capability: what a guest is granted of wasi:cli, wasi:filesystem and the
//! rest of WASI 0.2 (its arguments, environment variables, directories and stdin), and
//! what becomes of its stdout and stderr (log records, and maybe the host's own streams).
//! By default a guest is granted nothing. It reaches its state in a store through
//! wasmtime-wasi's `WasiView`.

mod output;

pub use output::{GuestOutput, OutputFiles, Passthrough};

use std::path::PathBuf;
use wasmlens_engine::{Capability, ComponentContext, InstanceContext};
use wasmlens_telemetry::{GuestLogEmitter, GuestStream, propagation};
use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiView};

/// A host directory granted to the guest (`--dir HOST[::GUEST]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
}

impl Preopen {
    /// Parses `HOST[::GUEST]`; without `::GUEST` the guest sees the host path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (host, guest) = match text.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (text, text),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "{text:?}: expected HOST[::GUEST], e.g. ./data::/data"
            ));
        }
        Ok(Preopen {
            host: host.into(),
            guest: guest.into(),
        })
    }
}

/// What a component is granted of WASI. By default nothing: no arguments, no environment
/// variables, no files, a closed stdin, and output kept as log records only.
#[derive(Clone, Debug, Default)]
pub struct WasiConfig {
    /// Its arguments, the program's name first.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Host directories it may read and write.
    pub dirs: Vec<Preopen>,
    /// Whether it reads the host's stdin (a command run from a terminal).
    pub inherit_stdin: bool,
    /// How its stdout and stderr also reach the host's.
    pub output: Passthrough,
    /// Where they reach instead of the host process's own stdout and stderr (the
    /// containerd shim's container's FIFOs).
    pub output_files: Option<OutputFiles>,
}

/// The capability. It holds nothing itself: everything is per component.
#[derive(Debug, Default)]
pub struct Wasi;

/// A component's WASI grant, checked.
pub struct WasiGrant {
    config: WasiConfig,
    /// Its output's log records; `None` where logs go nowhere.
    logs: Option<GuestLogEmitter>,
    /// Whether the guest's environment gets its invocation's `TRACEPARENT`.
    trace_context: bool,
}

impl<T: WasiView + 'static> Capability<T> for Wasi {
    type Config = WasiConfig;
    type Bound = WasiGrant;
    type InstanceState = WasiCtx;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        Ok(())
    }

    /// Opens the granted directories once, so that a grant that cannot be given refuses
    /// the workload before anything runs, rather than failing every instance.
    async fn bind(
        &self,
        config: &WasiConfig,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<WasiGrant> {
        grant_dirs(&config.dirs, &mut WasiCtxBuilder::new())?;
        let telemetry = component.telemetry;
        Ok(WasiGrant {
            config: config.clone(),
            logs: telemetry
                .logger()
                .map(|logger| GuestLogEmitter::new(logger.clone(), component.id.clone())),
            trace_context: telemetry.config().propagators.tracecontext,
        })
    }

    /// The instance's WASI context. Its `TRACEPARENT` (and `TRACESTATE`) name its
    /// invocation, so that a program it hands them to continues the trace; they win over
    /// a granted variable of the same name.
    fn instance_state(
        &self,
        grant: &WasiGrant,
        instance: &InstanceContext<'_>,
    ) -> anyhow::Result<WasiCtx> {
        let config = &grant.config;
        let host_env = match grant.trace_context {
            true => propagation::guest_env(instance.invocation),
            false => Vec::new(),
        };
        let mut builder = WasiCtxBuilder::new();
        // The host's trace context replaces a granted one whole, `TRACESTATE` included
        // when the host has none (it would not go with the host's `TRACEPARENT`).
        let replaced =
            |key: &str| !host_env.is_empty() && propagation::GUEST_ENV_NAMES.contains(&key);
        let granted = config
            .env
            .iter()
            .filter(|(key, _)| !replaced(key))
            .map(|(key, value)| (key.as_str(), value.as_str()));
        let host = host_env.iter().map(|(key, value)| (*key, value.as_str()));
        for (key, value) in granted.chain(host) {
            builder.env(key, value);
        }
        let output = |stream| {
            GuestOutput::new(stream, config.output, grant.logs.clone())
                .writing_to(config.output_files.clone())
        };
        builder
            .args(&config.args)
            .stdout(output(GuestStream::Stdout))
            .stderr(output(GuestStream::Stderr));
        if config.inherit_stdin {
            builder.inherit_stdin();
        }
        grant_dirs(&config.dirs, &mut builder)?;
        Ok(builder.build())
    }
}

fn grant_dirs(dirs: &[Preopen], builder: &mut WasiCtxBuilder) -> anyhow::Result<()> {
    for dir in dirs {
        builder
            .preopened_dir(&dir.host, &dir.guest, FsPerms::ReadWrite)
            .map_err(|err| anyhow::anyhow!("--dir {}: {err}", dir.host.display()))?;
    }
    Ok(())
}
