//! What a manifest's descriptors promise, checked against what its repository holds before the
//! manifest is stored: each descriptor's size is the size of the blob or manifest it names, an
//! index child's media type is the one that manifest was stored as, and indexes nest at most
//! `limits.max_index_depth` deep.
//!
//! References that are not held at all are left to the store, which checks them in the same
//! transaction that stores the manifest. Sizes and media types are fixed by the digest, so
//! checking them before that transaction is as good as checking them inside it.

use std::collections::HashMap;

use airlock_model::manifest::{Descriptor, Manifest, ManifestKind, ManifestLimits};
use airlock_model::{Digest, RepoName};

use crate::promotion::GRAPH_MAX;
use crate::registry::{Registry, RegistryError};

/// Deepest nesting of indexes accepted, counting the outermost index as 1: an index of image
/// manifests has depth 1, an index of such indexes depth 2. Config key `limits.max_index_depth`.
pub const INDEX_DEPTH_MAX: usize = 8;

/// A stored manifest, as far as the depth walk needs it.
struct Node {
    size: u64,
    media_type: String,
    is_index: bool,
    /// The children of an index; empty for an image manifest.
    children: Vec<Digest>,
}

/// Stored manifests read once each during one check.
struct Nodes<'a> {
    registry: &'a Registry,
    repo: &'a RepoName,
    read: HashMap<Digest, Option<Node>>,
}

impl Nodes<'_> {
    async fn get(&mut self, digest: &Digest) -> Result<Option<&Node>, RegistryError> {
        if !self.read.contains_key(digest) {
            if self.read.len() >= GRAPH_MAX {
                return Err(RegistryError::IndexGraphTooLarge { max: GRAPH_MAX });
            }
            let node = match self.registry.store().manifest_by_digest(self.repo, digest).await? {
                None => None,
                Some(record) => {
                    let is_index =
                        ManifestKind::from_media_type(&record.media_type).is_some_and(ManifestKind::is_index);
                    let children = match is_index {
                        true => {
                            // A stored index that no longer parses nests nothing we can follow;
                            // promotion refuses it on its own.
                            Manifest::parse(Some(&record.media_type), &record.body, &ManifestLimits::default())
                                .map(|m| m.required_manifests().cloned().collect())
                                .unwrap_or_default()
                        }
                        false => Vec::new(),
                    };
                    Some(Node { size: record.body.len() as u64, media_type: record.media_type, is_index, children })
                }
            };
            self.read.insert(digest.clone(), node);
        }
        Ok(self.read.get(digest).and_then(Option::as_ref))
    }
}

/// One index on the path being walked, with the next child to look at.
struct Frame {
    digest: Option<Digest>,
    children: Vec<Digest>,
    next: usize,
    /// The deepest nesting found below this index so far.
    below: usize,
}

impl Registry {
    /// Refuses a manifest whose descriptors do not match what `repo` holds, or an index that
    /// nests deeper than the limit.
    pub(crate) async fn check_references(&self, repo: &RepoName, manifest: &Manifest) -> Result<(), RegistryError> {
        // 1. The config and every layer held here: the descriptor's size is the blob's.
        if !manifest.kind.is_index() {
            let blobs = manifest.config.iter().map(|d| ("config", d));
            let layers = manifest.entries.iter().filter(|d| !d.is_foreign()).map(|d| ("layers", d));
            let described: Vec<(&str, &Descriptor)> = blobs.chain(layers).collect();
            let digests: Vec<Digest> = described.iter().map(|(_, d)| d.digest.clone()).collect();
            let sizes = self.store().blob_sizes_in_repo(repo, &digests).await?;
            // The first mismatch in the manifest's order is the one reported.
            for (field, descriptor) in described {
                if let Some(&actual) = sizes.get(&descriptor.digest)
                    && actual != descriptor.size
                {
                    return Err(RegistryError::DescriptorSizeMismatch {
                        field,
                        digest: descriptor.digest.clone(),
                        declared: descriptor.size,
                        actual,
                    });
                }
            }
            return Ok(());
        }
        // 2. Every child of an index: its size and media type are the stored manifest's.
        let mut nodes = Nodes { registry: self, repo, read: HashMap::new() };
        for descriptor in &manifest.entries {
            let Some(child) = nodes.get(&descriptor.digest).await? else { continue };
            if child.size != descriptor.size {
                return Err(RegistryError::DescriptorSizeMismatch {
                    field: "manifests",
                    digest: descriptor.digest.clone(),
                    declared: descriptor.size,
                    actual: child.size,
                });
            }
            if descriptor.media_type.essence() != child.media_type {
                return Err(RegistryError::DescriptorMediaTypeMismatch {
                    digest: descriptor.digest.clone(),
                    declared: descriptor.media_type.as_str().to_owned(),
                    actual: child.media_type.clone(),
                });
            }
        }
        // 3. The nesting below it.
        let children = manifest.required_manifests().cloned().collect();
        self.index_depth(&mut nodes, children).await.map(|_| ())
    }

    /// The nesting depth of an index with `children` (1 for an index of image manifests), or
    /// `IndexTooDeep` as soon as a chain longer than the limit is seen. Each stored manifest is
    /// read once; the walk never goes more than one level past the limit.
    async fn index_depth(&self, nodes: &mut Nodes<'_>, children: Vec<Digest>) -> Result<usize, RegistryError> {
        let max = self.limits().max_index_depth;
        let too_deep = || RegistryError::IndexTooDeep { max };
        let mut depth_of: HashMap<Digest, usize> = HashMap::new();
        let mut path = vec![Frame { digest: None, children, next: 0, below: 0 }];
        loop {
            // The path holds the indexes from the outermost down, so its length is the depth of
            // the index on top.
            let level = path.len();
            let Some(top) = path.last_mut() else { return Ok(0) };
            if let Some(child) = top.children.get(top.next).cloned() {
                top.next = top.next.saturating_add(1);
                if let Some(depth) = depth_of.get(&child) {
                    top.below = top.below.max(*depth);
                    if level.saturating_add(*depth) > max {
                        return Err(too_deep());
                    }
                    continue;
                }
                let Some(node) = nodes.get(&child).await? else { continue };
                if !node.is_index {
                    depth_of.insert(child, 0);
                    continue;
                }
                if level >= max {
                    return Err(too_deep());
                }
                let children = node.children.clone();
                path.push(Frame { digest: Some(child), children, next: 0, below: 0 });
            } else {
                let depth = top.below.saturating_add(1);
                let digest = top.digest.take();
                path.pop();
                match (digest, path.last_mut()) {
                    (Some(digest), Some(parent)) => {
                        parent.below = parent.below.max(depth);
                        depth_of.insert(digest, depth);
                    }
                    _ => return Ok(depth),
                }
            }
        }
    }
}
