#!/usr/bin/env python3
"""Writes the negative envelope and statement fixtures under envelope/ and statement/, and the
sample statement provenance.json. Deterministic: Ed25519 signatures by the RFC 8032 section 7.1
TEST 1 key ("A" of the DSSE test vectors, trusted by the tests) and TEST 2 key ("B", untrusted).
Needs pyca/cryptography (scripts/requirements-test.txt). Run from anywhere:

    target/venv/bin/python crates/dsse/tests/data/generate.py

The expected.txt snapshots are then updated with `UPDATE_EXPECT=1 cargo test -p airlock-dsse`.
"""

import base64
import hashlib
import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

HERE = os.path.dirname(os.path.abspath(__file__))
INTOTO = "application/vnd.in-toto+json"
SEED_A = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_B = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
# What the fixture tests pass as `EnvelopeLimits::max_bytes`, so the oversized fixture stays small.
FIXTURE_MAX_BYTES = 128 * 1024
SHA = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


def key(seed):
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def keyid(k):
    der = k.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


A, B = key(SEED_A), key(SEED_B)


def pae(payload_type, payload):
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def b64(data):
    return base64.standard_b64encode(data).decode("ascii")


def sig(k, payload_type, payload, hint=True):
    s = {"keyid": keyid(k)} if hint else {}
    s["sig"] = b64(k.sign(pae(payload_type, payload)))
    return s


def envelope(payload_type, payload, signatures):
    return {"payloadType": payload_type, "payload": b64(payload), "signatures": signatures}


