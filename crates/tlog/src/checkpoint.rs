//! C2SP transparency-log checkpoints (<https://c2sp.org/tlog-checkpoint>): a log's origin, tree
//! size and root hash, as the text of a signed note.

use crate::hash::{Hash, HashError};
use crate::note::{self, Note, NoteError, Signer, Verifier};
use airlock_model::echo::echo_short as echo;

/// Largest checkpoint text accepted, in bytes.
pub const MAX_CHECKPOINT_BYTES: usize = 16 * 1024;
/// Most extension lines after the root hash.
pub const MAX_EXTENSIONS: usize = 16;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint note refused: {0}")]
    Note(#[source] NoteError),
    #[error("checkpoint is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("checkpoint does not end in a newline")]
    MissingFinalNewline,
    #[error("checkpoint line {line} contains control character `{character}`")]
    ControlCharacter { line: usize, character: String },
    #[error("checkpoint has {count} lines; it needs an origin, a tree size and a root hash")]
    TooFewLines { count: usize },
    #[error("checkpoint has more than {max} extension lines")]
    TooManyExtensions { max: usize },
    #[error("checkpoint line {line} is empty; every line of a checkpoint is non-empty")]
    EmptyLine { line: usize },
    #[error("checkpoint tree size `{size}` is not a decimal number")]
    SizeSyntax { size: String },
    #[error("checkpoint tree size `{size}` has a leading zero")]
    SizeLeadingZero { size: String },
    #[error("checkpoint tree size `{size}` does not fit in 64 bits")]
    SizeOverflow { size: String },
    #[error("checkpoint root hash is invalid: {0}")]
    Root(#[source] HashError),
    #[error("checkpoint origin and extensions must each be one line without control characters")]
    Unrepresentable,
    #[error(
        "checkpoint origin is `{origin}` but the verifier key is named `{key_name}`; a log signs with a key named after its origin, so verify with the key of log `{origin}`"
    )]
    OriginMismatch { origin: String, key_name: String },
}

/// A log's signed statement of its tree: the origin names the log, `root` is the RFC 6962 root
/// of its first `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque lines after the root hash, without their newlines.
    pub extensions: Vec<String>,
}

/// tlog-checkpoint, "Note text" 2: ASCII decimal digits, no leading zero unless the tree is empty.
fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::SizeSyntax { size: echo(text) });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(CheckpointError::SizeLeadingZero { size: echo(text) });
    }
    // Only digits remain, so the one way to fail is overflow.
    text.parse::<u64>().map_err(|_| CheckpointError::SizeOverflow { size: echo(text) })
}

