//! The store conformance suite against PostgreSQL, each check on a fresh database, and what only
//! a shared server has: several replicas (separate pools) appending to one log and racing one
//! conditional write, the server going away, migrations run twice, and the log's triggers.
//! Skipped when `AIRLOCK_TEST_POSTGRES_URL` is unset (`scripts/services start postgres`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    BlobIndex, CachedState, IdentityStore, LogStore, ManifestIndex, MetadataStore, NewManifest, PromotionCommitOutcome,
    PromotionStatus, PromotionStore, PutManifestOutcome, StoredCheckpoint, TagMode, store_unavailable,
};
use airlock_model::{Digest, RepoName, Tag, Timestamp};
use airlock_store::{PostgresOptions, PostgresStore, PostgresStoreError};
use airlock_test_support::conformance::{SOURCE, TARGET, commit_of, pending};
use airlock_test_support::postgres::TestDatabase;
use airlock_tlog::{CompactRange, leaf_hash};
use bytes::Bytes;

async fn fresh(test: &'static str) -> Option<(TestDatabase, PostgresStore)> {
    let db = TestDatabase::create(test).await?;
    let store = db.store().await;
    Some((db, store))
}

airlock_test_support::store_conformance!(optional fresh);

/// `n` stores over one fresh database, each with a pool of its own, as replicas would be.
async fn replicas(test: &str, n: usize) -> Option<(TestDatabase, Vec<PostgresStore>)> {
    let db = TestDatabase::create(test).await?;
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.store().await);
    }
    Some((db, stores))
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).unwrap()
}

/// An event naming the replica that appends it, the append and its place in the append.
fn marked(replica: usize, append: usize, part: usize) -> Event {
    Event::allowed(EventKind::ServerStart, &Actor::system(), at(1), Subject::default())
        .with_detail("mark", serde_json::json!(format!("{replica}/{append}/{part}")))
}

