//! The metadata store conformance suite: every backend (SQLite today, PostgreSQL later) must pass
//! each check. A backend's test binary instantiates them all with [`crate::store_conformance!`].
//!
//! The checks talk to the store only through `airlock_core::ports`, so they describe the
//! contract, not an implementation.

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    ApprovalRecord, EngineManifest, FreezeRecord, GrantKind, GrantRecord, GrantStatus, LoginFailures, MetadataStore,
    NewAttestation, NewManifest, PrincipalChange, PrincipalRecord, PromotionCommit, PromotionCommitOutcome,
    PromotionFilter, PromotionRecord, PromotionStatus, PutManifestOutcome, ReviewRecord, Sealed, StoredCheckpoint,
    StoredRoot, TagMode, TagWrite, UploadRecord, Verdict, WaiverRecord, WaiverState,
};
use airlock_model::{Digest, PrincipalId, PrincipalKind, RepoName, StageName, Tag, Timestamp, UploadId};
use airlock_tlog::{CompactRange, leaf_hash};
use bytes::Bytes;

mod control;
pub mod coverage;
mod identity;
mod log;
mod login;
mod promotion;
mod registry;
mod trust;

pub use control::*;
pub use identity::*;
pub use log::*;
pub use login::*;
pub use promotion::*;
pub use registry::*;
pub use trust::*;

/// Instantiates every conformance check as a `#[tokio::test]`.
///
/// - `store_conformance!(make())`: `make()` is a future yielding `(guard, store)`, a fresh, empty
///   store and whatever must live as long as it (a temporary directory, a database).
/// - `store_conformance!(optional make)`: for a backend on an external service, `make` is called
///   with the case's name and yields `Option<(guard, store)>`; `None` skips the case (the service
///   is not configured, see [`crate::services::service`]).
#[macro_export]
macro_rules! store_conformance {
    (optional $make:expr) => {
        $crate::store_conformance!(@all optional $make);
    };
    ($make:expr) => {
        $crate::store_conformance!(@all always $make);
    };
    (@all $mode:ident $make:expr) => {
        $crate::store_conformance!(@cases $mode $make;
            blobs_are_visible_only_where_linked,
            mount_needs_a_holder,
            quarantine_hides_and_reinsert_heals,
            blob_sizes_are_read_together_where_linked,
            manifest_references_are_checked,
            tags_move_in_pushable_stages_only,
            deleting_a_manifest_removes_its_tags,
            tags_and_catalog_paginate,
            referrers_filter_by_artifact_type,
            uploads_live_until_deleted_or_idle,
            closing_an_upload_with_its_blob,
            blob_totals_count_live_blobs,
            log_appends_are_sequential_and_durable,
            state_changes_and_their_events_commit_together,
            log_nodes_reproduce_the_root,
            log_entries_are_read_by_index_in_the_order_asked,
            granting_rows_store_the_index_of_their_event,
            checkpoints_are_kept_by_size,
            trust_roots_keep_every_version,
            cached_state_versions_rise_with_roots_and_roles,
            attestations_are_recorded_with_their_manifest,
            principals_change_with_their_epoch,
            grants_move_once_and_revocation_raises_the_epoch,
            release_bundles_attach_once_per_promotion,
            scans_and_pages_stay_in_bounds,
            roles_are_defined_once,
            login_failures_count_and_are_forgotten,
            totp_steps_are_spent_once,
            grant_decisions_race_once,
            promotions_open_once_per_key_and_list_newest_first,
            approvals_count_once_per_person,
            evaluations_update_only_pending_promotions,
            closing_a_promotion_races_once,
            promotion_commits_link_seal_and_log_together,
            promotion_commits_race_once,
            promotion_commits_refuse_what_the_source_lacks,
            promotion_tag_writes_are_conditional,
            promotion_tag_writes_race_once,
            tags_move_only_from_where_they_stand,
            unfreeze_requests_and_lifts_race_once,
            waiver_decisions_race_once,
            break_glass_reviews_close_once,
        );
    };
    (@cases always $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $make.await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
    (@cases optional $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, store)) = $make(stringify!($name)).await else { return };
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).expect("valid repository name")
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).expect("valid tag")
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn actor() -> Actor {
    Actor::anonymous("conformance")
}

/// A stored manifest's log index, or a panic naming what happened instead.
fn stored(outcome: PutManifestOutcome) -> u64 {
    match outcome {
        PutManifestOutcome::Stored { log_index } => log_index,
        other => panic!("expected the manifest to be stored, got {other:?}"),
    }
}

fn manifest(body: &str, blobs: &[&Digest], subject: Option<&Digest>, artifact_type: Option<&str>) -> NewManifest {
    NewManifest {
        digest: Digest::of(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        artifact_type: artifact_type.map(str::to_owned),
        subject: subject.cloned(),
        annotations_json: "{}".to_owned(),
        required_blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        required_manifests: Vec::new(),
        attestation: None,
    }
}

async fn blob(store: &dyn MetadataStore, repo_name: &str, bytes: &'static [u8]) -> Digest {
    let digest = Digest::of(bytes);
    store
        .insert_blob(&repo(repo_name), &digest, bytes.len() as u64, Some(Bytes::from_static(bytes)), None, at(1))
        .await
        .expect("insert blob");
    digest
}

fn kinds(store_events: &[serde_json::Value]) -> Vec<String> {
    store_events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

async fn events(store: &dyn MetadataStore, from: u64) -> Vec<serde_json::Value> {
    let size = store.log_size().await.unwrap();
    store
        .log_leaves(from, size)
        .await
        .unwrap()
        .iter()
        .map(|l| serde_json::from_slice(&l.data).expect("leaves are JSON"))
        .collect()
}

/// The index of the only event of `kind` in the log.
async fn index_of(store: &dyn MetadataStore, kind: EventKind) -> u64 {
    let size = store.log_size().await.unwrap();
    let leaves = store.log_leaves(0, size).await.unwrap();
    let found: Vec<u64> = leaves
        .iter()
        .filter(|l| {
            serde_json::from_slice::<serde_json::Value>(&l.data).unwrap()["type"] == serde_json::json!(kind.as_str())
        })
        .map(|l| l.index)
        .collect();
    assert_eq!(found.len(), 1, "one `{}` event", kind.as_str());
    found[0]
}

/// An event of `kind` by the suite's actor, with nothing else in it.
fn event(kind: EventKind) -> Event {
    Event::allowed(kind, &actor(), at(1), Subject::default())
}

/// The winner of two racing conditional updates (0 for the first, 1 for the second) and what it
/// returned, after checking that exactly one of them won.
fn one_winner<T: std::fmt::Debug>(first: Option<T>, second: Option<T>) -> (usize, T) {
    match (first, second) {
        (Some(won), None) => (0, won),
        (None, Some(won)) => (1, won),
        other => panic!("exactly one of two updates from the same state must win, got {other:?}"),
    }
}

/// The log entry at `index`, parsed.
async fn entry(store: &dyn MetadataStore, index: u64) -> serde_json::Value {
    let leaf = store.log_entries(&[index]).await.unwrap().pop().flatten();
    let leaf = leaf.unwrap_or_else(|| panic!("log entry {index} is stored"));
    serde_json::from_slice(&leaf.data).expect("leaves are JSON")
}
