"""Independent verifier for Airlock's transparency log, written from the specs alone (RFC 6962
tree hashing, C2SP signed-note and tlog-checkpoint) with the Python standard library and the
`cryptography` package. Shows the formats are the standard ones, not merely self-consistent.

usage: verify_log.py EXPORT.jsonl CHECKPOINT VKEY
  EXPORT.jsonl  from `airlock audit export`
  CHECKPOINT    a signed checkpoint note (`airlock audit checkpoint` or the export's)
  VKEY          the verifier key text (`GET /api/v1/log/key`)
Exits 0 and prints `ok SIZE ROOT` when the entries reproduce the signed root, 1 otherwise."""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.exceptions import InvalidSignature


def fail(message):
    print(f"FAILED: {message}")
    sys.exit(1)


def parse_vkey(text):
    # The base64 key may itself contain "+": split off only the name and the hash.
    name, key_hash, key_b64 = text.strip().split("+", 2)
    key = base64.b64decode(key_b64)
    if key[0] != 1 or len(key) != 33:
        fail("verifier key is not an Ed25519 (type 0x01) key")
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != bytes.fromhex(key_hash):
        fail("verifier key hash does not match its name and key")
    return name, bytes.fromhex(key_hash), Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(note, name, key_hash, public_key):
    # C2SP signed-note: the text ends at the last blank line; every signature line by the
    # verifier's key must verify, wherever it stands; lines by other keys are ignored.
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        fail("checkpoint note has no blank line before its signatures")
    text += "\n"
    verified = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            fail(f"malformed signature line {line!r}")
        signer, sig_b64 = line[2:].rsplit(" ", 1)
        sig = base64.b64decode(sig_b64, validate=True)
        if signer == name and sig[:4] == key_hash:
            try:
                public_key.verify(sig[4:], text.encode())
            except InvalidSignature:
                fail(f"a signature line by {name} does not verify")
            verified = True
    if not verified:
        fail(f"checkpoint carries no signature by {name}")
    # C2SP tlog-checkpoint: the log's key is named after its origin.
    origin = text.split("\n", 1)[0]
    if origin != name:
        fail(f"checkpoint origin {origin!r} is not the key's name {name!r}")
    return text


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes):
    """RFC 6962 section 2.1 Merkle Tree Hash over leaf hashes."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def main():
    export, checkpoint_path, vkey_path = sys.argv[1:4]
    name, key_hash, public_key = parse_vkey(open(vkey_path).read())
    body = open_note(open(checkpoint_path).read(), name, key_hash, public_key)
    origin, size, root_b64 = body.splitlines()[:3]
    size, root = int(size), base64.b64decode(root_b64)
    leaves = []
    with open(export) as f:
        for expected, line in enumerate(f):
            entry = json.loads(line)
            if entry["index"] != expected:
                fail(f"entry {expected} missing")
            data = base64.b64decode(entry["leaf"])
            json.loads(data)  # every leaf is a JSON event
            leaves.append(leaf_hash(data))
    if len(leaves) < size:
        fail(f"export has {len(leaves)} entries, checkpoint covers {size}")
    computed = mth(leaves[:size])
    if computed != root:
        fail(f"root mismatch for {origin} at size {size}")
    print(f"ok {size} {root_b64}")


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
