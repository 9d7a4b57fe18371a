//! A container, made ready to start: its root filesystem mounted, its output opened, its
//! component found, checked and compiled into a workload.

use crate::spec::ContainerSpec;
use anyhow::{Context as _, bail};
use containerd_shim::api;
use containerd_shim::protos::types::mount::Mount;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;
use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmlens_telemetry::{Telemetry, propagation};
use wasmlens_workload::{
    ComponentSpec, Grants, OutputFiles, PoolMemory, Preopen, ServeOptions, Trigger, WasiConfig,
    Workload, WorkloadSpec, component_names, exported_names,
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

/// Where containerd is, for what the root filesystem does not hold.
pub struct Containerd {
    /// Its API socket (the shim's `-address`).
    pub address: String,
    pub namespace: String,
}

/// A created container. Dropping it unmounts its root filesystem.
pub struct Container {
    pub bundle: PathBuf,
    pub io: Io,
    _rootfs: Option<MountedRootfs>,
}

/// The root filesystem containerd prepared, mounted at the bundle's `rootfs` (as runc's
/// shim mounts it) until dropped: also when the request that mounted it fails half-way
/// or is abandoned.
struct MountedRootfs(PathBuf);

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        let target = self.0.to_string_lossy();
        if let Err(err) = containerd_shim::mount::umount_recursive(Some(&target), 0) {
            tracing::warn!("cannot unmount {target}: {err}");
        }
    }
}

/// Unmounts what a daemon that died left at `bundle/rootfs`.
pub fn unmount_rootfs(bundle: &Path) {
    drop(MountedRootfs(bundle.join("rootfs")));
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
        if let Some(why) = crate::daemon::network_join_failed() {
            bail!("{why}");
        }
        let bundle = PathBuf::from(&req.bundle);
        let spec = ContainerSpec::load(&bundle)?;
        let container = Container {
            _rootfs: mount_rootfs(&req.rootfs, &bundle, &spec)?,
            bundle,
            io: Io {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
            },
        };
        let payload = match find_component(containerd, &req.id, &spec, &container.bundle).await? {
            None => Payload::Sandbox,
            Some(component) => {
                let workload = workload_spec(&req.id, &spec, component, &container.io)?;
                let parent = parent_of(telemetry, &spec.env, cx);
                let workload = Workload::load(telemetry.clone(), workload, parent).await?;
                Payload::Workload(Box::new(workload))
            }
        };
        Ok((container, payload))
    }

    /// Undoes what [`Container::create`] did to the host.
    pub fn remove(self) {
        drop(self);
    }
}

/// The component a container runs: where it was copied for the workload to load, and
/// how to name it (its path in the container, or its image).
struct Component {
    source: PathBuf,
    bytes: Vec<u8>,
    shown: String,
}

