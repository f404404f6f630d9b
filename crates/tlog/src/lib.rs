//! Transparency-log primitives, straight from the specs: RFC 6962 Merkle tree hashing, inclusion
//! and consistency proofs verified as RFC 9162 §2.1.3.2 and §2.1.4.2 say, C2SP signed notes and
//! C2SP tlog checkpoints.
//!
//! A spec leaf: it knows nothing of Airlock's artifacts, storage or HTTP. A log built on it keeps
//! the complete subtrees that [`CompactRange::push`] returns, answers proofs with
//! [`inclusion_plan`]/[`consistency_plan`] and [`assemble`], and publishes its tree head as a
//! [`Checkpoint`] signed by a [`Signer`].
//!
//! ```
//! use airlock_tlog::{Checkpoint, CompactRange, Signer, assemble, inclusion_plan, leaf_hash, verify_inclusion};
//! use std::collections::HashMap;
//!
//! // Append three entries, keeping every node the appends complete.
//! let mut tree = CompactRange::new();
//! let mut store = HashMap::new();
//! for entry in [&b"a"[..], b"b", b"c"] {
//!     store.extend(tree.push(leaf_hash(entry)));
//! }
//!
//! // Publish the tree head as a signed checkpoint.
//! let log = Signer::from_seed("example.com/log", [7; 32])?;
//! let head = Checkpoint { origin: "example.com/log".into(), size: tree.size(), root: tree.root(), extensions: vec![] };
//! let note = head.sign(&log)?;
//!
//! // A client opens the checkpoint and checks that `b` is entry 1 of that tree.
//! let head = Checkpoint::open(note.as_bytes(), &log.verifier())?;
//! let proof = assemble(&inclusion_plan(1, head.size)?, |id| store.get(&id).copied())?;
//! verify_inclusion(&leaf_hash(b"b"), 1, head.size, &proof, &head.root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything that reads untrusted input is bounded by a named constant ([`MAX_NOTE_BYTES`],
//! [`MAX_SIGNATURES`], [`MAX_EXTENSIONS`], ...) and never panics.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod checkpoint;
mod hash;
mod note;
mod tree;

pub use checkpoint::{Checkpoint, CheckpointError, MAX_CHECKPOINT_BYTES, MAX_EXTENSIONS};
pub use hash::{HASH_LEN, Hash, HashError, empty_root, leaf_hash, node_hash};
pub use note::{
    MAX_KEY_BYTES, MAX_LINE_BYTES, MAX_NOTE_BYTES, MAX_NOTE_LINES, MAX_SIGNATURES, Note, NoteError, NoteSignature,
    Signer, Verifier, sign,
};
pub use tree::{
    CompactRange, NodeId, ProofError, assemble, consistency_plan, fold, inclusion_plan, root, root_nodes,
    verify_consistency, verify_inclusion,
};
