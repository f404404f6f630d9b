//! Manifests, indexes, tags, the catalog and the referrers API.

use airlock_test_support::TestApp;
use airlock_test_support::oci::{Image, OCI_INDEX, OCI_MANIFEST, digest, index};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn push_and_pull_by_tag_and_digest_byte_for_byte() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("hello.txt", b"hello")]);
    let put = app.push_image("dev/payments/api", &image, "1.4.2").await;
    let d = image.digest();
    assert_eq!(put.header("docker-content-digest"), d);
    assert_eq!(put.header("location"), format!("/v2/dev/payments/api/manifests/{d}"));
    for reference in ["1.4.2", d.as_str()] {
        let get = app.get(&format!("/v2/dev/payments/api/manifests/{reference}")).await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.body, image.manifest, "bytes are served exactly as received");
        assert_eq!(get.header("content-type"), OCI_MANIFEST);
        assert_eq!(get.header("docker-content-digest"), d);
        let head =
            app.send(Method::HEAD, &format!("/v2/dev/payments/api/manifests/{reference}"), &[], Bytes::new()).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("content-length"), image.manifest.len().to_string());
        assert!(head.body.is_empty());
    }
}

#[tokio::test]
async fn manifest_needs_its_blobs_in_the_repository() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    app.push_blob("dev/a", &image.config).await;
    let put = app
        .send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_MANIFEST)], image.manifest.clone())
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert!(put.json()["errors"][0]["message"].as_str().unwrap().contains(&digest(&image.layers[0])));
    // A blob in another repository does not count.
    app.push_blob("dev/b", &image.layers[0]).await;
    let put = app
        .send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_MANIFEST)], image.manifest.clone())
        .await;
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn put_by_digest_checks_the_digest() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    for blob in image.blobs() {
        app.push_blob("dev/a", blob).await;
    }
    let wrong = digest(b"not the manifest");
    let put = app
        .send(
            Method::PUT,
            &format!("/v2/dev/a/manifests/{wrong}"),
            &[("content-type", OCI_MANIFEST)],
            image.manifest.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    let right = image.digest();
    let put = app
        .send(
            Method::PUT,
            &format!("/v2/dev/a/manifests/{right}"),
            &[("content-type", OCI_MANIFEST)],
            image.manifest.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
}

#[tokio::test]
async fn index_needs_its_child_manifests() {
    let app = TestApp::new("").await;
    let child = Image::new(&[("a", b"a")]);
    let body = index(&[&child]);
    let put = app.send(Method::PUT, "/v2/dev/a/manifests/multi", &[("content-type", OCI_INDEX)], body.clone()).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
    app.push_image("dev/a", &child, &child.digest()).await;
    let put = app.send(Method::PUT, "/v2/dev/a/manifests/multi", &[("content-type", OCI_INDEX)], body.clone()).await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    let get = app.get("/v2/dev/a/manifests/multi").await;
    assert_eq!(get.header("content-type"), OCI_INDEX);
    assert_eq!(get.body, body);
}

#[tokio::test]
async fn content_type_and_body_must_agree() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    let put =
        app.send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_INDEX)], image.manifest.clone()).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "MANIFEST_INVALID");
    let put = app.send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_MANIFEST)], "{not json").await;
    assert_eq!(put.error_code(), "MANIFEST_INVALID");
}

