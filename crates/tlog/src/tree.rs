//! RFC 6962 Merkle trees: complete-subtree addressing, proof plans, RFC 9162 proof verification
//! and the compact range (a tree's right edge) that appends leaves.
//!
//! A store keeps only complete subtrees, the [`NodeId`]s that [`CompactRange::push`] returns. Every
//! proof hash RFC 6962 asks for is the root of a range of leaves; a range that ends at the tree's
//! right edge is not a complete subtree, so a *plan* names, per proof hash, the few complete
//! subtrees whose [`fold`] is that hash. [`assemble`] turns a plan and a node lookup into a proof.

use crate::hash::{Hash, empty_root, node_hash};

/// Why a proof could not be built or did not verify. One variant per failed step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error(
        "old tree size is 0; a consistency proof starts from a non-empty tree, and every tree extends the empty one"
    )]
    EmptyOldTree,
    #[error("old tree size {old_size} is larger than new tree size {new_size}; a log only grows")]
    SizeRegression { old_size: u64, new_size: u64 },
    #[error("proof length is {actual}, expected {expected}")]
    ProofLength { expected: usize, actual: usize },
    #[error("proof leads to root `{computed}`, not to the expected root `{expected}`")]
    RootMismatch { computed: Hash, expected: Hash },
    #[error("proof leads to old root `{computed}`, not to the expected old root `{expected}`")]
    OldRootMismatch { computed: Hash, expected: Hash },
    #[error("proof leads to new root `{computed}`, not to the expected new root `{expected}`")]
    NewRootMismatch { computed: Hash, expected: Hash },
    #[error("tree size {size} has two different roots, `{old_root}` and `{new_root}`; the log has forked")]
    SameSizeRootsDiffer { size: u64, old_root: Hash, new_root: Hash },
    #[error("tree node at level {level}, index {index} is missing from the store")]
    MissingNode { level: u8, index: u64 },
    #[error("proof plan step {position} names no tree nodes")]
    EmptyStep { position: usize },
    #[error("the right edge of a tree of size {size} has {expected} hashes, not {actual}")]
    HashCount { size: u64, expected: usize, actual: usize },
    #[error("the tree already holds {size} leaves and cannot grow")]
    TreeFull { size: u64 },
}

/// A complete subtree: the `2^level` leaves starting at leaf `index << level`.
///
/// Level 0 nodes are leaves; a node's parent is `(level + 1, index / 2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// The leaf at `index`.
    pub fn leaf(index: u64) -> NodeId {
        NodeId { level: 0, index }
    }
}

/// The largest power of two strictly below `n`, RFC 6962's split point `k`. `n` must be at least 2.
fn split(n: u64) -> u64 {
    // `n - 1 >= 1`, so it has between 1 and 64 significant bits and the shift is below 64.
    let bits = u64::BITS.wrapping_sub(n.wrapping_sub(1).leading_zeros());
    1u64.wrapping_shl(bits.wrapping_sub(1))
}

/// Appends the complete subtrees that cover leaves `[start, start + len)`, left to right.
///
/// Each node is the largest aligned one that fits, so for a range whose `start` is a multiple of a
/// power of two at least `len` (every range a proof asks for) the nodes shrink left to right and
/// their [`fold`] is the RFC 6962 hash of the range. At most 64 nodes are appended.
fn push_range(out: &mut Vec<NodeId>, mut start: u64, mut len: u64) {
    while len > 0 {
        // `len > 0`, so its highest set bit is below 64; `start`'s alignment may be 64 (start 0).
        let fits = u64::BITS.wrapping_sub(1).wrapping_sub(len.leading_zeros());
        let level = fits.min(start.trailing_zeros());
        let width = 1u64.wrapping_shl(level);
        out.push(NodeId { level: level as u8, index: start.wrapping_shr(level) });
        // `width <= len` and `start + len` is at most the tree size, so neither wraps.
        start = start.wrapping_add(width);
        len = len.wrapping_sub(width);
    }
}

fn range(start: u64, len: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    push_range(&mut out, start, len);
    out
}