fn manifest(body: &str) -> NewManifest {
    NewManifest {
        digest: Digest::of(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        artifact_type: None,
        subject: None,
        annotations_json: "{}".to_owned(),
        required_blobs: Vec::new(),
        required_manifests: Vec::new(),
        attestation: None,
    }
}

fn stored(outcome: PutManifestOutcome) -> u64 {
    match outcome {
        PutManifestOutcome::Stored { log_index } => log_index,
        other => panic!("expected the manifest to be stored, got {other:?}"),
    }
}

/// Checks the stored log against its own leaves: `size` leaves, each hash that of its bytes,
/// and at every size from 1 to `size` the root the stored nodes give is the root recomputed
/// from the leaves, so no append ever built on another edge (the tree never forked). Returns
/// the leaves' `mark` details in index order.
async fn check_log(store: &dyn MetadataStore, size: u64) -> Vec<String> {
    assert_eq!(store.log_size().await.unwrap(), size);
    let leaves = store.log_leaves(0, size).await.unwrap();
    assert_eq!(leaves.iter().map(|l| l.index).collect::<Vec<_>>(), (0..size).collect::<Vec<_>>(), "contiguous");
    let mut range = CompactRange::new();
    let mut marks = Vec::new();
    for leaf in &leaves {
        assert_eq!(leaf.leaf_hash, leaf_hash(&leaf.data), "leaf {} hashes to its bytes", leaf.index);
        range.push(leaf.leaf_hash);
        let ids = airlock_tlog::root_nodes(range.size());
        let found = store.log_nodes(&ids).await.unwrap();
        let lookup: std::collections::HashMap<_, _> =
            ids.iter().zip(found).map(|(id, h)| (*id, h.unwrap_or_else(|| panic!("node {id:?} stored")))).collect();
        let root = airlock_tlog::root(range.size(), |id| lookup.get(&id).copied()).unwrap();
        assert_eq!(root, range.root(), "the stored nodes give the leaves' root at size {}", range.size());
        let event: serde_json::Value = serde_json::from_slice(&leaf.data).unwrap();
        marks.push(event["details"]["mark"].as_str().unwrap_or_default().to_owned());
    }
    marks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_append_to_one_log_without_forking_it() {
    const REPLICAS: usize = 3;
    const APPENDS: usize = 40;
    let Some((_db, stores)) = replicas("replicas_append_to_one_log_without_forking_it", REPLICAS).await else {
        return;
    };
    // Each replica runs its appends concurrently too; one in three carries several events.
    let run = |replica: usize, store: PostgresStore| async move {
        let mut tasks = tokio::task::JoinSet::new();
        for append in 0..APPENDS {
            let store = store.clone();
            tasks.spawn(async move {
                let events: Vec<Event> = (0..1 + append % 3).map(|part| marked(replica, append, part)).collect();
                let indices = store.append_events(&events).await.unwrap();
                (events, indices)
            });
        }
        tasks.join_all().await
    };
    let [a, b, c] = [0, 1, 2].map(|r| run(r, stores[r].clone()));
    let (a, b, c) = tokio::join!(a, b, c);

    let mut expected = Vec::new();
    let mut taken = BTreeSet::new();
    for (events, indices) in a.iter().chain(&b).chain(&c) {
        assert_eq!(indices.len(), events.len());
        assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "one append's events are consecutive: {indices:?}");
        for (event, index) in events.iter().zip(indices) {
            assert!(taken.insert(*index), "index {index} was handed out twice");
            expected.push((*index, event.details["mark"].as_str().unwrap().to_owned()));
        }
    }
    let total = expected.len() as u64;
    assert_eq!(total, (REPLICAS * (0..APPENDS).map(|a| 1 + a % 3).sum::<usize>()) as u64);
    assert_eq!(taken, (0..total).collect(), "the indices are 0..{total}, each once");
    expected.sort();
    let marks = check_log(&stores[0], total).await;
    let at_index: Vec<String> = expected.into_iter().map(|(_, mark)| mark).collect();
    assert_eq!(marks, at_index, "each index holds the event its append was told it holds");
    for store in &stores {
        assert_eq!(store.log_size().await.unwrap(), total, "every replica reads the same log");
    }
}

/// A replica whose cached right edge is stale (another replica appended since) appends after the
/// other's leaves, not over them.
#[tokio::test]
async fn a_stale_cached_edge_is_reloaded_under_the_lock() {
    let Some((_db, stores)) = replicas("a_stale_cached_edge_is_reloaded_under_the_lock", 2).await else { return };
    let (a, b) = (&stores[0], &stores[1]);
    assert_eq!(a.append_events(&[marked(0, 0, 0)]).await.unwrap(), [0]);
    assert_eq!(b.append_events(&[marked(1, 0, 0), marked(1, 0, 1)]).await.unwrap(), [1, 2]);
    assert_eq!(a.append_events(&[marked(0, 1, 0)]).await.unwrap(), [3], "after the other replica's leaves");
    assert_eq!(b.append_events(&[marked(1, 1, 0)]).await.unwrap(), [4]);
    let marks = check_log(a, 5).await;
    assert_eq!(marks, ["0/0/0", "1/0/0", "1/0/1", "0/1/0", "1/1/0"]);
}

/// Two replicas moving one tag from where it stands, each elsewhere: exactly one moves it, each
/// round, and only the winner's event is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_move_raced_from_two_replicas_lands_once() {
    let Some((_db, stores)) = replicas("a_tag_move_raced_from_two_replicas_lands_once", 2).await else { return };
    let (a, b) = (&stores[0], &stores[1]);
    let target = repo(TARGET);
    let [one, two, three] = ["one", "two", "three"].map(manifest);
    for m in [&one, &two, &three] {
        stored(a.put_manifest(&target, m, None, &Actor::system(), at(1)).await.unwrap());
    }
    let event = |to: &Digest| {
        Event::allowed(EventKind::PromotionRollback, &Actor::system(), at(2), Subject::default())
            .with_detail("to", serde_json::json!(to.as_str()))
    };
    for round in 0..10 {
        let live = tag(&format!("live-{round}"));
        stored(
            a.put_manifest(&target, &one, Some((&live, TagMode::WriteOnce)), &Actor::system(), at(1)).await.unwrap(),
        );
        let size = a.log_size().await.unwrap();
        let (to_two, to_three) = (event(&two.digest), event(&three.digest));
        let (first, second) = tokio::join!(
            a.move_tag(&target, &live, &one.digest, &two.digest, &to_two),
            b.move_tag(&target, &live, &one.digest, &three.digest, &to_three),
        );
        let (winner, index) = match (first.unwrap(), second.unwrap()) {
            (Some(index), None) => (&two.digest, index),
            (None, Some(index)) => (&three.digest, index),
            other => panic!("round {round}: exactly one move must land, got {other:?}"),
        };
        assert_eq!(index, size);
        assert_eq!(b.log_size().await.unwrap(), size + 1, "round {round}: only the winner's event");
        let now = b.manifest_by_tag(&target, &live).await.unwrap().map(|m| m.digest);
        assert_eq!(now.as_ref(), Some(winner));
    }
}

