//! Grows the store in bulk: registry rows (repositories, blobs and their links, manifests, tags,
//! attestations) written with one `INSERT … SELECT FROM unnest(…)` per table and batch, exactly
//! the rows `insert_blob` and `put_manifest` write; and their log events, with the gate decisions
//! that come between pushes, appended through the store's own `LogStore::append_events`, thousands
//! per transaction.
//!
//! Why not `insert_blob` and `put_manifest` for every image: each is a transaction of its own (a
//! dozen statements and a commit). The bench prints the port's rate as it pushes its fixtures,
//! 530–660 manifests/s on two cores, so the million manifests of the top size would take about
//! half an hour, and their 1.6 million blobs as long again, where the bulk rows take under five
//! minutes with the whole log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use airlock_core::audit::Event;
use airlock_core::ports::LogStore;
use airlock_model::{Digest, Timestamp};
use airlock_store::PostgresStore;
use sqlx::PgPool;

use crate::records::{self, EMPTY_CONFIG, PREDICATES, repo, repo_name, tag};

/// One group of loaded records: 6 tagged images and 4 attestations of the first one (10
/// manifests), logged as 20 registry events and 80 gate decisions (100 log entries).
pub const GROUP_MANIFESTS: u64 = 10;
pub const GROUP_ENTRIES: u64 = 100;
const GROUP_IMAGES: u64 = 6;
const GROUP_DECISIONS: u64 = 80;
/// Groups per batch: 10,000 log entries, 1,000 manifests.
const BATCH_GROUPS: u64 = 100;
/// How often the loader says how far it got.
const REPORT_EVERY: Duration = Duration::from_secs(15);
/// The first loaded record's time; each group is a second later than the one before.
const EPOCH_MILLIS: i64 = 1_796_000_000_000;

/// The rows of one batch, column by column, as the unnest inserts bind them.
#[derive(Debug, Default)]
struct Rows {
    blob_digest: Vec<String>,
    blob_size: Vec<i64>,
    blob_inline: Vec<Option<Vec<u8>>>,
    blob_created: Vec<i64>,
    link_repo: Vec<i64>,
    link_digest: Vec<String>,
    link_created: Vec<i64>,
    m_repo: Vec<i64>,
    m_digest: Vec<String>,
    m_media_type: Vec<String>,
    m_body: Vec<Vec<u8>>,
    m_artifact_type: Vec<Option<String>>,
    m_subject: Vec<Option<String>>,
    m_created: Vec<i64>,
    tag_repo: Vec<i64>,
    tag_name: Vec<String>,
    tag_digest: Vec<String>,
    tag_updated: Vec<i64>,
    a_repo: Vec<i64>,
    a_manifest: Vec<String>,
    a_subject: Vec<String>,
    a_predicate: Vec<String>,
    a_envelope: Vec<Vec<u8>>,
    a_created: Vec<i64>,
}

impl Rows {
    fn blob(&mut self, repo_id: i64, digest: &Digest, size: u64, inline: Option<&[u8]>, now: i64) {
        self.blob_digest.push(digest.to_string());
        self.blob_size.push(i64::try_from(size).unwrap_or(i64::MAX));
        self.blob_inline.push(inline.map(<[u8]>::to_vec));
        self.blob_created.push(now);
        self.link(repo_id, digest, now);
    }

    fn link(&mut self, repo_id: i64, digest: &Digest, now: i64) {
        self.link_repo.push(repo_id);
        self.link_digest.push(digest.to_string());
        self.link_created.push(now);
    }

    fn manifest(
        &mut self,
        repo_id: i64,
        digest: &Digest,
        body: &[u8],
        artifact: Option<&str>,
        subject: Option<&Digest>,
        now: i64,
    ) {
        self.m_repo.push(repo_id);
        self.m_digest.push(digest.to_string());
        self.m_media_type.push(records::IMAGE_MEDIA_TYPE.to_owned());
        self.m_body.push(body.to_vec());
        self.m_artifact_type.push(artifact.map(str::to_owned));
        self.m_subject.push(subject.map(Digest::to_string));
        self.m_created.push(now);
    }
}

/// What loading to one size took.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub took: Duration,
    pub entries: u64,
    pub manifests: u64,
}

/// The bulk loader of one store; it keeps count of what it loaded.
#[derive(Debug)]
pub struct Loader {
    pool: PgPool,
    store: PostgresStore,
    groups: u64,
    repo_ids: HashMap<u64, i64>,
}

impl Loader {
    pub fn new(pool: PgPool, store: PostgresStore) -> Loader {
        Loader { pool, store, groups: 0, repo_ids: HashMap::new() }
    }

