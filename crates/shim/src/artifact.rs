//! A component carried as an image layer of its own (the Wasm OCI artifact layout, as
//! runwasi's oci-tar-builder and wkg publish), read from containerd's content store over
//! its API: such a layer is never unpacked into the root filesystem.

use anyhow::{Context as _, bail};
use containerd_client::services::v1::{
    GetContainerRequest, GetImageRequest, ReadContentRequest, containers_client::ContainersClient,
    content_client::ContentClient, images_client::ImagesClient,
};
use containerd_client::tonic::Request;
use containerd_client::tonic::transport::Channel;
use containerd_client::with_namespace;

/// The media types of a layer that is a component (or a module) itself.
pub const WASM_LAYER_TYPES: &[&str] = &[
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/wasm",
];

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Where containerd is, and in which namespace the container lives.
pub struct ContainerdApi {
    channel: Channel,
    namespace: String,
}

impl ContainerdApi {
    /// Connects to containerd's API socket (the shim's `-address`).
    pub async fn connect(address: &str, namespace: &str) -> anyhow::Result<Self> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let channel = containerd_client::connect(path)
            .await
            .with_context(|| format!("cannot reach containerd at {path}"))?;
        Ok(ContainerdApi {
            channel,
            namespace: namespace.to_owned(),
        })
    }

    /// The component in the container's image, if the image carries one as a layer of
    /// its own: its bytes, and the image's name.
    pub async fn component_layer(
        &self,
        container_id: &str,
    ) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        let ns = self.namespace.as_str();
        let request = GetContainerRequest {
            id: container_id.to_owned(),
        };
        let container = ContainersClient::new(self.channel.clone())
            .get(with_namespace!(request, ns))
            .await
            .context("containerd did not give the container")?
            .into_inner()
            .container
            .context("containerd gave no container")?;
        if container.image.is_empty() {
            return Ok(None);
        }
        let request = GetImageRequest {
            name: container.image.clone(),
        };
        let target = ImagesClient::new(self.channel.clone())
            .get(with_namespace!(request, ns))
            .await
            .with_context(|| format!("containerd did not give the image {}", container.image))?
            .into_inner()
            .image
            .and_then(|image| image.target)
            .context("the image has no target")?;
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&self.read(&target.digest).await?)
                .context("the image's manifest is not JSON")?;
        if INDEX_TYPES.contains(&target.media_type.as_str()) || manifest.get("manifests").is_some()
        {
            let digest = wasm_manifest(&manifest).context("the image index lists no manifest")?;
            manifest = serde_json::from_slice(&self.read(&digest).await?)
                .context("the image's manifest is not JSON")?;
        }
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let Some(layer) = layers.iter().find(|l| {
            l["mediaType"]
                .as_str()
                .is_some_and(|t| WASM_LAYER_TYPES.contains(&t))
        }) else {
            return Ok(None);
        };
        let digest = layer["digest"]
            .as_str()
            .context("a layer without a digest")?;
        Ok(Some((self.read(digest).await?, container.image)))
    }

    /// A blob of the content store, whole.
    async fn read(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let ns = self.namespace.as_str();
        let request = ReadContentRequest {
            digest: digest.to_owned(),
            offset: 0,
            size: 0,
        };
        let mut stream = ContentClient::new(self.channel.clone())
            .read(with_namespace!(request, ns))
            .await
            .with_context(|| format!("containerd did not give the blob {digest}"))?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend_from_slice(&chunk.data);
        }
        if bytes.is_empty() {
            bail!("the blob {digest} is empty");
        }
        Ok(bytes)
    }
}

/// In an index, the manifest for wasm (`wasip1`/`wasi` or `wasm`), else the first.
fn wasm_manifest(index: &serde_json::Value) -> Option<String> {
    let manifests = index["manifests"].as_array()?;
    let is_wasm = |m: &&serde_json::Value| {
        let platform = &m["platform"];
        matches!(platform["os"].as_str(), Some("wasip1" | "wasip2" | "wasi"))
            || platform["architecture"].as_str() == Some("wasm")
    };
    manifests
        .iter()
        .find(is_wasm)
        .or_else(|| manifests.first())
        .and_then(|m| m["digest"].as_str())
        .map(str::to_owned)
}
