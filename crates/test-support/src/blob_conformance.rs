//! The blob store conformance suite: every backend (the filesystem, S3) must pass each check. A
//! backend's test binary instantiates them with [`crate::blob_conformance!`].
//!
//! The checks talk to the store only through `airlock_core::ports::BlobStore`, so they describe
//! the contract, not an implementation. A backend that several server replicas share (S3) also
//! runs the `replicated` checks, which keep several store instances over the same bytes alive at
//! once.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use airlock_core::ports::{BlobError, BlobStore, ByteStream, CommitOutcome, Committed};
use airlock_model::{Digest, UploadId};
use bytes::Bytes;
use futures::TryStreamExt;

/// Opens a store over the storage under test. Each call gives another instance over the same
/// bytes: a replica running beside the others, or the same store after a restart.
pub type Open = Box<dyn Fn() -> Arc<dyn BlobStore> + Send + Sync>;

/// Instantiates the conformance checks as `#[tokio::test]`s. `$make` is called with the test's
/// name and returns `Option<(guard, open)>`: `None` skips the test (its service is not
/// configured); `guard` is whatever must live as long as the storage (a temporary directory), and
/// `open` an [`Open`] over fresh, empty storage. With `replicated`, the checks for several live
/// instances over one storage run too.
#[macro_export]
macro_rules! blob_conformance {
    ($make:expr) => {
        $crate::blob_conformance!(@cases $make;
            appends_check_their_offsets,
            a_failed_body_leaves_the_upload_as_it_was,
            a_reopened_store_resumes_an_upload,
            racing_appends_at_one_offset_one_wins,
            racing_appends_without_an_offset_both_land,
            a_mismatch_stores_nothing,
            small_blobs_commit_inline,
            reads_serve_whole_blobs_and_ranges,
            rehash_reads_the_stored_bytes,
            quarantine_hides_a_blob_until_it_is_pushed_again,
            discard_drops_the_staged_bytes,
            missing_blobs_are_not_found,
            the_same_bytes_commit_twice,
            a_large_upload_in_several_chunks,
        );
    };
    ($make:expr, replicated) => {
        $crate::blob_conformance!($make);
        $crate::blob_conformance!(@cases $make;
            replicas_share_an_upload,
            racing_appends_on_two_replicas_one_wins,
            racing_appends_on_two_replicas_without_an_offset_both_land,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, open)) = ($make)(stringify!($name)) else { return };
                $crate::blob_conformance::$name(&open).await;
            }
        )*
    };
}

fn id(n: u8) -> UploadId {
    UploadId::parse(&format!("{n:02x}").repeat(16)).expect("valid upload id")
}

fn body(chunks: &[&[u8]]) -> ByteStream {
    let items: Vec<Result<Bytes, io::Error>> = chunks.iter().map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(items))
}

/// `data` as a client sends it: in pieces of `piece` bytes.
fn pieces(data: &Bytes, piece: usize) -> ByteStream {
    let items: Vec<Result<Bytes, io::Error>> =
        (0..data.len()).step_by(piece).map(|i| Ok(data.slice(i..(i + piece).min(data.len())))).collect();
    Box::pin(futures::stream::iter(items))
}

/// `len` bytes that differ with `seed` and never repeat with a short period.
fn pattern(len: usize, seed: u8) -> Bytes {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    Bytes::from(
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect::<Vec<u8>>(),
    )
}

async fn collect(stream: ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("the stream reads to its end");
    chunks.concat()
}

async fn read(store: &dyn BlobStore, digest: &Digest, range: Option<Range<u64>>) -> Vec<u8> {
    collect(store.read(digest, range).await.expect("the blob reads")).await
}

fn not_found<T>(result: Result<T, BlobError>) -> bool {
    matches!(result, Err(BlobError::NotFound { .. }))
}

/// Appends `data` in one chunk and commits it with no inline limit.
async fn store_blob(store: &dyn BlobStore, upload: u8, data: &[u8]) -> Digest {
    let id = id(upload);
    store.append(&id, Some(0), body(&[data])).await.expect("append");
    let digest = Digest::of(data);
    let outcome = store.commit(&id, &digest, 0).await.expect("commit");
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: data.len() as u64 }));
    digest
}

