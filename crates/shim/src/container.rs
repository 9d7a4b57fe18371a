//! A container, made ready to start: its root filesystem mounted, its output opened, its
//! component found, checked and compiled into a workload.

use crate::spec::ContainerSpec;
use anyhow::{Context as _, bail};
use containerd_shim::api;
use containerd_shim::protos::types::mount::Mount;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmlens_telemetry::{Telemetry, propagation};
use wasmlens_workload::{
    ComponentSpec, Grants, OutputFiles, Preopen, ServeOptions, Trigger, WasiConfig, Workload,
    WorkloadSpec, component_names, exported_names,
};

/// The container's standard streams, as containerd named them (FIFOs, or empty).
#[derive(Clone, Debug, Default)]
pub struct Io {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
}

/// What the task will run.
pub enum Payload {
    Workload(Box<Workload>),
    /// A Kubernetes pod's sandbox (its "pause" container): nothing, until killed.
    Sandbox,
}

/// A created container.
pub struct Container {
    pub bundle: PathBuf,
    pub io: Io,
    /// Where its root filesystem was mounted, to be unmounted when it is deleted.
    mounted: Option<PathBuf>,
}

impl Container {
    /// Makes the container of a `Create` request ready to start. `cx` is the request's
    /// span: the workload's trace continues it, unless the container's environment names
    /// a trace of its own (`TRACECONTEXT`, `TRACEPARENT`).
    pub async fn create(
        telemetry: &Arc<Telemetry>,
        containerd: &Containerd,
        req: &api::CreateTaskRequest,
        cx: Context,
    ) -> anyhow::Result<(Container, Payload)> {
        let bundle = PathBuf::from(&req.bundle);
        let spec = ContainerSpec::load(&bundle)?;
        let mounted = mount_rootfs(&req.rootfs, &spec.root)?;
        let container = Container {
            bundle,
            io: Io {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
            },
            mounted,
        };
        let found = find_component(containerd, &req.id, &spec, &container.bundle).await;
        let prepared = match found {
            Ok(component) => prepare(telemetry, &req.id, &spec, component, &container.io, cx).await,
            Err(err) => Err(err),
        };
        match prepared {
            Ok(payload) => Ok((container, payload)),
            Err(err) => {
                container.remove();
                Err(err)
            }
        }
    }

    /// Undoes what [`Container::create`] did to the host: unmounts the root filesystem.
    pub fn remove(self) {
        if let Some(target) = self.mounted
            && let Err(err) = unmount(&target)
        {
            tracing::warn!("cannot unmount {}: {err}", target.display());
        }
    }
}

/// Where containerd is, for what the root filesystem does not hold.
pub struct Containerd {
    /// Its API socket (the shim's `-address`).
    pub address: String,
    pub namespace: String,
}

/// The component a container runs: where it is on the host, its bytes, and how to name
/// it (its path in the container, or its image).
pub struct Component {
    source: PathBuf,
    bytes: Vec<u8>,
    shown: String,
}

/// Finds the component: the file the entrypoint names in the root filesystem (a plain
/// image), or else a layer of the image of its own (the Wasm OCI artifact layout), which
/// is written into the bundle for the workload to load. `None` for a pod's sandbox.
async fn find_component(
    containerd: &Containerd,
    id: &str,
    spec: &ContainerSpec,
    bundle: &Path,
) -> anyhow::Result<Option<Component>> {
    if spec.is_sandbox() {
        return Ok(None);
    }
    let in_rootfs = match spec.args.first() {
        Some(_) => Some(spec.component_path()?),
        None => None,
    };
    if let Some(source) = in_rootfs.filter(|path| path.is_file()) {
        let shown = spec.args[0].clone();
        let bytes =
            std::fs::read(&source).with_context(|| format!("cannot read the component {shown}"))?;
        return Ok(Some(Component {
            source,
            bytes,
            shown,
        }));
    }
    let api =
        crate::artifact::ContainerdApi::connect(&containerd.address, &containerd.namespace).await?;
    match api.component_layer(id).await? {
        Some((bytes, image)) => {
            let source = bundle.join("component.wasm");
            std::fs::write(&source, &bytes)
                .with_context(|| format!("cannot write {}", source.display()))?;
            Ok(Some(Component {
                source,
                bytes,
                shown: image,
            }))
        }
        None => match spec.args.first() {
            Some(entry) => bail!(
                "{entry}: no such file in the container's root filesystem, and its image has \
                 no wasm layer"
            ),
            None => bail!(
                "the container names no component: its image has no entrypoint and no wasm \
                 layer, and no command was given"
            ),
        },
    }
}