/// Two replicas committing one promotion: exactly one commits, the other finds it promoted, and
/// the log holds the winner's events only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_commit_raced_from_two_replicas_lands_once() {
    let Some((_db, stores)) = replicas("a_promotion_commit_raced_from_two_replicas_lands_once", 2).await else {
        return;
    };
    let (a, b) = (&stores[0], &stores[1]);
    let layer = Digest::of(b"promoted layer");
    a.insert_blob(&repo(SOURCE), &layer, 14, Some(Bytes::from_static(b"promoted layer")), None, at(1)).await.unwrap();
    for round in 0..5 {
        let mut m = manifest(&format!("candidate {round}"));
        m.required_blobs = vec![layer.clone()];
        stored(a.put_manifest(&repo(SOURCE), &m, None, &Actor::system(), at(1)).await.unwrap());
        let p = pending(&format!("prm-{round}"), &m.digest, Some(&format!("1.{round}")));
        let request = Event::allowed(EventKind::PromotionRequest, &Actor::system(), at(1), Subject::default());
        assert_eq!(a.open_promotion(&p, &request).await.unwrap(), Ok(()));
        let before = b.log_size().await.unwrap();
        let commit = commit_of(&p, &m.digest, &layer, None);
        let seal = |index: u64| Ok(airlock_test_support::conformance::sealed(&p, index));
        let (first, second) =
            tokio::join!(a.commit_promotion(&commit, &seal, at(5)), b.commit_promotion(&commit, &seal, at(6)));
        let outcomes = [first.unwrap(), second.unwrap()];
        let committed: Vec<_> =
            outcomes.iter().filter(|o| matches!(o, PromotionCommitOutcome::Committed { .. })).collect();
        assert_eq!(committed.len(), 1, "round {round}: exactly one commit lands: {outcomes:?}");
        assert!(
            outcomes.contains(&PromotionCommitOutcome::NotPending { status: PromotionStatus::Promoted }),
            "round {round}: the other finds it promoted: {outcomes:?}"
        );
        assert_eq!(
            committed[0],
            &PromotionCommitOutcome::Committed {
                log_index: before,
                release_digest: airlock_test_support::conformance::sealed(&p, before).release_digest
            }
        );
        assert_eq!(a.log_size().await.unwrap(), before + 2, "round {round}: the commit and tag events only");
    }
    check_log(a, a.log_size().await.unwrap()).await;
}

/// Two replicas storing a checkpoint of one size at once: both succeed, the first stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_of_one_size_from_two_replicas_keep_one() {
    let Some((_db, stores)) = replicas("checkpoints_of_one_size_from_two_replicas_keep_one", 2).await else {
        return;
    };
    let (a, b) = (&stores[0], &stores[1]);
    for size in 1..=10 {
        let (one, two) =
            (StoredCheckpoint { size, note: format!("a{size}") }, StoredCheckpoint { size, note: format!("b{size}") });
        let (first, second) = tokio::join!(a.put_checkpoint(&one, at(1)), b.put_checkpoint(&two, at(1)));
        first.unwrap();
        second.unwrap();
        let kept = b.latest_checkpoint().await.unwrap().unwrap();
        assert!(kept == one || kept == two, "{kept:?}");
        b.put_checkpoint(&StoredCheckpoint { size, note: "later".to_owned() }, at(2)).await.unwrap();
        assert_eq!(a.latest_checkpoint().await.unwrap().unwrap(), kept, "a later one of the size changes nothing");
    }
}

/// A free port on loopback with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn quick(url: String) -> PostgresOptions {
    PostgresOptions { connect_timeout: Duration::from_millis(500), ..PostgresOptions::new(url) }
}

/// Nothing listening: connecting fails as unavailable, and says where without the password.
#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable() {
    let url = format!("postgres://airlock:secret@127.0.0.1:{}/airlock", closed_port());
    let error = PostgresStore::connect(&quick(url)).await.unwrap_err();
    assert!(matches!(error, PostgresStoreError::Unavailable { .. }), "{error:?}");
    assert!(store_unavailable(&error), "{error}");
    let shown = error.to_string();
    assert!(shown.starts_with("PostgreSQL at `airlock@127.0.0.1:"), "{shown}");
    assert!(!shown.contains("secret"), "the password is never shown: {shown}");
    let options = format!("{:?}", quick("postgres://airlock:secret@db:5432/airlock".to_owned()));
    assert!(options.contains("airlock@db:5432/airlock") && !options.contains("secret"), "{options}");

    let error = PostgresStore::connect(&PostgresOptions::new("postgres://db:port/airlock")).await.unwrap_err();
    assert!(matches!(error, PostgresStoreError::Url { .. }), "{error:?}");
    assert!(!store_unavailable(&error));
}