/// The complete-subtree decomposition of leaves `[0, size)`, left to right (largest first): one
/// node per set bit of `size`.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    range(0, size)
}

/// Folds hashes from the right: `H(h0, H(h1, H(h2, ...)))`. The fold of the hashes of
/// [`root_nodes`] is the tree's root. `None` for no hashes; one hash folds to itself.
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

fn fold_nodes(nodes: &[NodeId], mut lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Option<Hash>, ProofError> {
    let mut hashes = Vec::with_capacity(nodes.len());
    for &id in nodes {
        hashes.push(lookup(id).ok_or(ProofError::MissingNode { level: id.level, index: id.index })?);
    }
    Ok(fold(&hashes))
}

/// The root of the tree of `size` leaves, from the complete subtrees of [`root_nodes`]; the empty
/// tree's root for size 0.
pub fn root(size: u64, lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Hash, ProofError> {
    Ok(fold_nodes(&root_nodes(size), lookup)?.unwrap_or_else(empty_root))
}

/// Which nodes make up the inclusion proof of leaf `index` in the tree of `size` leaves.
///
/// RFC 6962 §2.1.1 `PATH(m, D[n])`, in RFC 9162's order (from the leaf up). Each step is the list
/// of complete subtrees whose [`fold`] is one proof hash; only one step can have more than one
/// node, so a plan names at most 128 nodes.
pub fn inclusion_plan(index: u64, size: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk from the root down: `[lo, lo + n)` is the current subtree and `m` the leaf within it.
    // Every subtraction and addition stays within `[0, size]`.
    let mut plan = Vec::new();
    let (mut lo, mut n, mut m) = (0u64, size, index);
    while n > 1 {
        let k = split(n);
        if m < k {
            // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            plan.push(range(lo.wrapping_add(k), n.wrapping_sub(k)));
            n = k;
        } else {
            // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            plan.push(range(lo, k));
            lo = lo.wrapping_add(k);
            m = m.wrapping_sub(k);
            n = n.wrapping_sub(k);
        }
    }
    plan.reverse();
    Ok(plan)
}

/// Which nodes make up the consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size` leaves.
///
/// RFC 6962 §2.1.2 `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`, in RFC 9162's order. Needs
/// `0 < old_size <= new_size`; equal sizes have an empty proof.
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size > new_size {
        return Err(ProofError::SizeRegression { old_size, new_size });
    }
    // `[lo, lo + n)` is the current subtree, `m` the old tree's size within it, and `whole` is
    // SUBPROOF's flag `b`: whether the current subtree's old part is the whole old tree.
    let mut plan = Vec::new();
    let (mut lo, mut n, mut m, mut whole) = (0u64, new_size, old_size, true);
    while m < n {
        // `0 < m < n`, so `n >= 2`.
        let k = split(n);
        if m <= k {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            plan.push(range(lo.wrapping_add(k), n.wrapping_sub(k)));
            n = k;
        } else {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            plan.push(range(lo, k));
            lo = lo.wrapping_add(k);
            m = m.wrapping_sub(k);
            n = n.wrapping_sub(k);
            whole = false;
        }
    }
    // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
    if !whole {
        plan.push(range(lo, n));
    }
    plan.reverse();
    Ok(plan)
}

/// Looks up the nodes of a plan and folds each step into one proof hash.
pub fn assemble(plan: &[Vec<NodeId>], mut lookup: impl FnMut(NodeId) -> Option<Hash>) -> Result<Vec<Hash>, ProofError> {
    let mut proof = Vec::with_capacity(plan.len());
    for (position, step) in plan.iter().enumerate() {
        let hash = fold_nodes(step, &mut lookup)?.ok_or(ProofError::EmptyStep { position })?;
        proof.push(hash);
    }
    Ok(proof)
}

/// Number of significant bits of `x`.
fn bit_len(x: u64) -> u32 {
    u64::BITS.wrapping_sub(x.leading_zeros())
}

/// The length of the inclusion proof of `index` in a tree of `size > index` leaves: the levels
/// where the leaf's path and the right edge's path differ, plus the right-edge subtrees above.
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ size.wrapping_sub(1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    inner.wrapping_add(border) as usize
}

/// The length of the consistency proof from `old_size` to `new_size`, for `0 < old_size < new_size`.
fn consistency_len(old_size: u64, new_size: u64) -> usize {
    let last = old_size.wrapping_sub(1);
    let inner = bit_len(last ^ new_size.wrapping_sub(1));
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    // The old tree's lowest complete subtree is shared with the new tree and needs no hash.
    let shift = old_size.trailing_zeros();
    let start = u32::from(!old_size.is_power_of_two());
    start.wrapping_add(inner.saturating_sub(shift)).wrapping_add(border) as usize
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
///
/// The algorithm binds `size` only through the shape of the proof: a proof can also verify for a
/// different size that gives the same shape, against the same root. Take `size` and `root` from
/// the same signed checkpoint, never from separate sources.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    // 1. "Compare leaf_index against tree_size. If leaf_index is greater than or equal to
    //    tree_size, then fail the proof verification."
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The proof's length follows from index and size; checking it first bounds the work to 64
    // hashes whatever a peer sent, and makes steps 4a and 5's size check unreachable.
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::ProofLength { expected, actual: proof.len() });
    }
    let length_error = ProofError::ProofLength { expected, actual: proof.len() };
    // 2. "Set fn to leaf_index and sn to tree_size - 1."
    let (mut fn_, mut sn) = (index, size.wrapping_sub(1));
    // 3. "Set r to hash."
    let mut r = *leaf;
    // 4. "For each value p in the inclusion_path array:"
    for p in proof {
        // 4a. "If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(length_error);
        }
        // 4b. "If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // 4b.i. "Set r to HASH(0x01 || p || r)."
            r = node_hash(p, &r);
            // 4b.ii. "If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //        LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: Set r to HASH(0x01 || r || p)."
            r = node_hash(&r, p);
        }
        // 4c. "Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. "Compare sn to 0. Compare r against the root_hash."
    if sn != 0 {
        return Err(length_error);
    }
    if r != *root {
        return Err(ProofError::RootMismatch { computed: r, expected: *root });
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// As for [`verify_inclusion`], the sizes are bound only through the proof's shape: take each
/// size and root from the same signed checkpoint. Equal sizes need an empty proof and equal roots. An old size of 0 is refused like
/// [`consistency_plan`] refuses it: there is nothing to prove, and a caller that meets the empty
/// tree decides for itself what that means.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size > new_size {
        return Err(ProofError::SizeRegression { old_size, new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::ProofLength { expected: 0, actual: proof.len() });
        }
        if old_root != new_root {
            return Err(ProofError::SameSizeRootsDiffer { size: old_size, old_root: *old_root, new_root: *new_root });
        }
        return Ok(());
    }
    // As for inclusion, the length follows from the sizes; checking it first bounds the work and
    // covers step 1 ("If consistency_path is an empty array, stop and fail"): it is never 0 here.
    let expected = consistency_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::ProofLength { expected, actual: proof.len() });
    }
    let length_error = ProofError::ProofLength { expected, actual: proof.len() };
    // 2. "If first is an exact power of 2, then prepend first_hash to the consistency_path array."
    let mut path = proof.iter();
    let first =
        if old_size.is_power_of_two() { *old_root } else { *path.next().ok_or_else(|| length_error.clone())? };
    // 3. "Set fn to first - 1 and sn to second - 1."
    let (mut fn_, mut sn) = (old_size.wrapping_sub(1), new_size.wrapping_sub(1));
    // 4. "If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set."
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. "Set both fr and sr to the first value in the consistency_path array."
    let (mut fr, mut sr) = (first, first);
    // 6. "For each subsequent value c in the consistency_path array:"
    for c in path {
        // 6a. "If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(length_error);
        }
        // 6b. "If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // 6b.i. "Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr)."
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // 6b.ii. "If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //        LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: Set sr to HASH(0x01 || sr || c)."
            sr = node_hash(&sr, c);
        }
        // 6c. "Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. "Verify that the fr calculated is equal to the first_hash supplied, that the sr
    //    calculated is equal to the second_hash supplied, and that sn is 0."
    if sn != 0 {
        return Err(length_error);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { computed: fr, expected: *old_root });
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch { computed: sr, expected: *new_root });
    }
    Ok(())
}

