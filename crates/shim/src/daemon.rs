//! What the shim's daemon sets up before any thread exists, since each thread inherits
//! it: its stderr (containerd's log of the shim), the container's network namespace, and
//! a home for compiled components.

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::OnceLock;

/// Where compiled components are kept when neither `WASMLENS_CACHE_DIR` nor a home is
/// set (containerd under systemd has no `HOME`), so that an image is compiled once, not
/// at every task start.
const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmlens";

/// Why the container's network namespace could not be joined, if it could not: then no
/// task is created (it would be served on the wrong network).
static NETWORK_JOIN_FAILED: OnceLock<String> = OnceLock::new();

/// Sets the daemon up, in the bundle (its working directory). Call it first thing, while
/// the process has one thread.
pub fn prepare() {
    // containerd reads the shim's log from the `log` FIFO in the bundle; without a
    // reader the log goes nowhere rather than the daemon waiting for one.
    if let Ok(log) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        // Blocking again, as a stderr is: a full FIFO makes a line wait, never fail.
        let _ = set_blocking(&log);
        // SAFETY: both descriptors are open; nothing else runs yet.
        unsafe { libc::dup2(log.as_raw_fd(), libc::STDERR_FILENO) };
    }
    if std::env::var_os("WASMLENS_CACHE_DIR").is_none() && std::env::var_os("HOME").is_none() {
        // SAFETY: single-threaded still.
        unsafe { std::env::set_var("WASMLENS_CACHE_DIR", DEFAULT_CACHE_DIR) };
    }
    if let Ok(spec) = crate::spec::ContainerSpec::load(Path::new("."))
        && let Some(netns) = &spec.network_namespace
        && let Err(err) = join_network_namespace(netns)
    {
        let _ = NETWORK_JOIN_FAILED.set(format!(
            "cannot join the container's network namespace {}: {err}",
            netns.display()
        ));
    }
}

/// Why the daemon is not in the container's network, if it is not.
pub(crate) fn network_join_failed() -> Option<&'static str> {
    NETWORK_JOIN_FAILED.get().map(String::as_str)
}

fn join_network_namespace(path: &Path) -> std::io::Result<()> {
    let namespace = File::open(path)?;
    // SAFETY: a valid descriptor; joining only changes this (the only) thread's network.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Clears `O_NONBLOCK` on a file opened with it.
pub(crate) fn set_blocking(file: &File) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
