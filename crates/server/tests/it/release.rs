//! The release bundle over HTTP: built in one request once a signed checkpoint covers the commit,
//! read with pull access only, and attached by the engine as a referrer of the promoted digest
//! after the checkpoint is signed, logged, once.

use airlock_core::promotion::bundle::{RELEASE_BUNDLE_MEDIA_TYPE, verify_bundle};
use airlock_dsse::PublicKey;
use airlock_test_support::oci::Image;
use airlock_tlog::Verifier;
use axum::body::Body;
use http::{Request, StatusCode};

use crate::promotion::Fixture;

const REPO: &str = "dev/payments/api";

#[tokio::test]
async fn release_bundle_is_served_to_pullers_and_attached_after_the_checkpoint() {
    let f = Fixture::new("").await;
    let image = Image::new(&[("app", b"payments 2.0")]);
    assert_eq!(f.app.push_image(REPO, &image, "2.0").await.status, StatusCode::CREATED);
    f.provenance(&image, "dave").await;
    f.scan(&image, &[]).await;
    let ci = f.tester_token().await;
    let staged = f.promote(&ci, REPO, &image.digest(), "staging", Some("2.0")).await;
    assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.json());
    let uri = format!("/api/v1/artifacts/staging/payments/api/{}/release-bundle", image.digest());

    // The checkpoint covering the commit is signed after it: until then, ask again.
    let early = f.app.get(&uri).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{:?}", early.body);
    let checkpoint = f.app.app.state.log.checkpoint().await.unwrap();

    // One request; the bundle proves the promotion with the two public keys.
    let reply = f.app.get(&uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), RELEASE_BUNDLE_MEDIA_TYPE);
    let release = PublicKey::from_pem(f.app.get("/api/v1/release-key").await.json()["pem"].as_str().unwrap()).unwrap();
    let log = Verifier::parse(String::from_utf8_lossy(&f.app.get("/api/v1/log/key").await.body).trim()).unwrap();
    let verified = verify_bundle(&reply.body, &release, &log).unwrap();
    assert_eq!(verified.record.promotion, staged.json()["id"].as_str().unwrap());
    assert_eq!(Some(verified.record.log_index), staged.json()["log_index"].as_u64());
    assert_eq!(verified.checkpoint_size, checkpoint.size);

    // Reading it needs pull on the repository, like `/promotions`; a digest never promoted there
    // has none.
    let anonymous = f.app.send_anonymous(Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{:?}", anonymous.body);
    let other = Image::new(&[("app", b"never promoted")]);
    let never = f.app.get(&format!("/api/v1/artifacts/staging/payments/api/{}/release-bundle", other.digest())).await;
    assert_eq!(never.status, StatusCode::NOT_FOUND, "{:?}", never.body);
    assert!(never.error_message().contains("never promoted"), "{:?}", never.body);

    // After the checkpoint, the engine attaches the bundle as a referrer, logged; once.
    let attacher = airlock_server::promotion::BundleAttacher::new(f.app.app.state.promoter.clone());
    attacher.signed(&checkpoint).await;
    let referrers = format!(
        "/v2/staging/payments/api/referrers/{}?artifactType={}",
        image.digest(),
        RELEASE_BUNDLE_MEDIA_TYPE.replace('+', "%2B")
    );
    let listed = f.app.get(&referrers).await.json();
    let manifests = listed["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{listed}");
    assert_eq!(manifests[0]["annotations"]["dev.airlock.promotion"], staged.json()["id"], "{listed}");
    let manifest =
        f.app.get(&format!("/v2/staging/payments/api/manifests/{}", manifests[0]["digest"].as_str().unwrap())).await;
    let layer = manifest.json()["layers"][0]["digest"].as_str().unwrap().to_owned();
    let attached = f.app.get(&format!("/v2/staging/payments/api/blobs/{layer}")).await;
    assert_eq!(verify_bundle(&attached.body, &release, &log).unwrap().record.promotion, verified.record.promotion);
    let again = f.app.app.state.log.checkpoint().await.unwrap();
    airlock_server::promotion::BundleAttacher::new(f.app.app.state.promoter.clone()).signed(&again).await;
    assert_eq!(f.app.get(&referrers).await.json()["manifests"].as_array().unwrap().len(), 1);
    let attaches = f.log_types_all().await.iter().filter(|t| *t == "promotion.bundle.attach").count();
    assert_eq!(attaches, 1);
}
