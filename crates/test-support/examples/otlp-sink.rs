//! An OTLP/HTTP endpoint for benchmarks: it answers every export at once and decodes
//! nothing while it does, so that the exporter under test, not the receiver, sets the pace.
//! The bodies are kept, and decoded only when asked how many spans arrived.
//!
//!     otlp-sink --http 4318
//!     curl -s localhost:4318/stats          # {"exports":N,"spans":S,"bytes":B}, then forgets them
//!
//! Point wasmlens at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (the default
//! protocol, http/protobuf).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Kept {
    /// Trace export bodies, as received (maybe gzip-compressed).
    traces: Vec<(bool, Bytes)>,
    exports: u64,
    bytes: u64,
}

fn count_spans(kept: &[(bool, Bytes)]) -> u64 {
    kept.iter()
        .map(|(gzip, body)| {
            let body = if *gzip {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                    .expect("a gzip body");
                Bytes::from(out)
            } else {
                body.clone()
            };
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
            request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum::<u64>()
        })
        .sum()
}

async fn handle(
    kept: Arc<Mutex<Kept>>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    if path == "/stats" {
        let taken = std::mem::take(&mut *kept.lock().unwrap());
        let spans = count_spans(&taken.traces);
        let text = format!(
            "{{\"exports\":{},\"spans\":{spans},\"bytes\":{}}}\n",
            taken.exports, taken.bytes
        );
        return hyper::Response::new(Full::new(Bytes::from(text)));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut kept = kept.lock().unwrap();
    kept.exports += 1;
    kept.bytes += body.len() as u64;
    if path.ends_with("/v1/traces") {
        kept.traces.push((gzip, body));
    }
    drop(kept);
    // An empty body is a valid, empty Export*ServiceResponse.
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = match (args.next().as_deref(), args.next()) {
        (Some("--http"), Some(port)) => port,
        _ => anyhow::bail!("usage: otlp-sink --http PORT"),
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    eprintln!("otlp-sink: OTLP/HTTP on http://{}", listener.local_addr()?);
    let kept = Arc::new(Mutex::new(Kept::default()));
    loop {
        let (stream, _) = listener.accept().await?;
        let kept = kept.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let kept = kept.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(kept, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