def dump(value):
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def statement(subjects=None, predicate=None, **overrides):
    s = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects
        if subjects is not None
        else [{"name": "registry.example.com/payments/api", "digest": {"sha256": SHA}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": predicate if predicate is not None else PROVENANCE,
    }
    s.update(overrides)
    return s


PROVENANCE = {
    "buildDefinition": {
        "buildType": "https://actions.github.io/buildtypes/workflow/v1",
        "externalParameters": {
            "workflow": {
                "ref": "refs/tags/v1.4.2",
                "repository": "https://github.com/example/payments",
                "path": ".github/workflows/release.yml",
            }
        },
        "resolvedDependencies": [
            {
                "uri": "git+https://github.com/example/payments@refs/tags/v1.4.2",
                "digest": {"gitCommit": "a3f5c1e2d4b6a8c0e2f4a6b8c0d2e4f6a8b0c2d4"},
            }
        ],
    },
    "runDetails": {
        "builder": {"id": "https://github.com/actions/runner/github-hosted"},
        "metadata": {
            "invocationId": "https://github.com/example/payments/actions/runs/1234567890/attempts/1",
            "startedOn": "2025-03-01T12:00:00Z",
        },
    },
}

GOOD = dump(statement())


def envelopes():
    good = envelope(INTOTO, GOOD, [sig(A, INTOTO, GOOD)])
    yield "wrong-payload-type", dump(envelope("application/json", GOOD, [sig(A, "application/json", GOOD)]))
    swapped = dict(good, payloadType="application/vnd.example.other+json")
    yield "payload-type-swapped", dump(swapped)
    tampered = GOOD.replace(SHA.encode(), b"0" * 64)
    yield "tampered-payload", dump(dict(good, payload=b64(tampered)))
    big = dump(statement(predicate=dict(PROVENANCE, padding="x" * (FIXTURE_MAX_BYTES * 3 // 4))))
    yield "oversized-envelope", dump(envelope(INTOTO, big, [sig(A, INTOTO, big)]))
    one = sig(A, INTOTO, GOOD, hint=False)
    yield "envelope-with-1000-signatures", dump(dict(good, signatures=[one] * 1000))
    yield "no-signatures", dump(dict(good, signatures=[]))
    yield "payload-not-base64", dump(dict(good, payload="not base64!"))
    evil = dump(statement(subjects=[{"name": "evil", "digest": {"sha256": "1" * 64}}]))
    signed = sig(A, INTOTO, GOOD)
    text = '{"payloadType":%s,"payload":"%s","payload":"%s","signatures":[%s]}'
    yield "duplicate-payload-member", (
        text % (json.dumps(INTOTO), b64(GOOD), b64(evil), dump(signed).decode())
    ).encode()
    text = '{"payloadType":%s,"payload":"%s","\\u0070ayload":"%s","signatures":[%s]}'
    yield "duplicate-payload-member-escaped", (
        text % (json.dumps(INTOTO), b64(GOOD), b64(evil), dump(signed).decode())
    ).encode()
    text = '{"payloadType":%s,"payload":"%s","signatures":[%s],"payloadType":"application/json"}'
    yield "duplicate-payload-type-member", (
        text % (json.dumps(INTOTO), b64(GOOD), dump(signed).decode())
    ).encode()
    other = sig(B, INTOTO, GOOD)["sig"]
    text = '{"payloadType":%s,"payload":"%s","signatures":[{"sig":"%s","sig":"%s"}]}'
    yield "duplicate-sig-member", (text % (json.dumps(INTOTO), b64(GOOD), signed["sig"], other)).encode()
    yield "unknown-signer", dump(envelope(INTOTO, GOOD, [sig(B, INTOTO, GOOD)]))
    lying = sig(B, INTOTO, GOOD)
    lying["keyid"] = keyid(A)
    yield "keyid-hint-names-trusted-key", dump(envelope(INTOTO, GOOD, [lying]))
    yield "signature-not-base64", dump(dict(good, signatures=[{"keyid": keyid(A), "sig": "%%%%"}]))
    binary = bytes([0xFB, 0xFF, 0xBF, 0x3E, 0x3F])
    mixed = envelope(INTOTO, binary, [sig(A, INTOTO, binary)])
    mixed["payload"] = "+_+/Pj8="
    yield "mixed-base64-alphabets", dump(mixed)
    padded = good["payload"]
    assert padded.endswith("="), "pick a statement whose base64 is padded"
    yield "unpadded-base64", dump(dict(good, payload=padded.rstrip("=")))
    yield "empty-signature", dump(dict(good, signatures=[{"keyid": keyid(A), "sig": ""}]))
    missing = dict(good)
    del missing["payloadType"]
    yield "missing-payload-type", dump(missing)
    yield "not-an-object", dump([good])
    yield "trailing-data", dump(good) + b"\n{}"
    nested = {"x": 1}
    for _ in range(20):
        nested = {"x": nested}
    extension = dict(sig(A, INTOTO, GOOD), extension={"kind": "example", "ext": nested})
    yield "deeply-nested-extension", dump(dict(good, signatures=[extension]))
    link = dump({"_type": "link", "name": "build", "materials": {}, "products": {}, "byproducts": {},
                 "command": [], "environment": {}})
    yield "in-toto-link-payload", dump(envelope(INTOTO, link, [sig(A, INTOTO, link)]))
    yield "utf8-bom", b"\xef\xbb\xbf" + dump(good)
    yield "payload-type-not-string", dump(dict(good, payloadType=1))
    yield "payload-type-lone-surrogate", dump(good).replace(b'"application/vnd.in-toto+json"', b'"\\ud800"')
    short = dict(sig(A, INTOTO, GOOD))
    short["sig"] = b64(base64.standard_b64decode(short["sig"])[:63])
    yield "truncated-signature", dump(dict(good, signatures=[short]))


def statements():
    yield "statement-wrong-type", dump(statement(_type="https://in-toto.io/Statement/v2"))
    yield "statement-type-case-changed", dump(statement(_type="https://in-toto.io/statement/v1"))
    yield "statement-no-subjects", dump(statement(subjects=[]))
    yield "statement-bad-digest", dump(statement(subjects=[{"name": "a", "digest": {"sha256": SHA.upper()}}]))
    yield "statement-digest-too-short", dump(statement(subjects=[{"name": "a", "digest": {"sha256": SHA[:63]}}]))
    many = [{"name": "file-%d" % i, "digest": {"sha256": SHA}} for i in range(1025)]
    yield "statement-too-many-subjects", dump(statement(subjects=many))
    missing = statement()
    del missing["_type"]
    yield "statement-missing-type", dump(missing)
    text = dump(statement()).decode()
    evil = json.dumps([{"name": "evil", "digest": {"sha256": "1" * 64}}])
    yield "statement-duplicate-subject-member", text.replace(',"predicateType"', ',"subject":%s,"predicateType"' % evil, 1).encode()
    yield "statement-duplicate-digest-algorithm", text.replace('"sha256":"%s"' % SHA, '"sha256":"%s","sha256":"%s"' % (SHA, "1" * 64), 1).encode()
    builder = '"builder":{"id":"https://github.com/actions/runner/github-hosted"'
    yield "statement-duplicate-in-predicate", text.replace(builder, builder + ',"id":"https://evil.example.com/builder"', 1).encode()
    yield "statement-subject-without-digest", dump(statement(subjects=[{"name": "a"}]))
    yield "statement-empty-digest", dump(statement(subjects=[{"name": "a", "digest": {}}]))
    algs = {"custom%d" % i: "00" for i in range(17)}
    yield "statement-too-many-digests", dump(statement(subjects=[{"name": "a", "digest": algs}]))
    yield "statement-predicate-not-object", dump(statement(predicate="https://slsa.dev/provenance/v1"))
    yield "statement-empty-predicate-type", dump(statement(predicateType=""))
    deep = {}
    for _ in range(100):
        deep = {"x": deep}
    yield "statement-deep-predicate", dump(statement(predicate=deep))
    yield "statement-subject-not-array", dump(statement(subjects={"name": "a", "digest": {"sha256": SHA}}))
    yield "statement-number-out-of-range", text.replace('"startedOn"', '"attempt":1e400,"startedOn"', 1).encode()
    yield "statement-not-json", b"_type: https://in-toto.io/Statement/v1\n"


def write(directory, cases):
    os.makedirs(os.path.join(HERE, directory), exist_ok=True)
    for name, data in cases:
        with open(os.path.join(HERE, directory, name), "wb") as f:
            f.write(data)


def main():
    write("envelope", envelopes())
    write("statement", statements())
    with open(os.path.join(HERE, "provenance.json"), "wb") as f:
        f.write(GOOD)
    good = envelope(INTOTO, GOOD, [sig(A, INTOTO, GOOD)])
    with open(os.path.join(HERE, "provenance.dsse.json"), "wb") as f:
        f.write(dump(good))


if __name__ == "__main__":
    main()
