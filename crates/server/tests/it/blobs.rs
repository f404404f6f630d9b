//! Blob reads and every upload flow of the distribution spec.

use airlock_test_support::TestApp;
use airlock_test_support::oci::{digest, pseudo_random};
use bytes::Bytes;
use http::{Method, StatusCode};

/// Larger than the inline limit, so it lands in the blob store.
fn big() -> Vec<u8> {
    pseudo_random(300 * 1024, 7)
}

async fn start(app: &TestApp, repo: &str) -> String {
    let reply = app.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    assert_eq!(reply.header("range"), "0-0");
    assert!(!reply.header("docker-upload-uuid").is_empty());
    reply.header("location").to_owned()
}

#[tokio::test]
async fn monolithic_push_then_head_and_get() {
    let app = TestApp::new("").await;
    let d = app.push_blob("dev/a", b"hello").await;
    let head = app.send(Method::HEAD, &format!("/v2/dev/a/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "5");
    assert_eq!(head.header("docker-content-digest"), d);
    assert!(head.body.is_empty());
    let get = app.get(&format!("/v2/dev/a/blobs/{d}")).await;
    assert_eq!(get.body.as_ref(), b"hello");
}

#[tokio::test]
async fn post_then_put_stores_large_blobs_and_serves_ranges() {
    let app = TestApp::new("").await;
    let data = big();
    let d = digest(&data);
    let location = start(&app, "dev/a").await;
    let put = app
        .send(
            Method::PUT,
            &format!("{location}?digest={d}"),
            &[("content-length", &data.len().to_string())],
            data.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(put.header("location"), format!("/v2/dev/a/blobs/{d}"));
    let whole = app.get(&format!("/v2/dev/a/blobs/{d}")).await;
    assert_eq!(whole.body.as_ref(), data.as_slice());

    let part = app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "bytes=10-19")], Bytes::new()).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), format!("bytes 10-19/{}", data.len()));
    assert_eq!(part.body.as_ref(), &data[10..20]);

    // Across the seams of the file store's 128 KiB read buffers, from and to odd offsets.
    let across =
        app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "bytes=131000-262200")], Bytes::new()).await;
    assert_eq!(across.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(across.header("content-range"), format!("bytes 131000-262200/{}", data.len()));
    assert_eq!(across.header("content-length"), "131201");
    assert_eq!(across.body.as_ref(), &data[131000..262201]);

    let suffix = app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "bytes=-5")], Bytes::new()).await;
    assert_eq!(suffix.body.as_ref(), &data[data.len() - 5..]);

    let beyond =
        app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "bytes=999999999-")], Bytes::new()).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), format!("bytes */{}", data.len()));
}

#[tokio::test]
async fn ranges_on_inline_blobs() {
    let app = TestApp::new("").await;
    let d = app.push_blob("dev/a", b"0123456789").await;
    let part = app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "bytes=2-4")], Bytes::new()).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body.as_ref(), b"234");
    let bad = app.send(Method::GET, &format!("/v2/dev/a/blobs/{d}"), &[("range", "lines=1-2")], Bytes::new()).await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn chunked_upload_refuses_out_of_order_chunks_and_stays_usable() {
    let app = TestApp::new("").await;
    let data = big();
    let (first, rest) = data.split_at(100_000);
    let location = start(&app, "dev/a").await;
    let patch = app
        .send(Method::PATCH, &location, &[("content-range", "0-99999"), ("content-length", "100000")], first.to_vec())
        .await;
    assert_eq!(patch.status, StatusCode::ACCEPTED, "{:?}", patch.body);
    assert_eq!(patch.header("range"), "0-99999");

    // A chunk that skips ahead is refused with the session's real state.
    let skip = app
        .send(Method::PATCH, &location, &[("content-range", "200000-200009"), ("content-length", "10")], vec![0u8; 10])
        .await;
    assert_eq!(skip.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(skip.header("range"), "0-99999");
    assert_eq!(skip.error_code(), "BLOB_UPLOAD_INVALID");

    let status = app.get(&location).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-99999");

    let end = format!("100000-{}", data.len() - 1);
    let patch = app
        .send(
            Method::PATCH,
            &location,
            &[("content-range", &end), ("content-length", &rest.len().to_string())],
            rest.to_vec(),
        )
        .await;
    assert_eq!(patch.status, StatusCode::ACCEPTED);
    let d = digest(&data);
    let put = app.send(Method::PUT, &format!("{location}?digest={d}"), &[], Bytes::new()).await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn content_range_must_match_content_length() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    let patch =
        app.send(Method::PATCH, &location, &[("content-range", "0-9"), ("content-length", "3")], b"abc".to_vec()).await;
    assert_eq!(patch.status, StatusCode::BAD_REQUEST);
    assert_eq!(patch.error_code(), "SIZE_INVALID");
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    for chunk in [&b"stream"[..], b"ed"] {
        let patch = app.send(Method::PATCH, &location, &[], chunk.to_vec()).await;
        assert_eq!(patch.status, StatusCode::ACCEPTED);
    }
    let d = digest(b"streamed");
    let put = app.send(Method::PUT, &format!("{location}?digest={d}"), &[], Bytes::new()).await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.body.as_ref(), b"streamed");
}

