//! A private containerd (Debian's, installed by `scripts/setup.sh`) under a temp dir:
//! its own root, state, sockets and config (no CRI plugin), driven with `ctr`; and OCI
//! image tars built in memory, so that no registry is needed.

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
        let path = self
            .dir
            .join(format!("image-{}.tar", hex(&Sha256::digest(tar))));
        std::fs::write(&path, tar).unwrap();
        self.ctr_ok(&[
            "images",
            "import",
            "--all-platforms",
            path.to_str().unwrap(),
        ]);
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
    let ImageLayout::Plain = layout;
    let layer = tar(&[("app.wasm", wasm)]);
    let mut layer_descriptor = blob(layer);
    layer_descriptor["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Entrypoint": ["/app.wasm"], "Env": ["FROM_IMAGE=1"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_descriptor["digest"].clone()]},
    });
    let mut config_descriptor = blob(serde_json::to_vec(&config).unwrap());
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
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
