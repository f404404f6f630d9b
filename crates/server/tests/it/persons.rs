//! A person is one identity, however many accounts they hold: approvals compare the people
//! behind the requester, the pusher, the build's trigger and each approver (by verified e-mail,
//! case folded and with `+tag` dropped), never only account names.

use airlock_test_support::oci::Image;
use airlock_test_support::{Reply, basic};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::json;

use crate::promotion::Fixture;

const REPO: &str = "dev/payments/api";

/// Pushes an image of `content` under `tag` (the manifest with `pusher`'s registry token when
/// given, else as the tester), attaches provenance naming `trigger`, takes it into staging as the
/// tester and asks for prod with the API token `requester`; returns the prod promotion's id.
async fn pending_in_prod(
    f: &Fixture,
    content: &[u8],
    tag: &str,
    pusher: Option<&str>,
    trigger: &str,
    requester: &str,
) -> String {
    let image = Image::new(&[("app", content)]);
    match pusher {
        None => assert_eq!(f.app.push_image(REPO, &image, tag).await.status, StatusCode::CREATED),
        Some(user) => push_as(f, user, &image, tag).await,
    }
    f.provenance(&image, trigger).await;
    let ci = f.tester_token().await;
    let staged = f.promote(&ci, REPO, tag, "staging", Some(tag)).await;
    assert_eq!(staged.json()["status"], "promoted", "{}", staged.json());
    let pending = f.promote(requester, "staging/payments/api", tag, "prod", Some(tag)).await;
    assert_eq!(pending.json()["status"], "pending", "{}", pending.json());
    pending.json()["id"].as_str().unwrap().to_owned()
}

/// Pushes `image`'s blobs as the tester and its manifest with `user`'s own registry token, so
/// `user` is its pusher.
async fn push_as(f: &Fixture, user: &str, image: &Image, tag: &str) {
    for blob in image.blobs() {
        f.app.push_blob(REPO, blob).await;
    }
    let password = format!("{user}-password-123");
    let token = f
        .app
        .send_anonymous(
            Request::get(format!("/token?service=airlock&scope=repository:{REPO}:pull,push"))
                .header("authorization", basic(user, &password))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let bearer = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    let pushed = f
        .app
        .send(
            Method::PUT,
            &format!("/v2/{REPO}/manifests/{tag}"),
            &[("content-type", image.media_type()), ("authorization", &bearer)],
            image.manifest.clone(),
        )
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{:?}", pushed.body);
}

fn counted(reply: &Reply) -> serde_json::Value {
    reply.json()["report"]["approvals"]["counted"].clone()
}

fn assert_refused(reply: &Reply, words: &str) {
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", reply.body);
    assert!(reply.error_message().contains(words), "`{words}` not in: {}", reply.error_message());
}

/// `req1` asks for prod and `req1b`, their second account with the same address in another
/// case, approved it: one more approval committed what one person asked for and approved.
#[tokio::test]
async fn second_account_of_requester_cannot_approve() {
    let f = Fixture::new("").await;
    let req1 = f.user_with_email("req1", &["developer"], Some("same.person@example.com")).await;
    let req1b = f.user_with_email("req1b", &["release-approver"], Some("Same.Person@example.com")).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let requester = f.user_token("req1", &req1).await;
    let id = pending_in_prod(&f, b"persons 1.0", "1.0", None, "ci-bot", &requester).await;

    let refused = f.approve(&f.user_token("req1b", &req1b).await, &id).await;
    assert_refused(&refused, "`req1b` and `req1` are one person (`same.person@example.com`), and `req1` requested it");
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "one more approval must not commit it: {}", one.json());
    assert_eq!(counted(&one), json!(["alice"]));
}

/// The same attack with the requester's mailbox and a sub-address tag
/// (`same.person+ops@example.com`), which the person rule folds by default.
#[tokio::test]
async fn subaddress_account_of_requester_cannot_approve() {
    let f = Fixture::new("").await;
    let req1 = f.user_with_email("req1", &["developer"], Some("same.person@example.com")).await;
    let req1b = f.user_with_email("req1b", &["release-approver"], Some("same.person+ops@example.com")).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let requester = f.user_token("req1", &req1).await;
    let id = pending_in_prod(&f, b"persons 2.0", "2.0", None, "ci-bot", &requester).await;

    let refused = f.approve(&f.user_token("req1b", &req1b).await, &id).await;
    assert_refused(&refused, "`req1b` and `req1` are one person (`same.person@example.com`), and `req1` requested it");
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "one more approval must not commit it: {}", one.json());
    assert_eq!(counted(&one), json!(["alice"]));
}

/// `pat` pushed the artifact; `pat-release`, their second account, approved its promotion.
#[tokio::test]
async fn second_account_of_pusher_cannot_approve() {
    let f = Fixture::new("").await;
    f.user_with_email("pat", &["developer"], Some("pat@example.com")).await;
    let second = f.user_with_email("pat-release", &["release-approver"], Some("Pat+Release@example.com")).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let ci = f.tester_token().await;
    let id = pending_in_prod(&f, b"persons 3.0", "3.0", Some("pat"), "ci-bot", &ci).await;

    let refused = f.approve(&f.user_token("pat-release", &second).await, &id).await;
    assert_refused(
        &refused,
        "`pat-release` and `pat` are one person (`pat@example.com`), and `pat` pushed this artifact",
    );
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "one more approval must not commit it: {}", one.json());
    let two = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(two.json()["status"], "promoted", "{}", two.json());
    assert_eq!(counted(&two), json!(["alice", "bob"]));
}

