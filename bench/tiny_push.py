"""Pushes N tiny images (one config blob, one layer blob, one manifest each) over one
keep-alive HTTP connection, the way a CI job pushing many small artifacts does. Prints the
elapsed seconds. Used by bench/registry.sh against Airlock and the peer alike; an optional fifth
argument is a registry token to send."""

import hashlib
import http.client
import json
import sys
import time

host, port, repo, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
# A registry token, when the registry needs one (Airlock); the peer runs without auth.
token = sys.argv[5] if len(sys.argv) > 5 else ""
conn = http.client.HTTPConnection(host, port)


def call(method, path, body=b"", headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    if resp.status >= 300:
        sys.exit(f"{method} {path} -> {resp.status}")
    return resp


def push_blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = call("POST", f"/v2/{repo}/blobs/uploads/")
    location = start.getheader("Location")
    sep = "&" if "?" in location else "?"
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    call("PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return digest, len(data)


started = time.monotonic()
for i in range(count):
    layer = f"tiny layer {i}\n".encode() * 8
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "n": i}).encode()
    cd, cs = push_blob(config)
    ld, ls = push_blob(layer)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }).encode()
    call("PUT", f"/v2/{repo}/manifests/t{i}", manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
print(f"{time.monotonic() - started:.3f}")