pub async fn appends_check_their_offsets(open: &Open) {
    let store = open();
    let id = id(1);
    assert_eq!(store.upload_size(&id).await.unwrap(), 0, "an upload starts empty");
    assert_eq!(store.append(&id, Some(0), body(&[b"hello ", b"wor"])).await.unwrap(), 9);
    for wrong in [0, 3, 10] {
        let err = store.append(&id, Some(wrong), body(&[b"x"])).await.unwrap_err();
        assert!(matches!(err, BlobError::OutOfOrder { expected: 9, got } if got == wrong), "{err}");
    }
    assert_eq!(store.upload_size(&id).await.unwrap(), 9, "refused chunks leave nothing");
    assert_eq!(store.append(&id, None, body(&[b"ld"])).await.unwrap(), 11, "no offset: at the end");
    assert_eq!(store.append(&id, Some(11), body(&[])).await.unwrap(), 11, "an empty chunk changes nothing");
    assert_eq!(store.upload_size(&id).await.unwrap(), 11);
    let digest = Digest::of(b"hello world");
    let outcome = store.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 11 }));
    assert_eq!(read(&*store, &digest, None).await, b"hello world");
    assert_eq!(store.upload_size(&id).await.unwrap(), 0, "a committed upload's chunks are gone");
}

pub async fn a_failed_body_leaves_the_upload_as_it_was(open: &Open) {
    let store = open();
    let id = id(2);
    store.append(&id, Some(0), body(&[b"good"])).await.unwrap();
    let broken: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"bad")),
        Err(io::Error::new(io::ErrorKind::TimedOut, "client too slow")),
    ]));
    let err = store.append(&id, Some(4), broken).await.unwrap_err();
    assert!(matches!(err, BlobError::Body(_)), "{err}");
    assert_eq!(store.upload_size(&id).await.unwrap(), 4);
    assert_eq!(store.append(&id, Some(4), body(&[b"!"])).await.unwrap(), 5);
    let outcome = store.commit(&id, &Digest::of(b"good!"), 1024).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Inline(Bytes::from_static(b"good!"))));
}

/// One instance appends and goes away (a restart, or a replica that stopped); the next one picks
/// the upload up where it stood.
pub async fn a_reopened_store_resumes_an_upload(open: &Open) {
    let id = id(3);
    {
        let first = open();
        assert_eq!(first.append(&id, Some(0), body(&[b"part one,"])).await.unwrap(), 9);
    }
    let second = open();
    assert_eq!(second.upload_size(&id).await.unwrap(), 9);
    let err = second.append(&id, Some(0), body(&[b"again"])).await.unwrap_err();
    assert!(matches!(err, BlobError::OutOfOrder { expected: 9, got: 0 }), "{err}");
    assert_eq!(second.append(&id, Some(9), body(&[b" part two"])).await.unwrap(), 18);
    let digest = Digest::of(b"part one, part two");
    let outcome = second.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 18 }));
    assert_eq!(read(&*open(), &digest, None).await, b"part one, part two");
}

/// Two appends at `offset` at once, through `a` and `b`: exactly one lands, the other is told
/// where the upload now ends. Returns the winner's bytes.
async fn race_at(a: &dyn BlobStore, b: &dyn BlobStore, id: &UploadId, offset: u64, round: u8) -> Bytes {
    let (x, y) = (pattern(1000 + usize::from(round), round), pattern(700, round.wrapping_add(100)));
    let (first, second) =
        tokio::join!(a.append(id, Some(offset), body(&[&x])), b.append(id, Some(offset), body(&[&y])));
    let (winner, loser) = match (&first, &second) {
        (Ok(_), Err(_)) => (x, second),
        (Err(_), Ok(_)) => (y, first),
        other => panic!("exactly one of two appends at byte {offset} must land, got {other:?}"),
    };
    let end = offset + winner.len() as u64;
    match loser {
        Err(BlobError::OutOfOrder { expected, got }) => {
            assert_eq!((expected, got), (end, offset), "the loser learns where the upload ends")
        }
        other => panic!("the losing append must be refused as out of order, got {other:?}"),
    }
    assert_eq!(a.upload_size(id).await.unwrap(), end);
    assert_eq!(b.upload_size(id).await.unwrap(), end);
    winner
}

