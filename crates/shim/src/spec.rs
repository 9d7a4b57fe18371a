//! What a container's OCI spec (the bundle's `config.json`) asks of wasmlens: the
//! component to run and its arguments, environment, limits, address and network.

use anyhow::{Context as _, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute;
use opentelemetry_semantic_conventions::resource as key;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use wasmlens_workload::{Limits, parse_duration};

/// The annotation that gives an invocation's fuel budget (a whole number).
pub const FUEL_ANNOTATION: &str = "wasmlens.io/fuel";
/// The annotation that gives an invocation's time limit (`500ms`, `2s`).
pub const TIMEOUT_ANNOTATION: &str = "wasmlens.io/timeout";
/// The container variable naming where an HTTP component is served.
pub const LISTEN_VARIABLE: &str = "WASMLENS_LISTEN";
/// Where an HTTP component is served when the container does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// The CRI annotations that name a Kubernetes container, its pod and namespace.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// A container's spec, as far as wasmlens reads it.
#[derive(Debug)]
pub struct ContainerSpec {
    /// `process.args`: the component's path in the root filesystem, then its arguments.
    pub args: Vec<String>,
    /// `process.env`, in order.
    pub env: Vec<(String, String)>,
    pub annotations: HashMap<String, String>,
    /// The root filesystem, resolved against the bundle.
    pub root: PathBuf,
    /// `linux.resources.memory.limit`.
    pub memory_limit: Option<u64>,
    /// The network namespace to join (`linux.namespaces`, type network, with a path): a
    /// pod's, under Kubernetes.
    pub network_namespace: Option<PathBuf>,
    /// Whether it asks for a network namespace of its own without naming one (`ctr run`
    /// without `--net-host`): wasmlens cannot make one for a component.
    pub wants_new_network: bool,
}

impl ContainerSpec {
    /// Reads `bundle/config.json`.
    pub fn load(bundle: &Path) -> anyhow::Result<Self> {
        let path = bundle.join("config.json");
        let spec = Spec::load(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let process = spec.process().as_ref();
        let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
        let env = process
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
            .into_iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (item, String::new()),
            })
            .collect();
        let root = spec
            .root()
            .as_ref()
            .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
        let linux = spec.linux().as_ref();
        let memory_limit = linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .and_then(|limit| u64::try_from(limit).ok())
            .filter(|limit| *limit > 0);
        let network = linux
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|n| n.iter().find(|n| n.typ() == LinuxNamespaceType::Network));
        Ok(ContainerSpec {
            args,
            env,
            annotations: spec.annotations().clone().unwrap_or_default(),
            root: bundle.join(root),
            memory_limit,
            network_namespace: network.and_then(|n| n.path().clone()),
            wants_new_network: network.is_some_and(|n| n.path().is_none()),
        })
    }

    /// The pause container of a Kubernetes pod: it holds the pod's namespaces and runs
    /// nothing.
    pub fn is_sandbox(&self) -> bool {
        self.annotation(CRI_CONTAINER_TYPE) == Some("sandbox")
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).map(String::as_str)
    }

    /// A variable of the container's environment.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The component: `process.args[0]`, inside the root filesystem. A path that climbs
    /// out of it (`..`) is refused.
    pub fn component_path(&self) -> anyhow::Result<PathBuf> {
        let Some(entry) = self.args.first().filter(|a| !a.is_empty()) else {
            bail!(
                "the container names no component: its image has no entrypoint and no \
                 command was given (process.args is empty)"
            );
        };
        let relative = Path::new(entry);
        if relative
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            bail!("{entry:?}: the component's path may not contain `..`");
        }
        let inside = relative.strip_prefix("/").unwrap_or(relative);
        Ok(self.root.join(inside))
    }

    /// The limits: memory from the container's memory limit, fuel and time from
    /// wasmlens's annotations. A bad annotation is an error naming it.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let fuel = self
            .annotation(FUEL_ANNOTATION)
            .map(|text| {
                text.trim().replace('_', "").parse::<u64>().map_err(|_| {
                    anyhow::anyhow!(
                        "annotation {FUEL_ANNOTATION}={text:?}: not a whole number of fuel units"
                    )
                })
            })
            .transpose()?;
        let timeout: Option<Duration> = self
            .annotation(TIMEOUT_ANNOTATION)
            .map(|text| {
                parse_duration(text).map_err(|err| {
                    anyhow::anyhow!("annotation {TIMEOUT_ANNOTATION}={text:?}: {err}")
                })
            })
            .transpose()?;
        Ok(Limits {
            fuel,
            max_memory: self
                .memory_limit
                .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)),
            timeout,
        })
    }

    /// Where an HTTP component is served: `WASMLENS_LISTEN`, else [`DEFAULT_LISTEN`].
    pub fn listen(&self) -> anyhow::Result<SocketAddr> {
        let text = self.env_var(LISTEN_VARIABLE).unwrap_or(DEFAULT_LISTEN);
        text.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "{LISTEN_VARIABLE}={text:?}: not an address and port such as {DEFAULT_LISTEN}"
            )
        })
    }

    /// The resource attributes that say which container (and, under Kubernetes, which
    /// pod) the shim's telemetry is about.
    pub fn resource(&self, container_id: &str) -> Vec<KeyValue> {
        let mut attributes = Self::resource_without_spec(container_id);
        for (annotation, attribute) in [
            (CRI_SANDBOX_NAME, key::K8S_POD_NAME),
            (CRI_SANDBOX_NAMESPACE, key::K8S_NAMESPACE_NAME),
            (CRI_CONTAINER_NAME, key::K8S_CONTAINER_NAME),
        ] {
            if let Some(value) = self.annotation(annotation) {
                attributes.push(KeyValue::new(attribute, value.to_owned()));
            }
        }
        attributes
    }

    /// The resource attributes of a container whose spec cannot be read.
    pub fn resource_without_spec(container_id: &str) -> Vec<KeyValue> {
        vec![
            KeyValue::new(key::CONTAINER_ID, container_id.to_owned()),
            // The contract's name (semconv has since renamed it `container.runtime.name`).
            #[allow(deprecated)]
            KeyValue::new(attribute::CONTAINER_RUNTIME, "wasmlens"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> anyhow::Result<ContainerSpec> {
        let dir = std::env::temp_dir().join(format!("wasmlens-spec-{}", uuid_like()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("config.json"), json)?;
        let spec = ContainerSpec::load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        spec
    }

    fn uuid_like() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    const FULL: &str = r#"{
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["/app.wasm", "a", "b"], "env": ["A=1", "WASMLENS_LISTEN=127.0.0.1:9000", "A=2"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {"wasmlens.io/fuel": "1_000_000", "wasmlens.io/timeout": "2s",
                        "io.kubernetes.cri.sandbox-name": "web-1", "io.kubernetes.cri.sandbox-namespace": "shop",
                        "io.kubernetes.cri.container-name": "web"},
        "linux": {"resources": {"memory": {"limit": 33554432}},
                  "namespaces": [{"type": "network", "path": "/var/run/netns/cni-1"}, {"type": "mount"}]}
    }"#;

    #[test]
    fn reads_what_wasmlens_needs() -> anyhow::Result<()> {
        let spec = spec(FULL)?;
        assert_eq!(spec.args, ["/app.wasm", "a", "b"]);
        assert_eq!(spec.env_var("A"), Some("2"));
        assert!(spec.component_path()?.ends_with("rootfs/app.wasm"));
        let limits = spec.limits()?;
        assert_eq!(limits.fuel, Some(1_000_000));
        assert_eq!(limits.timeout, Some(Duration::from_secs(2)));
        assert_eq!(limits.max_memory, Some(32 << 20));
        assert_eq!(spec.listen()?, "127.0.0.1:9000".parse()?);
        assert_eq!(
            spec.network_namespace.as_deref(),
            Some(Path::new("/var/run/netns/cni-1"))
        );
        assert!(!spec.wants_new_network && !spec.is_sandbox());
        let resource = spec.resource("c1");
        let value = |k: &str| {
            resource
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(value("container.id").as_deref(), Some("c1"));
        assert_eq!(value("k8s.pod.name").as_deref(), Some("web-1"));
        assert_eq!(value("k8s.namespace.name").as_deref(), Some("shop"));
        assert_eq!(value("k8s.container.name").as_deref(), Some("web"));
        Ok(())
    }

    #[test]
    fn bad_input_is_named() -> anyhow::Result<()> {
        let bad_fuel = FULL.replace("1_000_000", "lots");
        let err = spec(&bad_fuel)?.limits().unwrap_err().to_string();
        assert!(
            err.contains("wasmlens.io/fuel") && err.contains("lots"),
            "{err}"
        );
        let bad_listen = FULL.replace("127.0.0.1:9000", "port nine");
        let err = spec(&bad_listen)?.listen().unwrap_err().to_string();
        assert!(
            err.contains("WASMLENS_LISTEN") && err.contains("port nine"),
            "{err}"
        );
        let climbing = FULL.replace("/app.wasm", "/../../etc/passwd");
        let err = spec(&climbing)?.component_path().unwrap_err().to_string();
        assert!(err.contains(".."), "{err}");
        let no_args = FULL.replace(r#"["/app.wasm", "a", "b"]"#, "[]");
        let err = spec(&no_args)?.component_path().unwrap_err().to_string();
        assert!(err.contains("no entrypoint"), "{err}");
        let own_network = FULL.replace(r#", "path": "/var/run/netns/cni-1""#, "");
        assert!(spec(&own_network)?.wants_new_network);
        Ok(())
    }
}
