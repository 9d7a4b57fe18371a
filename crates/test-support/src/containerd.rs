//! A private containerd (Debian's, installed by `scripts/setup.sh`) under a temp dir:
//! its own root, state, sockets and config (no CRI plugin), driven with `ctr`; and OCI
//! image tars built in memory, so that no registry is needed.

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, KillRequest, StartRequest, WaitRequest,
};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Containerd {
    child: Child,
    dir: PathBuf,
}

/// Why containerd cannot run on this machine at all, if it cannot: then the caller skips,
/// saying so.
pub fn cannot_run_containerd() -> Option<String> {
    let found = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !found("containerd") || !found("ctr") {
        return Some(
            "containerd and ctr are not installed (scripts/setup.sh installs them)".into(),
        );
    }
    if !rustix::process::geteuid().is_root() {
        return Some("containerd needs root, and the tests do not run as root".into());
    }
    None
}

impl Containerd {
    /// Starts one with `env` added to its environment (which its shims inherit), and
    /// waits until it answers.
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("wasmlens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
            d = dir.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            // Each test's compiled components in its own folder; no backtrace floods.
            .env("WASMLENS_CACHE_DIR", dir.join("cache"))
            .env("RUST_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd");
        let containerd = Containerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !containerd.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start; its log:\n{}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// containerd's own log (with what each shim logged).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Waits (at most `timeout`) until containerd's log has a line with `needle` in it.
    pub async fn log_line(&self, needle: &str, timeout: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line with {needle:?} in containerd's log:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// `ctr` against this containerd, to run.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ctr` against this containerd, run to its end.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_command(args).output().expect("ctr")
    }

    /// `ctr` that must succeed; returns its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {args:?} failed: {}\ncontainerd's log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Imports an image tar (all platforms: wasm images are for `wasip1/wasm`).
    pub fn import(&self, tar: &[u8]) {
        self.import_with(tar, &[]);
    }

    /// Imports an image tar without unpacking it: containerd 1.6 cannot unpack a layer
    /// that is not a tar (a Wasm OCI artifact's).
    pub fn import_packed(&self, tar: &[u8]) {
        self.import_with(tar, &["--no-unpack"]);
    }

    fn import_with(&self, tar: &[u8], flags: &[&str]) {
        let path = self
            .dir
            .join(format!("image-{}.tar", hex(&Sha256::digest(tar))));
        std::fs::write(&path, tar).unwrap();
        let mut args = vec!["images", "import", "--all-platforms"];
        args.extend_from_slice(flags);
        args.push(path.to_str().unwrap());
        self.ctr_ok(&args);
    }

    /// containerd's API, as Kubernetes' CRI uses it, for what `ctr` cannot do: run an
    /// image it cannot unpack (a Wasm OCI artifact, on containerd 1.6), create a task
    /// without starting it.
    pub async fn api(&self) -> Api {
        let channel = containerd_client::connect(self.dir.join("containerd.sock"))
            .await
            .expect("containerd's API");
        Api {
            channel,
            dir: self.dir.clone(),
        }
    }

    /// Runs container `id` of `image` with `runtime` through containerd's API: created,
    /// started, waited for and deleted. Returns the exit status and the stdout.
    pub async fn run_through_api(
        &self,
        runtime: &str,
        image: &str,
        id: &str,
        args: &[&str],
    ) -> (u32, String) {
        let api = self.api().await;
        let stdout = api.create(runtime, image, id, args).await;
        api.start(id).await;
        let status = api.wait(id).await;
        api.delete(id).await;
        (status, std::fs::read_to_string(stdout).unwrap())
    }
}

/// containerd's API, in the `default` namespace (see [`Containerd::api`]).
pub struct Api {
    channel: containerd_client::tonic::transport::Channel,
    dir: PathBuf,
}

macro_rules! in_namespace {
    ($request:expr) => {{
        use containerd_client::tonic::Request;
        containerd_client::with_namespace!($request, "default")
    }};
}

impl Api {
    fn containers(&self) -> ContainersClient<containerd_client::tonic::transport::Channel> {
        ContainersClient::new(self.channel.clone())
    }

    fn tasks(&self) -> TasksClient<containerd_client::tonic::transport::Channel> {
        TasksClient::new(self.channel.clone())
    }

