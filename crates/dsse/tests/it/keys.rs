//! Keys: key ids against `sha256sum`, one key in two encodings, PKCS#8 round trips for both
//! algorithms, refused key files, and Ed25519 signatures that only strict verification refuses.

use airlock_dsse::{Algorithm, KeyError, KeyId, PrivateKey, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use curve25519_dalek::Scalar;
use expect_test::expect;
use sha2::{Digest as _, Sha256, Sha512};

/// `openssl pkey -pubin -in tests/data/keys/NAME -outform DER | sha256sum`.
const ED25519_SHA256SUM: &str = "06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9";
const P256_SHA256SUM: &str = "f793580060562d6ff075d814ea698c282fcc779b0cde64d79ffc6301df00d14b";
const P256_COMPRESSED_SHA256SUM: &str = "9f89176cbbd0d1a0c9623d647f19ecf3dd0a08caba871a2be1e6ea6cb9eea2a6";

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&crate::data_text(&format!("keys/{name}"))).unwrap()
}

/// The DER inside a PEM file, decoded here without the crate's code.
fn pem_der(name: &str) -> Vec<u8> {
    let text = crate::data_text(&format!("keys/{name}"));
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

#[test]
fn keyid_is_the_sha256sum_of_the_spki_der() {
    for (name, sum) in [("ed25519.pub.pem", ED25519_SHA256SUM), ("p256.pub.pem", P256_SHA256SUM)] {
        let key = public(name);
        assert_eq!(key.keyid().as_str(), sum, "{name}");
        assert_eq!(hex::encode(Sha256::digest(pem_der(name))), sum, "{name}");
        assert_eq!(key.spki_der(), pem_der(name), "{name}: canonical DER is what OpenSSL writes");
        assert_eq!(KeyId::parse(sum).unwrap(), *key.keyid());
        assert_eq!(key.to_pem(), crate::data_text(&format!("keys/{name}")), "{name}");
        assert_eq!(PublicKey::from_spki_der(key.spki_der()).unwrap(), key);
        let crlf = crate::data_text(&format!("keys/{name}")).replace('\n', "\r\n");
        assert_eq!(PublicKey::from_pem(&crlf).unwrap(), key, "{name} with CRLF line endings");
    }
    assert_eq!(public("ed25519.pub.pem").algorithm(), Algorithm::Ed25519);
    assert_eq!(public("p256.pub.pem").algorithm(), Algorithm::EcdsaP256Sha256);
}

#[test]
fn one_key_in_two_encodings_is_one_key() {
    let uncompressed = public("p256.pub.pem");
    let compressed = public("p256-compressed.pub.pem");
    assert_eq!(hex::encode(Sha256::digest(pem_der("p256-compressed.pub.pem"))), P256_COMPRESSED_SHA256SUM);
    assert_eq!(compressed.fingerprint(), uncompressed.fingerprint());
    // The key id hashes the canonical (uncompressed) re-encoding, not the bytes given.
    assert_eq!(compressed.keyid().as_str(), P256_SHA256SUM);
    assert_eq!(compressed.spki_der(), uncompressed.spki_der());
    assert_eq!(compressed, uncompressed);
    let mut expected = Sha256::new();
    expected.update(b"ecdsa-p256\0");
    expected.update(uncompressed.raw_bytes());
    assert_eq!(uncompressed.fingerprint(), <[u8; 32]>::from(expected.finalize()));
    // A signature by the key verifies under both.
    let private = PrivateKey::from_pkcs8_pem(&crate::data_text("keys/p256.pem")).unwrap();
    let signature = private.sign(b"message").unwrap();
    compressed.verify(b"message", &signature).unwrap();
    uncompressed.verify(b"message", &signature).unwrap();
}

#[test]
fn pkcs8_files_read_and_write_back() {
    for name in ["ed25519", "p256"] {
        let text = crate::data_text(&format!("keys/{name}.pem"));
        let private = PrivateKey::from_pkcs8_pem(&text).unwrap();
        assert_eq!(private.public_key(), &public(&format!("{name}.pub.pem")));
        let again = PrivateKey::from_pkcs8_pem(&private.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(again.public_key(), private.public_key());
        let debug = format!("{private:?}");
        assert!(debug.contains(private.public_key().keyid().as_str()), "{debug}");
        assert!(!debug.contains(&text.lines().nth(1).unwrap()[20..]), "Debug shows secret material: {debug}");
    }
    // ring keeps the P-256 document as read, so it writes back byte for byte.
    let p256 = crate::data_text("keys/p256.pem");
    assert_eq!(PrivateKey::from_pkcs8_pem(&p256).unwrap().to_pkcs8_pem().unwrap(), p256);
}

#[test]
fn generated_keys_sign_and_verify() {
    for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
        let key = PrivateKey::generate(algorithm).unwrap();
        let other = PrivateKey::generate(algorithm).unwrap();
        assert_ne!(key.public_key().fingerprint(), other.public_key().fingerprint());
        let signature = key.sign(b"payload").unwrap();
        key.public_key().verify(b"payload", &signature).unwrap();
        assert!(key.public_key().verify(b"payloaD", &signature).is_err());
        assert!(other.public_key().verify(b"payload", &signature).is_err());
        if algorithm == Algorithm::EcdsaP256Sha256 {
            assert_eq!(signature[0], 0x30, "an ASN.1 DER SEQUENCE");
        } else {
            assert_eq!(signature.len(), 64);
        }
        let reread = PrivateKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
        reread.public_key().verify(b"payload", &key.sign(b"payload").unwrap()).unwrap();
        assert_eq!(PublicKey::from_pem(&key.public_key().to_pem()).unwrap(), *key.public_key());
    }
}

fn refusal(result: Result<impl std::fmt::Debug, KeyError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn refused_key_files() {
    let report = [
        ("ed25519-encrypted.pem", refusal(PrivateKey::from_pkcs8_pem(&crate::data_text("keys/ed25519-encrypted.pem")))),
        ("p256-sec1.pem", refusal(PrivateKey::from_pkcs8_pem(&crate::data_text("keys/p256-sec1.pem")))),
        ("rsa.pub.pem", refusal(PublicKey::from_pem(&crate::data_text("keys/rsa.pub.pem")))),
        ("p384.pub.pem", refusal(PublicKey::from_pem(&crate::data_text("keys/p384.pub.pem")))),
        ("ed25519.pem as public", refusal(PublicKey::from_pem(&crate::data_text("keys/ed25519.pem")))),
        ("ed25519.pub.pem as private", refusal(PrivateKey::from_pkcs8_pem(&crate::data_text("keys/ed25519.pub.pem")))),
        ("garbage", refusal(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"))),
        ("huge", refusal(PublicKey::from_pem(&"A".repeat(20_000)))),
    ]
    .map(|(name, e)| format!("{name}: {e}\n"))
    .concat();
    expect![[r#"
        ed25519-encrypted.pem: private key is encrypted; decrypt it to unencrypted pkcs#8 first, e.g. `openssl pkey -in KEY -out PLAIN.pem`
        p256-sec1.pem: private key is a legacy `EC PRIVATE KEY`; convert it to pkcs#8 with `openssl pkey -in KEY -out KEY.pk8.pem`
        rsa.pub.pem: key algorithm `1.2.840.113549.1.1.1` is not supported; use ed25519 (`1.3.101.112`) or ecdsa over p-256
        p384.pub.pem: elliptic curve `1.3.132.0.34` is not supported; use p-256 (`1.2.840.10045.3.1.7`)
        ed25519.pem as public: pem label is `PRIVATE KEY`; expected `PUBLIC KEY`
        ed25519.pub.pem as private: pem label is `PUBLIC KEY`; expected `PRIVATE KEY`
        garbage: key is not a pem document: PEM error: PEM Base64 error: invalid Base64 encoding
        huge: key is 20000 bytes; the limit is 16384
    "#]]
    .assert_eq(&report);
}

/// SubjectPublicKeyInfo DER of `algorithm || key`, written out byte by byte.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bit_string = vec![0x03, (key.len() + 1) as u8, 0x00];
    bit_string.extend_from_slice(key);
    let mut body = vec![0x30, algorithm.len() as u8];
    body.extend_from_slice(algorithm);
    body.extend(bit_string);
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    der
}

const ED25519_ALG: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const P256_ALG: &[u8] =
    &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[test]
fn refused_public_keys() {
    let a = crate::key_a();
    let good = a.public_key().raw_bytes().to_vec();
    let p256 = public("p256.pub.pem").raw_bytes().to_vec();
    // y = p + 1 (p = 2^255 - 19): a non-canonical encoding of y = 1.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut off_curve = p256.clone();
    off_curve[64] ^= 1;
    let mut hybrid = p256.clone();
    hybrid[0] = 0x06;
    let mut null_params = ED25519_ALG.to_vec();
    null_params.extend_from_slice(&[0x05, 0x00]);
    let mut unused_bits = spki(ED25519_ALG, &good);
    unused_bits[12] = 1;
    let cases: [(&str, Result<PublicKey, KeyError>); 10] = [
        ("ed25519 non-canonical y", PublicKey::from_raw(Algorithm::Ed25519, &non_canonical)),
        ("ed25519 identity (small order)", PublicKey::from_raw(Algorithm::Ed25519, &identity)),
        ("ed25519 31 bytes", PublicKey::from_raw(Algorithm::Ed25519, &good[..31])),
        ("ed25519 spki with null parameters", PublicKey::from_spki_der(&spki(&null_params, &good))),
        ("ed25519 spki, small order", PublicKey::from_spki_der(&spki(ED25519_ALG, &identity))),
        ("ed25519 spki, unused bits", PublicKey::from_spki_der(&unused_bits)),
        ("p256 off the curve", PublicKey::from_spki_der(&spki(P256_ALG, &off_curve))),
        ("p256 hybrid point", PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &hybrid)),
        ("p256 truncated", PublicKey::from_raw(Algorithm::EcdsaP256Sha256, &p256[..64])),
        ("spki with trailing byte", PublicKey::from_spki_der(&[spki(ED25519_ALG, &good), vec![0]].concat())),
    ];
    let report = cases.map(|(name, r)| format!("{name}: {}\n", refusal(r))).concat();
    expect![[r#"
        ed25519 non-canonical y: `ed25519` public key is not canonically encoded (its y coordinate is not reduced)
        ed25519 identity (small order): `ed25519` public key has small order, so it would verify forged signatures
        ed25519 31 bytes: `ed25519` public key is 31 bytes; expected 32
        ed25519 spki with null parameters: `ed25519` key has algorithm parameters; rfc 8410 requires them to be absent
        ed25519 spki, small order: `ed25519` public key has small order, so it would verify forged signatures
        ed25519 spki, unused bits: `ed25519` public key is not a valid point on its curve
        p256 off the curve: `ecdsa-p256` public key is not a valid point on its curve
        p256 hybrid point: `ecdsa-p256` public key starts with byte 0x06; a sec1 point is compressed (0x02, 0x03) or uncompressed (0x04)
        p256 truncated: `ecdsa-p256` public key is 64 bytes; expected 65 (uncompressed)
        spki with trailing byte: public key is not a der-encoded subjectPublicKeyInfo: trailing data at end of DER message: decoded 44 bytes, 1 bytes remaining at DER byte 44
    "#]]
    .assert_eq(&report);
    // The hand-made SPKI of a good key is the canonical one.
    assert_eq!(PublicKey::from_spki_der(&spki(ED25519_ALG, &good)).unwrap(), *a.public_key());
}

/// The Ed25519 secret scalar of a seed (RFC 8032 §5.1.5), reduced mod L.
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h = Sha512::digest(seed);
    let mut lower: [u8; 32] = h[..32].try_into().unwrap();
    lower[0] &= 248;
    lower[31] &= 127;
    lower[31] |= 64;
    Scalar::from_bytes_mod_order(lower)
}

/// A signature whose `R` is the identity point, a small-order point: `S = H(R || A || M) * a`
/// satisfies the cofactorless equation `[S]B = R + [k]A`, so ed25519-dalek's lax `verify`
/// accepts it; `verify_strict` refuses small-order `R`, and so does Airlock.
#[test]
fn strict_verification_refuses_a_small_order_r() {
    let seed: [u8; 32] = hex::decode(crate::SEED_A).unwrap().try_into().unwrap();
    let key = crate::key_a();
    let public = key.public_key();
    let message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}";
    let mut r = [0u8; 32];
    r[0] = 1;
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new().chain_update(r).chain_update(public.raw_bytes()).chain_update(message).finalize().into(),
    );
    let s = k * secret_scalar(&seed);
    let signature = [r, s.to_bytes()].concat();

    let lax = ed25519_dalek::VerifyingKey::from_bytes(&public.raw_bytes().try_into().unwrap()).unwrap();
    let dalek_signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    ed25519_dalek::Verifier::verify(&lax, message, &dalek_signature).expect("the lax cofactorless check accepts it");
    assert!(lax.verify_strict(message, &dalek_signature).is_err());
    assert_eq!(
        public.verify(message, &signature).unwrap_err().to_string(),
        format!("signature does not verify under key `{}`", public.keyid())
    );
}

/// `S + L` verifies the same equation as `S` (a malleable copy of a signature); it is refused.
#[test]
fn strict_verification_refuses_a_non_canonical_s() {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let key = crate::key_a();
    let signature = key.sign(b"message").unwrap();
    key.public_key().verify(b"message", &signature).unwrap();
    let mut malleated = signature.clone();
    let mut carry = 0u16;
    for (byte, l) in malleated[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert!(key.public_key().verify(b"message", &malleated).is_err());
}

#[test]
fn signatures_of_the_wrong_shape_are_refused_by_length() {
    let ed = crate::key_a();
    let p256 = PrivateKey::from_pkcs8_pem(&crate::data_text("keys/p256.pem")).unwrap();
    let report = [
        ed.public_key().verify(b"m", &[0; 63]).unwrap_err().to_string(),
        p256.public_key().verify(b"m", &[0x30; 73]).unwrap_err().to_string(),
    ]
    .join("\n");
    expect![[r#"
        a 63-byte signature cannot be an `ed25519` signature (key `06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9`)
        a 73-byte signature cannot be an `ecdsa-p256` signature (key `f793580060562d6ff075d814ea698c282fcc779b0cde64d79ffc6301df00d14b`)"#]]
    .assert_eq(&report);
    // An Ed25519 signature does not verify under a P-256 key, nor the reverse.
    assert!(p256.public_key().verify(b"m", &ed.sign(b"m").unwrap()).is_err());
    assert!(ed.public_key().verify(b"m", &p256.sign(b"m").unwrap()).is_err());
}