/// Finds the component: the file the entrypoint names in the root filesystem (a plain
/// image), or else a layer of the image of its own (the Wasm OCI artifact layout). Either
/// is copied into the bundle, where the workload loads it: the root filesystem is read
/// once, within itself. `None` for a pod's sandbox.
async fn find_component(
    containerd: &Containerd,
    id: &str,
    spec: &ContainerSpec,
    bundle: &Path,
) -> anyhow::Result<Option<Component>> {
    if spec.is_sandbox() {
        return Ok(None);
    }
    let source = bundle.join("component.wasm");
    let write = |bytes: &[u8]| {
        std::fs::write(&source, bytes).with_context(|| format!("cannot write {}", source.display()))
    };
    if let Some(entry) = spec.args.first()
        && let Some(bytes) = read_in_root(&spec.root, &spec.component_path()?)
            .with_context(|| format!("cannot read the component {entry}"))?
    {
        write(&bytes)?;
        let shown = entry.clone();
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
            write(&bytes)?;
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

/// The file at `path` (inside `root`), read with every symbolic link resolved within
/// `root`, as the container would see it: never a file of the host's. `None` if there is
/// no such file.
fn read_in_root(root: &Path, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let Ok(relative) = path.strip_prefix(root) else {
        bail!("{} is outside the root filesystem", path.display());
    };
    let Ok(root) = File::open(root) else {
        return Ok(None);
    };
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    match rustix::fs::openat2(&root, relative, flags, Mode::empty(), ResolveFlags::IN_ROOT) {
        Ok(fd) => {
            let mut bytes = Vec::new();
            File::from(fd).read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The workload of one component a container makes.
fn workload_spec(
    id: &str,
    spec: &ContainerSpec,
    component: Component,
    io: &Io,
) -> anyhow::Result<WorkloadSpec> {
    let Component {
        source,
        bytes,
        shown,
    } = component;
    let trigger = trigger(spec, &bytes, &shown)?;
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
    let wasi = WasiConfig {
        // The program's name: the entrypoint as the container gives it, or the image of a
        // component that is a layer of its own.
        args: match spec.args.is_empty() {
            true => vec![shown.clone()],
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
    };
    let (file_id, _) = component_names(Path::new(&shown));
    Ok(WorkloadSpec {
        id: id.to_owned(),
        name: id.to_owned(),
        manifest: None,
        components: vec![ComponentSpec {
            id: file_id,
            source,
            trigger,
            limits: spec.limits()?,
            grants: Grants {
                wasi,
                ..Grants::default()
            },
        }],
        server,
        pool_memory: PoolMemory::default(),
    })
}

/// How the component runs, by what it exports: served over HTTP, or run as a command.
fn trigger(spec: &ContainerSpec, bytes: &[u8], shown: &str) -> anyhow::Result<Trigger> {
    let exports = exported_names(bytes).with_context(|| shown.to_owned())?;
    let exports_interface = |interface: &str| {
        exports
            .iter()
            .any(|name| name.split('@').next() == Some(interface))
    };
    if exports_interface("wasi:http/incoming-handler") {
        Ok(Trigger::Http {
            route: "/".to_owned(),
        })
    } else if exports_interface("wasi:cli/run") {
        Ok(Trigger::Cli {
            args: spec.args.iter().skip(1).cloned().collect(),
        })
    } else {
        let exported = match exports.is_empty() {
            true => "nothing".to_owned(),
            false => exports.join(", "),
        };
        bail!(
            "{shown} exports neither wasi:http/incoming-handler (served over HTTP) nor \
             wasi:cli/run (run as a command); it exports {exported}"
        )
    }
}

/// What the workload's trace continues: a trace the container's environment names, else
/// the `Create` request's span.
fn parent_of(telemetry: &Telemetry, env: &[(String, String)], cx: Context) -> Context {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let from_env = propagation::extract_from_env(telemetry.propagator(), lookup);
    match from_env.span().span_context().is_valid() {
        true => from_env,
        false => cx,
    }
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
        crate::daemon::set_blocking(&file)?;
        Ok(Arc::new(Mutex::new(file)))
    };
    Ok(OutputFiles {
        stdout: open(&io.stdout)?,
        stderr: open(&io.stderr)?,
    })
}

/// Mounts what containerd prepared as the root filesystem (a snapshot) at the bundle's
/// `rootfs`, when it sent any; the spec must name that as its root.
fn mount_rootfs(
    mounts: &[Mount],
    bundle: &Path,
    spec: &ContainerSpec,
) -> anyhow::Result<Option<MountedRootfs>> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let target = bundle.join("rootfs");
    if spec.root != target {
        bail!(
            "the spec's root ({}) is not the bundle's rootfs, where containerd's snapshot is \
             mounted",
            spec.root.display()
        );
    }
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot make {}", target.display()))?;
    // Unmounted again if a later mount fails.
    let mounted = MountedRootfs(target.clone());
    for mount in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(mount.type_.as_str()),
            Some(mount.source.as_str()),
            &mount.options,
            &target,
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
    Ok(Some(mounted))
}
