//! What the integration tests share: an OTLP receiver that tests start in-process on a
//! loopback port, the paths of the test guests, a handle on a running `wasmlens`, and a
//! real Redis server, and a private containerd.

mod containerd;
mod process;
mod receiver;
mod redis;
mod tls;

pub use containerd::{Api, Containerd, ImageLayout, cannot_run_containerd, oci_image_tar};
pub use process::{
    Finished, HttpConnection, Wasmlens, guest, http_get, http_request, run_to_end, workload_dir,
};
pub use receiver::{
    EventRecord, HistogramData, LogRecord, MetricPoint, OtlpReceiver, SpanRecord, Transport,
};
pub use redis::RedisServer;
pub use tls::TestCertificates;
