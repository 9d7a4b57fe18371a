//! The binary containerd starts for the runtime `io.containerd.wasmlens.v1`.

use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where compiled components are kept when neither `WASMLENS_CACHE_DIR` nor a home is
/// set (containerd under systemd has no `HOME`), so that an image is compiled once, not
/// at every task start.
const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmlens";

fn main() {
    let daemon = std::env::args().any(|arg| arg == "-socket");
    if daemon {
        prepare_daemon();
    }
    // As `wasmlens`'s: a worker busy with computing guests still looks at the network
    // and the timers every 8 ticks (80 ms), not tokio's 61 (0.6 s).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(8)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("containerd-shim-wasmlens-v1: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(containerd_shim::asynchronous::run::<
        wasmlens_shim::WasmlensShim,
    >(wasmlens_shim::RUNTIME_ID, None));
}

/// Before any thread exists (each inherits what is set here): the daemon's stderr
/// becomes containerd's log of the shim, the container's network namespace is joined,
/// and the compile cache has a home.
fn prepare_daemon() {
    // containerd reads the shim's log from the `log` FIFO in the bundle, the daemon's
    // working directory; without a reader the log is dropped rather than blocking.
    if let Ok(log) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        // SAFETY: both descriptors are open; nothing else runs yet.
        unsafe { libc::dup2(log.as_raw_fd(), libc::STDERR_FILENO) };
    }
    if std::env::var_os("WASMLENS_CACHE_DIR").is_none() && std::env::var_os("HOME").is_none() {
        // SAFETY: single-threaded still.
        unsafe { std::env::set_var("WASMLENS_CACHE_DIR", DEFAULT_CACHE_DIR) };
    }
    if let Ok(spec) = wasmlens_shim::spec::ContainerSpec::load(std::path::Path::new("."))
        && let Some(netns) = &spec.network_namespace
        && let Err(err) = join_network_namespace(netns)
    {
        eprintln!(
            "containerd-shim-wasmlens-v1: cannot join the network namespace {}: {err}",
            netns.display()
        );
    }
}

fn join_network_namespace(path: &std::path::Path) -> std::io::Result<()> {
    let namespace = std::fs::File::open(path)?;
    // SAFETY: a valid descriptor; joining only changes this (the only) thread's network.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
