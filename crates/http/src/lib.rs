//! `wasmlens serve` and `up`: serves wasi:http proxy components over HTTP/1.1, routed by
//! path prefix. Each component is compiled and pre-instantiated once; each request gets a
//! fresh instance, its own
//! `HttpRequest` span (continuing the caller's trace) with `ComponentInstantiation` and
//! `ComponentInvocation` inside, and the request-duration metric.

mod body;
mod handler;
mod metrics;
mod outbound;
mod proxy;
mod server;

pub use handler::Route;
pub use outbound::{HostPattern, OutboundPolicy};
pub use proxy::{ProxyComponent, ProxySpec};
pub use server::{ServeOptions, Server};
