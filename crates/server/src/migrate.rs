//! `airlock migrate`: a single node (SQLite and the data directory) moved to PostgreSQL and an S3
//! bucket, with the server stopped. The stores are opened here; the metadata copy and its check
//! are `airlock_store::migrate`'s, the blob copy goes through the `BlobStore` port.
//!
//! Blobs go first: copying them is idempotent (a blob the bucket holds is skipped), so after a
//! failure the whole command runs again, while the tables go into the empty database in one
//! transaction, last, and are then compared with their source.

use std::path::PathBuf;

use airlock_blob::{FsBlobStore, S3BlobStore, S3Options, S3Url, S3UrlError};
use airlock_core::ports::{BlobError, BlobIndex, BlobRecord, BlobStore, CommitOutcome, Committed, StoreError};
use airlock_model::{Digest, UploadId};
use airlock_store::PostgresOptions;
use airlock_store::migrate::{Migration, SchemaVersions, TableCopied, TableProgress, Verified};
use futures::StreamExt;

use crate::config::redact_password;

/// Blobs read from the index per page.
const PAGE: u32 = 256;
/// Blobs copied at once.
const COPIES_IN_FLIGHT: usize = 4;

/// Connections the migration opens to PostgreSQL.
const POOL_MAX: u32 = 4;

/// What to move and where.
#[derive(Clone)]
pub struct MigrateOptions {
    /// The single node's metadata database (`DATA/metadata.db`).
    pub sqlite: PathBuf,
    /// The empty PostgreSQL database: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub postgres_url: String,
    /// The blobs, when they move too.
    pub blobs: Option<BlobMove>,
}

/// The URL may carry a password: it is shown without.
impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("sqlite", &self.sqlite)
            .field("postgres_url", &redact_password(&self.postgres_url))
            .field("blobs", &self.blobs)
            .finish()
    }
}

/// Blobs from a data directory into an S3 bucket; credentials come from the environment or the
/// AWS chain, as for the server.
#[derive(Debug, Clone)]
pub struct BlobMove {
    /// The data directory holding `blobs/`.
    pub from: PathBuf,
    /// `s3://BUCKET/PREFIX`.
    pub to: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
}

/// Blobs seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobReport {
    /// Copied into the bucket, each re-hashed on the way.
    pub copied: u64,
    /// In the bucket already.
    pub skipped: u64,
    /// Kept in the metadata (small blobs): they move with the tables.
    pub inline: u64,
    /// Quarantined as corrupt: not served, not copied.
    pub quarantined: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// How far the migration got, as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Both databases are open, at these schema versions; the target is empty.
    Opened(SchemaVersions),
    /// Blobs so far.
    Blobs(&'a BlobReport),
    /// Rows of one table so far.
    Table(TableProgress<'a>),
    /// The copy committed; comparing both sides.
    Verifying,
}

/// What was moved and checked.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub versions: SchemaVersions,
    pub tables: Vec<TableCopied>,
    pub verified: Verified,
    pub blobs: Option<BlobReport>,
}

/// Why the migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Metadata(#[from] airlock_store::migrate::MigrateError),
    #[error("`--blobs-to`: {0}")]
    BlobsUrl(#[source] S3UrlError),
    #[error("`{path}` holds no `blobs` directory; pass the server's data directory as `--blobs-from`")]
    NotDataDir { path: String },
    #[error("cannot open blob store `{location}`: {source}")]
    Open {
        location: String,
        #[source]
        source: BlobError,
    },
    #[error("cannot list the blobs to copy: {0}")]
    Index(#[source] StoreError),
    #[error(
        "blob `{digest}` is in the metadata but not in `{from}`; run `airlock scrub` over the data directory with the server stopped (it quarantines what is missing), then `airlock migrate` again"
    )]
    BlobMissing { digest: Digest, from: String },
    #[error(
        "blob `{digest}` in `{from}` hashes to `{actual}`: it is corrupt; run `airlock scrub` over the data directory with the server stopped (it quarantines it), then `airlock migrate` again"
    )]
    BlobCorrupt { digest: Digest, actual: Digest, from: String },
    #[error(
        "cannot copy blob `{digest}` into `{to}`: {source}; nothing is in PostgreSQL yet: fix the cause and run `airlock migrate` again (blobs in the bucket already are skipped)"
    )]
    BlobCopy {
        digest: Digest,
        to: String,
        #[source]
        source: BlobError,
    },
}

