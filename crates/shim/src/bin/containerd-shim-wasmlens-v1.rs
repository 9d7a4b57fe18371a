//! The binary containerd starts for the runtime `io.containerd.wasmlens.v1`.

#[global_allocator]
static ALLOCATOR: wasmlens_allocator::Mimalloc = wasmlens_allocator::Mimalloc;

fn main() {
    // The daemon (started by `start` with a socket to serve); not `start` or `delete`.
    if std::env::args().any(|arg| arg == "-socket") {
        wasmlens_shim::daemon::prepare();
    }
    let runtime = match wasmlens_workload::async_runtime() {
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
