//! Content digests: `sha256:<64 lowercase hex>`, the only algorithm Airlock stores.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::echo::echo;

/// Why a string is not a digest Airlock accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest `{input}` has no `algorithm:` prefix; write it as `sha256:<64 hex characters>`")]
    MissingAlgorithm { input: String },
    #[error("digest algorithm `{algorithm}` is not supported; use `sha256`")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("digest `{input}` is malformed; a sha256 digest is 64 lowercase hex characters")]
    Malformed { input: String },
}

/// A validated `sha256:` digest of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`; any other algorithm or encoding is refused.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, encoded)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm { input: echo(input) });
        };
        // OCI image-spec "Digests": algorithm-component is [a-z0-9]+; we support one registered one.
        if algorithm != "sha256" {
            let valid_grammar = !algorithm.is_empty()
                && algorithm.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            if valid_grammar && !encoded.is_empty() {
                return Err(DigestError::UnsupportedAlgorithm { algorithm: echo(algorithm) });
            }
            return Err(DigestError::Malformed { input: echo(input) });
        }
        let well_formed =
            encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(DigestError::Malformed { input: echo(input) });
        }
        Ok(Digest(input.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut hasher = Sha256Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }

    /// The full form, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm, always `sha256` today.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The lowercase hex encoding without the algorithm prefix.
    pub fn hex(&self) -> &str {
        self.0.get("sha256:".len()..).unwrap_or_default()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// An incremental SHA-256 that ends in a [`Digest`]. Uses the CPU's SHA extensions where present.
#[derive(Debug, Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A hasher over zero bytes.
    pub fn new() -> Sha256Hasher {
        Sha256Hasher(sha2::Sha256::new())
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest(format!("sha256:{}", hex::encode(self.0.finalize())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(input: &str, expect: Expect) {
        let actual = match Digest::parse(input) {
            Ok(d) => format!("ok {d}"),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn parse_cases() {
        check(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            expect!["ok sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        );
        check(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            expect![
                "err digest `sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855` is malformed; a sha256 digest is 64 lowercase hex characters"
            ],
        );
        check(
            "sha256:abc",
            expect!["err digest `sha256:abc` is malformed; a sha256 digest is 64 lowercase hex characters"],
        );
        check("sha512:abc", expect!["err digest algorithm `sha512` is not supported; use `sha256`"]);
        check(
            "nocolon",
            expect!["err digest `nocolon` has no `algorithm:` prefix; write it as `sha256:<64 hex characters>`"],
        );
        check(":", expect!["err digest `:` is malformed; a sha256 digest is 64 lowercase hex characters"]);
        check("", expect!["err digest `` has no `algorithm:` prefix; write it as `sha256:<64 hex characters>`"]);
    }

    #[test]
    fn digest_of_empty_is_the_well_known_value() {
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::of(b"").hex().len(), 64);
    }

    #[test]
    fn long_input_is_not_echoed_whole() {
        let long = "x".repeat(10_000);
        let msg = Digest::parse(&long).unwrap_err().to_string();
        assert!(msg.len() < 400, "{msg}");
    }

    proptest::proptest! {
        #[test]
        fn parse_render_round_trip(bytes in proptest::collection::vec(0u8.., 0..64)) {
            let d = Digest::of(&bytes);
            let again = Digest::parse(d.as_str()).unwrap();
            proptest::prop_assert_eq!(d, again);
        }

        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = Digest::parse(&s);
        }
    }
}