async fn races_at_one_offset(a: &dyn BlobStore, b: &dyn BlobStore) {
    let id = id(4);
    let mut expected = Vec::new();
    for round in 0..4u8 {
        let winner = race_at(a, b, &id, expected.len() as u64, round).await;
        expected.extend_from_slice(&winner);
    }
    let digest = Digest::of(&expected);
    let outcome = b.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: expected.len() as u64 }));
    assert_eq!(read(a, &digest, None).await, expected);
}

pub async fn racing_appends_at_one_offset_one_wins(open: &Open) {
    let store = open();
    races_at_one_offset(&*store, &*store).await;
}

/// Two appends without an offset at once: both land, one after the other.
async fn races_at_the_end(a: &dyn BlobStore, b: &dyn BlobStore) {
    let id = id(5);
    a.append(&id, Some(0), body(&[b"start:"])).await.unwrap();
    let (x, y) = (pattern(3000, 1), pattern(2000, 2));
    let (first, second) = tokio::join!(a.append(&id, None, body(&[&x])), b.append(&id, None, body(&[&y])));
    let (first, second) = (first.unwrap(), second.unwrap());
    let total = 6 + 5000;
    let mut expected = b"start:".to_vec();
    if first < second {
        assert_eq!((first, second), (6 + 3000, total), "each append reports the size after it");
        expected.extend_from_slice(&x);
        expected.extend_from_slice(&y);
    } else {
        assert_eq!((first, second), (total, 6 + 2000), "each append reports the size after it");
        expected.extend_from_slice(&y);
        expected.extend_from_slice(&x);
    }
    assert_eq!(b.upload_size(&id).await.unwrap(), total);
    let digest = Digest::of(&expected);
    let outcome = a.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: total }));
    assert_eq!(read(b, &digest, None).await, expected);
}

pub async fn racing_appends_without_an_offset_both_land(open: &Open) {
    let store = open();
    races_at_the_end(&*store, &*store).await;
}

pub async fn a_mismatch_stores_nothing(open: &Open) {
    let store = open();
    // Inline, a lone chunk, and several chunks: each way a commit can go.
    let cases: [(u8, &[&[u8]], u64); 3] =
        [(6, &[b"abc"], 1024), (7, &[b"abcdef"], 0), (8, &[b"abc", b"def", b"ghi"], 0)];
    for (upload, chunks, inline_max) in cases {
        let id = id(upload);
        let mut sent = Vec::new();
        for chunk in chunks {
            store.append(&id, None, body(&[chunk])).await.unwrap();
            sent.extend_from_slice(chunk);
        }
        let claimed = Digest::of(b"something else");
        let outcome = store.commit(&id, &claimed, inline_max).await.unwrap();
        let actual = Digest::of(&sent);
        assert_eq!(outcome, CommitOutcome::Mismatch { actual: actual.clone(), size: sent.len() as u64 });
        assert!(not_found(store.read(&claimed, None).await), "nothing under the claimed digest");
        assert!(not_found(store.read(&actual, None).await), "nothing under the actual digest");
        assert_eq!(store.upload_size(&id).await.unwrap(), 0, "the staged chunks are gone");
    }
}

pub async fn small_blobs_commit_inline(open: &Open) {
    let store = open();
    let id_inline = id(9);
    store.append(&id_inline, Some(0), body(&[b"tiny", b" blob"])).await.unwrap();
    let digest = Digest::of(b"tiny blob");
    let outcome = store.commit(&id_inline, &digest, 9).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Inline(Bytes::from_static(b"tiny blob"))));
    assert!(not_found(store.read(&digest, None).await), "an inline blob is not in the blob store");
    assert_eq!(store.upload_size(&id_inline).await.unwrap(), 0);

    let id_stored = id(10);
    store.append(&id_stored, Some(0), body(&[b"tiny blob"])).await.unwrap();
    let outcome = store.commit(&id_stored, &digest, 8).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 9 }), "one byte over the limit");
    assert_eq!(read(&*store, &digest, None).await, b"tiny blob");

    let empty = id(11);
    let outcome = store.commit(&empty, &Digest::of(b""), 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Inline(Bytes::new())), "an empty blob is inline");
}