#[tokio::test]
async fn wrong_digest_stores_nothing() {
    let app = TestApp::new("").await;
    let data = big();
    let claimed = digest(b"something else");
    let location = start(&app, "dev/a").await;
    let put = app.send(Method::PUT, &format!("{location}?digest={claimed}"), &[], data.clone()).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    for d in [claimed, digest(&data)] {
        assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
    }
    // The session is over: nothing half-done stays behind.
    assert_eq!(app.get(&location).await.status, StatusCode::NOT_FOUND);
    let small = app
        .send(
            Method::POST,
            &format!("/v2/dev/a/blobs/uploads/?digest={}", digest(b"x")),
            &[("content-length", "1")],
            b"y".to_vec(),
        )
        .await;
    assert_eq!(small.status, StatusCode::BAD_REQUEST);
    assert_eq!(small.error_code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn monolithic_post_of_a_large_blob() {
    let app = TestApp::new("").await;
    let data = big();
    let d = digest(&data);
    let reply = app
        .send(
            Method::POST,
            &format!("/v2/dev/a/blobs/uploads/?digest={d}"),
            &[("content-length", &data.len().to_string())],
            data.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.body.len(), data.len());
}

#[tokio::test]
async fn cancel_ends_the_session() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    app.send(Method::PATCH, &location, &[], b"abc".to_vec()).await;
    let cancel = app.send(Method::DELETE, &location, &[], Bytes::new()).await;
    assert_eq!(cancel.status, StatusCode::NO_CONTENT);
    let status = app.get(&location).await;
    assert_eq!(status.status, StatusCode::NOT_FOUND);
    assert_eq!(status.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn a_session_belongs_to_its_repository() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    let other = location.replace("/dev/a/", "/dev/b/");
    let reply = app.send(Method::PATCH, &other, &[], b"abc".to_vec()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn blobs_are_visible_only_where_linked() {
    let app = TestApp::new("").await;
    let d = app.push_blob("dev/a", b"private").await;
    let reply = app.get(&format!("/v2/dev/b/blobs/{d}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn mount_links_from_a_holder_and_falls_back_otherwise() {
    let app = TestApp::new("").await;
    let d = app.push_blob("dev/a", b"shared").await;
    let mount =
        app.send(Method::POST, &format!("/v2/dev/b/blobs/uploads/?mount={d}&from=dev/a"), &[], Bytes::new()).await;
    assert_eq!(mount.status, StatusCode::CREATED);
    assert_eq!(mount.header("location"), format!("/v2/dev/b/blobs/{d}"));
    assert_eq!(app.get(&format!("/v2/dev/b/blobs/{d}")).await.body.as_ref(), b"shared");

    let fallback = app
        .send(Method::POST, &format!("/v2/dev/c/blobs/uploads/?mount={d}&from=dev/nowhere"), &[], Bytes::new())
        .await;
    assert_eq!(fallback.status, StatusCode::ACCEPTED);
    assert!(fallback.header("location").starts_with("/v2/dev/c/blobs/uploads/"));
    assert_eq!(app.get(&format!("/v2/dev/c/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_unlinks_a_blob() {
    let app = TestApp::new("").await;
    let d = app.push_blob("dev/a", b"gone soon").await;
    let reply = app.send(Method::DELETE, &format!("/v2/dev/a/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
    let again = app.send(Method::DELETE, &format!("/v2/dev/a/blobs/{d}"), &[], Bytes::new()).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_small_last_chunk_completes_earlier_chunks() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    app.send(Method::PATCH, &location, &[], b"abc".to_vec()).await;
    let d = digest(b"abcdef");
    let put =
        app.send(Method::PUT, &format!("{location}?digest={d}"), &[("content-length", "3")], b"def".to_vec()).await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.body.as_ref(), b"abcdef");
}

#[tokio::test]
async fn a_small_put_with_the_wrong_digest_stores_nothing_and_ends_the_session() {
    let app = TestApp::new("").await;
    let location = start(&app, "dev/a").await;
    let claimed = digest(b"other");
    let put = app
        .send(Method::PUT, &format!("{location}?digest={claimed}"), &[("content-length", "4")], b"real".to_vec())
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    assert_eq!(app.get(&location).await.status, StatusCode::NOT_FOUND);
    for d in [claimed, digest(b"real")] {
        assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
    }
}