#[tokio::test]
async fn oversized_manifest_is_refused_with_413() {
    let app = TestApp::new("[limits]\nmanifest_max_bytes = 1024\n").await;
    let body = vec![b' '; 2048];
    let put = app.send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_MANIFEST)], body.clone()).await;
    assert_eq!(put.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(put.error_code(), "MANIFEST_INVALID");
    // Without a Content-Length the limit still holds while reading.
    let request = http::Request::builder()
        .method(Method::PUT)
        .uri("/v2/dev/a/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(axum::body::Body::from_stream(futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(body))])))
        .unwrap();
    let put = app.send_request(request).await;
    assert_eq!(put.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn default_manifest_limit_is_4_mib() {
    let app = TestApp::new("").await;
    let body = vec![b' '; 4 * 1024 * 1024 + 1];
    let put = app.send(Method::PUT, "/v2/dev/a/manifests/v1", &[("content-type", OCI_MANIFEST)], body).await;
    assert_eq!(put.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn delete_tag_then_manifest() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    app.push_image("dev/a", &image, "v1").await;
    let d = image.digest();
    assert_eq!(
        app.send(Method::DELETE, "/v2/dev/a/manifests/v1", &[], Bytes::new()).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(app.get("/v2/dev/a/manifests/v1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v2/dev/a/manifests/{d}")).await.status, StatusCode::OK);
    app.send(Method::PUT, "/v2/dev/a/manifests/v2", &[("content-type", OCI_MANIFEST)], image.manifest.clone()).await;
    assert_eq!(
        app.send(Method::DELETE, &format!("/v2/dev/a/manifests/{d}"), &[], Bytes::new()).await.status,
        StatusCode::ACCEPTED
    );
    let gone = app.get(&format!("/v2/dev/a/manifests/{d}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "MANIFEST_UNKNOWN");
    assert_eq!(app.get("/v2/dev/a/manifests/v2").await.status, StatusCode::NOT_FOUND, "tags go with their manifest");
}

#[tokio::test]
async fn tags_paginate_with_link_headers() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    for tag in ["e", "a", "d", "b", "c"] {
        app.push_image("dev/a", &image, tag).await;
    }
    let page = app.get("/v2/dev/a/tags/list?n=2").await;
    assert_eq!(page.json(), json!({"name": "dev/a", "tags": ["a", "b"]}));
    assert_eq!(page.header("link"), "</v2/dev/a/tags/list?n=2&last=b>; rel=\"next\"");
    let page = app.get("/v2/dev/a/tags/list?n=2&last=b").await;
    assert_eq!(page.json()["tags"], json!(["c", "d"]));
    let page = app.get("/v2/dev/a/tags/list?n=2&last=d").await;
    assert_eq!(page.json()["tags"], json!(["e"]));
    assert_eq!(page.header("link"), "");
    let all = app.get("/v2/dev/a/tags/list").await;
    assert_eq!(all.json()["tags"], json!(["a", "b", "c", "d", "e"]));
    let empty = app.get("/v2/dev/a/tags/list?n=0").await;
    assert_eq!(empty.json()["tags"], json!([]));
}

#[tokio::test]
async fn huge_and_negative_page_sizes() {
    let app = TestApp::new("[limits]\npage_max = 3\n").await;
    let image = Image::new(&[("a", b"a")]);
    for tag in ["a", "b", "c", "d"] {
        app.push_image("dev/a", &image, tag).await;
    }
    let huge = app.get("/v2/dev/a/tags/list?n=4000000000").await;
    assert_eq!(huge.status, StatusCode::OK);
    assert_eq!(huge.json()["tags"], json!(["a", "b", "c"]), "clamped to `limits.page_max`");
    assert_eq!(huge.header("link"), "</v2/dev/a/tags/list?n=3&last=c>; rel=\"next\"");
    for bad in ["-1", "99999999999999999999", "abc", ""] {
        let reply = app.get(&format!("/v2/dev/a/tags/list?n={bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "n={bad}");
        assert_eq!(reply.error_code(), "UNSUPPORTED", "the OCI spec has no pagination code");
        let reply = app.get(&format!("/v2/_catalog?n={bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "catalog n={bad}");
    }
}

#[tokio::test]
async fn unknown_repository_has_no_tags() {
    let app = TestApp::new("").await;
    let reply = app.get("/v2/dev/nothing/tags/list").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_paginates() {
    let app = TestApp::new("").await;
    for repo in ["dev/c", "dev/a", "dev/b"] {
        app.push_blob(repo, b"x").await;
    }
    let page = app.get("/v2/_catalog?n=2").await;
    assert_eq!(page.json(), json!({"repositories": ["dev/a", "dev/b"]}));
    assert_eq!(page.header("link"), "</v2/_catalog?n=2&last=dev/b>; rel=\"next\"");
    let page = app.get("/v2/_catalog?n=2&last=dev/b").await;
    assert_eq!(page.json(), json!({"repositories": ["dev/c"]}));
}

#[tokio::test]
async fn referrers_list_filter_and_report_the_subject() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    app.push_image("dev/a", &image, "v1").await;
    let subject = (image.digest(), image.manifest.len());
    let sbom = Image::artifact(
        "application/spdx+json",
        b"{\"spdx\":1}",
        Some((&subject.0, subject.1)),
        json!({"kind": "sbom"}),
    );
    let sig =
        Image::artifact("application/vnd.dev.sigstore.bundle+json", b"sig", Some((&subject.0, subject.1)), json!({}));
    for artifact in [&sbom, &sig] {
        let put = app.push_image("dev/a", artifact, &artifact.digest()).await;
        assert_eq!(put.header("oci-subject"), subject.0);
    }
    let all = app.get(&format!("/v2/dev/a/referrers/{}", subject.0)).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header("content-type"), OCI_INDEX);
    assert_eq!(all.header("oci-filters-applied"), "");
    let listed = all.json();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(listed["manifests"][0]["digest"], json!(sbom.digest()));
    assert_eq!(listed["manifests"][0]["artifactType"], json!("application/spdx+json"));
    assert_eq!(listed["manifests"][0]["annotations"], json!({"kind": "sbom"}));
    assert_eq!(listed["manifests"][0]["size"], json!(sbom.manifest.len()));

    let filtered = app.get(&format!("/v2/dev/a/referrers/{}?artifactType=application/spdx%2Bjson", subject.0)).await;
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    assert_eq!(filtered.json()["manifests"].as_array().unwrap().len(), 1);

    let none = app.get(&format!("/v2/dev/a/referrers/{}", digest(b"unknown"))).await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["manifests"], json!([]));
    let other_repo = app.get(&format!("/v2/dev/b/referrers/{}", subject.0)).await;
    assert_eq!(other_repo.json()["manifests"], json!([]));
}
