"""Helpers for bench/promote.sh, one subcommand each:

  totp BASE32_SECRET          the current RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s steps)
  layout DIR BYTES            an OCI layout tagged `big` with one uncompressed layer of BYTES
                              pseudo-random bytes (make_layout.py works in whole MiB)
  predicates DIR ACTOR        provenance.json, sbom.json, scan.json and vex.json, shaped like
                              `airlock demo`'s (crates/cli/src/commands/demo.rs), scan and VEX
                              dated now; ACTOR is the build's trigger named in the provenance
  json PATH                   reads JSON on stdin, prints the value at a dotted PATH
                              (`manifests.0.digest`); exits 1 when it is missing
  p50                         the median of the numbers on stdin, one a line
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import statistics
import struct
import sys
import time


def totp(secret_b32):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def layout(out, size):
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    layer = os.urandom(size)
    layer_digest = hashlib.sha256(layer).hexdigest()
    with open(os.path.join(blobs, layer_digest), "wb") as f:
        f.write(layer)

    def put(obj):
        data = json.dumps(obj).encode()
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    cd, cs = put({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]}})
    md, ms = put({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layer_digest,
                    "size": size}],
    })
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                       "digest": md, "size": ms,
                                                       "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
                  f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(out, "layer.digest"), "w") as f:
        f.write("sha256:" + layer_digest)


SOURCE = "https://github.com/example/hello"
CVE = "CVE-2026-0001"


def predicates(out, actor):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs = {
        "provenance.json": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": SOURCE,
                                                    "path": ".github/workflows/release.yml"}},
                "internalParameters": {"github": {"event_name": "push", "actor": actor}},
                "resolvedDependencies": [{"uri": "git+%s@refs/heads/main" % SOURCE,
                                          "digest": {"gitCommit": "a3f5c1e2d4b6a8c0e2f4a6b8c0d2e4f6a8b0c2d4"}}],
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"},
                           "metadata": {"invocationId": "%s/actions/runs/bench" % SOURCE}},
        },
        "sbom.json": {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "components": [
                {"type": "library", "name": "openssl", "version": "3.0.1", "purl": "pkg:generic/openssl@3.0.1",
                 "licenses": [{"license": {"id": "Apache-2.0"}}]},
                {"type": "library", "name": "hello", "version": "1.0.0", "purl": "pkg:generic/hello@1.0.0",
                 "licenses": [{"license": {"id": "MIT"}}]},
            ],
        },
        "scan.json": {
            "invocation": {"uri": "%s/actions/runs/scan" % SOURCE, "event_id": "scan"},
            "scanner": {
                "uri": "pkg:github/aquasecurity/trivy@v0.52.0",
                "version": "v0.52.0",
                "result": {"SchemaVersion": 2, "Results": [{"Target": "hello", "Vulnerabilities": [{
                    "VulnerabilityID": CVE, "PkgName": "openssl",
                    "PkgIdentifier": {"PURL": "pkg:generic/openssl@3.0.1"}, "InstalledVersion": "3.0.1",
                    "Severity": "CRITICAL", "Title": "a bench vulnerability in openssl"}]}]},
            },
            "metadata": {"scanStartedOn": now, "scanFinishedOn": now},
        },
        "vex.json": {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/bench-1",
            "author": "Example Security <security@example.com>",
            "timestamp": now,
            "version": 1,
            "statements": [{"vulnerability": {"name": CVE}, "status": "not_affected",
                            "justification": "vulnerable_code_not_in_execute_path",
                            "impact_statement": "hello never calls the affected openssl function"}],
        },
    }
    os.makedirs(out, exist_ok=True)
    for name, doc in docs.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f)


def get(path):
    value = json.load(sys.stdin)
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            sys.exit(1)
    print(value if isinstance(value, str) else json.dumps(value))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "totp":
        print(totp(args[0]))
    elif cmd == "layout":
        layout(args[0], int(args[1]))
    elif cmd == "predicates":
        predicates(args[0], args[1])
    elif cmd == "json":
        get(args[0])
    elif cmd == "p50":
        print(statistics.median(float(x) for x in sys.stdin.read().split()))
    else:
        sys.exit("unknown subcommand `%s`; see the docstring" % cmd)


if __name__ == "__main__":
    main()
