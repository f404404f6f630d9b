#!/usr/bin/env python3
"""Writes the OIDC fixtures beside this file: a GitHub Actions-shaped RS256 token with its issuer's
JWKS, and a GitLab CI-shaped ES256 token with its JWKS, each signed by pyca/cryptography, an
implementation independent of the one Airlock verifies with. Each JWKS also holds a second,
unused key, so the token's `kid` must pick the right one. Fresh keys each run (RSA and ECDSA key
generation is random); the tokens are valid from NOT_BEFORE to EXPIRES, and the tests verify them
with an injected clock inside that window. Needs pyca/cryptography (scripts/requirements-test.txt):

    python3 crates/access/tests/data/oidc/generate.py
"""

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIENCE = "https://airlock.example.com"
# 2026-01-01T00:00:00Z; GitHub's tokens are valid from 10 minutes before `iat` to 5 after.
ISSUED_AT = 1767225600
NOT_BEFORE = ISSUED_AT - 600
EXPIRES = ISSUED_AT + 300


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def uint(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rsa_jwk(key, kid):
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": uint(numbers.n), "e": uint(numbers.e)}


def p256_jwk(key, kid):
    numbers = key.public_key().public_numbers()
    x = b64(numbers.x.to_bytes(32, "big"))
    y = b64(numbers.y.to_bytes(32, "big"))
    return {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": x, "y": y}


def compact(header, claims, sign):
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(sign(signing_input.encode("ascii")))


def sign_rs256(key):
    return lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def sign_es256(key):
    def sign(message):
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def github():
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [rsa_jwk(other, "github-old"), rsa_jwk(signer, "github-current")]}
    sha = "3f7a1c2e9b0d4a5f6e7c8b9a0d1e2f3a4b5c6d7e"
    claims = {
        "jti": "8a0f5e4c-3d2b-4a19-9c8e-7f6a5b4c3d2e",
        "sub": "repo:acme/payments-api:ref:refs/heads/main",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": sha,
        "repository": "acme/payments-api",
        "repository_owner": "acme",
        "repository_owner_id": "1000001",
        "run_id": "9000000001",
        "run_number": "42",
        "run_attempt": "1",
        "repository_visibility": "private",
        "repository_id": "2000002",
        "actor_id": "3000003",
        "actor": "octocat",
        "workflow": "release",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_protected": "true",
        "ref_type": "branch",
        "workflow_ref": "acme/payments-api/.github/workflows/release.yml@refs/heads/main",
        "workflow_sha": sha,
        "job_workflow_ref": "acme/payments-api/.github/workflows/release.yml@refs/heads/main",
        "job_workflow_sha": sha,
        "runner_environment": "github-hosted",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": NOT_BEFORE,
        "exp": EXPIRES,
        "iat": ISSUED_AT,
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": "github-current"}
    write("github-rs256.jwks.json", json.dumps(jwks, indent=2) + "\n")
    write("github-rs256.jwt", compact(header, claims, sign_rs256(signer)) + "\n")


def gitlab():
    signer = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [p256_jwk(signer, "gitlab-current"), p256_jwk(other, "gitlab-next")]}
    claims = {
        "namespace_id": "72",
        "namespace_path": "acme",
        "project_id": "20",
        "project_path": "acme/payments-api",
        "user_id": "5",
        "user_login": "release-bot",
        "pipeline_id": "574",
        "pipeline_source": "push",
        "job_id": "302",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "environment": "production",
        "environment_protected": "true",
        "runner_id": 1,
        "runner_environment": "gitlab-hosted",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
        "iss": "https://gitlab.example.com",
        "iat": ISSUED_AT,
        "nbf": NOT_BEFORE,
        "exp": EXPIRES,
        "sub": "project_path:acme/payments-api:ref_type:branch:ref:main",
        "aud": AUDIENCE,
    }
    header = {"alg": "ES256", "typ": "JWT", "kid": "gitlab-current"}
    write("gitlab-es256.jwks.json", json.dumps(jwks, indent=2) + "\n")
    write("gitlab-es256.jwt", compact(header, claims, sign_es256(signer)) + "\n")


github()
gitlab()
