//! The promotion engine under concurrent requests: idempotent requests, racing approvals, a
//! reject racing the final approval, and two digests racing for one write-once tag. Each race
//! runs real requests in parallel through the router on a multi-threaded runtime, and checks
//! the store, the log and the registry afterwards, not only the replies.

use std::sync::Arc;

use airlock_model::Digest;
use airlock_test_support::Reply;
use airlock_test_support::oci::Image;
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::promotion::Fixture;

const REPO: &str = "dev/payments/api";
const STAGING: &str = "staging/payments/api";
const PROD: &str = "prod/payments/api";

/// An `/api/v1` request with a bearer token and a JSON body.
fn api_request(method: Method, uri: &str, token: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn promote_request(token: &str, reference: &str, repo: &str, to: &str, tag: &str) -> Request<Body> {
    api_request(
        Method::POST,
        "/api/v1/promotions",
        token,
        &json!({"repository": repo, "reference": reference, "to": to, "tag": tag, "reason": "release"}),
    )
}

fn approve_request(token: &str, id: &str) -> Request<Body> {
    api_request(Method::POST, &format!("/api/v1/promotions/{id}/approve"), token, &json!({"comment": "ok"}))
}

fn reject_request(token: &str, id: &str) -> Request<Body> {
    api_request(Method::POST, &format!("/api/v1/promotions/{id}/reject"), token, &json!({"reason": "not today"}))
}

/// Sends every request at once, each on its own task, released together by a barrier; the
/// replies come back in the order of `requests`. `delays` (milliseconds, per request, empty for
/// none) hold some back, to steer which side of a race usually lands first.
async fn fire(router: &Router, requests: Vec<Request<Body>>, delays: &[u64]) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            let router = router.clone();
            let barrier = Arc::clone(&barrier);
            let delay = delays.get(i).copied().unwrap_or(0);
            tokio::spawn(async move {
                barrier.wait().await;
                if delay > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                }
                let response = router.oneshot(request).await.expect("router is infallible");
                let (parts, body) = response.into_parts();
                let body = body.collect().await.expect("body reads").to_bytes();
                Reply { status: parts.status, headers: parts.headers, body }
            })
        })
        .collect();
    futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("request task")).collect()
}

/// No reply is a server error, and each has one of `allowed` statuses.
fn assert_statuses(replies: &[Reply], allowed: &[StatusCode]) {
    for (i, reply) in replies.iter().enumerate() {
        assert!(!reply.status.is_server_error(), "reply {i} is a server error: {} {:?}", reply.status, reply.body);
        assert!(allowed.contains(&reply.status), "reply {i}: unexpected {} {:?}", reply.status, reply.body);
    }
}

/// Every event in the log.
async fn events(f: &Fixture) -> Vec<Value> {
    let reply = f.app.get("/api/v1/log/entries?start=0").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let entries = reply.json()["entries"].as_array().unwrap().clone();
    assert!(entries.len() < 1000, "the log outgrew one page; page through it");
    entries.into_iter().map(|e| e["event"].clone()).collect()
}

/// The `promotion.*` events of type `kind` about promotion `id`.
fn promotion_events<'a>(events: &'a [Value], kind: &str, id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind && e["details"]["promotion"] == id).collect()
}

/// The `registry.tag.create` events for `tag` in `repo`.
fn tag_creates<'a>(events: &'a [Value], repo: &str, tag: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["type"] == "registry.tag.create" && e["subject"]["repository"] == repo && e["subject"]["tag"] == tag
        })
        .collect()
}

