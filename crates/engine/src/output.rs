//! What becomes of a guest's stdout and stderr: passed through to the host's own
//! streams, and each line turned into a log record correlated with the invocation.

use bytes::Bytes;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasmlens_telemetry::{GuestLogEmitter, GuestStream};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Longest line kept whole; a longer one is cut into records of this size, so a guest
/// that never writes a newline cannot make the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// Where the raw bytes go besides the log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passthrough {
    None,
    Stdout,
    Stderr,
}

/// One of a guest's output streams, as given to its `WasiCtx`.
#[derive(Clone)]
pub struct GuestOutput {
    stream: GuestStream,
    passthrough: Passthrough,
    logs: Option<GuestLogEmitter>,
}

impl GuestOutput {
    pub fn new(
        stream: GuestStream,
        passthrough: Passthrough,
        logs: Option<GuestLogEmitter>,
    ) -> Self {
        GuestOutput {
            stream,
            passthrough,
            logs,
        }
    }

    fn sink(&self) -> LineSink {
        LineSink {
            output: self.clone(),
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.sink())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.sink())
    }
}

/// Writes synchronously, inside the guest's call, so that the log record is emitted
/// while the invocation's trace context is current.
struct LineSink {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineSink {
    fn accept(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.output.passthrough {
            Passthrough::None => {}
            Passthrough::Stdout => std::io::stdout().lock().write_all(bytes)?,
            Passthrough::Stderr => std::io::stderr().lock().write_all(bytes)?,
        }
        let Some(logs) = &self.output.logs else {
            return Ok(());
        };
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(newline);
            if self.pending.is_empty() {
                logs.emit(self.output.stream, trim_cr(line));
            } else {
                self.pending.extend_from_slice(line);
                logs.emit(self.output.stream, trim_cr(&self.pending));
                self.pending.clear();
            }
            rest = &after[1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            logs.emit(self.output.stream, &self.pending[..MAX_LINE]);
            self.pending.drain(..MAX_LINE);
        }
        Ok(())
    }

    fn flush_passthrough(&self) -> std::io::Result<()> {
        match self.output.passthrough {
            Passthrough::None => Ok(()),
            Passthrough::Stdout => std::io::stdout().flush(),
            Passthrough::Stderr => std::io::stderr().flush(),
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Drop for LineSink {
    /// A last line without a newline is still a line.
    fn drop(&mut self) {
        if let Some(logs) = &self.output.logs
            && !self.pending.is_empty()
        {
            logs.emit(self.output.stream, &self.pending);
        }
    }
}

fn stream_error(err: std::io::Error) -> StreamError {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        StreamError::Closed
    } else {
        StreamError::LastOperationFailed(err.into())
    }
}

impl OutputStream for LineSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes).map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_passthrough().map_err(stream_error)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineSink {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LineSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.accept(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.flush_passthrough())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
