//! The task service containerd calls: one container per shim process, whose task is a
//! wasmlens workload of one component (or, for a Kubernetes pod's sandbox, nothing that
//! runs until it is killed).

use crate::container::{Container, Containerd, Payload};
use crate::traced::traced;
use async_trait::async_trait;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::event::Event;
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskIO, TaskStart};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::shim_async::Task;
use containerd_shim::protos::ttrpc::r#async::TtrpcContext;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::{TtrpcResult, api};
use opentelemetry::Context;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, oneshot, watch};
use wasmlens_telemetry::Telemetry;
use wasmlens_telemetry::names::shutdown_reason;
use wasmlens_workload::{RunningWorkload, StopHandle};

/// How long a task's telemetry may take to flush before its exit is reported anyway (a
/// collector that is away must not hold the task up).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the shim, told to shut down, waits for its waiters to be answered.
const WAITERS_GRACE: Duration = Duration::from_secs(2);

/// The exit status of a task whose workload panicked: as an abort.
const PANICKED: u32 = 134;

/// How the task ended.
#[derive(Clone, Copy, Debug)]
struct Exited {
    status: u32,
    at: SystemTime,
}

/// What stops a started task.
enum Control {
    Workload {
        stop: StopHandle,
        kill: tokio::task::AbortHandle,
    },
    /// A sandbox ends with the status it is sent.
    Sandbox(Option<oneshot::Sender<u32>>),
}

enum Phase {
    Created(Payload),
    Started(Control),
    Exited,
}

struct Current {
    container: Container,
    phase: Phase,
}

/// What a signal asks of a running task. A component cannot catch signals, so those that
/// end a process by default stop it (gracefully, but for SIGKILL); the rest do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// 0: only asks whether the task is there.
    Probe,
    Stop(&'static str),
    Kill,
    Ignored,
}

impl Signal {
    fn of(number: u32) -> Self {
        match number as i32 {
            0 => Signal::Probe,
            libc::SIGKILL => Signal::Kill,
            libc::SIGINT => Signal::Stop(shutdown_reason::SIGINT),
            libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT => Signal::Stop(shutdown_reason::SIGTERM),
            _ => Signal::Ignored,
        }
    }
}

/// containerd's `containerd.task.v2.Task` service, for the one container of this shim.
#[derive(Clone)]
pub struct TaskService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The container's id (the shim's `-id`).
    id: String,
    namespace: String,
    /// containerd's API, for an image's wasm layers.
    containerd: Containerd,
    publisher: RemotePublisher,
    telemetry: Arc<Telemetry>,
    exit: Arc<ExitSignal>,
    current: Mutex<Option<Current>>,
    exited: watch::Sender<Option<Exited>>,
    /// How many wait requests are not answered yet: a task's end is answered before
    /// its delete is, and the shim does not end under them.
    waits: watch::Sender<usize>,
}

impl Inner {
    /// Once the task has exited: until every wait has been answered (bounded by
    /// [`WAITERS_GRACE`], so that a stuck connection cannot hold the shim).
    async fn waiters_answered(&self) {
        let mut waits = self.waits.subscribe();
        let _ = tokio::time::timeout(WAITERS_GRACE, waits.wait_for(|&n| n == 0)).await;
    }
}

