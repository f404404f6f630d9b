#!/usr/bin/env python3
"""DSSE signing and verification with securesystemslib and in-toto, the independent
implementation that Airlock's DSSE crate is tested against (crates/dsse/tests/it/interop.rs).

  dsse_interop.py keygen --algorithm ed25519|ecdsa-p256 --private KEY.pem --public PUB.pem
  dsse_interop.py sign --key PRIVATE.pem --payload FILE --out ENVELOPE.json
                       [--payload-type TYPE] [--keyid-convention airlock|securesystemslib]
  dsse_interop.py verify --key PUBLIC.pem --envelope ENVELOPE.json

Keys are PEM: PKCS#8 "PRIVATE KEY" and SubjectPublicKeyInfo "PUBLIC KEY". `sign` signs with
securesystemslib's CryptoSigner and `securesystemslib.dsse.Envelope`. `verify` verifies with
`securesystemslib.dsse.Envelope.verify` and with in-toto's `Envelope.verify_signature` (the
in-toto package's DSSE class); it exits 0 only if both verify, 1 if neither does. Each command
prints one JSON object on stdout.

Key ids differ between the two projects for the same key:
  - Airlock: lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
  - securesystemslib (and in-toto): SHA-256 of the canonical JSON of the key's dict
    {"keytype", "scheme", "keyval": {"public": ...}} (`compute_default_keyid`).
securesystemslib only tries a key whose keyid equals a signature's keyid hint (its issue #416;
DSSE says a hint must never be required), so `verify` offers the key under both ids and reports
which one verified. `sign` writes Airlock's id as the hint unless told otherwise.
"""

import argparse
import copy
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from in_toto.models.metadata import Envelope as InTotoEnvelope
from in_toto.exceptions import SignatureVerificationError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def airlock_keyid(public_key):
    """Airlock's key id: hex SHA-256 of the SubjectPublicKeyInfo DER."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def read_public(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def keygen(args):
    if args.algorithm == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    with open(args.private, "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public = private.public_key()
    with open(args.public, "wb") as f:
        f.write(
            public.public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
    print(json.dumps({"airlock_keyid": airlock_keyid(public)}))
    return 0


def sign(args):
    with open(args.key, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    public = private.public_key()
    default_key = SSlibKey.from_crypto(public)
    keyid = airlock_keyid(public) if args.keyid_convention == "airlock" else default_key.keyid
    signer = CryptoSigner(private, SSlibKey.from_crypto(public, keyid=keyid))
    with open(args.payload, "rb") as f:
        payload = f.read()
    envelope = Envelope(payload=payload, payload_type=args.payload_type, signatures={})
    envelope.sign(signer)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(envelope.to_dict(), f)
    print(
        json.dumps(
            {
                "keyid": keyid,
                "airlock_keyid": airlock_keyid(public),
                "securesystemslib_keyid": default_key.keyid,
            }
        )
    )
    return 0


def verify(args):
    public = read_public(args.key)
    ours = airlock_keyid(public)
    default_key = SSlibKey.from_crypto(public)
    keys = [SSlibKey.from_crypto(public, keyid=ours), default_key]
    with open(args.envelope, encoding="utf-8") as f:
        data = json.load(f)

    # securesystemslib: its Envelope, threshold 1.
    sslib_keyid = None
    try:
        accepted = Envelope.from_dict(copy.deepcopy(data)).verify(keys, 1)
        sslib_keyid = next(iter(accepted))
    except VerificationError:
        pass

    # in-toto: its Envelope subclass, verified the way in-toto-verify checks DSSE metadata.
    in_toto_keyid = None
    for key in keys:
        key_dict = dict(key.to_dict(), keyid=key.keyid)
        try:
            InTotoEnvelope.from_dict(copy.deepcopy(data)).verify_signature(key_dict)
            in_toto_keyid = key.keyid
            break
        except SignatureVerificationError:
            continue

    verified = sslib_keyid is not None and in_toto_keyid is not None
    print(
        json.dumps(
            {
                "verified": verified,
                "securesystemslib_verified_keyid": sslib_keyid,
                "in_toto_verified_keyid": in_toto_keyid,
                "airlock_keyid": ours,
                "securesystemslib_keyid": default_key.keyid,
                "payload_type": data.get("payloadType"),
            }
        )
    )
    if (sslib_keyid is None) != (in_toto_keyid is None):
        print("securesystemslib and in-toto disagree", file=sys.stderr)
        return 2
    return 0 if verified else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("keygen", help="generate a key pair with pyca/cryptography")
    p.add_argument("--algorithm", choices=["ed25519", "ecdsa-p256"], required=True)
    p.add_argument("--private", required=True)
    p.add_argument("--public", required=True)
    p.set_defaults(run=keygen)

    p = commands.add_parser("sign", help="sign a payload into a DSSE envelope")
    p.add_argument("--key", required=True, help="PKCS#8 PEM private key")
    p.add_argument("--payload", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--payload-type", default=IN_TOTO_PAYLOAD_TYPE)
    p.add_argument("--keyid-convention", choices=["airlock", "securesystemslib"], default="airlock")
    p.set_defaults(run=sign)

    p = commands.add_parser("verify", help="verify a DSSE envelope; exit 0 if it verifies, 1 if not")
    p.add_argument("--key", required=True, help="SubjectPublicKeyInfo PEM public key")
    p.add_argument("--envelope", required=True)
    p.set_defaults(run=verify)

    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
