"""Runs the registry's push, pull, refusal and error sequence many times over ONE keep-alive
connection (`requests.Session` with a pool of one), the way OCI client suites do, and fails on
the first connection error: a refusal the server sends before reading the request body must not
reset the connection. Prints a JSON report for the Rust test to check."""

import hashlib
import json
import os
import sys

import requests
from requests.adapters import HTTPAdapter

base, rounds = sys.argv[1].rstrip("/"), int(sys.argv[2])
user, key = os.environ["AIRLOCK_USERNAME"], os.environ["AIRLOCK_PASSWORD"]
repo, gated = "dev/keepalive/app", "prod/keepalive/app"

session = requests.Session()
adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
session.mount("http://", adapter)
sent = 0


def call(step, method, path, expect, **kwargs):
    """One request on the shared connection; any connection error fails the whole run."""
    global sent
    try:
        reply = session.request(method, base + path, timeout=30, **kwargs)
    except requests.exceptions.ConnectionError as e:
        print(json.dumps({"error": f"round {n} step `{step}`: {e!r}", "requests": sent}))
        sys.exit(1)
    sent += 1
    if reply.status_code != expect:
        print(json.dumps({"error": f"round {n} step `{step}`: status {reply.status_code}, not {expect}: {reply.text[:300]}"}))
        sys.exit(1)
    return reply


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


n = 0
token = call("token", "GET", "/token", 200, params={"scope": f"repository:{repo}:pull,push"}, auth=(user, key)).json()["token"]
auth = {"Authorization": f"Bearer {token}"}
for n in range(rounds):
    layer = os.urandom(300 * 1024)
    config = json.dumps({"architecture": "amd64", "os": "linux", "round": n}).encode()

    # Monolithic upload of the config blob.
    call("monolithic upload", "POST", f"/v2/{repo}/blobs/uploads/?digest={digest(config)}", 201, data=config,
         headers={**auth, "Content-Type": "application/octet-stream"})

    # Chunked upload of the layer: two PATCHes, then the closing PUT.
    started = call("start chunked upload", "POST", f"/v2/{repo}/blobs/uploads/", 202, headers=auth)
    location = started.headers["Location"]
    half = len(layer) // 2
    for lo, hi in ((0, half), (half, len(layer))):
        patched = call("chunked PATCH", "PATCH", location, 202, data=layer[lo:hi], headers={
            **auth, "Content-Type": "application/octet-stream", "Content-Range": f"{lo}-{hi - 1}"})
        location = patched.headers["Location"]
    sep = "&" if "?" in location else "?"
    call("close chunked upload", "PUT", f"{location}{sep}digest={digest(layer)}", 201, headers=auth)

    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}],
    }).encode()
    manifest_type = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    call("manifest PUT", "PUT", f"/v2/{repo}/manifests/r{n}", 201, data=manifest, headers={**auth, **manifest_type})

    # Pull it back.
    pulled = call("manifest GET", "GET", f"/v2/{repo}/manifests/r{n}", 200,
                  headers={**auth, "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert pulled.content == manifest
    assert call("blob GET", "GET", f"/v2/{repo}/blobs/{digest(layer)}", 200, headers=auth).content == layer

    # Refusals, each with a body the server need not read.
    call("manifest PUT into a gated stage", "PUT", f"/v2/{gated}/manifests/r{n}", 403, data=manifest,
         headers={**auth, **manifest_type})
    call("unauthorized chunked PATCH", "PATCH", location, 401, data=layer,
         headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(layer) - 1}"})
    call("unauthorized monolithic upload", "POST", f"/v2/{repo}/blobs/uploads/?digest={digest(layer)}", 401, data=layer,
         headers={"Content-Type": "application/octet-stream"})
    call("wrong digest", "POST", f"/v2/{repo}/blobs/uploads/?digest={digest(b'other')}", 400, data=layer,
         headers={**auth, "Content-Type": "application/octet-stream"})
    call("PATCH of an unknown upload", "PATCH", f"/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000", 404,
         data=layer, headers={**auth, "Content-Type": "application/octet-stream", "Content-Range": f"0-{len(layer) - 1}"})
    call("unknown blob", "GET", f"/v2/{repo}/blobs/{digest(b'nothing')}", 404, headers=auth)
    call("unknown manifest", "GET", f"/v2/{repo}/manifests/missing", 404, headers=auth)

print(json.dumps({"rounds": rounds, "requests": sent}))
