#!/usr/bin/env python3
"""Packs a WebAssembly component into an OCI image tar that `ctr images import` takes, for
containerd-shim-wasmlens-v1 (docs/kubernetes.md).

  scripts/oci_image.py app.wasm docker.io/library/hello:latest -o hello.tar
  scripts/oci_image.py app.wasm registry.example.com/hello:1.0 --artifact -o hello.tar

A plain image (the default) holds the component as `/app.wasm` in its root filesystem,
with `/app.wasm` as its entrypoint. `--artifact` writes the Wasm OCI artifact layout
instead: the component is the image's one layer (media type
application/vnd.bytecodealliance.wasm.component.layer.v0+wasm); containerd 1.6 can store
such an image (`ctr images import --no-unpack`) but not unpack it for `ctr run`, which
containerd 1.7.7+ and 1.6.25+ can."""

import argparse
import hashlib
import io
import json
import tarfile

PLATFORM = {"architecture": "wasm", "os": "wasip1"}


def image_tar(name, wasm, artifact=False):
    """The bytes of an OCI image layout tar named `name` holding the component `wasm`."""
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    if artifact:
        layer = blob(wasm, "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm")
        config = blob(json.dumps({**PLATFORM, "layerDigests": [layer["digest"]]}).encode(),
                      "application/vnd.wasm.config.v0+json")
    else:
        layer_bytes = io.BytesIO()
        with tarfile.open(fileobj=layer_bytes, mode="w") as layer_tar:
            info = tarfile.TarInfo("app.wasm")
            info.size = len(wasm)
            layer_tar.addfile(info, io.BytesIO(wasm))
        layer = blob(layer_bytes.getvalue(), "application/vnd.oci.image.layer.v1.tar")
        config = {**PLATFORM, "config": {"Entrypoint": ["/app.wasm"]},
                  "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
        config = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": [layer]}
    manifest = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest["platform"] = PLATFORM
    manifest["annotations"] = {"io.containerd.image.name": name}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                 "index.json": json.dumps({"schemaVersion": 2, "manifests": [manifest]}).encode()}
        files.update({"blobs/sha256/" + d[7:]: b for d, b in blobs.items()})
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("component", help="the component (.wasm)")
    parser.add_argument("name", help="the image's name, e.g. docker.io/library/hello:latest")
    parser.add_argument("-o", "--output", required=True, help="the tar to write")
    parser.add_argument("--artifact", action="store_true",
                        help="the Wasm OCI artifact layout rather than a plain image")
    args = parser.parse_args()
    with open(args.component, "rb") as f:
        wasm = f.read()
    if not wasm.startswith(b"\0asm"):
        parser.error(f"{args.component} is not a WebAssembly binary")
    with open(args.output, "wb") as f:
        f.write(image_tar(args.name, wasm, args.artifact))
    print(f"{args.output}: {args.name}, {'artifact' if args.artifact else 'plain'} "
          f"(ctr images import --all-platforms {args.output})")


if __name__ == "__main__":
    main()