/// The build's provenance names its trigger by e-mail; the account with that address (in another
/// case, with a tag) approved the promotion of what they built.
#[tokio::test]
async fn build_trigger_named_by_email_cannot_approve() {
    let f = Fixture::new("").await;
    let erin = f.user_with_email("erin-ops", &["release-approver"], Some("erin@example.com")).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let ci = f.tester_token().await;
    let id = pending_in_prod(&f, b"persons 4.0", "4.0", None, "Erin+CI@Example.com", &ci).await;

    let refused = f.approve(&f.user_token("erin-ops", &erin).await, &id).await;
    assert_refused(&refused, "are one person (`erin@example.com`), and `Erin+CI@Example.com` triggered the build");
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "one more approval must not commit it: {}", one.json());
}

/// `bob` holds the approver role but no e-mail: nothing tells his account apart from a second
/// account of the requester or of another approver, so his approval counted as a person's.
#[tokio::test]
async fn approver_without_email_cannot_approve() {
    let f = Fixture::new("").await;
    // No such account can be made now...
    let admin = f.token("admin", airlock_test_support::ADMIN_PASSWORD, None).await;
    let refused = f
        .api(
            http::Method::POST,
            "/api/v1/principals",
            &admin,
            json!({"name": "bob", "kind": "user", "roles": ["release-approver"]}),
        )
        .await;
    assert_eq!(refused.status, http::StatusCode::BAD_REQUEST, "{:?}", refused.body);
    assert!(refused.error_message().contains("has no e-mail"), "{:?}", refused.body);
    // ...but one made before the rule may still be stored.
    let roles = ["release-approver".to_owned()];
    let bob = airlock_test_support::legacy_user(&f.app.app, "bob", &roles, "bob-password-123").await;
    let alice = f.user("alice", &["release-approver"]).await;
    let carol = f.user("carol", &["release-approver"]).await;
    let ci = f.tester_token().await;
    let id = pending_in_prod(&f, b"persons 5.0", "5.0", None, "ci-bot", &ci).await;

    let refused = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_refused(
        &refused,
        "`bob` has no verified e-mail, so approvals cannot tell them apart from another account; ask an access admin to set one",
    );
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "{}", one.json());
    let two = f.approve(&f.user_token("carol", &carol).await, &id).await;
    assert_eq!(two.json()["status"], "promoted", "{}", two.json());
    assert_eq!(counted(&two), json!(["alice", "carol"]));
}

/// `alice` and `alice-ops` (`alice+ops@example.com`) are one person: her two approvals made the
/// quorum of two people alone.
#[tokio::test]
async fn two_accounts_of_one_approver_count_once() {
    let f = Fixture::new("").await;
    let alice = f.user_with_email("alice", &["release-approver"], Some("alice@example.com")).await;
    let ops = f.user_with_email("alice-ops", &["release-approver"], Some("Alice+Ops@example.com")).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let ci = f.tester_token().await;
    let id = pending_in_prod(&f, b"persons 6.0", "6.0", None, "ci-bot", &ci).await;

    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "{}", one.json());
    let again = f.approve(&f.user_token("alice-ops", &ops).await, &id).await;
    assert_refused(&again, "`alice-ops` and `alice` are one person (`alice@example.com`), who already approved it");
    let pending = f.api(Method::GET, &format!("/api/v1/promotions/{id}"), &ci, json!(null)).await;
    assert_eq!(pending.json()["status"], "pending", "one person must not complete the quorum: {}", pending.json());
    let two = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(two.json()["status"], "promoted", "{}", two.json());
    assert_eq!(counted(&two), json!(["alice", "bob"]));
}

/// An approval stored under another rule (`alice+ops@example.com` kept whole while
/// `access.fold_subaddress` was off) reads under today's: once folding is on, `alice` is the
/// same person and does not count as a second approver.
#[tokio::test]
async fn approval_stored_before_folding_is_read_as_its_person() {
    let f = Fixture::new("").await.restart_with(|c| c.access.fold_subaddress = false).await;
    let alice = f.user_with_email("alice", &["release-approver"], Some("alice@example.com")).await;
    let ops = f.user_with_email("alice-ops", &["release-approver"], Some("alice+ops@example.com")).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let ci = f.tester_token().await;
    let id = pending_in_prod(&f, b"persons 7.0", "7.0", None, "ci-bot", &ci).await;
    let one = f.approve(&f.user_token("alice-ops", &ops).await, &id).await;
    assert_eq!(one.json()["status"], "pending", "{}", one.json());

    let f = f.restart_with(|c| c.access.fold_subaddress = true).await;
    let again = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_refused(&again, "`alice` and `alice-ops` are one person (`alice@example.com`), who already approved it");
    let two = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(two.json()["status"], "promoted", "{}", two.json());
    assert_eq!(counted(&two), json!(["alice-ops", "bob"]));
}
