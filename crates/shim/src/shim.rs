//! The shim's process: started by containerd (`start`), it starts itself again as the
//! daemon that serves the task service for one container, and cleans up after a daemon
//! that died (`delete`).

use crate::container::Containerd;
use crate::spec::ContainerSpec;
use crate::task::TaskService;
use async_trait::async_trait;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::{ExitSignal, Shim, spawn};
use containerd_shim::{Config, Error, Flags, StartOpts, api};
use std::sync::Arc;
use std::time::SystemTime;
use wasmlens_telemetry::{Telemetry, TelemetryConfig};

/// containerd's name for the runtime: `io.containerd.wasmlens.v1` finds the binary
/// `containerd-shim-wasmlens-v1` on containerd's PATH.
pub const RUNTIME_ID: &str = "io.containerd.wasmlens.v1";

pub struct WasmlensShim {
    id: String,
    namespace: String,
    /// containerd's API socket.
    address: String,
    /// containerd runs at debug level (`-debug`): so does the shim's own log.
    debug: bool,
    exit: Arc<ExitSignal>,
}

#[async_trait]
impl Shim for WasmlensShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, config: &mut Config) -> Self {
        // The host's log goes where containerd reads the shim's (see `main`); the
        // library's own logger would take the `log` facade that `tracing` bridges.
        config.no_setup_logger = true;
        WasmlensShim {
            id: flags.id.clone(),
            namespace: flags.namespace.clone(),
            address: flags.address.clone(),
            debug: flags.debug,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let grouping = opts.id.clone();
        let address = spawn(opts, &grouping, Vec::new()).await?;
        containerd_shim::asynchronous::util::write_str_to_file("address", &address).await?;
        Ok(address)
    }

    /// After a daemon died: unmount what it may have left mounted at the bundle's
    /// `rootfs` (containerd runs this in the bundle), and say the task ended as killed.
    async fn delete_shim(&mut self) -> Result<api::DeleteResponse, Error> {
        match std::env::current_dir() {
            Ok(bundle) => crate::container::unmount_rootfs(&bundle),
            Err(err) => tracing::warn!("cannot tell the bundle, so nothing is unmounted: {err}"),
        }
        Ok(api::DeleteResponse {
            exit_status: 128 + 9,
            exited_at: Some(crate::task::timestamp(SystemTime::now())).into(),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        TaskService::new(
            self.id.clone(),
            Containerd {
                address: self.address.clone(),
                namespace: self.namespace.clone(),
            },
            publisher,
            start_telemetry(&self.id, self.debug),
            self.exit.clone(),
        )
    }
}

/// The daemon's telemetry, from the `OTEL_*` variables containerd was started with; its
/// resource says which container (and pod) it is about. A pipeline that cannot be built
/// leaves the shim running without one, and says why. `RUST_LOG` overrides the log's
/// level, which is containerd's (`debug` for the shim's own lines when containerd's is).
fn start_telemetry(id: &str, debug: bool) -> Arc<Telemetry> {
    // containerd starts the shim in the container's bundle.
    let resource = match ContainerSpec::load(std::path::Path::new(".")) {
        Ok(spec) => spec.resource(id),
        Err(_) => ContainerSpec::resource_without_spec(id),
    };
    let config = TelemetryConfig::from_env().with_resource_attributes(resource.clone());
    let log_filter = match debug {
        true => "info,wasmlens_shim=debug",
        false => "info",
    };
    let telemetry = Telemetry::init(config, log_filter).unwrap_or_else(|err| {
        eprintln!("wasmlens shim: telemetry is off: {err:#}");
        let off = TelemetryConfig::from_lookup(|name| {
            (name == "OTEL_SDK_DISABLED").then(|| "true".to_owned())
        });
        Telemetry::build(off).expect("a disabled pipeline builds")
    });
    Arc::new(telemetry)
}
