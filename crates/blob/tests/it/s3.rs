//! The blob store conformance suite against the S3 backend on the test service (SeaweedFS from
//! `scripts/services`), each check under a fresh prefix of the test bucket, including the checks
//! for several replicas sharing it; then what only S3 has: the objects left in the bucket and the
//! errors of a wrong bucket or key. Skipped when `AIRLOCK_TEST_S3_ENDPOINT` is unset.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use airlock_blob::{S3BlobStore, S3Credentials, S3Options, S3Url};
use airlock_core::ports::{BlobError, BlobStore, ByteStream, CommitOutcome};
use airlock_model::{Digest, UploadId};
use airlock_test_support::blob_conformance::Open;
use airlock_test_support::services;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "`{name}` is not set beside `AIRLOCK_TEST_S3_ENDPOINT`; start the services with `scripts/services start s3`"
        )
    })
}

/// Options for a fresh, empty prefix of the test bucket, or `None` when S3 is not configured.
pub fn options(test: &str) -> Option<S3Options> {
    let endpoint = services::service("AIRLOCK_TEST_S3_ENDPOINT", test)?;
    // Random per call, so reruns against the same service never meet an earlier run's objects.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let url = format!("s3://{}/it/{test}-{random:016x}", var("AIRLOCK_TEST_S3_BUCKET"));
    Some(S3Options {
        url: S3Url::parse(&url).expect("valid test URL"),
        endpoint: Some(endpoint),
        region: Some("us-east-1".to_owned()),
        allow_http: true,
        credentials: Some(S3Credentials {
            access_key_id: var("AIRLOCK_TEST_S3_ACCESS_KEY"),
            secret_access_key: var("AIRLOCK_TEST_S3_SECRET_KEY"),
        }),
    })
}

fn fresh(test: &str) -> Option<((), Open)> {
    let options = options(test)?;
    let open: Open =
        Box::new(move || -> Arc<dyn BlobStore> { Arc::new(S3BlobStore::open(&options).expect("store opens")) });
    Some(((), open))
}

airlock_test_support::blob_conformance!(fresh, replicated);

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::iter([Ok(Bytes::from_static(bytes))]))
}

fn id(n: u8) -> UploadId {
    UploadId::parse(&format!("{n:02x}").repeat(16)).expect("valid upload id")
}

/// The keys under the store's prefix, relative to it, in order.
async fn keys(options: &S3Options) -> Vec<String> {
    let keys = options.credentials.as_ref().expect("the tests pass keys");
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(options.url.bucket())
        .with_endpoint(options.endpoint.as_deref().expect("the tests pass an endpoint"))
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_access_key_id(&keys.access_key_id)
        .with_secret_access_key(&keys.secret_access_key)
        .build()
        .expect("client builds");
    let prefix = options.url.prefix();
    let listed: Vec<object_store::ObjectMeta> =
        raw.list(Some(&Path::from(prefix))).try_collect().await.expect("the prefix lists");
    let mut keys: Vec<String> = listed
        .iter()
        .map(|m| m.location.as_ref().strip_prefix(prefix).unwrap_or_default().trim_start_matches('/').to_owned())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn uploads_leave_only_blobs_behind() {
    let Some(options) = options("uploads_leave_only_blobs_behind") else { return };
    let (a, b) = (S3BlobStore::open(&options).unwrap(), S3BlobStore::open(&options).unwrap());
    let upload = id(1);
    // A race: the losing replica deletes the bytes it wrote.
    let (x, y) = tokio::join!(a.append(&upload, Some(0), body(b"from a")), b.append(&upload, Some(0), body(b"from b")));
    assert!(x.is_ok() != y.is_ok(), "one append wins: {x:?} {y:?}");
    let staged = keys(&options).await;
    let under = format!("uploads/{upload}/");
    assert_eq!(staged.len(), 2, "one data object and one record: {staged:?}");
    assert!(staged.iter().any(|k| k.starts_with(&format!("{under}data/"))), "{staged:?}");
    assert!(staged.contains(&format!("{under}chunks/00000000000000000000")), "{staged:?}");
    b.append(&upload, Some(6), body(b"!")).await.unwrap();

    let won: &[u8] = if x.is_ok() { b"from a!" } else { b"from b!" };
    let digest = Digest::of(won);
    let _ = a.commit(&upload, &digest, 0).await.unwrap();
    let mismatch = id(2);
    b.append(&mismatch, None, body(b"abc")).await.unwrap();
    b.append(&mismatch, None, body(b"def")).await.unwrap();
    let outcome = b.commit(&mismatch, &Digest::of(b"claimed"), 0).await.unwrap();
    assert!(matches!(outcome, CommitOutcome::Mismatch { .. }));
    let discarded = id(3);
    a.append(&discarded, None, body(b"dropped")).await.unwrap();
    a.discard(&discarded).await.unwrap();
    let quarantined = id(4);
    a.append(&quarantined, None, body(b"corrupt")).await.unwrap();
    let _ = a.commit(&quarantined, &Digest::of(b"corrupt"), 0).await.unwrap();
    b.quarantine(&Digest::of(b"corrupt")).await.unwrap();

    let hex = digest.hex();
    let corrupt = Digest::of(b"corrupt");
    assert_eq!(
        keys(&options).await,
        [format!("blobs/sha256/{}/{hex}", &hex[..2]), format!("quarantine/sha256/{}", corrupt.hex())],
    );
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_a_missing_blob() {
    let Some(mut options) = options("a_missing_bucket_is_an_error_not_a_missing_blob") else { return };
    options.url = S3Url::parse("s3://airlock-no-such-bucket/x").unwrap();
    let store = S3BlobStore::open(&options).unwrap();
    let digest = Digest::of(b"x");
    for result in [store.read(&digest, None).await.err(), store.rehash(&digest).await.err()] {
        match result {
            Some(BlobError::Io { source, .. }) => {
                let message = source.to_string();
                assert!(message.starts_with("`s3://airlock-no-such-bucket/x/blobs/sha256/"), "{message}");
                assert!(
                    message.ends_with("the bucket does not exist: create it, or correct the blob store's URL"),
                    "{message}"
                );
                assert!(!message.contains('\n'), "one line: {message}");
            }
            other => panic!("a missing bucket must fail the read, got {other:?}"),
        }
    }
    assert!(store.quarantine(&digest).await.is_err(), "quarantining in a missing bucket fails");
    assert!(store.upload_size(&id(5)).await.is_err());
}

#[tokio::test]
async fn refused_credentials_name_the_object_and_the_next_step() {
    let Some(mut options) = options("refused_credentials_name_the_object_and_the_next_step") else { return };
    if let Some(keys) = options.credentials.as_mut() {
        keys.secret_access_key = "not the secret".to_owned();
    }
    let store = S3BlobStore::open(&options).unwrap();
    let err = store.append(&id(6), Some(0), body(b"x")).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("blob store list upload failed: `{}/uploads/{}`: ", options.url, id(6))),
        "{message}"
    );
    assert!(
        message.ends_with(
            "; check the blob store's credentials and that they may read, write, list and delete in the bucket"
        ),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
}