/// The right edge of a tree: the hashes of [`root_nodes`]`(size)`, enough to append and to
/// compute the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// One hash per set bit of `size`, the largest subtree first.
    hashes: Vec<Hash>,
}

impl Default for CompactRange {
    fn default() -> Self {
        CompactRange::new()
    }
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange { size: 0, hashes: Vec::new() }
    }

    /// A tree of `size` leaves from the hashes of [`root_nodes`]`(size)`, left to right.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<CompactRange, ProofError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(ProofError::HashCount { size, expected, actual: hashes.len() });
        }
        Ok(CompactRange { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of [`root_nodes`]`(self.size())`, left to right.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The tree's root; the empty tree's root when there are no leaves.
    pub fn root(&self) -> Hash {
        fold(&self.hashes).unwrap_or_else(empty_root)
    }

    /// Appends a leaf hash; returns every node that this append completed, the leaf's own
    /// `NodeId { level: 0, index: size }` first, then parents bottom-up, each with its hash: what a
    /// store must persist so that any later proof is O(log n) lookups.
    ///
    /// A tree of `u64::MAX` leaves cannot grow: there `push` changes nothing and returns no nodes
    /// (see [`CompactRange::try_push`]). No log reaches that size.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        self.try_push(leaf).unwrap_or_default()
    }

    /// [`CompactRange::push`], with an error instead of no nodes when the tree is full.
    pub fn try_push(&mut self, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, ProofError> {
        let index = self.size;
        let size = index.checked_add(1).ok_or(ProofError::TreeFull { size: index })?;
        // The new leaf completes one parent per trailing 1 bit of `index`: each such bit is a
        // complete subtree on the right edge, and its hash is the last one held.
        let mut nodes = Vec::with_capacity((index.trailing_ones() as usize).saturating_add(1));
        let mut id = NodeId::leaf(index);
        let mut hash = leaf;
        nodes.push((id, hash));
        let mut below = index;
        while below & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            // At most 63 parents: `level + 1` stays below 64.
            id = NodeId { level: id.level.wrapping_add(1), index: id.index >> 1 };
            nodes.push((id, hash));
            below >>= 1;
        }
        self.hashes.push(hash);
        self.size = size;
        Ok(nodes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use expect_test::{Expect, expect};

    fn render(plan: &Result<Vec<Vec<NodeId>>, ProofError>) -> String {
        match plan {
            Ok(plan) => plan
                .iter()
                .map(|step| step.iter().map(|n| format!("{}/{}", n.level, n.index)).collect::<Vec<_>>().join("+"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("err {e}"),
        }
    }

    fn check_inclusion(index: u64, size: u64, expect: Expect) {
        expect.assert_eq(&render(&inclusion_plan(index, size)));
    }

    fn check_consistency(old_size: u64, new_size: u64, expect: Expect) {
        expect.assert_eq(&render(&consistency_plan(old_size, new_size)));
    }

    fn check_root_nodes(size: u64, expect: Expect) {
        expect.assert_eq(&render(&Ok(vec![root_nodes(size)])));
    }

    #[test]
    fn root_nodes_cases() {
        check_root_nodes(0, expect![""]);
        check_root_nodes(1, expect!["0/0"]);
        check_root_nodes(7, expect!["2/0+1/2+0/6"]);
        check_root_nodes(8, expect!["3/0"]);
        check_root_nodes(
            u64::MAX,
            expect![[
                r#"63/0+62/2+61/6+60/14+59/30+58/62+57/126+56/254+55/510+54/1022+53/2046+52/4094+51/8190+50/16382+49/32766+48/65534+47/131070+46/262142+45/524286+44/1048574+43/2097150+42/4194302+41/8388606+40/16777214+39/33554430+38/67108862+37/134217726+36/268435454+35/536870910+34/1073741822+33/2147483646+32/4294967294+31/8589934590+30/17179869182+29/34359738366+28/68719476734+27/137438953470+26/274877906942+25/549755813886+24/1099511627774+23/2199023255550+22/4398046511102+21/8796093022206+20/17592186044414+19/35184372088830+18/70368744177662+17/140737488355326+16/281474976710654+15/562949953421310+14/1125899906842622+13/2251799813685246+12/4503599627370494+11/9007199254740990+10/18014398509481982+9/36028797018963966+8/72057594037927934+7/144115188075855870+6/288230376151711742+5/576460752303423486+4/1152921504606846974+3/2305843009213693950+2/4611686018427387902+1/9223372036854775806+0/18446744073709551614"#
            ]],
        );
    }

    #[test]
    fn inclusion_plan_cases() {
        check_inclusion(0, 1, expect![""]);
        check_inclusion(0, 5, expect!["0/1 1/1 0/4"]);
        check_inclusion(4, 5, expect!["2/0"]);
        check_inclusion(2, 7, expect!["0/3 1/0 1/2+0/6"]);
        check_inclusion(6, 7, expect!["1/2 2/0"]);
        check_inclusion(5, 8, expect!["0/4 1/3 2/0"]);
        check_inclusion(5, 5, expect!["err leaf index 5 is not in a tree of size 5"]);
        check_inclusion(0, 0, expect!["err leaf index 0 is not in a tree of size 0"]);
        check_inclusion(
            u64::MAX - 1,
            u64::MAX,
            expect![[
                r#"1/9223372036854775806 2/4611686018427387902 3/2305843009213693950 4/1152921504606846974 5/576460752303423486 6/288230376151711742 7/144115188075855870 8/72057594037927934 9/36028797018963966 10/18014398509481982 11/9007199254740990 12/4503599627370494 13/2251799813685246 14/1125899906842622 15/562949953421310 16/281474976710654 17/140737488355326 18/70368744177662 19/35184372088830 20/17592186044414 21/8796093022206 22/4398046511102 23/2199023255550 24/1099511627774 25/549755813886 26/274877906942 27/137438953470 28/68719476734 29/34359738366 30/17179869182 31/8589934590 32/4294967294 33/2147483646 34/1073741822 35/536870910 36/268435454 37/134217726 38/67108862 39/33554430 40/16777214 41/8388606 42/4194302 43/2097150 44/1048574 45/524286 46/262142 47/131070 48/65534 49/32766 50/16382 51/8190 52/4094 53/2046 54/1022 55/510 56/254 57/126 58/62 59/30 60/14 61/6 62/2 63/0"#
            ]],
        );
    }

    #[test]
    fn consistency_plan_cases() {
        check_consistency(1, 1, expect![""]);
        check_consistency(1, 8, expect!["0/1 1/1 2/1"]);
        check_consistency(6, 8, expect!["1/2 1/3 2/0"]);
        check_consistency(2, 5, expect!["1/1 0/4"]);
        check_consistency(6, 7, expect!["1/2 0/6 2/0"]);
        check_consistency(3, 7, expect!["0/2 0/3 1/0 1/2+0/6"]);
        check_consistency(
            0,
            7,
            expect![
                "err old tree size is 0; a consistency proof starts from a non-empty tree, and every tree extends the empty one"
            ],
        );
        check_consistency(8, 7, expect!["err old tree size 8 is larger than new tree size 7; a log only grows"]);
    }

    #[test]
    fn plans_stay_logarithmic() {
        for (a, b) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 40, (1 << 41) + 12345), (3, u64::MAX)] {
            let nodes: usize = consistency_plan(a, b).unwrap().iter().map(Vec::len).sum();
            assert!(nodes <= 128, "{a} {b}: {nodes}");
            let nodes: usize = inclusion_plan(a - 1, b).unwrap().iter().map(Vec::len).sum();
            assert!(nodes <= 128, "{a} {b}: {nodes}");
        }
    }

    #[test]
    fn proof_lengths_match_plans() {
        for size in 1..=70u64 {
            for index in 0..size {
                assert_eq!(inclusion_len(index, size), inclusion_plan(index, size).unwrap().len(), "{index} {size}");
            }
            for old in 1..size {
                assert_eq!(consistency_len(old, size), consistency_plan(old, size).unwrap().len(), "{old} {size}");
            }
        }
        assert_eq!(inclusion_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(consistency_len(u64::MAX - 1, u64::MAX), consistency_plan(u64::MAX - 1, u64::MAX).unwrap().len());
    }

    #[test]
    fn compact_range_reports_completed_nodes() {
        let mut range = CompactRange::new();
        let mut seen = Vec::new();
        for i in 0..8u8 {
            let nodes = range.push(leaf_hash(&[i]));
            seen.push(nodes.iter().map(|(n, _)| format!("{}/{}", n.level, n.index)).collect::<Vec<_>>().join(","));
        }
        expect!["0/0 | 0/1,1/0 | 0/2 | 0/3,1/1,2/0 | 0/4 | 0/5,1/2 | 0/6 | 0/7,1/3,2/1,3/0"]
            .assert_eq(&seen.join(" | "));
        assert_eq!(range.hashes().len(), 1);
    }

    #[test]
    fn compact_range_from_parts_checks_the_count() {
        let h = leaf_hash(b"");
        expect!["the right edge of a tree of size 7 has 3 hashes, not 1"]
            .assert_eq(&CompactRange::from_parts(7, vec![h]).unwrap_err().to_string());
        let mut full = CompactRange::from_parts(u64::MAX, vec![h; 64]).unwrap();
        assert!(full.push(h).is_empty());
        expect!["the tree already holds 18446744073709551615 leaves and cannot grow"]
            .assert_eq(&full.try_push(h).unwrap_err().to_string());
        assert_eq!(full.size(), u64::MAX);
        assert_eq!(CompactRange::new().root(), empty_root());
    }

    #[test]
    fn assemble_names_the_missing_node() {
        let err = assemble(&inclusion_plan(2, 7).unwrap(), |_| None).unwrap_err();
        expect!["tree node at level 0, index 3 is missing from the store"].assert_eq(&err.to_string());
        let err = assemble(&[vec![]], |_| Some(empty_root())).unwrap_err();
        expect!["proof plan step 0 names no tree nodes"].assert_eq(&err.to_string());
    }

    #[test]
    fn verification_errors_read_well() {
        let h = leaf_hash(b"");
        let cases = [
            verify_inclusion(&h, 3, 3, &[], &h),
            verify_inclusion(&h, 0, 3, &[h], &h),
            verify_inclusion(&h, 0, 1, &[], &empty_root()),
            verify_consistency(0, 3, &h, &h, &[]),
            verify_consistency(4, 3, &h, &h, &[]),
            verify_consistency(3, 3, &h, &h, &[h]),
            verify_consistency(3, 3, &h, &empty_root(), &[]),
            verify_consistency(2, 3, &h, &h, &[]),
            verify_consistency(2, 3, &h, &h, &[h]),
            verify_consistency(3, 4, &h, &h, &[h, h]),
        ];
        let rendered: Vec<String> = cases
            .iter()
            .map(|r| match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string(),
            })
            .collect();
        expect![[r#"
            leaf index 3 is not in a tree of size 3
            proof length is 1, expected 2
            proof leads to root `6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d`, not to the expected root `e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`
            old tree size is 0; a consistency proof starts from a non-empty tree, and every tree extends the empty one
            old tree size 4 is larger than new tree size 3; a log only grows
            proof length is 1, expected 0
            tree size 3 has two different roots, `6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d` and `e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`; the log has forked
            proof length is 0, expected 1
            proof leads to new root `fe43d66afa4a9a5c4f9c9da89f4ffb52635c8f342e7ffb731d68e36c5982072a`, not to the expected new root `6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d`
            proof length is 2, expected 3"#]].assert_eq(&rendered.join("\n"));
    }
}