async fn prepare(
    telemetry: &Arc<Telemetry>,
    id: &str,
    spec: &ContainerSpec,
    component: Option<Component>,
    io: &Io,
    cx: Context,
) -> anyhow::Result<Payload> {
    let Some(Component {
        source,
        bytes,
        shown,
    }) = component
    else {
        return Ok(Payload::Sandbox);
    };
    let shown = shown.as_str();
    let exports = exported_names(&bytes).with_context(|| shown.to_owned())?;
    let exports_ = |interface: &str| {
        exports
            .iter()
            .any(|name| name.split('@').next() == Some(interface))
    };
    let trigger = if exports_("wasi:http/incoming-handler") {
        Trigger::Http {
            route: "/".to_owned(),
        }
    } else if exports_("wasi:cli/run") {
        Trigger::Cli {
            args: spec.args.iter().skip(1).cloned().collect(),
        }
    } else {
        bail!(
            "{shown} exports neither wasi:http/incoming-handler (served over HTTP) nor \
             wasi:cli/run (run as a command); it exports {}",
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        );
    };
    let mut server = ServeOptions::default();
    if matches!(trigger, Trigger::Http { .. }) {
        server.listen = spec.listen()?;
        if spec.wants_new_network {
            tracing::warn!(
                "the container asks for a network namespace of its own, which wasmlens does not \
                 make: {shown} is served on the host's network at {} (say --net-host to mean it)",
                server.listen
            );
        }
    }
    let (file_id, _) = component_names(&source);
    let component = ComponentSpec {
        id: file_id,
        source: source.clone(),
        trigger,
        limits: spec.limits()?,
        grants: Grants {
            wasi: WasiConfig {
                // The program's name: the entrypoint as the container gives it, or the
                // image of a component that is a layer of its own.
                args: match spec.args.is_empty() {
                    true => vec![shown.to_owned()],
                    false => spec.args.clone(),
                },
                env: spec.env.clone(),
                // The root filesystem is the guest's `/` (an artifact's may have none).
                dirs: (spec.root.is_dir().then(|| Preopen {
                    host: spec.root.clone(),
                    guest: "/".to_owned(),
                }))
                .into_iter()
                .collect(),
                output_files: Some(open_output(io)?),
                ..WasiConfig::default()
            },
            ..Grants::default()
        },
    };
    let workload = WorkloadSpec {
        id: id.to_owned(),
        name: id.to_owned(),
        manifest: None,
        components: vec![component],
        server,
    };
    let from_env = propagation::extract_from_env(telemetry.propagator(), |name| {
        spec.env_var(name).map(str::to_owned)
    });
    let parent = if from_env.span().span_context().is_valid() {
        from_env
    } else {
        cx
    };
    let workload = Workload::load(telemetry.clone(), workload, parent).await?;
    Ok(Payload::Workload(Box::new(workload)))
}

/// Opens the container's stdout and stderr FIFOs (or /dev/null where containerd gave
/// none), without waiting for a reader.
fn open_output(io: &Io) -> anyhow::Result<OutputFiles> {
    let open = |path: &str| -> anyhow::Result<Arc<Mutex<File>>> {
        let path = if path.is_empty() { "/dev/null" } else { path };
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("cannot open the container's output {path}"))?;
        // Writes block again, as a process's stdout does: output is never dropped.
        set_blocking(&file)?;
        Ok(Arc::new(Mutex::new(file)))
    };
    Ok(OutputFiles {
        stdout: open(&io.stdout)?,
        stderr: open(&io.stderr)?,
    })
}

fn set_blocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Mounts what containerd prepared as the root filesystem (a snapshot) at `target`,
/// when it sent any: then it is to be unmounted at delete.
fn mount_rootfs(mounts: &[Mount], target: &Path) -> anyhow::Result<Option<PathBuf>> {
    if mounts.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(target).with_context(|| format!("cannot make {}", target.display()))?;
    for mount in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(mount.type_.as_str()),
            Some(mount.source.as_str()),
            &mount.options,
            target,
        )
        .with_context(|| {
            format!(
                "cannot mount the root filesystem ({} {}) at {}",
                mount.type_,
                mount.source,
                target.display()
            )
        })?;
    }
    Ok(Some(target.to_owned()))
}

fn unmount(target: &Path) -> anyhow::Result<()> {
    let target = target.to_string_lossy();
    containerd_shim::mount::umount_recursive(Some(&target), 0)?;
    Ok(())
}
