//! Slow and idle clients cannot hold connections open. Each connection has a watchdog that
//! closes it when the client
//! - takes longer than the header read timeout to send a request's line and headers,
//!   counted from when the connection was accepted, or from the first byte of a later
//!   request on a kept-alive connection;
//! - or, on a kept-alive connection, sends nothing and is sent nothing for the idle
//!   timeout while none of its requests is being handled.
//!
//! hyper's own header read timeout starts when a connection becomes ready for a request,
//! so it would close an idle kept-alive connection at the header read timeout too: the two
//! limits could not be set apart. Hence this, at a few atomic operations per read or write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The two limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

/// What a connection has been doing, in milliseconds since it was accepted.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    /// The last byte read or written.
    last: AtomicU64,
    /// The first byte of a request head the handler has not seen yet, plus one; 0 if
    /// there is none.
    head_started: AtomicU64,
    /// Requests of this connection being handled.
    busy: AtomicUsize,
}

/// Why the watchdog closed a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    HeaderRead,
    Idle,
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expired::HeaderRead => "no complete request head within --header-read-timeout",
            Expired::Idle => "idle for --idle-timeout",
        })
    }
}

impl Activity {
    /// A connection accepted now: its first request's head is due within the header read
    /// timeout.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            accepted: Instant::now(),
            last: AtomicU64::new(0),
            head_started: AtomicU64::new(1),
            busy: AtomicUsize::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Relaxed) == 0 {
            // The first byte of a request head after an idle spell starts its clock.
            let _ = self.head_started.compare_exchange(
                0,
                now + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn wrote(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// A request's head was read whole and goes to the handler, until the guard is
    /// dropped: when the handler has answered (the body may still be streaming; its writes
    /// count), or given up.
    pub fn handling(&self) -> Handling<'_> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        Handling(self)
    }

    /// When the connection is due to be closed, if nothing happens before, and why.
    fn due(&self, timeouts: Timeouts) -> Option<(u64, Expired)> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let millis = |d: Duration| d.as_millis() as u64;
        match self.head_started.load(Ordering::Relaxed) {
            0 => Some((
                self.last.load(Ordering::Relaxed) + millis(timeouts.idle),
                Expired::Idle,
            )),
            started => Some((
                started - 1 + millis(timeouts.header_read),
                Expired::HeaderRead,
            )),
        }
    }
}

/// A request being handled; see [`Activity::handling`].
pub(crate) struct Handling<'a>(&'a Activity);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.last.store(self.0.now(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes when the connection is to be closed, saying why.
pub(crate) async fn expired(activity: &Activity, timeouts: Timeouts) -> Expired {
    // Look again at least this often: what the connection does meanwhile (a request
    // handled, a byte read) moves its deadline, and nothing wakes the watchdog for it. So
    // a deadline is acted on at most a quarter of the shorter limit late.
    let check = timeouts.header_read.min(timeouts.idle) / 4;
    loop {
        let now = activity.now();
        let wake = match activity.due(timeouts) {
            Some((due, why)) if due <= now => return why,
            Some((due, _)) => Duration::from_millis(due - now).min(check),
            None => check,
        };
        tokio::time::sleep(wake.max(Duration::from_millis(1))).await;
    }
}

/// A connection's stream, telling its [`Activity`] of every byte read or written.
pub(crate) struct Watched<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(stream: S, activity: Arc<Activity>) -> Self {
        Watched { stream, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
