"""Pushes a non-image artifact and a referrer to it with the `oras` Python client, then pulls
the artifact back. Prints a JSON report for the Rust test to check."""

import json
import os
import sys

import oras.client
import oras.oci
import requests

host, repo = sys.argv[1], sys.argv[2]
user, key = os.environ["AIRLOCK_USERNAME"], os.environ["AIRLOCK_PASSWORD"]
with open("chart.tgz", "w") as f:
    f.write("helm chart bytes\n")
with open("sbom.spdx.json", "w") as f:
    json.dump({"spdxVersion": "SPDX-2.3", "name": "web"}, f)

client = oras.client.OrasClient(hostname=host, insecure=True)
client.auth.set_basic_auth(user, key)
pushed = client.push(
    target=f"{host}/{repo}:1.0.0",
    files=["chart.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip"],
    disable_path_validation=True,
)
assert pushed.status_code == 201, pushed.text

token = requests.get(
    f"http://{host}/token", params={"service": "airlock", "scope": f"repository:{repo}:pull"}, auth=(user, key)
).json()["token"]
head = requests.head(
    f"http://{host}/v2/{repo}/manifests/1.0.0",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json", "Authorization": f"Bearer {token}"},
)
subject = oras.oci.Subject(
    mediaType="application/vnd.oci.image.manifest.v1+json",
    digest=head.headers["Docker-Content-Digest"],
    size=int(head.headers["Content-Length"]),
)
referrer = client.push(
    target=f"{host}/{repo}:sbom",
    files=["sbom.spdx.json:application/spdx+json"],
    subject=subject,
    disable_path_validation=True,
)
assert referrer.status_code == 201, referrer.text

os.makedirs("pulled", exist_ok=True)
client.pull(target=f"{host}/{repo}:1.0.0", outdir="pulled")

print(json.dumps({
    "subject": subject.digest,
    "oci_subject_header": referrer.headers.get("OCI-Subject"),
    "referrer": referrer.headers.get("Docker-Content-Digest"),
}))