    /// Manifests loaded in bulk so far.
    pub fn manifests(&self) -> u64 {
        self.groups * GROUP_MANIFESTS
    }

    /// The ids of repositories `0..repos` (`dev/team-NNNN/app`), created where missing as
    /// `ensure_repo` creates them.
    async fn ensure_repos(&mut self, repos: u64) {
        let names: Vec<String> = (0..repos).map(|n| repo_name("dev", n)).collect();
        sqlx::query(
            "INSERT INTO repositories (name, created_at) SELECT n, $2 FROM unnest($1::text[]) AS t(n) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names)
        .bind(EPOCH_MILLIS)
        .execute(&self.pool)
        .await
        .expect("create the repositories");
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM repositories WHERE name = ANY($1)")
            .bind(&names)
            .fetch_all(&self.pool)
            .await
            .expect("read the repositories");
        let by_name: HashMap<String, i64> = rows.into_iter().map(|(id, name)| (name, id)).collect();
        for (n, name) in names.iter().enumerate() {
            self.repo_ids.insert(n as u64, by_name[name]);
        }
        sqlx::query(
            "INSERT INTO blobs (digest, size, inline_data, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(Digest::of(EMPTY_CONFIG).as_str())
        .bind(EMPTY_CONFIG.len() as i64)
        .bind(EMPTY_CONFIG)
        .bind(EPOCH_MILLIS)
        .execute(&self.pool)
        .await
        .expect("store the empty config");
    }

    /// Appends loaded groups (and, for the last few entries, gate decisions alone) until the log
    /// holds `entries`, spreading the groups over `repos` repositories.
    pub async fn grow_to(&mut self, entries: u64, repos: u64) -> Loaded {
        let started = Instant::now();
        self.ensure_repos(repos).await;
        let mut size = self.store.log_size().await.expect("log size");
        let (start_size, start_manifests) = (size, self.manifests());
        let mut reported = Instant::now();
        let mut in_flight: Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<Vec<u64>>)> = None;
        while size < entries {
            let left = entries - size;
            let (rows, events) = if left >= GROUP_ENTRIES {
                let groups = BATCH_GROUPS.min(left / GROUP_ENTRIES);
                let batch = self.batch(groups, repos);
                self.groups += groups;
                batch
            } else {
                (Rows::default(), self.decisions(left))
            };
            size += events.len() as u64;
            // One batch in flight while the next is built: its registry rows and its log append
            // run on two connections, and the log's appends stay in order.
            if let Some((rows_done, appended)) = in_flight.take() {
                rows_done.await.expect("registry rows task");
                appended.await.expect("log append task");
            }
            let pool = self.pool.clone();
            let store = self.store.clone();
            in_flight = Some((
                tokio::spawn(async move { insert_rows(&pool, rows).await }),
                tokio::spawn(async move { store.append_events(&events).await.expect("append the batch's events") }),
            ));
            if reported.elapsed() >= REPORT_EVERY {
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "  loaded {size} entries, {} manifests; {:.0} entries/s over {secs:.0} s",
                    self.manifests(),
                    (size - start_size) as f64 / secs,
                );
                reported = Instant::now();
            }
        }
        if let Some((rows_done, appended)) = in_flight {
            rows_done.await.expect("registry rows task");
            appended.await.expect("log append task");
        }
        let stored = self.store.log_size().await.expect("log size");
        assert_eq!(stored, entries, "the loader stopped at {stored} entries, not {entries}");
        Loaded { took: started.elapsed(), entries: stored - start_size, manifests: self.manifests() - start_manifests }
    }

