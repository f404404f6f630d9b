//! The probes: each times one store operation many times over the loaded store and checks every
//! answer, so a figure is never made of failures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use airlock_core::ports::{LogStore, ManifestIndex, PromotionCommitOutcome, PromotionStore, TrustStore};
use airlock_model::Timestamp;
use airlock_store::PostgresStore;
use airlock_test_support::conformance;
use airlock_tlog::{Hash, NodeId};
use sqlx::PgPool;

use crate::fixture::Fixture;
use crate::records::{Rng, repo, repo_name};

/// Names per tags-list or catalog page: what a client asking `?n=100` gets.
pub const PAGE: u32 = 100;

/// The p50 and p99 of one figure, and for a page the mean number of names it held.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub p50: Duration,
    pub p99: Duration,
    pub names: Option<f64>,
}

impl Figure {
    pub fn of(mut samples: Vec<Duration>) -> Figure {
        assert!(!samples.is_empty(), "a figure needs samples");
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
        Figure { p50: at(0.50), p99: at(0.99), names: None }
    }
}

/// The nodes `ids` from the store, keyed for `airlock_tlog`'s lookups; a missing one fails.
async fn nodes(store: &PostgresStore, ids: &[NodeId]) -> HashMap<NodeId, Hash> {
    let found = store.log_nodes(ids).await.expect("read log nodes");
    ids.iter()
        .zip(found)
        .map(|(id, hash)| match hash {
            Some(hash) => (*id, hash),
            None => crate::fail(&format!("log node {}/{} is not stored", id.level, id.index)),
        })
        .collect()
}

/// An inclusion proof of a random leaf, as `GET /api/v1/log/proof/inclusion` builds it: the
/// log's size, the plan, its nodes in one read, the proof assembled. Each proof is then checked
/// against the stored leaf and the root, outside the time.
pub async fn inclusion(store: &PostgresStore, samples: usize, rng: &mut Rng) -> Figure {
    let size = store.log_size().await.expect("log size");
    let roots = airlock_tlog::root_nodes(size);
    let found = nodes(store, &roots).await;
    let root = airlock_tlog::root(size, |id| found.get(&id).copied()).expect("the root folds");
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let index = rng.below(size);
        let started = Instant::now();
        let size = store.log_size().await.expect("log size");
        let plan = airlock_tlog::inclusion_plan(index, size).expect("a plan");
        let ids: Vec<NodeId> = plan.iter().flatten().copied().collect();
        let found = nodes(store, &ids).await;
        let proof = airlock_tlog::assemble(&plan, |id| found.get(&id).copied()).expect("the proof assembles");
        times.push(started.elapsed());
        let leaf = store.log_entries(&[index]).await.expect("read the leaf").pop().flatten();
        let leaf = leaf.unwrap_or_else(|| crate::fail(&format!("log entry {index} is not stored")));
        if let Err(e) = airlock_tlog::verify_inclusion(&leaf.leaf_hash, index, size, &proof, &root) {
            crate::fail(&format!("the inclusion proof of entry {index} in {size} does not verify: {e}"));
        }
    }
    Figure::of(times)
}

/// One promotion commit per fixture, each with its seal (release record and summary) and tag
/// write; each must commit.
pub async fn commits(store: &PostgresStore, fixtures: &[Fixture]) -> Figure {
    let mut times = Vec::with_capacity(fixtures.len());
    for fixture in fixtures {
        let commit = fixture.commit();
        let promotion = &fixture.promotion;
        let seal = |index: u64| Ok(conformance::sealed(promotion, index));
        let now = Timestamp::from_millis(promotion.created_at.as_millis() + 60_000);
        let started = Instant::now();
        let outcome = store.commit_promotion(&commit, &seal, now).await.expect("commit a promotion");
        times.push(started.elapsed());
        if !matches!(outcome, PromotionCommitOutcome::Committed { .. }) {
            crate::fail(&format!("promotion `{}` did not commit: {outcome:?}", promotion.id));
        }
    }
    Figure::of(times)
}

