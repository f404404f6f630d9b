"""Independent verifier for Airlock release bundles (docs/release-bundle.md), written from the
specs alone with the Python standard library and the `cryptography` package: DSSE v1 (PAE and
the signature over it), in-toto Statement v1, RFC 6962 leaf and node hashing with RFC 9162
inclusion proof verification, and C2SP signed-note / tlog-checkpoint with Ed25519 keys. Shows a
bundle proves a promotion to anyone holding the two public keys, with no Airlock code.

usage: verify_release.py BUNDLE RELEASE_KEY.pem LOG_VKEY
  BUNDLE           from `airlock release export`
  RELEASE_KEY.pem  the release key's public half (`GET /api/v1/release-key`, `pem`)
  LOG_VKEY         the log's verifier key text (`GET /api/v1/log/key`)
Exits 0 and prints `ok REPOSITORY@DIGEST PROMOTION INDEX SIZE` when the bundle verifies; exits 1
with `FAILED: step N ...` otherwise."""

import base64
import binascii
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MEDIA_TYPE = "application/vnd.airlock.release-bundle.v1+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROMOTION_PREDICATE = "https://airlock.dev/promotion/v1"
VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"
MAX_BYTES = 4 * 1024 * 1024


class Failed(Exception):
    pass


def b64(text, what):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Failed(f"step 1, format: `{what}` is not standard base64")


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- DSSE v1 and in-toto Statement v1 -------------------------------------------------------


def pae(payload_type, payload):
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def verify_signature(key, signature, message):
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
        return True
    except InvalidSignature:
        return False