pub async fn reads_serve_whole_blobs_and_ranges(open: &Open) {
    let store = open();
    let data = pattern(100, 7);
    let digest = store_blob(&*store, 12, &data).await;
    assert_eq!(read(&*store, &digest, None).await, data);
    for range in [0..1, 10..20, 0..100, 99..100] {
        let want = data.slice(range.start as usize..range.end as usize);
        assert_eq!(read(&*store, &digest, Some(range.clone())).await, want, "{range:?}");
    }
    // A range past the end is cut at the end; one starting at or past the end is refused.
    assert_eq!(read(&*store, &digest, Some(90..1000)).await, data.slice(90..));
    for range in [100..101, 200..300] {
        match store.read(&digest, Some(range.clone())).await {
            Err(BlobError::Io { .. }) => {}
            Err(e) => panic!("{range:?}: expected a failed read, got {e}"),
            Ok(_) => panic!("{range:?}: expected a failed read, got a stream"),
        }
    }
}

pub async fn rehash_reads_the_stored_bytes(open: &Open) {
    let store = open();
    let data = pattern(5000, 8);
    let digest = store_blob(&*store, 13, &data).await;
    assert_eq!(store.rehash(&digest).await.unwrap(), digest);
    assert!(not_found(store.rehash(&Digest::of(b"never stored")).await));
}

pub async fn quarantine_hides_a_blob_until_it_is_pushed_again(open: &Open) {
    let store = open();
    let digest = store_blob(&*store, 14, b"payload").await;
    store.quarantine(&digest).await.unwrap();
    assert!(not_found(store.read(&digest, None).await));
    assert!(not_found(store.read(&digest, Some(0..1)).await));
    assert!(not_found(store.rehash(&digest).await));
    store.quarantine(&digest).await.expect("quarantining twice is harmless");
    store.quarantine(&Digest::of(b"never stored")).await.expect("quarantining nothing is harmless");
    // Bytes pushed again are verified again, so they are served again.
    store_blob(&*store, 15, b"payload").await;
    assert_eq!(read(&*store, &digest, None).await, b"payload");
}

pub async fn discard_drops_the_staged_bytes(open: &Open) {
    let store = open();
    let id = id(16);
    store.append(&id, Some(0), body(&[b"first ", b"try"])).await.unwrap();
    store.append(&id, Some(9), body(&[b"!"])).await.unwrap();
    store.discard(&id).await.unwrap();
    assert_eq!(store.upload_size(&id).await.unwrap(), 0);
    store.discard(&id).await.expect("discarding twice is harmless");
    store.discard(&self::id(17)).await.expect("discarding an unknown upload is harmless");
    assert_eq!(store.append(&id, Some(0), body(&[b"second try"])).await.unwrap(), 10);
    let digest = Digest::of(b"second try");
    let outcome = store.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 10 }));
    assert_eq!(read(&*store, &digest, None).await, b"second try");
}

pub async fn missing_blobs_are_not_found(open: &Open) {
    let store = open();
    let digest = Digest::of(b"never stored");
    assert!(not_found(store.read(&digest, None).await));
    assert!(not_found(store.read(&digest, Some(0..1)).await));
    assert!(not_found(store.rehash(&digest).await));
}

pub async fn the_same_bytes_commit_twice(open: &Open) {
    let store = open();
    let data = pattern(3000, 9);
    let digest = store_blob(&*store, 18, &data).await;
    let again = id(19);
    store.append(&again, Some(0), body(&[&data[..1000], &data[1000..]])).await.unwrap();
    let outcome = store.commit(&again, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 3000 }));
    assert_eq!(store.upload_size(&again).await.unwrap(), 0);
    assert_eq!(read(&*store, &digest, None).await, data);
    // Known bytes are still checked against the digest, even when the sizes agree.
    let wrong = id(20);
    let mut forged = data.to_vec();
    forged[2999] ^= 1;
    store.append(&wrong, Some(0), body(&[&forged])).await.unwrap();
    let outcome = store.commit(&wrong, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Mismatch { actual: Digest::of(&forged), size: 3000 });
    assert_eq!(store.upload_size(&wrong).await.unwrap(), 0);
    assert_eq!(read(&*store, &digest, None).await, data, "the stored blob is untouched");
}

