//! The HTTP/1.1 server: accepts connections until told to stop, then lets in-flight
//! requests (and the guests still streaming their bodies) finish, within a bound.

use crate::connection::Connection;
use crate::handler::{Handler, RequestLimits, Route};
use crate::slots::Slots;
use crate::watchdog::{Activity, Timeouts, Watched};
use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wasmlens_telemetry::Telemetry;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Requests handled at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot; beyond, a request gets a 503 at once.
    pub max_queued_requests: usize,
    /// How long a request may wait for a slot; then it gets a 503.
    pub queue_timeout: Duration,
    /// How long a client has to send a request's line and headers, counted from when the
    /// connection is accepted, or from the first byte of a later request on a kept-alive
    /// connection. A client that is slower is disconnected.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may go without a byte either way while none of its
    /// requests is being handled; then it is closed.
    pub idle_timeout: Duration,
    /// The request line and headers together, counted as sent (`NAME: VALUE` and CRLF
    /// for each header); beyond, the client gets a 431.
    pub max_header_bytes: usize,
    /// The request body; a larger declared length gets a 413, a larger streamed body
    /// fails the guest's read.
    pub max_body_bytes: u64,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// Log a line for each request on stderr (target `wasmlens::access`): method, path
    /// without its query, status, duration and trace id.
    pub access_log: bool,
}

impl Default for ServeOptions {
    /// What `wasmlens serve` does without flags.
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_concurrent_requests: 1000,
            max_queued_requests: 1000,
            queue_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 << 10,
            max_body_bytes: 16 << 20,
            shutdown_timeout: Duration::from_secs(10),
            access_log: false,
        }
    }
}

pub struct Server {
    listener: TcpListener,
    handler: Arc<Handler>,
    drained: mpsc::Receiver<()>,
    options: ServeOptions,
}

impl Server {
    /// Listens for the routes' requests; each request goes to the route with the longest
    /// prefix that serves its path, and a path no route serves gets a 404.
    pub async fn bind(
        routes: Vec<Route>,
        telemetry: Arc<Telemetry>,
        options: ServeOptions,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let (drain, drained) = mpsc::channel(1);
        let handler = Arc::new(Handler::new(
            routes,
            telemetry,
            RequestLimits {
                max_header_bytes: options.max_header_bytes,
                max_body_bytes: options.max_body_bytes,
                access_log: options.access_log,
            },
            Slots::new(
                options.max_concurrent_requests,
                options.max_queued_requests,
                options.queue_timeout,
            ),
            drain,
        ));
        Ok(Server {
            listener,
            handler,
            drained,
            options,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains; returns how long draining took.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Duration {
        let Server {
            listener,
            handler,
            mut drained,
            options,
        } = self;
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        let graceful = GracefulShutdown::new();
        let mut builder = http1::Builder::new();
        // The watchdog times slow and idle clients: hyper's header read timeout would
        // close idle connections at the same limit.
        builder
            .timer(TokioTimer::new())
            .max_buf_size(options.max_header_bytes.max(8192))
            .header_read_timeout(None)
            .keep_alive(true);
        let timeouts = Timeouts {
            header_read: options.header_read_timeout,
            idle: options.idle_timeout,
        };
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: keep serving who we have.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            let connection = Arc::new(Connection::new(peer, local));
            let activity = Activity::new();
            let watched = activity.clone();
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                let connection = connection.clone();
                let activity = activity.clone();
                async move {
                    let _handling = activity.handling();
                    let response = handler.handle(request, &connection).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let stream = TokioIo::new(Watched::new(stream, watched.clone()));
            let connection = graceful.watch(builder.serve_connection(stream, service));
            tokio::spawn(async move {
                tokio::select! {
                    served = connection => if let Err(err) = served {
                        tracing::debug!("connection from {peer}: {err}");
                    },
                    why = crate::watchdog::expired(&watched, timeouts) => {
                        tracing::debug!("closed the connection from {peer}: {why}");
                    }
                }
            });
        }
        drop(listener);
        let started = std::time::Instant::now();
        tracing::info!(
            "shutting down: waiting up to {:?} for in-flight requests",
            options.shutdown_timeout
        );
        // Guests hold a clone of the drain sender while they run; once the connections
        // are closed and the handler is dropped, `recv` ends when the last guest does.
        drop(handler);
        let drained = tokio::time::timeout(options.shutdown_timeout, async {
            graceful.shutdown().await;
            while drained.recv().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!("shutdown timeout passed with requests still in flight");
        }
        started.elapsed()
    }
}
