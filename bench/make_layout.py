"""Writes an OCI image layout with one uncompressed layer of SIZE_MIB pseudo-random MiB, tagged
`big`, plus the raw layer file for curl. Usage: make_layout.py DIR SIZE_MIB"""

import hashlib
import json
import os
import sys

out, size_mib = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
layer_path = os.path.join(out, "layer.bin")
h = hashlib.sha256()
block = os.urandom(1 << 20)
with open(layer_path, "wb") as f:
    for i in range(size_mib):
        chunk = i.to_bytes(8, "little") + block[8:]
        h.update(chunk)
        f.write(chunk)
layer_digest = h.hexdigest()
os.link(layer_path, os.path.join(blobs, layer_digest))


def put(obj):
    data = json.dumps(obj).encode()
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


cd, cs = put({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]}})
md, ms = put({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layer_digest, "size": size_mib << 20}],
})
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                                                   "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "layer.digest"), "w") as f:
    f.write("sha256:" + layer_digest)