    /// Creates container `id` of `image` with `runtime`, with no root filesystem and
    /// `args` as its process (empty: the image decides), and its task, not started.
    /// Returns the file its stdout goes to.
    pub async fn create(&self, runtime: &str, image: &str, id: &str, args: &[&str]) -> PathBuf {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/"},
            "root": {"path": "rootfs"},
        });
        let container = Container {
            id: id.to_owned(),
            image: image.to_owned(),
            runtime: Some(Runtime {
                name: runtime.to_owned(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_owned(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            ..Default::default()
        };
        let request = CreateContainerRequest {
            container: Some(container),
        };
        self.containers()
            .create(in_namespace!(request))
            .await
            .unwrap();
        let stdout = self.dir.join(format!("{id}.stdout"));
        let stderr = self.dir.join(format!("{id}.stderr"));
        std::fs::write(&stdout, "").unwrap();
        std::fs::write(&stderr, "").unwrap();
        let request = CreateTaskRequest {
            container_id: id.to_owned(),
            stdout: stdout.display().to_string(),
            stderr: stderr.display().to_string(),
            ..Default::default()
        };
        if let Err(err) = self.tasks().create(in_namespace!(request)).await {
            let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
            panic!("the task was not created: {err}\ncontainerd's log:\n{log}");
        }
        stdout
    }

    pub async fn start(&self, id: &str) {
        let request = StartRequest {
            container_id: id.to_owned(),
            ..Default::default()
        };
        self.tasks().start(in_namespace!(request)).await.unwrap();
    }

    pub async fn kill(&self, id: &str, signal: u32) {
        let request = KillRequest {
            container_id: id.to_owned(),
            signal,
            ..Default::default()
        };
        self.tasks().kill(in_namespace!(request)).await.unwrap();
    }

    /// Waits for the task to exit; its exit status.
    pub async fn wait(&self, id: &str) -> u32 {
        let request = WaitRequest {
            container_id: id.to_owned(),
            ..Default::default()
        };
        let exit = self.tasks().wait(in_namespace!(request)).await.unwrap();
        exit.into_inner().exit_status
    }

    /// Deletes the task and its container; the task's exit status.
    pub async fn delete(&self, id: &str) -> u32 {
        let request = DeleteTaskRequest {
            container_id: id.to_owned(),
        };
        let deleted = self.tasks().delete(in_namespace!(request)).await.unwrap();
        let request = DeleteContainerRequest { id: id.to_owned() };
        self.containers()
            .delete(in_namespace!(request))
            .await
            .unwrap();
        deleted.into_inner().exit_status
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Shims outlive containerd: end those of this one (their command line names its
        // socket), then containerd, then what they left mounted.
        let socket = self.dir.join("containerd.sock");
        let socket = socket.to_string_lossy();
        for pid in processes_mentioning(&socket) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for mount in mounts_under(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn processes_mentioning(text: &str) -> Vec<rustix::process::Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("containerd-shim") && cmdline.contains(text))
                .then(|| rustix::process::Pid::from_raw(pid))?
        })
        .collect()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .filter(|mount| mount.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    mounts
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How an image carries its component.
#[derive(Clone, Copy, Debug)]
pub enum ImageLayout {
    /// A plain image: one tar layer whose root holds `/app.wasm`, the entrypoint.
    Plain,
    /// The Wasm OCI artifact layout (as runwasi's oci-tar-builder and wkg publish): the
    /// component is the one layer, of media type
    /// `application/vnd.bytecodealliance.wasm.component.layer.v0+wasm`, with a
    /// `application/vnd.wasm.config.v0+json` config; no entrypoint, no root filesystem.
    Artifact,
    /// A plain image whose `/app.wasm` is a symbolic link to this path (the bytes given
    /// are not used): an image that tries to make the runtime read a file of the host's.
    PlainLinkingTo(&'static str),
}

/// An OCI image layout tar, as `ctr images import` takes it, for `wasip1/wasm`, named
/// `name` (`docker.io/library/hello:latest`), whose entrypoint is `/app.wasm` and whose
/// environment has `FROM_IMAGE=1`.
pub fn oci_image_tar(name: &str, wasm: &[u8], layout: ImageLayout) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut blob = |bytes: Vec<u8>| {
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        let size = bytes.len();
        blobs.push((digest.clone(), bytes));
        serde_json::json!({"digest": digest, "size": size})
    };
    let (layer, layer_type) = match layout {
        ImageLayout::Plain => (
            tar(&[("app.wasm", wasm)]),
            "application/vnd.oci.image.layer.v1.tar",
        ),
        ImageLayout::PlainLinkingTo(target) => (
            symlink_tar("app.wasm", target),
            "application/vnd.oci.image.layer.v1.tar",
        ),
        ImageLayout::Artifact => (
            wasm.to_vec(),
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        ),
    };
    let mut layer_descriptor = blob(layer);
    layer_descriptor["mediaType"] = layer_type.into();
    let digest = layer_descriptor["digest"].clone();
    let (config, config_type) = match layout {
        ImageLayout::Plain | ImageLayout::PlainLinkingTo(_) => (
            serde_json::json!({
                "architecture": "wasm",
                "os": "wasip1",
                "config": {"Entrypoint": ["/app.wasm"], "Env": ["FROM_IMAGE=1"]},
                "rootfs": {"type": "layers", "diff_ids": [digest]},
            }),
            "application/vnd.oci.image.config.v1+json",
        ),
        ImageLayout::Artifact => (
            serde_json::json!({"architecture": "wasm", "os": "wasip1", "layerDigests": [digest]}),
            "application/vnd.wasm.config.v0+json",
        ),
    };
    let mut config_descriptor = blob(serde_json::to_vec(&config).unwrap());
    config_descriptor["mediaType"] = config_type.into();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": [layer_descriptor],
    });
    let mut manifest_descriptor = blob(serde_json::to_vec(&manifest).unwrap());
    manifest_descriptor["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    manifest_descriptor["platform"] = serde_json::json!({"architecture": "wasm", "os": "wasip1"});
    manifest_descriptor["annotations"] = serde_json::json!({"io.containerd.image.name": name});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest_descriptor]});
    let index = serde_json::to_vec(&index).unwrap();
    let paths: Vec<(String, Vec<u8>)> = blobs
        .into_iter()
        .map(|(digest, bytes)| (format!("blobs/sha256/{}", &digest[7..]), bytes))
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", &index),
    ];
    files.extend(paths.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
    tar(&files)
}

/// A tar of one symbolic link, `path` -> `target`.
fn symlink_tar(path: &str, target: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_mtime(0);
    builder.append_link(&mut header, path, target).unwrap();
    builder.into_inner().unwrap()
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}