/// Sizes of the chunks of the large upload: one past a multipart part (8 MiB in the S3 backend),
/// one small, one large.
const LARGE_CHUNKS: [usize; 3] = [9 * 1024 * 1024 + 17, 1024 + 3, 7 * 1024 * 1024];

pub async fn a_large_upload_in_several_chunks(open: &Open) {
    let store = open();
    let total: usize = LARGE_CHUNKS.iter().sum();
    let data = pattern(total, 10);
    let id = id(21);
    let mut offset = 0usize;
    for len in LARGE_CHUNKS {
        let chunk = data.slice(offset..offset + len);
        let size = store.append(&id, Some(offset as u64), pieces(&chunk, 256 * 1024)).await.unwrap();
        offset += len;
        assert_eq!(size, offset as u64);
    }
    let digest = Digest::of(&data);
    let outcome = store.commit(&id, &digest, 4096).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: total as u64 }));
    assert!(read(&*store, &digest, None).await == data, "the blob reads back whole");
    let across = (LARGE_CHUNKS[0] as u64 - 10)..(LARGE_CHUNKS[0] as u64 + 2000);
    let want = data.slice(across.start as usize..across.end as usize);
    assert!(read(&*store, &digest, Some(across)).await == want, "a range across chunks reads back");
    assert_eq!(store.rehash(&digest).await.unwrap(), digest);

    // A large mismatch leaves nothing either.
    let wrong = self::id(22);
    store.append(&wrong, Some(0), pieces(&data.slice(..LARGE_CHUNKS[0]), 256 * 1024)).await.unwrap();
    store.append(&wrong, None, body(&[b"tail"])).await.unwrap();
    let claimed = Digest::of(b"not these bytes");
    let outcome = store.commit(&wrong, &claimed, 4096).await.unwrap();
    assert!(matches!(outcome, CommitOutcome::Mismatch { size, .. } if size == LARGE_CHUNKS[0] as u64 + 4));
    assert!(not_found(store.read(&claimed, None).await));
    assert_eq!(store.upload_size(&wrong).await.unwrap(), 0);
}

/// Three replicas live at once: chunks land on two of them, alternating, and the third commits.
pub async fn replicas_share_an_upload(open: &Open) {
    let (a, b, c) = (open(), open(), open());
    let id = id(23);
    assert_eq!(a.append(&id, Some(0), body(&[b"one,"])).await.unwrap(), 4);
    assert_eq!(b.upload_size(&id).await.unwrap(), 4);
    assert_eq!(b.append(&id, Some(4), body(&[b"two,"])).await.unwrap(), 8);
    let err = a.append(&id, Some(4), body(&[b"stale"])).await.unwrap_err();
    assert!(matches!(err, BlobError::OutOfOrder { expected: 8, got: 4 }), "{err}");
    assert_eq!(a.append(&id, Some(8), body(&[b"three"])).await.unwrap(), 13);
    assert_eq!(b.append(&id, None, body(&[b"!"])).await.unwrap(), 14);
    assert_eq!(c.upload_size(&id).await.unwrap(), 14);
    let digest = Digest::of(b"one,two,three!");
    let outcome = c.commit(&id, &digest, 0).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 14 }));
    assert_eq!(read(&*a, &digest, None).await, b"one,two,three!");
    assert_eq!(a.upload_size(&id).await.unwrap(), 0);
    assert_eq!(b.upload_size(&id).await.unwrap(), 0);
}

pub async fn racing_appends_on_two_replicas_one_wins(open: &Open) {
    let (a, b) = (open(), open());
    races_at_one_offset(&*a, &*b).await;
}

pub async fn racing_appends_on_two_replicas_without_an_offset_both_land(open: &Open) {
    let (a, b) = (open(), open());
    races_at_the_end(&*a, &*b).await;
}