def verify_statement(step, envelope_bytes, key, digest, predicate_type):
    """Verifies a DSSE envelope over the bytes as received; returns the statement's predicate."""
    try:
        envelope = json.loads(envelope_bytes)
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = envelope["payloadType"]
        signatures = envelope["signatures"]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise Failed(f"{step}: the envelope is malformed: {e}")
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise Failed(f"{step}: payload type is `{payload_type}`, not `{IN_TOTO_PAYLOAD_TYPE}`")
    message = pae(payload_type, payload)
    good = False
    for s in signatures:
        try:
            sig = base64.b64decode(s["sig"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            continue
        if verify_signature(key, sig, message):
            good = True
            break
    if not good:
        raise Failed(f"{step}: no signature verifies with the release key")
    try:
        statement = json.loads(payload)
    except ValueError as e:
        raise Failed(f"{step}: the statement is not JSON: {e}")
    if statement.get("_type") != STATEMENT_TYPE:
        raise Failed(f"{step}: not an in-toto Statement v1")
    if statement.get("predicateType") != predicate_type:
        raise Failed(f"{step}: predicate type is `{statement.get('predicateType')}`, not `{predicate_type}`")
    subjects = ["sha256:" + s.get("digest", {}).get("sha256", "") for s in statement.get("subject", [])]
    if subjects != [digest]:
        raise Failed(f"{step}: the statement is about {subjects}, not `{digest}`")
    return statement.get("predicate") or {}


def check_manifest(which, manifest_bytes, envelope_bytes, digest):
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise Failed(f"step 4, referrer manifests: the {which} manifest is not JSON")
    if (manifest.get("subject") or {}).get("digest") != digest:
        raise Failed(f"step 4, referrer manifests: the {which} manifest is not a referrer of `{digest}`")
    layers = manifest.get("layers") or []
    if len(layers) != 1 or layers[0].get("digest") != sha256_digest(envelope_bytes):
        raise Failed(f"step 4, referrer manifests: the {which} manifest does not carry the envelope as its one layer")


# --- RFC 6962 / RFC 9162 --------------------------------------------------------------------


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- C2SP signed-note and tlog-checkpoint ---------------------------------------------------


def parse_vkey(text):
    # The base64 key may itself contain "+": split off only the name and the hash.
    name, key_hash, key_b64 = text.strip().split("+", 2)
    key = base64.b64decode(key_b64)
    if len(key) != 33 or key[0] != 1:
        raise Failed("the log key is not an Ed25519 (type 0x01) verifier key")
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != bytes.fromhex(key_hash):
        raise Failed("the log key's hash does not match its name and key")
    return name, bytes.fromhex(key_hash), Ed25519PublicKey.from_public_bytes(key[1:])


def open_checkpoint(note, name, key_hash, public_key):
    """Returns (origin, size, root) of a note signed by the key; a bad signature by the key
    fails wherever it stands, signatures by other keys are ignored."""
    step = "step 6, checkpoint"
    text, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise Failed(f"{step}: not a signed note")
    text += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Failed(f"{step}: malformed signature line {line!r}")
        signer, _, sig_b64 = line[2:].rpartition(" ")
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except binascii.Error:
            raise Failed(f"{step}: a signature is not base64")
        if signer != name or sig[:4] != key_hash:
            continue
        try:
            public_key.verify(sig[4:], text.encode())
        except InvalidSignature:
            raise Failed(f"{step}: a signature by the log key does not verify")
        verified = True
    if not verified:
        raise Failed(f"{step}: no signature by the log key `{name}`")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Failed(f"{step}: the checkpoint has fewer than three lines")
    origin, size, root_b64 = lines[:3]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Failed(f"{step}: the tree size `{size}` is not a decimal number")
    root = base64.b64decode(root_b64, validate=True)
    if len(root) != 32:
        raise Failed(f"{step}: the root hash is not 32 bytes")
    return origin, int(size), root


# --- the bundle -----------------------------------------------------------------------------


def verify(bundle_bytes, release_key, vkey_text):
    # 1. Format.
    if len(bundle_bytes) > MAX_BYTES:
        raise Failed(f"step 1, format: larger than {MAX_BYTES} bytes")
    try:
        bundle = json.loads(bundle_bytes)
    except ValueError as e:
        raise Failed(f"step 1, format: not JSON: {e}")
    if bundle.get("mediaType") != MEDIA_TYPE:
        raise Failed(f"step 1, format: media type is not `{MEDIA_TYPE}`")
    try:
        repository, digest, promotion = bundle["repository"], bundle["digest"], bundle["promotion"]
        record_envelope = b64(bundle["releaseRecord"]["envelope"], "releaseRecord.envelope")
        record_manifest = b64(bundle["releaseRecord"]["manifest"], "releaseRecord.manifest")
        summary_envelope = b64(bundle["verificationSummary"]["envelope"], "verificationSummary.envelope")
        summary_manifest = b64(bundle["verificationSummary"]["manifest"], "verificationSummary.manifest")
        index = bundle["logEntry"]["index"]
        leaf = b64(bundle["logEntry"]["leaf"], "logEntry.leaf")
        tree_size = bundle["inclusionProof"]["treeSize"]
        proof = [b64(h, "inclusionProof.hashes") for h in bundle["inclusionProof"]["hashes"]]
        note = bundle["checkpoint"]
    except (KeyError, TypeError) as e:
        raise Failed(f"step 1, format: missing member {e}")
    stage = repository.split("/", 1)[0]

    # 2. The release record.
    step = "step 2, release record"
    record = verify_statement(step, record_envelope, release_key, digest, PROMOTION_PREDICATE)
    target = record.get("target") or {}
    if target.get("stage") != stage or target.get("repository") != repository:
        raise Failed(f"{step}: it promotes into `{target.get('repository')}`, not `{repository}`")
    if record.get("digest") != digest or record.get("promotion") != promotion:
        raise Failed(f"{step}: it names another digest or promotion")
    log_index = (record.get("log") or {}).get("index")

    # 3. The verification summary.
    step = "step 3, verification summary"
    vsa = verify_statement(step, summary_envelope, release_key, digest, VSA_PREDICATE)
    if vsa.get("resourceUri") != f"{repository}@{digest}":
        raise Failed(f"{step}: its resourceUri is not `{repository}@{digest}`")
    if vsa.get("verificationResult") != "PASSED" and record.get("break_glass") is not True:
        raise Failed(f"{step}: it does not say PASSED")

    # 4. The referrer manifests carry the envelopes.
    check_manifest("release record", record_manifest, record_envelope, digest)
    check_manifest("verification summary", summary_manifest, summary_envelope, digest)

    # 5. The log entry is this promotion's commit event, at the index the record names.
    step = f"step 5, log entry {index}"
    if index != log_index:
        raise Failed(f"{step}: the release record names log entry {log_index}")
    try:
        event = json.loads(leaf)
    except ValueError:
        raise Failed(f"{step}: not JSON")
    details = event.get("details") or {}
    if event.get("type") != "promotion.commit":
        raise Failed(f"{step}: a `{event.get('type')}` event, not `promotion.commit`")
    if (
        details.get("promotion") != promotion
        or details.get("release_record") != sha256_digest(record_manifest)
        or details.get("summary") != sha256_digest(summary_manifest)
        or details.get("target") != repository
        or (event.get("subject") or {}).get("digest") != digest
    ):
        raise Failed(f"{step}: names another promotion, release record, summary, repository or digest")

    # 6. The checkpoint is signed by the log key, whose name is its origin and the record's log.
    name, key_hash, public_key = parse_vkey(vkey_text)
    origin, size, root = open_checkpoint(note, name, key_hash, public_key)
    if origin != name:
        raise Failed(f"step 6, checkpoint: origin `{origin}` is not the log key's name `{name}`")
    if (record.get("log") or {}).get("origin") != origin:
        raise Failed("step 6, checkpoint: the release record names another log")

    # 7. Inclusion.
    if tree_size != size or not verify_inclusion(leaf_hash(leaf), index, size, proof, root):
        raise Failed(f"step 7, inclusion: log entry {index} is not in the checkpoint's tree of {size}")
    return f"ok {repository}@{digest} {promotion} {index} {size}"


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bundle_path, release_path, vkey_path = sys.argv[1:4]
    with open(bundle_path, "rb") as f:
        bundle_bytes = f.read(MAX_BYTES + 1)
    with open(release_path, "rb") as f:
        release_key = load_pem_public_key(f.read())
    with open(vkey_path) as f:
        vkey_text = f.read()
    try:
        print(verify(bundle_bytes, release_key, vkey_text))
    except Failed as e:
        print(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
