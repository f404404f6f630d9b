//! `cargo bench -p airlock-blob`: the blob store's ingest path (hash, write, flush, commit) and
//! its read path, without HTTP, so a regression in the pipeline shows apart from the network.

use std::io;

use airlock_blob::FsBlobStore;
use airlock_core::ports::{BlobStore, ByteStream, CommitOutcome};
use airlock_model::{Digest, UploadId};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

const SIZE: usize = 64 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

fn body(data: &Bytes) -> ByteStream {
    let chunks: Vec<Result<Bytes, io::Error>> =
        (0..data.len()).step_by(CHUNK).map(|i| Ok(data.slice(i..(i + CHUNK).min(data.len())))).collect();
    Box::pin(futures::stream::iter(chunks))
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let data = Bytes::from((0..SIZE).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let digest = Digest::of(&data);
    let mut group = c.benchmark_group("blob");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("ingest_64mib", |b| {
        b.iter(|| {
            runtime.block_on(async {
                // A fresh store each time, so every commit renames a new file into place.
                let dir = tempfile::tempdir().expect("temp dir");
                let store = FsBlobStore::open(dir.path()).expect("store");
                let id = UploadId::parse("0123456789abcdef0123").expect("id");
                store.append(&id, Some(0), body(&data)).await.expect("append");
                let outcome = store.commit(&id, &digest, 0).await.expect("commit");
                assert!(matches!(outcome, CommitOutcome::Committed(_)));
            })
        })
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let store = runtime.block_on(async {
        let store = FsBlobStore::open(dir.path()).expect("store");
        let id = UploadId::parse("0123456789abcdef0123").expect("id");
        store.append(&id, None, body(&data)).await.expect("append");
        store.commit(&id, &digest, 0).await.expect("commit");
        store
    });
    group.bench_function("read_64mib", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut stream = store.read(&digest, None).await.expect("read");
                let mut n = 0;
                while let Some(chunk) = stream.next().await {
                    n += chunk.expect("chunk").len();
                }
                assert_eq!(n, SIZE);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
