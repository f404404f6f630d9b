//! Published test vectors: the DSSE repository's `testvectors/vectors.json` (copied verbatim to
//! `tests/data/vectors/dsse-vectors.json`) and the ECDSA P-256 example of DSSE's `protocol.md`.

use std::collections::BTreeMap;

use airlock_dsse::{Algorithm, Envelope, EnvelopeLimits, PrivateKey, PublicKey, pae};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[derive(serde::Deserialize)]
struct Vectors {
    keys: BTreeMap<String, VectorKey>,
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct VectorKey {
    algorithm: String,
    seed: String,
    public: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vector {
    id: String,
    envelope: serde_json::Value,
    trusted_keys: Vec<String>,
    threshold: usize,
    supported_payload_types: Vec<String>,
    pae: String,
    expect: String,
}

#[test]
fn dsse_protocol_vectors() {
    let file: Vectors = serde_json::from_str(&crate::data_text("vectors/dsse-vectors.json")).unwrap();
    let mut keys = BTreeMap::new();
    for (name, key) in &file.keys {
        assert_eq!(key.algorithm, "ed25519");
        let private = PrivateKey::from_ed25519_seed(&hex::decode(&key.seed).unwrap().try_into().unwrap());
        let public = PublicKey::from_raw(Algorithm::Ed25519, &hex::decode(&key.public).unwrap()).unwrap();
        assert_eq!(private.public_key(), &public, "key {name}: seed and public key disagree");
        keys.insert(name.clone(), (private, public));
    }
    assert_eq!(file.vectors.len(), 9);
    for v in &file.vectors {
        let bytes = serde_json::to_vec(&v.envelope).unwrap();
        let envelope = Envelope::parse(&bytes, &EnvelopeLimits::default()).unwrap();
        let rendered = Envelope::parse(&envelope.to_json(), &EnvelopeLimits::default()).unwrap();
        assert_eq!(rendered, envelope, "{}: render then parse", v.id);
        let signed_pae = hex::decode(&v.pae).unwrap();
        // Every signature is a key's deterministic Ed25519 signature over the stated PAE.
        for signature in &envelope.signatures {
            let signer = keys.values().find(|(private, _)| private.sign(&signed_pae).unwrap() == signature.sig);
            assert!(signer.is_some(), "{}: no vector key made this signature over the stated PAE", v.id);
        }
        let trusted: Vec<&PublicKey> = v.trusted_keys.iter().map(|k| &keys[k].1).collect();
        let verified = envelope.verified_keys(&trusted);
        let supported = v.supported_payload_types.contains(&envelope.payload_type);
        let accepted = verified.len() >= v.threshold && supported;
        assert_eq!(accepted, v.expect == "accept", "{}: {} keys verified", v.id, verified.len());
        if accepted {
            assert_eq!(envelope.pae(), signed_pae, "{}", v.id);
        }
    }
}

/// DSSE `protocol.md`, "Test Vectors": the PAE of the example.
#[test]
fn protocol_md_pae_example() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
}

/// DSSE `protocol.md`, "Test Vectors": ECDSA over P-256 and SHA-256. The published signature is
/// the raw `r || s` (Cryptodome's encoding); Airlock verifies ASN.1 DER, as securesystemslib
/// signs, so the test re-encodes it as DER.
#[test]
fn protocol_md_ecdsa_example() {
    let x = decimal_to_be32("46950820868899156662930047687818585632848591499744589407958293238635476079160");
    let y = decimal_to_be32("5640078356564379163099075877009565129882514886557779369047442380624545832820");
    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &point).unwrap();
    let envelope = br#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
    let envelope = Envelope::parse(envelope, &EnvelopeLimits::default()).unwrap();
    assert_eq!(envelope.pae(), b"DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    let raw = &envelope.signatures[0].sig;
    assert_eq!(raw.len(), 64);
    // As published, the raw signature is not DER and does not verify.
    assert!(envelope.verified_keys(&[&key]).is_empty());
    let der = raw_to_der(raw);
    key.verify(&envelope.pae(), &der).unwrap();
    // The same key given as a compressed point verifies too and is the same key.
    let mut compressed = vec![0x02 | (y[31] & 1)];
    compressed.extend_from_slice(&x);
    let same = PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &compressed).unwrap();
    assert_eq!(same, key);
    same.verify(&envelope.pae(), &der).unwrap();
    assert!(key.verify(b"DSSEv1 29 http://example.com/HelloWorld 11 hello worle", &der).is_err());
    // The private key `d` of the example is `tests/data/keys/p256.pem`.
    let private = PrivateKey::from_pkcs8_pem(&crate::data_text("keys/p256.pem")).unwrap();
    assert_eq!(private.public_key(), &key);
    assert_eq!(
        STANDARD.encode(raw),
        "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="
    );
}

/// A big-endian 32-byte integer from its decimal digits.
fn decimal_to_be32(decimal: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for digit in decimal.bytes() {
        let mut carry = u32::from(digit - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "does not fit in 32 bytes");
    }
    out
}

/// `r || s` (32 bytes each) as an ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let mut body = integer(&raw[..32]);
    body.extend(integer(&raw[32..]));
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    der
}
