//! Fuzzes inclusion and consistency proofs with sizes, indexes, roots and proof hashes taken from
//! the input. Verification must never panic whatever it is given; and in a real small tree every
//! proof must verify, and stop verifying once the input flips one of its bits.
#![no_main]

use std::collections::HashMap;

use airlock_tlog::{
    CompactRange, Hash, NodeId, assemble, consistency_plan, inclusion_plan, leaf_hash, verify_consistency,
    verify_inclusion,
};
use libfuzzer_sys::fuzz_target;

/// Largest real tree built per input, to keep executions fast.
const MAX_TREE: u64 = 128;

/// Reads the input front to back; missing bytes read as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        first
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    fn hash(&mut self) -> Hash {
        Hash(std::array::from_fn(|_| self.byte()))
    }

    /// A number of 0 to 64 significant bits, so small sizes and edge values both come up.
    fn size(&mut self) -> u64 {
        let bits = u32::from(self.byte() % 65);
        self.u64().checked_shr(64 - bits).unwrap_or(0)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.byte() % 2 == 0 {
        arbitrary_proofs(&mut input);
    } else {
        real_tree(&mut input);
    }
});

/// Garbage in: verification and plans must answer without panicking.
fn arbitrary_proofs(input: &mut Input) {
    let (a, b) = (input.size(), input.size());
    let (leaf, root_a, root_b) = (input.hash(), input.hash(), input.hash());
    let mut proof = Vec::new();
    while !input.0.is_empty() && proof.len() < 80 {
        proof.push(input.hash());
    }
    let _ = verify_inclusion(&leaf, a, b, &proof, &root_a);
    let _ = verify_consistency(a, b, &root_a, &root_b, &proof);
    for plan in [inclusion_plan(a, b), consistency_plan(a, b)].into_iter().flatten() {
        assert!(plan.iter().all(|step| !step.is_empty()));
        assert!(plan.iter().map(Vec::len).sum::<usize>() <= 128);
    }
}

/// A real tree: its proofs verify, and one flipped bit breaks them.
fn real_tree(input: &mut Input) {
    let size = input.u64() % MAX_TREE + 1;
    let mut range = CompactRange::new();
    let mut nodes = HashMap::new();
    let mut roots = vec![range.root()];
    for i in 0..size {
        nodes.extend(range.push(leaf_hash(&i.to_le_bytes())));
        roots.push(range.root());
    }
    let lookup = |id: NodeId| nodes.get(&id).copied();
    let index = input.u64() % size;
    let old = input.u64() % size + 1;
    let bit = usize::from(input.byte());
    let root = roots[size as usize];

    let leaf = leaf_hash(&index.to_le_bytes());
    let mut proof = assemble(&inclusion_plan(index, size).unwrap(), lookup).unwrap();
    verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
    if !proof.is_empty() {
        let at = input.byte() as usize % proof.len();
        proof[at].0[bit / 8] ^= 1 << (bit % 8);
        assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_err());
    }

    let old_root = roots[old as usize];
    let mut proof = assemble(&consistency_plan(old, size).unwrap(), lookup).unwrap();
    verify_consistency(old, size, &old_root, &root, &proof).unwrap();
    if !proof.is_empty() {
        let at = input.byte() as usize % proof.len();
        proof[at].0[bit / 8] ^= 1 << (bit % 8);
        assert!(verify_consistency(old, size, &old_root, &root, &proof).is_err());
    }
}
