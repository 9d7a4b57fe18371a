//! The HTTP trigger: serves wasi:http proxy components over HTTP/1.1, routed by path
//! prefix. Each request gets a fresh instance from the host, its own `HttpRequest` span
//! (continuing the caller's trace) with the host's `ComponentInstantiation` and
//! `ComponentInvocation` inside, and the request-duration metric.

mod answer;
mod body;
mod connection;
mod handler;
mod metrics;
mod proxy;
mod server;
mod slots;
mod watchdog;

pub use handler::Route;
pub use proxy::{HttpProxy, ProxyComponent};
pub use server::{ServeOptions, Server};
