//! Which conformance cases exercise each store port method, and the check that keeps that list
//! honest: every method of every trait the metadata store is made of (read from the traits'
//! source in `crates/core/src/ports/`) has at least one case, and each case named calls it.

/// For each port method, as `Trait::method`, the cases that call it. A new port method fails
/// `every_port_method_has_a_case` until a case for it is written and named here.
pub const CASES: &[(&str, &[&str])] = &[
    ("BlobIndex::blob_in_repo", &["blobs_are_visible_only_where_linked", "quarantine_hides_and_reinsert_heals"]),
    ("BlobIndex::blob_sizes_in_repo", &["blob_sizes_are_read_together_where_linked"]),
    ("BlobIndex::insert_blob", &["closing_an_upload_with_its_blob"]),
    ("BlobIndex::mount_blob", &["mount_needs_a_holder", "quarantine_hides_and_reinsert_heals"]),
    (
        "BlobIndex::unlink_blob",
        &["blobs_are_visible_only_where_linked", "state_changes_and_their_events_commit_together"],
    ),
    ("BlobIndex::blobs_after", &["quarantine_hides_and_reinsert_heals", "scans_and_pages_stay_in_bounds"]),
    ("BlobIndex::quarantine_blob", &["quarantine_hides_and_reinsert_heals", "blob_totals_count_live_blobs"]),
    ("BlobIndex::blob_totals", &["blob_totals_count_live_blobs"]),
    ("ManifestIndex::put_manifest", &["manifest_references_are_checked", "tags_move_in_pushable_stages_only"]),
    ("ManifestIndex::manifest_by_digest", &["manifest_references_are_checked", "deleting_a_manifest_removes_its_tags"]),
    ("ManifestIndex::manifest_by_tag", &["tags_move_in_pushable_stages_only", "deleting_a_manifest_removes_its_tags"]),
    ("ManifestIndex::delete_manifest", &["deleting_a_manifest_removes_its_tags"]),
    ("ManifestIndex::delete_tag", &["deleting_a_manifest_removes_its_tags"]),
    ("ManifestIndex::tags", &["tags_and_catalog_paginate"]),
    ("ManifestIndex::catalog", &["tags_and_catalog_paginate", "scans_and_pages_stay_in_bounds"]),
    ("ManifestIndex::referrers", &["referrers_filter_by_artifact_type"]),
    ("UploadIndex::create_upload", &["uploads_live_until_deleted_or_idle"]),
    ("UploadIndex::upload", &["uploads_live_until_deleted_or_idle", "scans_and_pages_stay_in_bounds"]),
    ("UploadIndex::touch_upload", &["uploads_live_until_deleted_or_idle", "scans_and_pages_stay_in_bounds"]),
    ("UploadIndex::delete_upload", &["uploads_live_until_deleted_or_idle", "scans_and_pages_stay_in_bounds"]),
    ("UploadIndex::uploads_by_client", &["uploads_live_until_deleted_or_idle"]),
    ("UploadIndex::idle_uploads", &["uploads_live_until_deleted_or_idle", "scans_and_pages_stay_in_bounds"]),
    ("LogStore::append_events", &["log_appends_are_sequential_and_durable"]),
    ("LogStore::log_size", &["log_appends_are_sequential_and_durable"]),
    ("LogStore::log_nodes", &["log_nodes_reproduce_the_root"]),
    ("LogStore::log_leaves", &["log_appends_are_sequential_and_durable", "scans_and_pages_stay_in_bounds"]),
    ("LogStore::log_entries", &["log_entries_are_read_by_index_in_the_order_asked"]),
    ("LogStore::put_checkpoint", &["checkpoints_are_kept_by_size"]),
    ("LogStore::latest_checkpoint", &["checkpoints_are_kept_by_size"]),
    ("TrustStore::latest_root", &["trust_roots_keep_every_version"]),
    ("TrustStore::root_version", &["trust_roots_keep_every_version"]),
    ("TrustStore::put_root", &["trust_roots_keep_every_version"]),
    ("TrustStore::attestations", &["attestations_are_recorded_with_their_manifest"]),
    ("CachedState::cached_state_version", &["cached_state_versions_rise_with_roots_and_roles"]),
    ("CachedState::watch_cached_state", &["cached_state_versions_rise_with_roots_and_roles"]),
    ("CachedState::cached_state_with_principal", &["cached_state_versions_rise_with_roots_and_roles"]),
    ("IdentityStore::principal", &["principals_change_with_their_epoch"]),
    ("IdentityStore::principal_granted", &["grants_move_once_and_revocation_raises_the_epoch"]),
    ("IdentityStore::principals", &["principals_change_with_their_epoch"]),
    ("IdentityStore::create_principal", &["principals_change_with_their_epoch"]),
    (
        "IdentityStore::change_principal",
        &["principals_change_with_their_epoch", "grants_move_once_and_revocation_raises_the_epoch"],
    ),
    ("IdentityStore::create_grant", &["grants_move_once_and_revocation_raises_the_epoch"]),
    ("IdentityStore::grant", &["grants_move_once_and_revocation_raises_the_epoch", "grant_decisions_race_once"]),
    ("IdentityStore::grants", &["grants_move_once_and_revocation_raises_the_epoch", "grant_decisions_race_once"]),
    ("IdentityStore::decide_grant", &["grants_move_once_and_revocation_raises_the_epoch", "grant_decisions_race_once"]),
    ("IdentityStore::defined_roles", &["roles_are_defined_once"]),
    ("IdentityStore::define_role", &["roles_are_defined_once"]),
    ("LoginStore::count_login_failures", &["login_failures_count_and_are_forgotten"]),
    ("LoginStore::login_failures", &["login_failures_count_and_are_forgotten"]),
    ("LoginStore::clear_login_failures", &["login_failures_count_and_are_forgotten"]),
    ("LoginStore::forget_login_failures", &["login_failures_count_and_are_forgotten"]),
    ("LoginStore::spend_totp_step", &["totp_steps_are_spent_once"]),
    ("PromotionStore::open_promotion", &["promotions_open_once_per_key_and_list_newest_first"]),
    (
        "PromotionStore::promotion",
        &["promotions_open_once_per_key_and_list_newest_first", "closing_a_promotion_races_once"],
    ),
    ("PromotionStore::promotions", &["promotions_open_once_per_key_and_list_newest_first"]),
    ("PromotionStore::approvals", &["approvals_count_once_per_person", "granting_rows_store_the_index_of_their_event"]),
    (
        "PromotionStore::add_approval",
        &["approvals_count_once_per_person", "granting_rows_store_the_index_of_their_event"],
    ),
    ("PromotionStore::update_evaluation", &["evaluations_update_only_pending_promotions"]),
    ("PromotionStore::close_promotion", &["closing_a_promotion_races_once"]),
    (
        "PromotionStore::commit_promotion",
        &[
            "promotion_commits_link_seal_and_log_together",
            "promotion_commits_race_once",
            "promotion_commits_refuse_what_the_source_lacks",
            "promotion_tag_writes_are_conditional",
            "promotion_tag_writes_race_once",
        ],
    ),
    ("PromotionStore::pusher", &["promotion_commits_link_seal_and_log_together"]),
    ("PromotionStore::move_tag", &["tags_move_only_from_where_they_stand"]),
    ("ReleaseBundleStore::attach_release_bundle", &["release_bundles_attach_once_per_promotion"]),
    (
        "ControlStore::freeze",
        &["granting_rows_store_the_index_of_their_event", "unfreeze_requests_and_lifts_race_once"],
    ),
    (
        "ControlStore::freezes",
        &["granting_rows_store_the_index_of_their_event", "unfreeze_requests_and_lifts_race_once"],
    ),
    ("ControlStore::request_unfreeze", &["unfreeze_requests_and_lifts_race_once"]),
    ("ControlStore::lift_freeze", &["unfreeze_requests_and_lifts_race_once"]),
    ("ControlStore::create_waiver", &["waiver_decisions_race_once"]),
    ("ControlStore::waiver", &["waiver_decisions_race_once"]),
    ("ControlStore::waivers", &["waiver_decisions_race_once"]),
    ("ControlStore::decide_waiver", &["granting_rows_store_the_index_of_their_event", "waiver_decisions_race_once"]),
    ("ControlStore::reviews", &["break_glass_reviews_close_once"]),
    ("ControlStore::close_review", &["break_glass_reviews_close_once"]),
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Every `.rs` file directly in `dir`, by name.
    fn sources(dir: &Path) -> BTreeMap<String, String> {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
            .collect()
    }

    /// The lines of the block that opens with the line starting `opening`, up to the `}` closing
    /// it at the start of a line.
    fn block<'a>(text: &'a str, opening: &str) -> Option<Vec<&'a str>> {
        let mut lines = text.lines().skip_while(|l| !l.starts_with(opening));
        let first = lines.next()?;
        Some(std::iter::once(first).chain(lines.take_while(|l| *l != "}")).collect())
    }

    /// The traits `MetadataStore` is made of, from its declaration.
    fn store_traits(ports: &BTreeMap<String, String>) -> Vec<String> {
        let text = &ports["mod.rs"];
        let start = text.find("pub trait MetadataStore:").expect("`MetadataStore` is declared in ports/mod.rs");
        let rest = &text[start + "pub trait MetadataStore:".len()..];
        let bounds = &rest[..rest.find('{').expect("a trait body")];
        bounds.split('+').map(str::trim).filter(|b| !b.contains("::")).map(str::to_owned).collect()
    }

    /// `Trait::method` for every method declared in `name`'s block in any of `ports`.
    fn methods_of(ports: &BTreeMap<String, String>, name: &str) -> Vec<String> {
        let opening = format!("pub trait {name}:");
        let lines = ports
            .values()
            .find_map(|text| block(text, &opening))
            .unwrap_or_else(|| panic!("trait `{name}` is declared in crates/core/src/ports"));
        lines
            .iter()
            .filter_map(|l| {
                let l = l.trim_start();
                let signature = l.strip_prefix("async fn ").or_else(|| l.strip_prefix("fn "))?;
                let end = signature.find(['(', '<']).expect("a method's name ends at its parameters");
                Some(format!("{name}::{}", &signature[..end]))
            })
            .collect()
    }

    #[test]
    fn every_port_method_has_a_case() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let ports = sources(&root.join("../core/src/ports"));
        let traits = store_traits(&ports);
        assert!(traits.len() >= 9, "the store's traits were read: {traits:?}");
        let declared: BTreeSet<String> = traits.iter().flat_map(|t| methods_of(&ports, t)).collect();
        let listed: BTreeSet<String> = super::CASES.iter().map(|(m, _)| (*m).to_owned()).collect();
        assert_eq!(listed.len(), super::CASES.len(), "each method is listed once");
        let missing: Vec<_> = declared.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "port methods with no conformance case: {missing:?}; write one and list it in CASES"
        );
        let stale: Vec<_> = listed.difference(&declared).collect();
        assert!(stale.is_empty(), "CASES lists methods the ports no longer declare: {stale:?}");

        let suite = sources(&root.join("src/conformance"));
        let cases: BTreeMap<String, String> = suite
            .values()
            .flat_map(|text| {
                text.split("\npub async fn ").skip(1).map(|rest| {
                    let name = rest[..rest.find('(').unwrap()].to_owned();
                    let body = rest[..rest.find("\n}\n").unwrap_or(rest.len())].to_owned();
                    (name, body)
                })
            })
            .collect();
        let macro_text = block(&suite["mod.rs"], "macro_rules! store_conformance").expect("the suite's macro");
        let run: BTreeSet<&str> =
            macro_text.iter().map(|l| l.trim().trim_end_matches(',')).filter(|l| cases.contains_key(*l)).collect();
        let unrun: Vec<_> = cases.keys().filter(|c| !run.contains(c.as_str())).collect();
        assert!(unrun.is_empty(), "cases `store_conformance!` does not run: {unrun:?}");
        for (method, named) in super::CASES {
            assert!(!named.is_empty(), "`{method}` names no case");
            let call = format!(".{}(", method.rsplit("::").next().unwrap());
            for case in *named {
                let body = cases.get(*case).unwrap_or_else(|| panic!("`{method}` names `{case}`, which is no case"));
                assert!(body.contains(&call), "`{case}`, named for `{method}`, never calls it");
            }
        }
    }
}
