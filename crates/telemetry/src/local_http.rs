//! The small HTTP endpoints the host serves beside its workload (the Prometheus scrape
//! endpoint, the built-in view): each request answered at once by a function, HTTP/1.1,
//! until the process ends.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// Serves `answer` on `listener` until the process ends; returns its address.
pub fn serve<F>(listener: tokio::net::TcpListener, answer: F) -> SocketAddr
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Clone + Send + Sync + 'static,
{
    let local = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    tracing::debug!("{local}: connection: {err}");
                }
            });
        }
    });
    local
}