/// A TCP relay between the store and PostgreSQL that the test can cut, as a network partition
/// or a stopped server would.
struct Relay {
    port: u16,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn to(server: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let server = server.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                spawned.lock().unwrap().push(relay.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Relay { port, tasks }
    }

    /// Closes every relayed connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A store whose server goes away answers every call with an error `store_unavailable`
/// recognizes, reads and writes alike, and nothing is logged twice when it returns.
#[tokio::test]
async fn a_server_gone_away_is_unavailable() {
    let Some(db) = TestDatabase::create("a_server_gone_away_is_unavailable").await else { return };
    let options = db.options();
    let direct: sqlx::postgres::PgConnectOptions = options.url.parse().unwrap();
    let relay = Relay::to(format!("{}:{}", direct.get_host(), direct.get_port())).await;
    let relayed = options.url.replacen(&format!(":{}/", direct.get_port()), &format!(":{}/", relay.port), 1);
    assert_ne!(relayed, options.url);
    let store = PostgresStore::connect(&PostgresOptions { connect_timeout: Duration::from_secs(1), ..quick(relayed) })
        .await
        .unwrap();
    assert_eq!(store.append_events(&[marked(0, 0, 0)]).await.unwrap(), [0]);

    relay.cut();
    let read = store.log_size().await.unwrap_err();
    assert!(store_unavailable(&read), "a read: {read}");
    let write = store.append_events(&[marked(0, 1, 0)]).await.unwrap_err();
    assert!(store_unavailable(&write), "a write: {write}");
    assert!(!airlock_core::ports::storage_full(&write));
    store.close().await;

    let direct = db.store().await;
    assert_eq!(check_log(&direct, 1).await, ["0/0/0"], "the failed write left nothing");
}

/// PostgreSQL ending the store's sessions (a restart, an administrator) costs nothing but the
/// sessions: the pool opens new ones and the next call succeeds.
#[tokio::test]
async fn terminated_sessions_are_replaced() {
    let Some(db) = TestDatabase::create("terminated_sessions_are_replaced").await else { return };
    let store = db.store().await;
    assert_eq!(store.append_events(&[marked(0, 0, 0)]).await.unwrap(), [0]);
    let admin = sqlx::PgPool::connect(db.url()).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|e| *e), "the store's sessions were ended: {ended:?}");
    assert_eq!(store.append_events(&[marked(0, 1, 0)]).await.unwrap(), [1]);
    assert_eq!(check_log(&store, 2).await, ["0/0/0", "0/1/0"]);
    admin.close().await;
}

/// Every write waits for the log's sequencer lock, whoever holds it (here an administrator's
/// session), while reads go on; a wait longer than the statement timeout fails the write as one
/// to retry later (the server answers 503 with `Retry-After`), its transaction rolled back.
#[tokio::test]
async fn writes_wait_for_the_sequencer_lock_within_the_statement_timeout() {
    // The store's sequencer key: the lock a write takes before anything else.
    const SEQUENCER_LOCK: i64 = i64::from_be_bytes(*b"\0airlock");
    let test = "writes_wait_for_the_sequencer_lock_within_the_statement_timeout";
    let Some(db) = TestDatabase::create(test).await else { return };
    let options = PostgresOptions { statement_timeout: Duration::from_millis(300), ..db.options() };
    let store = PostgresStore::connect(&options).await.unwrap();
    assert_eq!(store.append_events(&[marked(0, 0, 0)]).await.unwrap(), [0]);

    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(db.url()).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(SEQUENCER_LOCK).execute(&mut admin).await.unwrap();
    let started = std::time::Instant::now();
    let refused = store.append_events(&[marked(0, 1, 0)]).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the lock");
    assert!(refused.to_string().contains("statement timeout"), "{refused}");
    assert!(store_unavailable(&refused), "{refused}");
    let (dev, x) = (repo("dev/a"), Digest::of(b"x"));
    let blob = store.insert_blob(&dev, &x, 1, Some(Bytes::from_static(b"x")), None, at(1)).await;
    assert!(blob.is_err(), "a write that appends nothing waits for the lock too");
    assert_eq!(store.log_size().await.unwrap(), 1, "reads do not wait");

    sqlx::query("SELECT pg_advisory_unlock($1)").bind(SEQUENCER_LOCK).execute(&mut admin).await.unwrap();
    assert_eq!(store.append_events(&[marked(0, 2, 0)]).await.unwrap(), [1]);
    assert_eq!(check_log(&store, 2).await, ["0/0/0", "0/2/0"]);
}