    /// The rows and events of `groups` groups after those loaded, over `repos` repositories.
    fn batch(&self, groups: u64, repos: u64) -> (Rows, Vec<Event>) {
        let mut rows = Rows::default();
        let mut events = Vec::with_capacity((groups * GROUP_ENTRIES) as usize);
        let empty = Digest::of(EMPTY_CONFIG);
        for g in self.groups..self.groups + groups {
            let number = g % repos;
            let repo_id = self.repo_ids[&number];
            let name = repo(&repo_name("dev", number));
            let now = EPOCH_MILLIS + i64::try_from(g).unwrap_or(0) * 1000;
            let time = Timestamp::from_millis(now);
            let actor = records::ci(g);
            let mut images = Vec::new();
            for i in 0..GROUP_IMAGES {
                let image = records::image("load", g * GROUP_IMAGES + i);
                rows.blob(repo_id, &image.config_digest, image.config.len() as u64, Some(&image.config), now);
                rows.blob(repo_id, &image.layer_digest, image.layer_size, None, now);
                rows.manifest(repo_id, &image.digest, &image.body, None, None, now);
                let t = tag(&format!("1.{g}.{i}"));
                rows.tag_repo.push(repo_id);
                rows.tag_name.push(t.to_string());
                rows.tag_digest.push(image.digest.to_string());
                rows.tag_updated.push(now);
                events.extend(records::push_events(&name, &image.digest, &t, &actor, time));
                images.push(image);
            }
            rows.link(repo_id, &empty, now);
            let subject = &images[0];
            for predicate in PREDICATES {
                let a = records::attestation(&subject.digest, subject.body.len(), predicate);
                rows.blob(repo_id, &a.envelope_digest, a.envelope.len() as u64, Some(&a.envelope), now);
                rows.manifest(repo_id, &a.digest, &a.body, Some(records::IN_TOTO), Some(&subject.digest), now);
                rows.a_repo.push(repo_id);
                rows.a_manifest.push(a.digest.to_string());
                rows.a_subject.push(subject.digest.to_string());
                rows.a_predicate.push(predicate.to_owned());
                rows.a_envelope.push(a.envelope.to_vec());
                rows.a_created.push(now);
                events.extend(records::attestation_events(&name, &subject.digest, &a, &actor, time));
            }
            for d in 0..GROUP_DECISIONS {
                let image = &images[(d % GROUP_IMAGES) as usize];
                let n = g * GROUP_DECISIONS + d;
                events.push(records::decision_event(&name, &image.digest, n, &records::ci(n), time));
            }
        }
        (rows, events)
    }

    /// `count` gate decisions about the last loaded image, to land the log on an exact size.
    fn decisions(&self, count: u64) -> Vec<Event> {
        let image = records::image("load", self.groups.saturating_sub(1) * GROUP_IMAGES);
        let name = repo(&repo_name("dev", 0));
        let time = Timestamp::from_millis(EPOCH_MILLIS + i64::try_from(self.groups).unwrap_or(0) * 1000);
        (0..count).map(|n| records::decision_event(&name, &image.digest, n, &records::ci(n), time)).collect()
    }
}

/// Writes one batch's registry rows in one transaction, as the ports would have written them
/// one push at a time.
async fn insert_rows(pool: &PgPool, rows: Rows) {
    if rows.m_digest.is_empty() {
        return;
    }
    let mut tx = pool.begin().await.expect("begin the batch");
    sqlx::query(
        "INSERT INTO blobs (digest, size, inline_data, created_at) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) ON CONFLICT (digest) DO NOTHING",
    )
    .bind(&rows.blob_digest)
    .bind(&rows.blob_size)
    .bind(&rows.blob_inline)
    .bind(&rows.blob_created)
    .execute(&mut *tx)
    .await
    .expect("insert blobs");
    sqlx::query(
        "INSERT INTO repo_blobs (repo_id, digest, created_at) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(&rows.link_repo)
    .bind(&rows.link_digest)
    .bind(&rows.link_created)
    .execute(&mut *tx)
    .await
    .expect("link blobs");
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, body, artifact_type, subject, annotations, created_at, pushed_by) \
         SELECT r, d, mt, b, at, s, '{}', c, 'ci' \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::bigint[]) \
         AS t(r, d, mt, b, at, s, c) ON CONFLICT DO NOTHING",
    )
    .bind(&rows.m_repo)
    .bind(&rows.m_digest)
    .bind(&rows.m_media_type)
    .bind(&rows.m_body)
    .bind(&rows.m_artifact_type)
    .bind(&rows.m_subject)
    .bind(&rows.m_created)
    .execute(&mut *tx)
    .await
    .expect("insert manifests");
    sqlx::query(
        "INSERT INTO tags (repo_id, name, digest, updated_at) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])",
    )
    .bind(&rows.tag_repo)
    .bind(&rows.tag_name)
    .bind(&rows.tag_digest)
    .bind(&rows.tag_updated)
    .execute(&mut *tx)
    .await
    .expect("insert tags");
    sqlx::query(
        "INSERT INTO attestations (repo_id, manifest, subject, predicate_type, envelope, verdict, root_version, created_at) \
         SELECT r, m, s, p, e, $6::jsonb, 2, c FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $7::bigint[]) \
         AS t(r, m, s, p, e, c) ON CONFLICT DO NOTHING",
    )
    .bind(&rows.a_repo)
    .bind(&rows.a_manifest)
    .bind(&rows.a_subject)
    .bind(&rows.a_predicate)
    .bind(&rows.a_envelope)
    .bind(records::verdict_json())
    .bind(&rows.a_created)
    .execute(&mut *tx)
    .await
    .expect("insert attestations");
    tx.commit().await.expect("commit the batch");
}
