//! What becomes of a guest's stdout and stderr: passed through to the host's own
//! streams, and each line turned into a log record correlated with the invocation.

use bytes::Bytes;
use std::fs::File;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use wasmlens_telemetry::{GuestLogEmitter, GuestStream};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Longest line kept whole; a longer one is cut into records of this size, so a guest
/// that never writes a newline cannot make the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// How a guest's output also reaches the host's own stream of the same name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Passthrough {
    /// Not at all: log records only.
    #[default]
    None,
    /// Byte for byte, as written (a CLI run: prompts without a newline, binary output).
    Raw,
    /// One whole line at a time, so that lines of concurrent instances never interleave
    /// mid-line (a server).
    Lines,
}

/// Files a guest's stdout and stderr are passed through to, instead of the host
/// process's own streams. Each is written a whole piece at a time under its lock.
#[derive(Clone, Debug)]
pub struct OutputFiles {
    pub stdout: Arc<Mutex<File>>,
    pub stderr: Arc<Mutex<File>>,
}

/// One of a guest's output streams, as given to its `WasiCtx`.
#[derive(Clone)]
pub struct GuestOutput {
    stream: GuestStream,
    passthrough: Passthrough,
    logs: Option<GuestLogEmitter>,
    files: Option<OutputFiles>,
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
            files: None,
        }
    }

    /// Passes through to `files` rather than the process's stdout and stderr.
    pub fn writing_to(mut self, files: Option<OutputFiles>) -> Self {
        self.files = files;
        self
    }

    fn sink(&self) -> LineSink {
        LineSink {
            output: self.clone(),
            pending: Vec::new(),
        }
    }

    fn write_host(&self, bytes: &[u8], newline: bool) -> std::io::Result<()> {
        fn write(mut out: impl std::io::Write, bytes: &[u8], newline: bool) -> std::io::Result<()> {
            out.write_all(bytes)?;
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        }
        let lock = |file: &Mutex<File>| {
            let file = file.lock().unwrap_or_else(PoisonError::into_inner);
            if !newline {
                return (&*file).write_all(bytes);
            }
            // One write for a line and its newline: a FIFO's reader gets it whole.
            let mut whole = Vec::with_capacity(bytes.len() + 1);
            whole.extend_from_slice(bytes);
            whole.push(b'\n');
            (&*file).write_all(&whole)
        };
        match (&self.files, self.stream) {
            (Some(files), GuestStream::Stdout) => lock(&files.stdout),
            (Some(files), GuestStream::Stderr) => lock(&files.stderr),
            (None, GuestStream::Stdout) => write(std::io::stdout().lock(), bytes, newline),
            (None, GuestStream::Stderr) => write(std::io::stderr().lock(), bytes, newline),
        }
    }

    /// One complete line (without its newline), or a piece cut at [`MAX_LINE`].
    fn line(&self, line: &[u8]) -> std::io::Result<()> {
        if let Some(logs) = &self.logs {
            logs.emit(self.stream, trim_cr(line));
        }
        if self.passthrough == Passthrough::Lines {
            self.write_host(line, true)?;
        }
        Ok(())
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
        let output = &self.output;
        if output.passthrough == Passthrough::Raw {
            output.write_host(bytes, false)?;
        }
        if output.logs.is_none() && output.passthrough != Passthrough::Lines {
            return Ok(());
        }
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(newline);
            if self.pending.is_empty() {
                output.line(line)?;
            } else {
                self.pending.extend_from_slice(line);
                output.line(&self.pending)?;
                self.pending.clear();
            }
            rest = &after[1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            output.line(&self.pending[..MAX_LINE])?;
            self.pending.drain(..MAX_LINE);
        }
        Ok(())
    }

    fn flush_host(&self) -> std::io::Result<()> {
        match (self.output.passthrough, self.output.stream) {
            (Passthrough::None, _) => Ok(()),
            (_, GuestStream::Stdout) => std::io::stdout().flush(),
            (_, GuestStream::Stderr) => std::io::stderr().flush(),
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Drop for LineSink {
    /// A last line without a newline is still a line.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.output.line(&self.pending);
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
        self.flush_host().map_err(stream_error)
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
        Poll::Ready(self.flush_host())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::LoggerProvider as _;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};

    /// Writes `chunks` to a guest's stdout the way a guest would, then returns the log
    /// records' bodies.
    fn records(chunks: &[&[u8]]) -> Vec<String> {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let logs = GuestLogEmitter::new(provider.logger("test"), "c".into());
        let output = GuestOutput::new(GuestStream::Stdout, Passthrough::None, Some(logs));
        let mut stream = output.p2_stream();
        for chunk in chunks {
            stream.write(Bytes::copy_from_slice(chunk)).unwrap();
        }
        drop(stream);
        let emitted = exporter.get_emitted_logs().unwrap();
        emitted
            .iter()
            .map(|log| format!("{:?}", log.record.body().unwrap()))
            .collect()
    }

    fn body(text: &str) -> String {
        format!("{:?}", opentelemetry::logs::AnyValue::from(text.to_owned()))
    }

    #[test]
    fn a_line_written_in_pieces_is_one_record() {
        assert_eq!(
            records(&[b"par", b"tial\nnext", b" one\r\n"]),
            [body("partial"), body("next one")]
        );
    }

    #[test]
    fn the_last_line_needs_no_newline() {
        assert_eq!(records(&[b"done"]), [body("done")]);
        assert!(records(&[]).is_empty());
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_records() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let bodies = records(&[&long]);
        assert_eq!(bodies.len(), 3);
        assert_eq!(bodies[0], body(&"x".repeat(MAX_LINE)));
        assert_eq!(bodies[2], body(&"x".repeat(10)));
    }
}
