//! Running the real `wasmlens` binary, and talking HTTP to it.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::Notify;

/// The path of a committed test guest, e.g. `guest("http-hello")`.
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../guests/components")
        .join(format!("{name}.wasm"))
}

/// A folder of its own for a test's workload, with the test guests copied into
/// `components/` and `manifest` written as `wasmlens.toml`, so that the manifest's relative
/// paths are exercised.
pub fn workload_dir(test: &str, manifest: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmlens-up-{test}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("components")).unwrap();
    let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guests/components");
    for entry in std::fs::read_dir(guests).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.join("components").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    std::fs::write(dir.join("wasmlens.toml"), manifest).unwrap();
    dir
}

/// A running `wasmlens serve`, with its stderr collected.
pub struct Wasmlens {
    child: tokio::process::Child,
    stderr: Arc<(Mutex<String>, Notify)>,
    /// Collects stderr until it closes.
    reader: Option<tokio::task::JoinHandle<()>>,
    addr: SocketAddr,
}

impl Wasmlens {
    /// Starts `wasmlens serve --listen 127.0.0.1:0 ARGS` (unless ARGS say where to
    /// listen) with only `env` in its environment, and waits until it says where it
    /// listens.
    pub async fn serve(binary: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::start(binary, "serve", args, env).await
    }

    /// Starts `wasmlens up --listen 127.0.0.1:0 ARGS` (the last one the manifest), as
    /// [`Wasmlens::serve`] does.
    pub async fn up(binary: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::start(binary, "up", args, env).await
    }

    /// Serves the `http-fetch` guest pointed at `url` (its `FETCH_URL`), with `flags`
    /// (such as `--allow-outbound HOST`) before the component.
    pub async fn serve_fetching(
        binary: &str,
        url: &str,
        flags: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let fetch_url = format!("FETCH_URL={url}");
        let fetch = guest("http-fetch");
        let mut args = vec!["--env", &fetch_url];
        args.extend(flags);
        args.push(fetch.to_str().expect("a UTF-8 path"));
        Self::serve(binary, &args, env).await
    }

    async fn start(binary: &str, subcommand: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut command = tokio::process::Command::new(binary);
        command.arg(subcommand);
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        // The view on, as users run it, on a port of its own.
        if !args.contains(&"--ui-listen") {
            command.args(["--ui-listen", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .env_clear()
            .env("RUST_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start wasmlens");
        let stderr = Arc::new((Mutex::new(String::new()), Notify::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = stderr.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = collected.0.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                drop(text);
                collected.1.notify_waiters();
            }
            collected.1.notify_waiters();
        });
        let mut server = Wasmlens {
            child,
            stderr,
            reader: Some(reader),
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = server
            .wait_for_stderr("serving ", Duration::from_secs(60))
            .await;
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok());
        server.addr = addr.unwrap_or_else(|| panic!("no address in {line:?}"));
        server
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Waits for the process to exit, and for what it wrote last on stderr to be read.
    pub async fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().await.expect("wait for wasmlens");
        if let Some(reader) = self.reader.take() {
            // Bounded: a process it started could hold the pipe open.
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        status
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits for a line of stderr containing `needle` and returns it; panics with the
    /// whole stderr after `timeout`.
    pub async fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.stderr.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "wasmlens exited ({status}) before printing {needle:?}:\n{}",
                    self.stderr()
                );
            }
            // The child may exit without another line: look again at least every 100 ms.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(wake, notified).await;
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no {needle:?} on wasmlens's stderr within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("running");
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let status = tokio::time::timeout(Duration::from_secs(30), self.wait())
            .await
            .expect("wasmlens exits after SIGTERM");
        (status, self.stderr())
    }
}

/// How a `wasmlens` that ran to its end did.
#[derive(Debug)]
pub struct Finished {
    /// `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `wasmlens ARGS` to its end, with only `env` in its environment (and
/// `RUST_BACKTRACE=0`) and no stdin.
pub async fn run_to_end(binary: &str, args: &[&str], env: &[(&str, String)]) -> Finished {
    let output = tokio::process::Command::new(binary)
        .args(args)
        .env_clear()
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run wasmlens");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Finished {
        code: output.status.code(),
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
    }
}

/// A GET with extra headers; returns the status, the headers and the body.
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    http_request("GET", url, headers).await
}

/// A request without a body, on a connection of its own; returns the status, the
/// headers and the body.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, String) {
    let uri: http::Uri = url.parse().expect("a URL");
    let authority = uri.authority().expect("an authority").clone();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let host = [("host", authority.as_str())];
    let headers: Vec<_> = host.into_iter().chain(headers.iter().copied()).collect();
    HttpConnection::open(authority.as_str())
        .await
        .request(method, path, &headers)
        .await
}

/// An HTTP/1.1 connection that stays open for the requests sent on it.
pub struct HttpConnection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl HttpConnection {
    pub async fn open(address: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        HttpConnection { sender }
    }

    /// A request without a body, with exactly the headers given (`Host` included);
    /// returns the status, the headers and the body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, String) {
        let mut request = http::Request::builder().method(method.as_bytes()).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.sender.ready().await.expect("the connection is open");
        let response = self
            .sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }
}
