//! SHA-256 tree hashes and the RFC 6962 §2.1 leaf and interior-node hash functions.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use airlock_model::echo::echo_short as echo;

/// Length of every hash in the tree, in bytes.
pub const HASH_LEN: usize = 32;

/// Length of a hash in padded standard base64.
const BASE64_LEN: usize = 44;

/// RFC 6962 §2.1: the domain-separation byte before a leaf's data.
const LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 §2.1: the domain-separation byte before two child hashes.
const NODE_PREFIX: u8 = 0x01;

/// Why a text is not a tree hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("hash `{input}` is not valid standard base64")]
    Base64 { input: String },
    #[error("hash `{input}` decodes to {len} bytes; a SHA-256 hash is 32 bytes")]
    Length { input: String, len: usize },
    #[error("hash is {len} characters long; a SHA-256 hash is 44 characters of base64")]
    TooLong { len: usize },
}

/// A SHA-256 hash: of a leaf, of an interior node, or the root of a tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The hash held in `bytes`, if it is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(Hash)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Standard base64 with padding, as checkpoints carry root hashes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard base64 with padding; the encoding must be canonical and decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<Hash, HashError> {
        // 32 bytes are 44 base64 characters; refuse anything longer before decoding it.
        if text.len() > BASE64_LEN {
            return Err(HashError::TooLong { len: text.len() });
        }
        let Ok(bytes) = STANDARD.decode(text) else {
            return Err(HashError::Base64 { input: echo(text) });
        };
        Hash::from_slice(&bytes).ok_or_else(|| HashError::Length { input: echo(text), len: bytes.len() })
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn finish(hasher: Sha256) -> Hash {
    Hash(hasher.finalize().into())
}

/// RFC 6962 §2.1: the hash of a leaf, `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    finish(hasher)
}

/// RFC 6962 §2.1: the hash of an interior node, `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left.0);
    hasher.update(right.0);
    finish(hasher)
}

/// RFC 6962 §2.1: the root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    finish(Sha256::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(input: &str, expect: Expect) {
        let actual = match Hash::from_base64(input) {
            Ok(h) => format!("ok {h}"),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn from_base64_cases() {
        check(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            expect!["ok e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        );
        check(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            expect!["err hash `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU` is not valid standard base64"],
        );
        check(
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",
            expect!["err hash `47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=` is not valid standard base64"],
        );
        check(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",
            expect!["err hash `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=` is not valid standard base64"],
        );
        check("AAAA", expect!["err hash `AAAA` decodes to 3 bytes; a SHA-256 hash is 32 bytes"]);
        check("", expect!["err hash `` decodes to 0 bytes; a SHA-256 hash is 32 bytes"]);
        check(
            &"A".repeat(1000),
            expect!["err hash is 1000 characters long; a SHA-256 hash is 44 characters of base64"],
        );
        check(
            " 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            expect!["err hash is 45 characters long; a SHA-256 hash is 44 characters of base64"],
        );
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(empty_root().to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn hash_functions_are_domain_separated() {
        // The leaf hash of 64 bytes `l || r` must differ from the node hash of `l` and `r`.
        let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
        let mut both = l.0.to_vec();
        both.extend_from_slice(&r.0);
        assert_ne!(leaf_hash(&both), node_hash(&l, &r));
    }

    proptest::proptest! {
        #[test]
        fn base64_round_trip(bytes in proptest::array::uniform32(0u8..)) {
            let h = Hash(bytes);
            proptest::prop_assert_eq!(Hash::from_base64(&h.to_base64()).unwrap(), h);
            proptest::prop_assert_eq!(Hash::from_slice(h.as_bytes()), Some(h));
        }

        #[test]
        fn from_base64_never_panics(s in ".{0,100}") {
            let _ = Hash::from_base64(&s);
        }
    }
}
