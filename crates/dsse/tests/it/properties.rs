//! Property tests: sign, render, parse and verify round trips for both algorithms; statements
//! round trip; no parser panics; and no change to a signed envelope's bytes changes what it says
//! and still verifies.

use std::collections::BTreeMap;

use airlock_dsse::{
    Algorithm, Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement, StatementLimits, StatementSubject,
};
use proptest::prelude::*;

fn envelope_round_trips(key: &PrivateKey, payload_type: &str, payload: &[u8]) -> Result<(), TestCaseError> {
    let envelope = Envelope::sign(payload_type, payload, &[key]).unwrap();
    let bytes = envelope.to_json();
    let parsed = Envelope::parse(&bytes, &EnvelopeLimits::default()).unwrap();
    prop_assert_eq!(&parsed, &envelope);
    prop_assert_eq!(parsed.verified_keys(&[key.public_key()]), [key.public_key()]);
    prop_assert_eq!(parsed.signatures[0].keyid.as_deref(), Some(key.public_key().keyid().as_str()));
    Ok(())
}

proptest! {
    #[test]
    fn ed25519_envelopes_round_trip(payload_type in "\\PC{0,40}", payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        envelope_round_trips(&crate::key_a(), &payload_type, &payload)?;
    }

    #[test]
    fn p256_envelopes_round_trip(payload_type in "[ -~]{0,40}", payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let key = PrivateKey::from_pkcs8_pem(&crate::data_text("keys/p256.pem")).unwrap();
        envelope_round_trips(&key, &payload_type, &payload)?;
    }

    #[test]
    fn envelope_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let a = crate::key_a();
        if let Ok(envelope) = Envelope::parse(&bytes, &EnvelopeLimits::default()) {
            prop_assert!(!envelope.signatures.is_empty());
            prop_assert!(envelope.verified_keys(&[a.public_key()]).is_empty());
        }
    }

    /// Flipping any bit of a signed envelope either breaks it or leaves what it says unchanged.
    #[test]
    fn a_flipped_bit_never_changes_a_verified_payload(index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let a = crate::key_a();
        let original = std::fs::read(crate::data("provenance.dsse.json")).unwrap();
        let good = Envelope::parse(&original, &EnvelopeLimits::default()).unwrap();
        let mut bytes = original.clone();
        bytes[index.index(original.len())] ^= 1 << bit;
        if let Ok(envelope) = Envelope::parse(&bytes, &EnvelopeLimits::default())
            && !envelope.verified_keys(&[a.public_key()]).is_empty()
        {
            prop_assert_eq!(envelope.payload_type, good.payload_type);
            prop_assert_eq!(envelope.payload, good.payload);
        }
    }

    #[test]
    fn statements_round_trip(
        subjects in proptest::collection::vec(("\\PC{0,20}", "[0-9a-f]{64}", proptest::option::of("[0-9a-f]{128}")), 1..5),
        predicate_type in "\\PC{1,40}",
        value in any::<u32>(),
    ) {
        let subjects: Vec<StatementSubject> = subjects
            .into_iter()
            .map(|(name, sha256, sha512)| {
                let mut digest = BTreeMap::from([("sha256".to_owned(), sha256)]);
                if let Some(sha512) = sha512 {
                    digest.insert("sha512".to_owned(), sha512);
                }
                StatementSubject { name, digest }
            })
            .collect();
        let predicate = serde_json::json!({"value": value, "nested": {"list": [1, "two", null]}});
        let statement = Statement::new(subjects.clone(), &predicate_type, &predicate);
        let parsed = Statement::parse(&statement.to_json(), &StatementLimits::default()).unwrap();
        prop_assert_eq!(&parsed.subjects, &subjects);
        prop_assert_eq!(&parsed.predicate_type, &predicate_type);
        prop_assert_eq!(serde_json::from_str::<serde_json::Value>(parsed.predicate.get()).unwrap(), predicate);
        prop_assert_eq!(parsed.to_json(), statement.to_json());
    }

    #[test]
    fn statement_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Statement::parse(&bytes, &StatementLimits::default());
    }
}

#[test]
fn generated_p256_envelope_verifies_as_in_toto() {
    let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let payload = std::fs::read(crate::data("provenance.json")).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, &[&key]).unwrap();
    let parsed = Envelope::parse(&envelope.to_json(), &EnvelopeLimits::default()).unwrap();
    let (statement, keys) = parsed.verify_in_toto(&[key.public_key()], 1, &StatementLimits::default()).unwrap();
    assert_eq!(keys, [key.public_key()]);
    assert_eq!(statement.subjects[0].name, "registry.example.com/payments/api");
}

/// Two signatures by one key count once; the same key listed twice counts once; keys come back in
/// the order given.
#[test]
fn each_key_counts_once() {
    let a = crate::key_a();
    let b = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &[&a, &a, &b]).unwrap();
    assert_eq!(envelope.signatures.len(), 3);
    let verified = envelope.verified_keys(&[b.public_key(), a.public_key(), a.public_key()]);
    assert_eq!(verified, [b.public_key(), a.public_key()]);
    let e = envelope.verify_in_toto(&[a.public_key(), a.public_key()], 2, &StatementLimits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "envelope is signed by 1 of the trusted keys; 2 required (trusted: `{0}`, `{0}`)",
            a.public_key().keyid()
        )
    );
    assert_eq!(
        envelope.verify_in_toto(&[], 0, &StatementLimits::default()).unwrap_err().to_string(),
        "a threshold of 0 would accept an envelope that no trusted key signed"
    );
}

/// A `keyid` hint naming one key never stops another key's signature from being found, and
/// never makes a wrong key verify.
#[test]
fn keyid_hints_only_order_the_search() {
    let a = crate::key_a();
    let b = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let mut envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &[&a, &b]).unwrap();
    // Swap the hints: each names the other key.
    let (first, second) = (envelope.signatures[0].keyid.clone(), envelope.signatures[1].keyid.clone());
    envelope.signatures[0].keyid = second;
    envelope.signatures[1].keyid = first;
    assert_eq!(envelope.verified_keys(&[a.public_key(), b.public_key()]), [a.public_key(), b.public_key()]);
    envelope.signatures[0].keyid = None;
    envelope.signatures[1].keyid = Some("garbage".into());
    assert_eq!(envelope.verified_keys(&[a.public_key(), b.public_key()]), [a.public_key(), b.public_key()]);
}