/// Moves the single node `options` names, telling `progress` as it goes.
pub async fn migrate(
    options: MigrateOptions,
    mut progress: impl FnMut(Step<'_>),
) -> Result<MigrateReport, MigrateError> {
    // The blob stores first: a wrong directory is refused before any database is touched.
    let blobs = match &options.blobs {
        Some(blobs) => Some(open_blobs(blobs)?),
        None => None,
    };
    let postgres = PostgresOptions {
        pool_max: POOL_MAX,
        // An offline copy: a large table may take longer than a request would be allowed.
        statement_timeout: std::time::Duration::ZERO,
        ..PostgresOptions::new(options.postgres_url.clone())
    };
    let migration = Migration::prepare(&options.sqlite, &postgres).await?;
    let result = run(&migration, blobs.as_ref(), &mut progress).await;
    migration.close().await;
    result
}

/// The stores of a blob move: the data directory and the bucket, with their names for errors.
struct Stores {
    from: FsBlobStore,
    from_name: String,
    to: S3BlobStore,
}

fn open_blobs(blobs: &BlobMove) -> Result<Stores, MigrateError> {
    let from_name = blobs.from.display().to_string();
    if !blobs.from.join("blobs").is_dir() {
        return Err(MigrateError::NotDataDir { path: from_name });
    }
    let from =
        FsBlobStore::open(&blobs.from).map_err(|source| MigrateError::Open { location: from_name.clone(), source })?;
    let mut options = S3Options::new(S3Url::parse(&blobs.to).map_err(MigrateError::BlobsUrl)?);
    options.endpoint.clone_from(&blobs.endpoint);
    options.region.clone_from(&blobs.region);
    options.allow_http = blobs.allow_http;
    let to = S3BlobStore::open(&options)
        .map_err(|source| MigrateError::Open { location: options.url.to_string(), source })?;
    Ok(Stores { from, from_name, to })
}

async fn run(
    migration: &Migration,
    blobs: Option<&Stores>,
    progress: &mut impl FnMut(Step<'_>),
) -> Result<MigrateReport, MigrateError> {
    let versions = migration.versions();
    progress(Step::Opened(versions));
    let blobs = match blobs {
        Some(stores) => Some(copy_blobs(migration.source(), stores, |r| progress(Step::Blobs(r))).await?),
        None => None,
    };
    let tables = migration.copy_tables(|p| progress(Step::Table(p))).await?;
    progress(Step::Verifying);
    let verified = migration.verify().await?;
    Ok(MigrateReport { versions, tables, verified, blobs })
}

/// Copies every blob `index` lists that lives in the blob store (not inline, not quarantined)
/// from the data directory into the bucket, unless the bucket holds it.
async fn copy_blobs(
    index: &dyn BlobIndex,
    stores: &Stores,
    mut progress: impl FnMut(&BlobReport),
) -> Result<BlobReport, MigrateError> {
    let mut report = BlobReport::default();
    let mut after: Option<Digest> = None;
    loop {
        let page = index.blobs_after(after.as_ref(), PAGE).await.map_err(MigrateError::Index)?;
        let Some(last) = page.last() else { break };
        after = Some(last.digest.clone());
        let mut stored = Vec::with_capacity(page.len());
        for blob in page {
            if blob.inline.is_some() {
                report.inline = report.inline.saturating_add(1);
            } else if blob.quarantined {
                report.quarantined = report.quarantined.saturating_add(1);
            } else {
                stored.push(blob);
            }
        }
        let mut copies =
            futures::stream::iter(stored).map(|blob| copy_blob(stores, blob)).buffer_unordered(COPIES_IN_FLIGHT);
        while let Some(done) = copies.next().await {
            match done? {
                Copied::Copied(size) => {
                    report.copied = report.copied.saturating_add(1);
                    report.bytes = report.bytes.saturating_add(size);
                }
                Copied::Present => report.skipped = report.skipped.saturating_add(1),
            }
            progress(&report);
        }
    }
    Ok(report)
}

/// What became of one blob.
enum Copied {
    /// Copied, this many bytes.
    Copied(u64),
    /// The bucket holds it already.
    Present,
}

/// Copies `blob` through the ports: read from the data directory, appended to an upload in the
/// bucket, committed with its digest (which re-hashes every byte), so nothing corrupt lands.
async fn copy_blob(stores: &Stores, blob: BlobRecord) -> Result<Copied, MigrateError> {
    let to = stores.to.url().to_string();
    let failed = |source| MigrateError::BlobCopy { digest: blob.digest.clone(), to: to.clone(), source };
    if present(&stores.to, &blob).await.map_err(failed)? {
        return Ok(Copied::Present);
    }
    let body = match stores.from.read(&blob.digest, None).await {
        Ok(body) => body,
        Err(BlobError::NotFound { .. }) => {
            return Err(MigrateError::BlobMissing { digest: blob.digest.clone(), from: stores.from_name.clone() });
        }
        Err(source) => return Err(failed(source)),
    };
    let text = uuid::Uuid::new_v4().hyphenated().to_string();
    let id = UploadId::parse(&text)
        .map_err(|e| failed(BlobError::Io { operation: "name upload", source: std::io::Error::other(e) }))?;
    let outcome = match stores.to.append(&id, Some(0), body).await {
        // Nothing may stay inline in the bucket's store: a limit of zero stores every blob.
        Ok(_) => stores.to.commit(&id, &blob.digest, 0).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(CommitOutcome::Committed(Committed::Stored { size })) => Ok(Copied::Copied(size)),
        Ok(CommitOutcome::Committed(Committed::Inline(_))) => Err(failed(BlobError::Io {
            operation: "commit blob",
            source: std::io::Error::other("an empty blob is kept in the metadata, not the blob store"),
        })),
        Ok(CommitOutcome::Mismatch { actual, .. }) => {
            Err(MigrateError::BlobCorrupt { digest: blob.digest.clone(), actual, from: stores.from_name.clone() })
        }
        Err(source) => {
            // Best effort: a staged upload left behind is never visible, and expires.
            stores.to.discard(&id).await.ok();
            Err(match source {
                BlobError::Body(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    MigrateError::BlobMissing { digest: blob.digest.clone(), from: stores.from_name.clone() }
                }
                source => failed(source),
            })
        }
    }
}

/// Whether `store` holds `blob` already, all of it: its last byte can be read.
async fn present(store: &dyn BlobStore, blob: &BlobRecord) -> Result<bool, BlobError> {
    let Some(last) = blob.size.checked_sub(1) else { return Ok(false) };
    match store.read(&blob.digest, Some(last..blob.size)).await {
        Ok(_) => Ok(true),
        Err(BlobError::NotFound { .. }) => Ok(false),
        // A shorter object under the blob's name: the commit replaces it.
        Err(BlobError::Io { source, .. }) if source.kind() == std::io::ErrorKind::InvalidInput => Ok(false),
        Err(e) => Err(e),
    }
}