/// The name in the middle of an ordered list (`count_sql` counts it, `nth_sql` reads its `$2`-th
/// name, both taking `param` as `$1`), for a `last` that leaves names after it; `None` when the
/// list holds fewer than two.
async fn middle(pool: &PgPool, count_sql: &str, nth_sql: &str, param: i64) -> Option<String> {
    let n: i64 = sqlx::query_scalar(count_sql).bind(param).fetch_one(pool).await.expect("count");
    if n < 2 {
        return None;
    }
    sqlx::query_scalar(nth_sql).bind(param).bind((n - 1) / 2).fetch_optional(pool).await.expect("nth name")
}

/// A tags-list page (`GET /v2/<name>/tags/list?n=100&last=…`) starting in the middle of a random
/// loaded repository's tags; each page must hold tags.
pub async fn tags(store: &PostgresStore, pool: &PgPool, repos: u64, samples: usize, rng: &mut Rng) -> Figure {
    let mut picks = Vec::new();
    for _ in 0..repos.min(20) {
        let name = repo_name("dev", rng.below(repos));
        let id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(&name)
            .fetch_one(pool)
            .await
            .expect("a loaded repository");
        let last = middle(
            pool,
            "SELECT count(*) FROM tags WHERE repo_id = $1",
            "SELECT name FROM tags WHERE repo_id = $1 ORDER BY name OFFSET $2 LIMIT 1",
            id,
        )
        .await;
        if let Some(last) = last {
            picks.push((repo(&name), last));
        }
    }
    if picks.is_empty() {
        crate::fail("no loaded repository holds tags");
    }
    let mut times = Vec::with_capacity(samples);
    let mut names = 0usize;
    for n in 0..samples {
        let (name, last) = &picks[n % picks.len()];
        let started = Instant::now();
        let page = store.tags(name, Some(last), PAGE).await.expect("list tags");
        times.push(started.elapsed());
        match page {
            Some(page) if !page.is_empty() => names += page.len(),
            other => crate::fail(&format!("the tags of `{name}` after `{last}` came back as {other:?}")),
        }
    }
    Figure { names: Some(names as f64 / samples.max(1) as f64), ..Figure::of(times) }
}

/// A catalog page (`GET /v2/_catalog?n=100&last=…`) starting at the middle repository; each page
/// must hold names.
pub async fn catalog(store: &PostgresStore, pool: &PgPool, samples: usize) -> Figure {
    let last = middle(
        pool,
        "SELECT count(*) FROM repositories WHERE id > $1",
        "SELECT name FROM repositories WHERE id > $1 ORDER BY name OFFSET $2 LIMIT 1",
        0,
    )
    .await
    .unwrap_or_else(|| crate::fail("no repository is stored"));
    let mut times = Vec::with_capacity(samples);
    let mut names = 0usize;
    for _ in 0..samples {
        let started = Instant::now();
        let page = store.catalog(Some(&last), PAGE).await.expect("read the catalog");
        times.push(started.elapsed());
        if page.is_empty() {
            crate::fail(&format!("the catalog after `{last}` is empty"));
        }
        names += page.len();
    }
    Figure { names: Some(names as f64 / samples.max(1) as f64), ..Figure::of(times) }
}

/// The attestations about a fixture's image, as gathering evidence for a decision reads them;
/// each read must find all four.
pub async fn evidence(store: &PostgresStore, fixtures: &[Fixture], samples: usize) -> Figure {
    let mut times = Vec::with_capacity(samples);
    for n in 0..samples {
        let fixture = &fixtures[n % fixtures.len()];
        let started = Instant::now();
        let found = store.attestations(&fixture.source, &fixture.image.digest).await.expect("read attestations");
        times.push(started.elapsed());
        if found.len() != fixture.attestations.len() {
            crate::fail(&format!(
                "`{}@{}` has {} attestations, not {}",
                fixture.source,
                fixture.image.digest,
                found.len(),
                fixture.attestations.len()
            ));
        }
    }
    Figure::of(times)
}