async fn status_of(f: &Fixture, token: &str, id: &str) -> Value {
    let reply = f.api(Method::GET, &format!("/api/v1/promotions/{id}"), token, Value::Null).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

/// Pushes a fresh image under `tag` in dev with trusted provenance (built by `ci-bot`).
async fn pushed(f: &Fixture, content: &[u8], tag: &str) -> Image {
    let image = Image::new(&[("app", content)]);
    assert_eq!(f.app.push_image(REPO, &image, tag).await.status, StatusCode::CREATED);
    f.provenance(&image, "ci-bot").await;
    image
}

/// Pushes an image, promotes it into staging and opens its promotion into prod, pending two
/// approvals; returns the image and the prod promotion's id.
async fn pending_in_prod(f: &Fixture, ci: &str, content: &[u8], tag: &str) -> (Image, String) {
    let image = pushed(f, content, tag).await;
    let staged = f
        .api(
            Method::POST,
            "/api/v1/promotions",
            ci,
            json!({"repository": REPO, "reference": image.digest(), "to": "staging", "tag": tag, "reason": "release"}),
        )
        .await;
    assert_eq!(staged.status, StatusCode::CREATED, "{:?}", staged.body);
    assert_eq!(staged.json()["status"], "promoted", "{}", staged.json());
    let pending = f
        .api(
            Method::POST,
            "/api/v1/promotions",
            ci,
            json!({"repository": STAGING, "reference": image.digest(), "to": "prod", "tag": tag, "reason": "release"}),
        )
        .await;
    assert_eq!(pending.status, StatusCode::CREATED, "{:?}", pending.body);
    assert_eq!(pending.json()["status"], "pending", "{}", pending.json());
    assert_eq!(pending.json()["report"]["approvals"]["missing"], 2);
    (image, pending.json()["id"].as_str().unwrap().to_owned())
}

/// The tags of `repo`; empty when the repository does not exist.
async fn tags(f: &Fixture, repo: &str) -> Vec<String> {
    let reply = f.app.get(&format!("/v2/{repo}/tags/list")).await;
    if reply.status == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["tags"]
        .as_array()
        .map_or_else(Vec::new, |t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
}

async fn tagged_digest(f: &Fixture, repo: &str, tag: &str) -> String {
    let reply = f.app.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{repo}:{tag}: {:?}", reply.body);
    reply.header("docker-content-digest").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_concurrent_promotes_of_one_digest_make_one_promotion() {
    let f = Fixture::new("").await;
    let image = pushed(&f, b"payments race 1.0", "1.0").await;
    let ci = f.tester_token().await;

    let requests = (0..50).map(|_| promote_request(&ci, &image.digest(), REPO, "staging", "1.0")).collect();
    let replies = fire(&f.app.router, requests, &[]).await;
    assert_statuses(&replies, &[StatusCode::OK, StatusCode::CREATED]);

    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert_eq!(created.len(), 1, "exactly one request opens the promotion");
    let id = created[0].json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0].json()["status"], "promoted", "{}", created[0].json());
    for reply in &replies {
        let body = reply.json();
        assert_eq!(body["id"], id.as_str(), "every reply names the one promotion: {body}");
        assert_eq!(body["created"], reply.status == StatusCode::CREATED, "{body}");
        // A duplicate that lands between the open and the commit sees it still pending: the
        // documented idempotent reply returns the promotion as it stands.
        let status = body["status"].as_str().unwrap();
        assert!(status == "promoted" || status == "pending", "{body}");
    }
    assert_eq!(status_of(&f, &ci, &id).await["status"], "promoted");

    let log = events(&f).await;
    assert_eq!(promotion_events(&log, "promotion.request", &id).len(), 1);
    assert_eq!(promotion_events(&log, "promotion.commit", &id).len(), 1);
    let requests: Vec<&Value> = log.iter().filter(|e| e["type"] == "promotion.request").collect();
    assert_eq!(requests.len(), 1, "no other promotion was opened: {requests:?}");
    assert!(log.iter().all(|e| e["type"] != "promotion.deny"));
    let created_tags = tag_creates(&log, STAGING, "1.0");
    assert_eq!(created_tags.len(), 1, "{created_tags:?}");
    assert_eq!(created_tags[0]["subject"]["digest"], image.digest().as_str());
    assert_eq!(created_tags[0]["details"]["promotion"], id.as_str());
    assert_eq!(tagged_digest(&f, STAGING, "1.0").await, image.digest());

    let listed = f.api(Method::GET, &format!("/api/v1/promotions?target={STAGING}"), &ci, Value::Null).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_approvals_commit_once() {
    let f = Fixture::new("").await;
    let ci = f.tester_token().await;
    let (image, id) = pending_in_prod(&f, &ci, b"payments race 2.0", "2.0").await;

    let names = ["ann", "ben", "cat", "dan", "eve", "fay"];
    let mut tokens = Vec::new();
    for name in names {
        let secret = f.user(name, &["release-approver"]).await;
        tokens.push(f.user_token(name, &secret).await);
    }
    let replies = fire(&f.app.router, tokens.iter().map(|t| approve_request(t, &id)).collect(), &[]).await;
    assert_statuses(&replies, &[StatusCode::OK, StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY]);

    // Only the approval that commits reports `promoted`; the others saw it pending, or lost the
    // commit to it and were told it is no longer pending.
    let promoted: Vec<&Reply> =
        replies.iter().filter(|r| r.status == StatusCode::OK && r.json()["status"] == "promoted").collect();
    assert_eq!(promoted.len(), 1, "one approval commits: {:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
    for reply in replies.iter().filter(|r| r.status == StatusCode::OK) {
        let status = reply.json()["status"].clone();
        assert!(status == "pending" || status == "promoted", "{}", reply.json());
    }

    let view = status_of(&f, &ci, &id).await;
    assert_eq!(view["status"], "promoted", "{view}");
    let log = events(&f).await;
    let commits = promotion_events(&log, "promotion.commit", &id);
    assert_eq!(commits.len(), 1, "{commits:?}");
    let approves = promotion_events(&log, "promotion.approve", &id);
    assert!((2..=6).contains(&approves.len()), "{} approvals logged", approves.len());
    // Every approval logged is stored, and every stored approval was logged.
    assert_eq!(view["approvals"].as_array().unwrap().len(), approves.len(), "{view}");
    let approvers = commits[0]["details"]["approvers"].as_array().unwrap();
    assert!(approvers.len() >= 2, "{approvers:?}");
    assert_eq!(tagged_digest(&f, PROD, "2.0").await, image.digest());

    // The signed release record names at least two distinct approvers, and is the one the
    // commit event names.
    let record = view["release_record"].as_str().unwrap().to_owned();
    assert_eq!(commits[0]["details"]["release_record"], record.as_str());
    let key = f.app.get("/api/v1/release-key").await.json();
    let key = airlock_dsse::PublicKey::from_pem(key["pem"].as_str().unwrap()).unwrap();
    let manifest = f.app.get(&format!("/v2/{PROD}/manifests/{record}")).await.json();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let envelope = f.app.get(&format!("/v2/{PROD}/blobs/{layer}")).await.body;
    let verified = airlock_core::promotion::record::verify_record(
        &envelope,
        &key,
        &Digest::parse(&image.digest()).unwrap(),
        "prod",
    )
    .unwrap();
    let mut signed: Vec<&str> =
        verified.predicate["approvals"].as_array().unwrap().iter().map(|a| a["approver"].as_str().unwrap()).collect();
    assert!(signed.len() >= 2, "{signed:?}");
    assert!(signed.iter().all(|a| names.contains(a)), "{signed:?}");
    let listed = signed.len();
    signed.sort_unstable();
    signed.dedup();
    assert_eq!(signed.len(), listed, "approvers are distinct");
    assert_eq!(verified.log_index, view["log_index"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn reject_racing_the_final_approval_has_one_winner() {
    let f = Fixture::new("").await;
    let ci = f.tester_token().await;
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "erin"] {
        let secret = f.user(name, &["release-approver"]).await;
        tokens.push(f.user_token(name, &secret).await);
    }
    let [alice, bob, erin] = [&tokens[0], &tokens[1], &tokens[2]];

    // Hold one side back now and then, so both orders happen: (approve, reject) delays in ms.
    let skews: [[u64; 2]; 7] = [[0, 0], [0, 0], [0, 5], [5, 0], [0, 20], [20, 0], [0, 80]];
    let mut outcomes = Vec::new();
    for (round, skew) in skews.iter().enumerate() {
        let tag = format!("3.{round}");
        let (image, id) = pending_in_prod(&f, &ci, format!("payments race {tag}").as_bytes(), &tag).await;
        let first = f.approve(alice, &id).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(first.json()["report"]["approvals"]["missing"], 1);

        let replies = fire(&f.app.router, vec![approve_request(bob, &id), reject_request(erin, &id)], skew).await;
        assert_statuses(&replies, &[StatusCode::OK, StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY]);
        let (approve, reject) = (&replies[0], &replies[1]);
        let final_status = status_of(&f, &ci, &id).await["status"].as_str().unwrap().to_owned();
        let log = events(&f).await;
        let commits = promotion_events(&log, "promotion.commit", &id).len();
        let rejects = promotion_events(&log, "promotion.reject", &id).len();
        let context = format!(
            "round {round}: final {final_status}; approve {} {:?}; reject {} {:?}",
            approve.status, approve.body, reject.status, reject.body
        );
        match final_status.as_str() {
            "promoted" => {
                assert_eq!(approve.status, StatusCode::OK, "{context}");
                assert_eq!(approve.json()["status"], "promoted", "{context}");
                assert_eq!(reject.status, StatusCode::CONFLICT, "{context}");
                assert_eq!((commits, rejects), (1, 0), "{context}");
                assert_eq!(tagged_digest(&f, PROD, &tag).await, image.digest(), "{context}");
            }
            "rejected" => {
                assert_eq!(reject.status, StatusCode::OK, "{context}");
                assert_eq!(reject.json()["status"], "rejected", "{context}");
                assert!(
                    [StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY].contains(&approve.status),
                    "{context}"
                );
                assert_eq!((commits, rejects), (0, 1), "{context}");
                assert!(!tags(&f, PROD).await.contains(&tag), "{context}");
                assert!(tag_creates(&log, PROD, &tag).is_empty(), "{context}");
            }
            other => panic!("neither side won ({other}); {context}"),
        }
        outcomes.push(final_status);
    }
    // Which orders happened depends on scheduling; the invariant above held for each.
    eprintln!("reject-vs-approve outcomes: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_digests_raced_to_one_tag() {
    let f = Fixture::new("").await;
    let ci = f.tester_token().await;
    let one = pushed(&f, b"payments race 4.0 one", "4.0-one").await;
    let two = pushed(&f, b"payments race 4.0 two", "4.0-two").await;

    let requests = vec![
        promote_request(&ci, &one.digest(), REPO, "staging", "4.0"),
        promote_request(&ci, &two.digest(), REPO, "staging", "4.0"),
    ];
    let replies = fire(&f.app.router, requests, &[]).await;
    assert_statuses(&replies, &[StatusCode::CREATED, StatusCode::CONFLICT]);
    let promoted: Vec<usize> = (0..2)
        .filter(|&i| replies[i].status == StatusCode::CREATED && replies[i].json()["status"] == "promoted")
        .collect();
    assert_eq!(promoted.len(), 1, "exactly one commits: {:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
    let (won, lost) = if promoted[0] == 0 { (0, 1) } else { (1, 0) };
    let (winner, loser) = ([&one, &two][won], [&one, &two][lost]);
    assert_eq!(replies[won].json()["digest"], winner.digest().as_str());
    // The other either lost the commit race (409, the tag is write-once) or was evaluated after
    // the commit and denied at once by the tag gate.
    if replies[lost].status == StatusCode::CONFLICT {
        let message = replies[lost].error_message();
        assert!(message.contains("write-once") && message.contains(&winner.digest()), "{message}");
    } else {
        assert_eq!(replies[lost].json()["status"], "denied", "{}", replies[lost].json());
        assert_eq!(crate::promotion::findings(&replies[lost]), ["tag-taken"]);
    }

    // The tag is the winner's, as the one `registry.tag.create` for it says.
    let log = events(&f).await;
    let created = tag_creates(&log, STAGING, "4.0");
    assert_eq!(created.len(), 1, "{created:?}");
    let logged = created.last().unwrap()["subject"]["digest"].as_str().unwrap().to_owned();
    assert_eq!(tagged_digest(&f, STAGING, "4.0").await, logged);
    assert_eq!(logged, winner.digest());

    let listed = f.api(Method::GET, &format!("/api/v1/promotions?target={STAGING}"), &ci, Value::Null).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let won_record = listed.iter().find(|p| p["digest"] == winner.digest().as_str()).unwrap();
    let lost_record = listed.iter().find(|p| p["digest"] == loser.digest().as_str()).unwrap();
    assert_eq!(won_record["status"], "promoted");
    let lost_id = lost_record["id"].as_str().unwrap().to_owned();
    if replies[lost].status == StatusCode::CONFLICT {
        let message = replies[lost].error_message();
        assert!(message.contains(&lost_id), "the refusal names the losing promotion: {message}");
    }
    assert!(promotion_events(&log, "promotion.commit", &lost_id).is_empty());

    // The loser is closed as denied, with the reason logged, so it does not wait forever.
    assert_eq!(lost_record["status"], "denied", "{lost_record}");
    assert_eq!(promotion_events(&log, "promotion.deny", &lost_id).len(), 1);
    // Asking again is denied at once by the tag gate: a new promotion, never committed.
    let again = f
        .api(
            Method::POST,
            "/api/v1/promotions",
            &ci,
            json!({"repository": REPO, "reference": loser.digest(), "to": "staging", "tag": "4.0", "reason": "release"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_ne!(again.json()["id"], lost_id.as_str());
    assert_eq!(again.json()["status"], "denied");
    assert_eq!(crate::promotion::findings(&again), ["tag-taken"]);
    assert_eq!(tagged_digest(&f, STAGING, "4.0").await, winner.digest());
}

/// An access decision that lets only artifacts built from `github.com/acme/payments` through,
/// and moves the tag to another image while it decides: the worst moment for a tag to move.
struct MovesTheTagWhileDeciding<'a> {
    f: &'a Fixture,
    other: Image,
    seen: std::sync::Mutex<Vec<Option<String>>>,
}

#[async_trait::async_trait]
impl airlock_core::promotion::AccessCheck for MovesTheTagWhileDeciding<'_> {
    fn reads_origin(&self) -> bool {
        true
    }

    async fn check(
        &self,
        origin: Option<airlock_core::promotion::Origin>,
    ) -> Result<(), airlock_core::promotion::PromotionError> {
        let source = origin.and_then(|o| o.source);
        self.seen.lock().unwrap().push(source.clone());
        let pushed = self.f.app.push_image(REPO, &self.other, "13.0").await;
        assert_eq!(pushed.status, StatusCode::CREATED, "{:?}", pushed.body);
        match source.as_deref() {
            Some("github.com/acme/payments") => Ok(()),
            _ => Err(airlock_core::promotion::PromotionError::Refused { message: "not our source".to_owned() }),
        }
    }
}

#[tokio::test]
async fn a_tag_moved_during_the_access_check_does_not_change_what_is_promoted() {
    let f = Fixture::new("").await;
    // `13.0` names an image with trusted provenance from the allowed source; the other image
    // has none, so the decision would refuse it.
    let allowed = Image::new(&[("app", b"payments 13.0")]);
    f.app.push_image(REPO, &allowed, "13.0").await;
    f.provenance(&allowed, "ci-bot").await;
    let check = MovesTheTagWhileDeciding {
        f: &f,
        other: Image::new(&[("app", b"payments 13.0, rebuilt elsewhere")]),
        seen: std::sync::Mutex::default(),
    };
    let caller = airlock_core::promotion::Caller {
        principal: airlock_model::PrincipalId::parse("ci-bot").unwrap(),
        kind: airlock_model::PrincipalKind::ServiceAccount,
        actor: airlock_core::audit::Actor::system(),
        mfa_fresh: false,
    };
    let request = airlock_core::promotion::PromoteRequest {
        source: airlock_model::RepoName::parse(REPO).unwrap(),
        reference: airlock_model::Reference::parse("13.0").unwrap(),
        target: airlock_model::StageName::parse("staging").unwrap(),
        tag: None,
        reason: "release".to_owned(),
        break_glass: false,
    };
    let view = f.app.app.state.promoter.request(&caller, &check, &request).await.unwrap();
    // One decision, on the allowed image, and the promotion is of that image.
    assert_eq!(*check.seen.lock().unwrap(), [Some("github.com/acme/payments".to_owned())]);
    assert_eq!(view.record.digest.as_str(), allowed.digest(), "{:?}", view.record);
    let moved = f.app.get(&format!("/v2/{REPO}/manifests/13.0")).await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_ne!(Digest::of(&moved.body).as_str(), allowed.digest(), "the tag did move meanwhile");
}