fn error(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// `at` as protobuf's timestamp.
pub(crate) fn timestamp(at: SystemTime) -> Timestamp {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    ts.nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    ts
}

/// The task's pid: the component runs inside the shim's own process.
fn pid() -> u32 {
    std::process::id()
}

/// Only the container's own process exists: no `exec`.
fn only_init(exec_id: &str) -> TtrpcResult<()> {
    match exec_id.is_empty() {
        true => Ok(()),
        false => Err(error(
            Code::NOT_FOUND,
            format!("no process {exec_id:?}: wasmlens does not exec"),
        )),
    }
}

impl TaskService {
    pub fn new(
        id: String,
        containerd: Containerd,
        publisher: RemotePublisher,
        telemetry: Arc<Telemetry>,
        exit: Arc<ExitSignal>,
    ) -> Self {
        TaskService {
            inner: Arc::new(Inner {
                id,
                namespace: containerd.namespace.clone(),
                containerd,
                publisher,
                telemetry,
                exit,
                current: Mutex::new(None),
                exited: watch::channel(None).0,
                waits: watch::channel(0).0,
            }),
        }
    }

    async fn publish(&self, event: impl Event + 'static) {
        let topic = event.topic();
        let inner = &self.inner;
        let ctx = ttrpc::context::Context::default();
        if let Err(err) = (inner.publisher)
            .publish(ctx, &topic, &inner.namespace, Box::new(event))
            .await
        {
            tracing::warn!("cannot tell containerd of {topic}: {err}");
        }
    }

    fn status(&self) -> Option<Exited> {
        *self.inner.exited.borrow()
    }

    /// The task ended with `status`: its telemetry is flushed (for at most
    /// [`FLUSH_TIMEOUT`]), then the exit is noted and containerd told.
    async fn finish(&self, status: u32) {
        let telemetry = self.inner.telemetry.clone();
        let flush = tokio::task::spawn_blocking(move || telemetry.flush());
        if tokio::time::timeout(FLUSH_TIMEOUT, flush).await.is_err() {
            tracing::warn!(
                "telemetry was not flushed within {FLUSH_TIMEOUT:?}; reporting the exit"
            );
        }
        let mut current = self.inner.current.lock().await;
        if let Some(exited) = self.record_exit(&mut current, status) {
            drop(current);
            self.report_exit(exited).await;
        }
    }

    async fn report_exit(&self, exited: Exited) {
        self.publish(TaskExit {
            container_id: self.inner.id.clone(),
            id: self.inner.id.clone(),
            pid: pid(),
            exit_status: exited.status,
            exited_at: Some(timestamp(exited.at)).into(),
            ..Default::default()
        })
        .await;
    }

    /// Notes the exit (the phase and the status together, under the lock), unless it
    /// was noted already.
    fn record_exit(&self, current: &mut Option<Current>, status: u32) -> Option<Exited> {
        if self.status().is_some() {
            return None;
        }
        if let Some(current) = current.as_mut() {
            current.phase = Phase::Exited;
        }
        let exited = Exited {
            status,
            at: SystemTime::now(),
        };
        self.inner.exited.send_replace(Some(exited));
        Some(exited)
    }

    async fn do_create(
        &self,
        req: api::CreateTaskRequest,
        cx: Context,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let exists = || {
            error(
                Code::ALREADY_EXISTS,
                format!("task {} already exists", req.id),
            )
        };
        if self.inner.current.lock().await.is_some() {
            return Err(exists());
        }
        // Made without the lock held: State calls are answered meanwhile.
        let inner = &self.inner;
        let (container, payload) = Container::create(&inner.telemetry, &inner.containerd, &req, cx)
            .await
            .map_err(|err| {
                tracing::error!("cannot create task {}: {err:#}", req.id);
                error(Code::FAILED_PRECONDITION, format!("{err:#}"))
            })?;
        let mut current = inner.current.lock().await;
        if current.is_some() {
            return Err(exists());
        }
        *current = Some(Current {
            container,
            phase: Phase::Created(payload),
        });
        drop(current);
        self.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid: pid(),
            ..Default::default()
        })
        .await;
        Ok(api::CreateTaskResponse {
            pid: pid(),
            ..Default::default()
        })
    }

    async fn do_start(&self, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        only_init(&req.exec_id)?;
        let mut guard = self.inner.current.lock().await;
        let current = guard
            .as_mut()
            .ok_or_else(|| error(Code::NOT_FOUND, "no task has been created"))?;
        let payload = match std::mem::replace(&mut current.phase, Phase::Exited) {
            Phase::Created(payload) => payload,
            other => {
                let why = match other {
                    Phase::Exited => "the task has already exited",
                    _ => "the task has already started",
                };
                current.phase = other;
                return Err(error(Code::FAILED_PRECONDITION, why));
            }
        };
        let (control, ends) = match payload {
            Payload::Workload(workload) => {
                let running = workload.start();
                let control = Control::Workload {
                    stop: running.stop_handle(),
                    kill: running.kill_handle(),
                };
                (control, Ends::Workload(running))
            }
            Payload::Sandbox => {
                let (send, receive) = oneshot::channel();
                (Control::Sandbox(Some(send)), Ends::Sandbox(receive))
            }
        };
        current.phase = Phase::Started(control);
        drop(guard);
        // Told before its exit can be.
        self.publish(TaskStart {
            container_id: self.inner.id.clone(),
            pid: pid(),
            ..Default::default()
        })
        .await;
        let this = self.clone();
        tokio::spawn(async move {
            let status = ends.status().await;
            this.finish(status).await;
        });
        Ok(api::StartResponse {
            pid: pid(),
            ..Default::default()
        })
    }

    async fn do_kill(&self, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        only_init(&req.exec_id)?;
        let signal = Signal::of(req.signal);
        let mut guard = self.inner.current.lock().await;
        let current = guard
            .as_mut()
            .ok_or_else(|| error(Code::NOT_FOUND, "no task has been created"))?;
        match (&mut current.phase, signal) {
            (Phase::Exited, _) => return Err(error(Code::NOT_FOUND, "process already finished")),
            (_, Signal::Probe) => return Ok(api::Empty::default()),
            (_, Signal::Ignored) => {
                tracing::info!("signal {} ignored: a component cannot catch it", req.signal);
                return Ok(api::Empty::default());
            }
            (Phase::Started(Control::Workload { kill, .. }), Signal::Kill) => kill.abort(),
            (Phase::Started(Control::Workload { stop, .. }), Signal::Stop(reason)) => {
                stop.stop(reason)
            }
            (Phase::Started(Control::Sandbox(send)), _) => {
                if let Some(send) = send.take() {
                    let status = if signal == Signal::Kill {
                        128 + req.signal
                    } else {
                        0
                    };
                    let _ = send.send(status);
                }
            }
            (Phase::Created(_), _) => {
                // Never started: it ends as a process killed by the signal would.
                if let Some(exited) = self.record_exit(&mut guard, 128 + req.signal) {
                    drop(guard);
                    self.report_exit(exited).await;
                }
            }
        }
        Ok(api::Empty::default())
    }

    async fn do_wait(&self, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        only_init(&req.exec_id)?;
        let mut exited = self.inner.exited.subscribe();
        if exited.borrow().is_none() {
            tracing::debug!("task {}: waiting for it to exit", self.inner.id);
        }
        let exited = exited
            .wait_for(Option::is_some)
            .await
            .map_err(|_| error(Code::INTERNAL, "the shim is shutting down"))?
            .expect("waited for Some");
        Ok(api::WaitResponse {
            exit_status: exited.status,
            exited_at: Some(timestamp(exited.at)).into(),
            ..Default::default()
        })
    }

    async fn do_delete(&self, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        only_init(&req.exec_id)?;
        let mut guard = self.inner.current.lock().await;
        let Some(current) = guard.as_ref() else {
            return Err(error(Code::NOT_FOUND, "no task has been created"));
        };
        if matches!(current.phase, Phase::Started(_)) {
            return Err(error(
                Code::FAILED_PRECONDITION,
                "the task is still running: kill it first",
            ));
        }
        // A task deleted before it started ends here, for whoever waits for it; they
        // are answered before the delete is (containerd closes its connection to the
        // shim soon after, and an answer still unsent would be lost with it).
        let ended_here = self.record_exit(&mut guard, 0).is_some();
        let exited = self.status().expect("recorded");
        if let Some(current) = guard.take() {
            current.container.remove();
        }
        drop(guard);
        if ended_here {
            self.inner.waiters_answered().await;
        }
        self.publish(TaskDelete {
            container_id: self.inner.id.clone(),
            id: self.inner.id.clone(),
            pid: pid(),
            exit_status: exited.status,
            exited_at: Some(timestamp(exited.at)).into(),
            ..Default::default()
        })
        .await;
        Ok(api::DeleteResponse {
            pid: pid(),
            exit_status: exited.status,
            exited_at: Some(timestamp(exited.at)).into(),
            ..Default::default()
        })
    }

    async fn do_state(&self, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        only_init(&req.exec_id)?;
        let guard = self.inner.current.lock().await;
        let current = guard
            .as_ref()
            .ok_or_else(|| error(Code::NOT_FOUND, "no task has been created"))?;
        let status = match current.phase {
            Phase::Created(_) => api::Status::CREATED,
            Phase::Started(_) => api::Status::RUNNING,
            Phase::Exited => api::Status::STOPPED,
        };
        let exited = self.status();
        let io = &current.container.io;
        Ok(api::StateResponse {
            id: self.inner.id.clone(),
            bundle: current.container.bundle.display().to_string(),
            pid: pid(),
            status: status.into(),
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            exit_status: exited.map_or(0, |e| e.status),
            exited_at: exited.map(|e| timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    /// Whether the shim may end: not while its container exists (it holds a mount and
    /// its task's status), unless containerd says `now`.
    async fn do_shutdown(&self, now: bool) -> TtrpcResult<bool> {
        Ok(now || self.inner.current.lock().await.is_none())
    }
}

/// A wait request being answered, counted in `Inner::waits` for as long as it lives
/// (also when its connection drops it).
struct PendingWait<'a>(&'a watch::Sender<usize>);

impl<'a> PendingWait<'a> {
    fn new(waits: &'a watch::Sender<usize>) -> Self {
        waits.send_modify(|n| *n += 1);
        PendingWait(waits)
    }
}

impl Drop for PendingWait<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// How a started task's end is awaited.
enum Ends {
    Workload(RunningWorkload),
    Sandbox(oneshot::Receiver<u32>),
}

impl Ends {
    /// The exit status. A workload that panicked ends as an abort, so that its task is
    /// still reported ended.
    async fn status(self) -> u32 {
        match self {
            Ends::Workload(running) => match tokio::spawn(running.wait()).await {
                Ok(ended) => u32::try_from(ended.exit_code).unwrap_or(1),
                Err(_) => PANICKED,
            },
            Ends::Sandbox(receive) => receive.await.unwrap_or(0),
        }
    }
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        traced(&telemetry, ctx, "Create", &id, |cx| self.do_create(req, cx)).await
    }

    async fn start(
        &self,
        ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        traced(&telemetry, ctx, "Start", &id, |_| self.do_start(req)).await
    }

    async fn kill(&self, ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        traced(&telemetry, ctx, "Kill", &id, |_| self.do_kill(req)).await
    }

    async fn wait(
        &self,
        ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        let _pending = PendingWait::new(&self.inner.waits);
        traced(&telemetry, ctx, "Wait", &id, |_| self.do_wait(req)).await
    }

    async fn delete(
        &self,
        ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        traced(&telemetry, ctx, "Delete", &id, |_| self.do_delete(req)).await
    }

    async fn state(
        &self,
        ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let (telemetry, id) = (self.inner.telemetry.clone(), req.id.clone());
        traced(&telemetry, ctx, "State", &id, |_| self.do_state(req)).await
    }

    async fn pids(
        &self,
        ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Pids", &req.id, |_| async {
            Ok(api::PidsResponse {
                processes: vec![containerd_shim::protos::types::task::ProcessInfo {
                    pid: pid(),
                    ..Default::default()
                }],
                ..Default::default()
            })
        })
        .await
    }

    async fn connect(
        &self,
        ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Connect", &req.id, |_| async {
            Ok(api::ConnectResponse {
                shim_pid: pid(),
                task_pid: pid(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..Default::default()
            })
        })
        .await
    }

    async fn shutdown(
        &self,
        ctx: &TtrpcContext,
        req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        let telemetry = self.inner.telemetry.clone();
        let ends = traced(&telemetry, ctx, "Shutdown", &req.id, |_| {
            self.do_shutdown(req.now)
        })
        .await?;
        if ends {
            // After the span has ended, so that it is flushed too.
            let inner = self.inner.clone();
            tokio::spawn(async move {
                // Waiters first, so that their spans are flushed with the rest.
                inner.waiters_answered().await;
                let telemetry = inner.telemetry.clone();
                let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
                // The last answer's frame is written by the connection's own task.
                tokio::time::sleep(Duration::from_millis(20)).await;
                inner.exit.signal();
            });
        }
        Ok(api::Empty::default())
    }
}
