//! Upload sessions: opening, appending, closing (with the digest check and the inline rule),
//! cancelling and expiring.

use airlock_model::{Digest, RepoName, UploadId};
use bytes::Bytes;

use super::{Registry, RegistryError};
use crate::audit::{Actor, Subject};
use crate::ports::{BlobError, ByteStream, CommitOutcome, Committed, UploadRecord};

impl Registry {
    /// Opens an upload session owned by `client`.
    pub async fn start_upload(
        &self,
        actor: &Actor,
        repo: &RepoName,
        id: UploadId,
        client: &str,
    ) -> Result<UploadId, RegistryError> {
        self.ensure_pushable(actor, repo, "blob.upload", Subject::default()).await?;
        let now = self.clock.now();
        let record = UploadRecord {
            id: id.clone(),
            repo: repo.clone(),
            client: client.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let max = self.limits.uploads_per_client;
        if !self.store.create_upload(&record, max).await? {
            // Counted again only to say how many: the refusal itself was decided atomically.
            let open = self.store.uploads_by_client(client).await?.max(max);
            return Err(RegistryError::TooManyUploads { open, max });
        }
        Ok(id)
    }

    async fn open_upload(&self, actor: &Actor, repo: &RepoName, id: &UploadId) -> Result<UploadRecord, RegistryError> {
        self.ensure_pushable(actor, repo, "blob.upload", Subject::default()).await?;
        match self.store.upload(id).await? {
            Some(record) if &record.repo == repo => Ok(record),
            _ => Err(RegistryError::UploadUnknown { repo: repo.clone(), id: id.clone() }),
        }
    }

    /// Bytes received so far by an open upload.
    pub async fn upload_status(&self, actor: &Actor, repo: &RepoName, id: &UploadId) -> Result<u64, RegistryError> {
        self.open_upload(actor, repo, id).await?;
        Ok(self.blobs.upload_size(id).await?)
    }

    /// Appends a chunk. With `start`, the chunk must begin where the upload ends.
    pub async fn append_upload(
        &self,
        actor: &Actor,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<u64, RegistryError> {
        self.open_upload(actor, repo, id).await?;
        // A durable commit before the first byte: the session's row, committed lazily when the
        // session opened, is then on disk before any staged bytes are, so they can be expired.
        self.store.touch_upload(id, self.clock.now()).await?;
        let size = self.blobs.append(id, start, body).await?;
        Ok(size)
    }

    /// Ends an upload: appends the last chunk if any, verifies the digest, stores and links.
    pub async fn finish_upload(
        &self,
        actor: &Actor,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<ByteStream>,
    ) -> Result<u64, RegistryError> {
        self.open_upload(actor, repo, id).await?;
        if let Some(body) = last_chunk {
            // As in `append_upload`: the session's row is durable before its bytes are staged.
            self.store.touch_upload(id, self.clock.now()).await?;
            self.blobs.append(id, None, body).await?;
        }
        let outcome = self.blobs.commit(id, digest, self.limits.inline_blob_max).await;
        let (size, inline) = match outcome {
            Ok(CommitOutcome::Committed(Committed::Inline(bytes))) => (bytes.len() as u64, Some(bytes)),
            Ok(CommitOutcome::Committed(Committed::Stored { size })) => (size, None),
            Ok(CommitOutcome::Mismatch { actual, .. }) => {
                // The session ends: a mismatch discarded the staged bytes already.
                self.store.delete_upload(id).await?;
                return Err(RegistryError::DigestMismatch { expected: digest.clone(), actual });
            }
            Err(e) => {
                self.store.delete_upload(id).await?;
                return Err(e.into());
            }
        };
        self.store.insert_blob(repo, digest, size, inline, Some(id), self.clock.now()).await?;
        Ok(size)
    }

    /// Ends an upload whose last chunk is small and already in memory. When the session holds
    /// nothing yet (the common POST-then-PUT of a small blob) the bytes go straight to the
    /// metadata store and never touch a file.
    pub async fn finish_upload_small(
        &self,
        actor: &Actor,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Bytes,
    ) -> Result<u64, RegistryError> {
        self.open_upload(actor, repo, id).await?;
        let fits = last_chunk.len() as u64 <= self.limits.inline_blob_max;
        if !fits || self.blobs.upload_size(id).await? != 0 {
            let stream: ByteStream = Box::pin(futures::stream::iter([Ok(last_chunk)]));
            return self.finish_upload(actor, repo, id, digest, Some(stream)).await;
        }
        self.blobs.discard(id).await?;
        let actual = Digest::of(&last_chunk);
        if &actual != digest {
            self.store.delete_upload(id).await?;
            return Err(RegistryError::DigestMismatch { expected: digest.clone(), actual });
        }
        let size = last_chunk.len() as u64;
        self.store.insert_blob(repo, digest, size, Some(last_chunk), Some(id), self.clock.now()).await?;
        Ok(size)
    }

    /// Stores a small blob already held in memory (a monolithic POST with a short body).
    pub async fn put_small_blob(
        &self,
        actor: &Actor,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        self.ensure_pushable(actor, repo, "blob.upload", Subject::default()).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch { expected: digest.clone(), actual });
        }
        if bytes.len() as u64 > self.limits.inline_blob_max {
            return Err(RegistryError::BodyTooLarge(BlobError::TooLarge { max: self.limits.inline_blob_max }));
        }
        let size = bytes.len() as u64;
        self.store.insert_blob(repo, digest, size, Some(bytes), None, self.clock.now()).await?;
        Ok(())
    }

    /// Cancels an upload and drops its bytes.
    pub async fn cancel_upload(&self, actor: &Actor, repo: &RepoName, id: &UploadId) -> Result<(), RegistryError> {
        self.open_upload(actor, repo, id).await?;
        self.blobs.discard(id).await?;
        self.store.delete_upload(id).await?;
        Ok(())
    }

    /// Drops sessions idle for longer than `idle_millis`. Returns how many were dropped.
    pub async fn expire_uploads(&self, idle_millis: u64) -> Result<usize, RegistryError> {
        let now = self.clock.now();
        let before = airlock_model::Timestamp::from_millis(
            now.as_millis().saturating_sub(i64::try_from(idle_millis).unwrap_or(i64::MAX)),
        );
        let idle = self.store.idle_uploads(before, 1000).await?;
        for id in &idle {
            self.blobs.discard(id).await?;
            self.store.delete_upload(id).await?;
        }
        Ok(idle.len())
    }
}
