//! `cargo bench -p airlock-tlog`: inclusion proofs in a log of 1,000,000 entries (plan, node
//! lookups, verification) and full verification of a log's leaves (leaf hash plus append), the two
//! costs the maintainers' targets name: at most 100 µs a proof, at least 1,000,000 leaves a second.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use airlock_tlog::{
    CompactRange, Hash, NodeId, assemble, consistency_plan, inclusion_plan, leaf_hash, verify_consistency,
    verify_inclusion,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LOG_SIZE: u64 = 1_000_000;
/// Entries hashed per iteration of the full-verification bench.
const BATCH: u64 = 100_000;
/// Bytes in one log entry: a typical JSON audit event.
const ENTRY_BYTES: usize = 256;

fn entry(i: u64) -> Vec<u8> {
    let mut e = vec![0u8; ENTRY_BYTES];
    for (j, b) in e.iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
    }
    e
}

/// The store of a log of `size` entries: every complete subtree, as `CompactRange::push` reports
/// them, and the leaf hashes.
fn build(size: u64) -> (HashMap<NodeId, Hash>, Vec<Hash>, Hash) {
    let mut range = CompactRange::new();
    let mut nodes = HashMap::with_capacity(2 * size as usize);
    let mut leaves = Vec::with_capacity(size as usize);
    for i in 0..size {
        let leaf = leaf_hash(&entry(i));
        leaves.push(leaf);
        nodes.extend(range.push(leaf));
    }
    (nodes, leaves, range.root())
}

fn proofs(c: &mut Criterion) {
    let (nodes, leaves, root) = build(LOG_SIZE);
    let lookup = |id: NodeId| nodes.get(&id).copied();
    let mut group = c.benchmark_group("tlog_1m");
    let mut index = 0u64;
    group.bench_function("inclusion_proof_build_and_verify", |b| {
        b.iter(|| {
            // A different leaf each time, spread over the whole log.
            index = (index + 617_237) % LOG_SIZE;
            let proof = assemble(&inclusion_plan(index, LOG_SIZE).unwrap(), lookup).unwrap();
            verify_inclusion(&leaves[index as usize], index, LOG_SIZE, black_box(&proof), &root).unwrap();
        })
    });
    group.bench_function("inclusion_proof_verify_only", |b| {
        let index = 123_457;
        let proof = assemble(&inclusion_plan(index, LOG_SIZE).unwrap(), lookup).unwrap();
        b.iter(|| verify_inclusion(&leaves[index as usize], index, LOG_SIZE, black_box(&proof), &root).unwrap())
    });
    let old = 654_321;
    let mut old_range = CompactRange::new();
    for leaf in &leaves[..old as usize] {
        old_range.push(*leaf);
    }
    let old_root = old_range.root();
    group.bench_function("consistency_proof_build_and_verify", |b| {
        b.iter(|| {
            let proof = assemble(&consistency_plan(old, LOG_SIZE).unwrap(), lookup).unwrap();
            verify_consistency(old, LOG_SIZE, &old_root, &root, black_box(&proof)).unwrap();
        })
    });
    group.finish();
}

fn full_verification(c: &mut Criterion) {
    let entries: Vec<Vec<u8>> = (0..BATCH).map(entry).collect();
    let mut group = c.benchmark_group("tlog_full_verification");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("leaf_hash_and_push_256b", |b| {
        b.iter(|| {
            let mut range = CompactRange::new();
            for e in &entries {
                black_box(range.push(leaf_hash(e)));
            }
            range.root()
        })
    });
    group.finish();
}

criterion_group!(benches, proofs, full_verification);
criterion_main!(benches);