/// A change one replica commits reaches another's hints, also after the listening session was
/// ended (its loss is itself a hint); closing the store ends them.
#[tokio::test]
async fn changes_on_one_replica_hint_the_others() {
    use futures::StreamExt as _;
    let Some((db, stores)) = replicas("changes_on_one_replica_hint_the_others", 2).await else { return };
    let (a, b) = (&stores[0], &stores[1]);
    let mut hints = a.watch_cached_state().await.unwrap().expect("PostgreSQL sends hints");
    let next = async |hints: &mut airlock_core::ports::ChangeHints| {
        tokio::time::timeout(Duration::from_secs(10), hints.next()).await.expect("a hint within 10 s")
    };
    let event = || Event::allowed(EventKind::RoleDefine, &Actor::system(), at(1), Subject::default());
    let before = a.cached_state_version().await.unwrap();
    assert!(b.define_role("auditor", "{}", &event()).await.unwrap());
    assert_eq!(next(&mut hints).await, Some(()));
    assert!(a.cached_state_version().await.unwrap() > before, "the other replica reads the raised version");

    let admin = sqlx::PgPool::connect(db.url()).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() \
         AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(ended, [true], "the listening session was ended");
    assert_eq!(next(&mut hints).await, Some(()), "a lost session is a hint");
    assert!(b.define_role("reader", "{}", &event()).await.unwrap());
    assert_eq!(next(&mut hints).await, Some(()), "the hints go on on a new session");
    admin.close().await;

    a.close().await;
    assert_eq!(next(&mut hints).await, None, "a closed store sends no more hints");
}

/// Connecting again migrates nothing and loses nothing; replicas starting together migrate once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_whoever_connects() {
    let Some(db) = TestDatabase::create("migrations_run_once_whoever_connects").await else { return };
    let options = db.options();
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&options),
        PostgresStore::connect(&options),
        PostgresStore::connect(&options)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.append_events(&[marked(0, 0, 0)]).await.unwrap(), [0]);
    for store in [&a, &b, &c] {
        store.close().await;
    }
    let admin = sqlx::PgPool::connect(db.url()).await.unwrap();
    // Each migration's version and checksum.
    let applied = async || -> Vec<(i64, Vec<u8>)> {
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&admin)
            .await
            .unwrap()
    };
    let before = applied().await;
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
    assert_eq!(before.len(), files, "every migration applied once");

    let again = db.store().await;
    assert_eq!(applied().await, before, "a second connect applies nothing");
    assert_eq!(check_log(&again, 1).await, ["0/0/0"]);
    admin.close().await;
}

/// The log's tables refuse every update, delete and truncate, whoever sends it.
#[tokio::test]
async fn the_log_tables_refuse_changes() {
    let Some(db) = TestDatabase::create("the_log_tables_refuse_changes").await else { return };
    let store = db.store().await;
    store.append_events(&[marked(0, 0, 0), marked(0, 0, 1)]).await.unwrap();
    store.put_checkpoint(&StoredCheckpoint { size: 2, note: "two".to_owned() }, at(1)).await.unwrap();
    let admin = sqlx::PgPool::connect(db.url()).await.unwrap();
    let tampering = [
        "UPDATE log_leaves SET data = 'x'",
        "DELETE FROM log_leaves WHERE idx = 1",
        "TRUNCATE log_leaves",
        "UPDATE log_nodes SET hash = hash",
        "DELETE FROM log_nodes",
        "TRUNCATE log_nodes",
        "UPDATE log_checkpoints SET note = 'forged'",
        "DELETE FROM log_checkpoints",
        "TRUNCATE log_checkpoints",
    ];
    for sql in tampering {
        let error = sqlx::query(sql).execute(&admin).await.expect_err(sql);
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    admin.close().await;
    assert_eq!(check_log(&store, 2).await, ["0/0/0", "0/0/1"]);
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().note, "two");
}
