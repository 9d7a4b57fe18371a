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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, oneshot, watch};
use wasmlens_telemetry::Telemetry;
use wasmlens_workload::StopHandle;

const SIGKILL: u32 = libc::SIGKILL as u32;
const SIGINT: u32 = libc::SIGINT as u32;

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
}

fn error(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

fn timestamp(at: SystemTime) -> Timestamp {
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

    /// Notes that the task ended with `status`, once its telemetry is flushed, and tells
    /// containerd.
    async fn finish(&self, status: u32) {
        let telemetry = self.inner.telemetry.clone();
        let _ = tokio::task::spawn_blocking(move || telemetry.flush()).await;
        let exited = Exited {
            status,
            at: SystemTime::now(),
        };
        self.inner.exited.send_replace(Some(exited));
        if let Some(current) = self.inner.current.lock().await.as_mut() {
            current.phase = Phase::Exited;
        }
        self.publish(TaskExit {
            container_id: self.inner.id.clone(),
            id: self.inner.id.clone(),
            pid: pid(),
            exit_status: status,
            exited_at: Some(timestamp(exited.at)).into(),
            ..Default::default()
        })
        .await;
    }

    async fn do_create(
        &self,
        req: api::CreateTaskRequest,
        cx: Context,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let mut current = self.inner.current.lock().await;
        if current.is_some() {
            return Err(error(
                Code::ALREADY_EXISTS,
                format!("task {} already exists", req.id),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let (container, payload) =
            Container::create(&self.inner.telemetry, &self.inner.containerd, &req, cx)
                .await
                .map_err(|err| {
                    tracing::error!("cannot create task {}: {err:#}", req.id);
                    error(Code::FAILED_PRECONDITION, format!("{err:#}"))
                })?;
        *current = Some(Current {
            container,
            phase: Phase::Created(payload),
        });
        drop(current);
        self.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: bundle.display().to_string(),
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

    async fn do_start(&self) -> TtrpcResult<api::StartResponse> {
        let mut guard = self.inner.current.lock().await;
        let current = guard
            .as_mut()
            .ok_or_else(|| error(Code::NOT_FOUND, "no task has been created"))?;
        let payload = match std::mem::replace(&mut current.phase, Phase::Exited) {
            Phase::Created(payload) => payload,
            other => {
                current.phase = other;
                return Err(error(
                    Code::FAILED_PRECONDITION,
                    "the task has already started",
                ));
            }
        };
        let this = self.clone();
        current.phase = Phase::Started(match payload {
            Payload::Workload(workload) => {
                let running = workload.start();
                let control = Control::Workload {
                    stop: running.stop_handle(),
                    kill: running.kill_handle(),
                };
                tokio::spawn(async move {
                    let ended = running.wait().await;
                    this.finish(u32::try_from(ended.exit_code).unwrap_or(1))
                        .await;
                });
                control
            }
            Payload::Sandbox => {
                let (send, receive) = oneshot::channel();
                tokio::spawn(async move {
                    let status = receive.await.unwrap_or(0);
                    this.finish(status).await;
                });
                Control::Sandbox(Some(send))
            }
        });
        drop(guard);
        self.publish(TaskStart {
            container_id: self.inner.id.clone(),
            pid: pid(),
            ..Default::default()
        })
        .await;
        Ok(api::StartResponse {
            pid: pid(),
            ..Default::default()
        })
    }

    async fn do_kill(&self, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let mut guard = self.inner.current.lock().await;
        let current = guard
            .as_mut()
            .ok_or_else(|| error(Code::NOT_FOUND, "no task has been created"))?;
        let signal = req.signal;
        match &mut current.phase {
            Phase::Exited => return Err(error(Code::NOT_FOUND, "process already finished")),
            Phase::Created(_) => {
                // Never started: it ends as a process killed by the signal would.
                current.phase = Phase::Exited;
                drop(guard);
                self.finish(128 + signal).await;
            }
            Phase::Started(Control::Workload { stop, kill }) => match signal {
                SIGKILL => kill.abort(),
                SIGINT => stop.stop(wasmlens_telemetry::names::shutdown_reason::SIGINT),
                _ => stop.stop(wasmlens_telemetry::names::shutdown_reason::SIGTERM),
            },
            Phase::Started(Control::Sandbox(send)) => {
                if let Some(send) = send.take() {
                    let status = if signal == SIGKILL { 128 + signal } else { 0 };
                    let _ = send.send(status);
                }
            }
        }
        Ok(api::Empty::default())
    }

    async fn do_wait(&self) -> TtrpcResult<api::WaitResponse> {
        let mut exited = self.inner.exited.subscribe();
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

    async fn do_delete(&self) -> TtrpcResult<api::DeleteResponse> {
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
        let exited = self.status().unwrap_or(Exited {
            status: 0,
            at: SystemTime::now(),
        });
        if let Some(current) = guard.take() {
            current.container.remove();
        }
        drop(guard);
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

    async fn do_state(&self) -> TtrpcResult<api::StateResponse> {
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

    /// Ends the shim once telemetry is flushed, unless a task is still running (and
    /// containerd did not say `now`).
    async fn do_shutdown(&self, now: bool) -> TtrpcResult<bool> {
        let running = matches!(
            self.inner.current.lock().await.as_ref().map(|c| &c.phase),
            Some(Phase::Started(_))
        );
        Ok(now || !running)
    }
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Create", &req.id.clone(), |cx| {
            self.do_create(req, cx)
        })
        .await
    }

    async fn start(
        &self,
        ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Start", &req.id, |_| self.do_start()).await
    }

    async fn kill(&self, ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Kill", &req.id.clone(), |_| {
            self.do_kill(req)
        })
        .await
    }

    async fn wait(
        &self,
        ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Wait", &req.id, |_| self.do_wait()).await
    }

    async fn delete(
        &self,
        ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "Delete", &req.id, |_| self.do_delete()).await
    }

    async fn state(
        &self,
        ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let telemetry = self.inner.telemetry.clone();
        traced(&telemetry, ctx, "State", &req.id, |_| self.do_state()).await
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
                let telemetry = inner.telemetry.clone();
                let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
                inner.exit.signal();
            });
        }
        Ok(api::Empty::default())
    }
}
