//! `cargo bench -p airlock-store`: transparency log appends on SQLite (each in its own fsynced
//! transaction, and grouped), and an inclusion proof read from the stored nodes.

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::LogStore;
use airlock_model::Timestamp;
use airlock_store::SqliteStore;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Entries in the log before the proof is measured.
const PROOF_LOG_SIZE: u64 = 200_000;
const GROUP: usize = 500;

fn event(n: i64) -> Event {
    Event::allowed(EventKind::ServerStart, &Actor::system(), Timestamp::from_millis(n), Subject::default())
        .with_detail("n", serde_json::Value::from(n))
}

fn log(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = runtime.block_on(SqliteStore::open(&dir.path().join("metadata.db"))).expect("store");
    let mut group = c.benchmark_group("log");

    // The floor: one bare SQLite transaction with one small insert, fsynced, on the same disk in
    // the same run. An append costs this plus its log bookkeeping.
    let baseline = runtime.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("baseline.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let pool =
            sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.expect("baseline");
        sqlx::query("CREATE TABLE t (x BLOB NOT NULL)").execute(&pool).await.expect("table");
        pool
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite_commit_baseline", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tx = baseline.begin_with("BEGIN IMMEDIATE").await.expect("begin");
                sqlx::query("INSERT INTO t (x) VALUES (?)")
                    .bind(vec![7u8; 300])
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                tx.commit().await.expect("commit");
            })
        })
    });

    let mut n = 0i64;
    group.bench_function("append_fsynced_each", |b| {
        b.iter(|| {
            n += 1;
            runtime.block_on(store.append_events(&[event(n)])).expect("append");
        })
    });

    group.throughput(Throughput::Elements(GROUP as u64));
    group.bench_function("append_group_500", |b| {
        b.iter_batched(
            || (0..GROUP).map(|i| event(i as i64)).collect::<Vec<_>>(),
            |events| runtime.block_on(store.append_events(&events)).expect("append"),
            BatchSize::SmallInput,
        )
    });

    // Grow the log, then time one inclusion proof served from the stored nodes.
    runtime.block_on(async {
        let mut size = store.log_size().await.expect("size");
        while size < PROOF_LOG_SIZE {
            let events: Vec<_> = (0..5000).map(event).collect();
            store.append_events(&events).await.expect("append");
            size = store.log_size().await.expect("size");
        }
    });
    let size = runtime.block_on(store.log_size()).expect("size");
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function(format!("inclusion_proof_from_store_at_{size}"), |b| {
        b.iter(|| {
            index = (index + 7919) % size;
            let plan = airlock_tlog::inclusion_plan(index, size).expect("plan");
            let ids: Vec<_> = plan.iter().flatten().copied().collect();
            let nodes = runtime.block_on(store.log_nodes(&ids)).expect("nodes");
            assert!(nodes.iter().all(Option::is_some));
        })
    });
    group.finish();
}

criterion_group!(benches, log);
criterion_main!(benches);