impl Checkpoint {
    /// The note text: `origin`, `size`, base64 `root`, then the extension lines, each ending in
    /// a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint's note text strictly, per tlog-checkpoint's "Note text" section.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        if text.len() > MAX_CHECKPOINT_BYTES {
            return Err(CheckpointError::TooLong { len: text.len(), max: MAX_CHECKPOINT_BYTES });
        }
        // The note text ends in a newline and, like all of a signed note, has no control
        // character other than newline.
        let Some(body) = text.strip_suffix('\n') else {
            return Err(CheckpointError::MissingFinalNewline);
        };
        for (i, line) in body.split('\n').enumerate() {
            if let Some(c) = line.chars().find(|&c| c < '\u{20}') {
                return Err(CheckpointError::ControlCharacter {
                    line: i.saturating_add(1),
                    character: c.escape_default().to_string(),
                });
            }
        }
        // "a sequence of at least three non-empty lines, separated by newlines". Take one line
        // more than allowed so that a flood stops here.
        let lines: Vec<&str> = body.split('\n').take(MAX_EXTENSIONS.saturating_add(4)).collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { count: lines.len() });
        };
        if extensions.len() > MAX_EXTENSIONS {
            return Err(CheckpointError::TooManyExtensions { max: MAX_EXTENSIONS });
        }
        if let Some(i) = lines.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: i.saturating_add(1) });
        }
        // 1. The origin: non-empty; clients "MUST NOT assume" more of it.
        // 2. The tree size.
        let size = parse_size(size)?;
        // 3. The root hash, standard base64 of 32 bytes.
        let root = Hash::from_base64(root).map_err(CheckpointError::Root)?;
        // 4. Extension lines, opaque and non-empty.
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// Signs the checkpoint; returns the signed note. The checkpoint must read back as itself,
    /// so the origin and extensions must be non-empty single lines.
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        let text = self.to_text();
        if Checkpoint::parse(&text)? != *self {
            return Err(CheckpointError::Unrepresentable);
        }
        note::sign(&text, &[signer]).map_err(CheckpointError::Note)
    }

    /// Parses a signed checkpoint, verifies it with `verifier` and parses its text.
    ///
    /// 1. signed-note: every signature line by the verifier's key verifies; others are ignored.
    /// 2. tlog-checkpoint, "Note text": the text is a well-formed checkpoint.
    /// 3. The verifier key is the log's: its name is the checkpoint's origin, so a key trusted for
    ///    one log never vouches for another log's checkpoints.
    pub fn open(note: &[u8], verifier: &Verifier) -> Result<Checkpoint, CheckpointError> {
        let note = Note::parse(note).map_err(CheckpointError::Note)?;
        note.verify(&[verifier]).map_err(CheckpointError::Note)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if checkpoint.origin != verifier.name() {
            return Err(CheckpointError::OriginMismatch {
                origin: echo(&checkpoint.origin),
                key_name: echo(verifier.name()),
            });
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hash::empty_root;
    use expect_test::{Expect, expect};

    const ROOT: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    fn check(text: &str, expect: Expect) {
        let actual = match Checkpoint::parse(text) {
            Ok(c) => format!("ok {} {} {} {:?}", c.origin, c.size, c.root.to_base64(), c.extensions),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn parse_cases() {
        check(
            &format!("example.com/log\n0\n{ROOT}\n"),
            expect!["ok example.com/log 0 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= []"],
        );
        check(
            &format!("example.com/log\n20852163\n{ROOT}\next one\next two\n"),
            expect![[
                r#"ok example.com/log 20852163 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= ["ext one", "ext two"]"#
            ]],
        );
        check(
            &format!("o\n18446744073709551615\n{ROOT}\n"),
            expect!["ok o 18446744073709551615 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= []"],
        );
        check(
            &format!("o\n18446744073709551616\n{ROOT}\n"),
            expect!["err checkpoint tree size `18446744073709551616` does not fit in 64 bits"],
        );
        check(&format!("o\n007\n{ROOT}\n"), expect!["err checkpoint tree size `007` has a leading zero"]);
        check(&format!("o\n+7\n{ROOT}\n"), expect!["err checkpoint tree size `+7` is not a decimal number"]);
        check(&format!("o\n-1\n{ROOT}\n"), expect!["err checkpoint tree size `-1` is not a decimal number"]);
        check(&format!("o\n 7\n{ROOT}\n"), expect!["err checkpoint tree size ` 7` is not a decimal number"]);
        check(&format!("o\n７\n{ROOT}\n"), expect!["err checkpoint tree size `７` is not a decimal number"]);
        check(&format!("o\n7\n{ROOT}"), expect!["err checkpoint does not end in a newline"]);
        check(
            &format!("o\n7\n{ROOT}\n\next\n"),
            expect!["err checkpoint line 4 is empty; every line of a checkpoint is non-empty"],
        );
        check(
            &format!("\n7\n{ROOT}\n"),
            expect!["err checkpoint line 1 is empty; every line of a checkpoint is non-empty"],
        );
        check("o\n7\n", expect!["err checkpoint has 2 lines; it needs an origin, a tree size and a root hash"]);
        check(&format!("o\r\n7\n{ROOT}\n"), expect![[r#"err checkpoint line 1 contains control character `\r`"#]]);
        check(
            "o\n7\nAAAA\n",
            expect!["err checkpoint root hash is invalid: hash `AAAA` decodes to 3 bytes; a SHA-256 hash is 32 bytes"],
        );
        check(
            &format!("o\n7\n{}\n", ROOT.trim_end_matches('=')),
            expect![
                "err checkpoint root hash is invalid: hash `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU` is not valid standard base64"
            ],
        );
    }

    #[test]
    fn sign_and_open_round_trip() {
        let signer = Signer::from_seed("example.com/log", [3; 32]).unwrap();
        let checkpoint =
            Checkpoint { origin: "example.com/log".to_owned(), size: 42, root: empty_root(), extensions: vec![] };
        let note = checkpoint.sign(&signer).unwrap();
        assert_eq!(Checkpoint::open(note.as_bytes(), &signer.verifier()).unwrap(), checkpoint);

        let other = Signer::from_seed("example.com/log", [4; 32]).unwrap();
        expect![
            "checkpoint note refused: note has no signature by a trusted key (trusted: `example.com/log+85c53df4`)"
        ]
        .assert_eq(&Checkpoint::open(note.as_bytes(), &other.verifier()).unwrap_err().to_string());

        // A key named for another log does not vouch for this one, however well it signs.
        let stranger = Signer::from_seed("example.com/other-log", [3; 32]).unwrap();
        let signed = note::sign(&checkpoint.to_text(), &[&stranger]).unwrap();
        expect!["checkpoint origin is `example.com/log` but the verifier key is named `example.com/other-log`; a log signs with a key named after its origin, so verify with the key of log `example.com/log`"]
            .assert_eq(&Checkpoint::open(signed.as_bytes(), &stranger.verifier()).unwrap_err().to_string());

        let split = Checkpoint { extensions: vec!["a\nb".to_owned()], ..checkpoint.clone() };
        expect!["checkpoint origin and extensions must each be one line without control characters"]
            .assert_eq(&split.sign(&signer).unwrap_err().to_string());
        let empty = Checkpoint { origin: String::new(), ..checkpoint };
        expect!["checkpoint line 1 is empty; every line of a checkpoint is non-empty"]
            .assert_eq(&empty.sign(&signer).unwrap_err().to_string());
    }

    proptest::proptest! {
        #[test]
        fn render_then_parse_is_identity(
            origin in "[^\\x00-\\x1f]{1,40}",
            size in proptest::prelude::any::<u64>(),
            root in proptest::array::uniform32(0u8..),
            extensions in proptest::collection::vec("[^\\x00-\\x1f]{1,20}", 0..=MAX_EXTENSIONS),
        ) {
            let checkpoint = Checkpoint { origin, size, root: Hash(root), extensions };
            let text = checkpoint.to_text();
            proptest::prop_assert_eq!(Checkpoint::parse(&text).unwrap(), checkpoint);
        }

        #[test]
        fn parse_never_panics(text in ".{0,300}") {
            let _ = Checkpoint::parse(&text);
        }
    }
}
