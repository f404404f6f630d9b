//! The engine without the server: the core's registry, promotion engine and identity over
//! SQLite and the filesystem in a temporary directory, behind a manual clock. For tests that
//! drive the core's decisions directly, with no HTTP, no access checks and no server crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_access::authz::{default_compatible, default_conflicts, default_roles};
use airlock_blob::FsBlobStore;
use airlock_core::audit::Actor;
use airlock_core::identity::person::PersonRule;
use airlock_core::identity::{Identity, IdentityConfig};
use airlock_core::ports::{LogObserver, MetadataStore};
use airlock_core::promotion::pipeline::{ApprovalRule, DEFAULT_POLICY, Gates, RequiredAttestation};
use airlock_core::promotion::policies::{LoadedBundle, PolicySet};
use airlock_core::promotion::window::{ChangeWindow, WindowSpec};
use airlock_core::promotion::{Promoter, PromoterConfig, PromoterPorts};
use airlock_core::registry::{PutManifest, RegistryLimits};
use airlock_core::stage::{Stage, Stages};
use airlock_core::{Registry, RegistryError};
use airlock_dsse::{Algorithm, PrivateKey};
use airlock_model::{Digest, PrincipalId, PrincipalKind, Reference, RepoName, StageName, UploadId};
use airlock_policy::Bundle;
use bytes::Bytes;
use serde::Deserialize;

use crate::ManualClock;
use crate::oci::Image;

/// The service account that pushes in engine tests, and its roles, as the server's tests have it.
pub const PUSHER: &str = "tester";
pub const PUSHER_ROLES: [&str; 2] = ["developer", "auditor"];

/// The part of `airlock.toml` the engine reads: the stages, the `[limits]` the registry bounds
/// attestations with, `access.fold_subaddress` and `policy.bundle`. Anything else is refused, so
/// a test cannot set a key the engine would silently ignore.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineToml {
    #[serde(default)]
    stages: Option<Vec<StageToml>>,
    #[serde(default)]
    limits: LimitsToml,
    #[serde(default)]
    access: AccessToml,
    #[serde(default)]
    policy: PolicyToml,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsToml {
    attestations_per_artifact: Option<u32>,
    attestation_bytes_per_artifact: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessToml {
    fold_subaddress: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    bundle: Option<PathBuf>,
}

/// One `[[stages]]` table, as `airlock.toml` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageToml {
    name: String,
    #[serde(default)]
    pushable: bool,
    from: Option<String>,
    #[serde(default)]
    attestations: Vec<RequiredAttestation>,
    policy: Option<PathBuf>,
    approvals: Option<ApprovalRule>,
    #[serde(default)]
    windows: Vec<WindowSpec>,
    #[serde(default)]
    freeze: bool,
}

/// The stages `list` describes: the first ungated, each later one gated from the one before it
/// (or its `from`), as the server's configuration builds them.
fn stages(list: Vec<StageToml>) -> Stages {
    let mut stages: Vec<Stage> = Vec::with_capacity(list.len());
    for s in list {
        let name = StageName::parse(&s.name).expect("stage name");
        let stage = Stage::new(name.clone(), s.pushable);
        let Some(previous) = stages.last() else {
            stages.push(stage);
            continue;
        };
        let from = s.from.map_or_else(|| previous.name().clone(), |f| StageName::parse(&f).expect("`from`"));
        let windows = s.windows.iter().map(|w| ChangeWindow::parse(w).expect("change window")).collect();
        let gates = Gates {
            from,
            attestations: s.attestations,
            policy: s.policy.map_or_else(|| DEFAULT_POLICY.to_owned(), |p| p.display().to_string()),
            approvals: s.approvals,
            windows,
            freeze: s.freeze,
        };
        let earlier: Vec<&StageName> = stages.iter().map(Stage::name).collect();
        gates.validate(&name, &earlier).unwrap_or_else(|e| panic!("stage `{name}`: {e}"));
        stages.push(stage.with_gates(gates));
    }
    Stages::new(stages).expect("stages")
}

/// The policy bundles the stages name: `default` from `policy.bundle` (or the default library),
/// and each other directory a stage names.
fn bundles(default_dir: Option<&Path>, stages: &Stages) -> Vec<LoadedBundle> {
    let default = match default_dir {
        Some(dir) => Bundle::load_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
        None => airlock_policy::default_bundle().expect("default policy library"),
    };
    let mut bundles = vec![LoadedBundle {
        label: DEFAULT_POLICY.to_owned(),
        source: default_dir.map_or_else(|| "<default library>".to_owned(), |d| d.display().to_string()),
        bundle: default,
        embedded: default_dir.is_none(),
        stages: Vec::new(),
    }];
    for stage in stages.iter() {
        let Some(gates) = stage.gates() else { continue };
        if let Some(loaded) = bundles.iter_mut().find(|b| b.label == gates.policy) {
            loaded.stages.push(stage.name().to_string());
            continue;
        }
        let bundle = Bundle::load_dir(Path::new(&gates.policy)).unwrap_or_else(|e| panic!("{}: {e}", gates.policy));
        bundles.push(LoadedBundle {
            label: gates.policy.clone(),
            source: gates.policy.clone(),
            bundle,
            embedded: false,
            stages: vec![stage.name().to_string()],
        });
    }
    bundles
}

/// Nobody signs checkpoints here: appends need no answer.
#[derive(Debug)]
struct Unobserved;

impl LogObserver for Unobserved {
    fn appended(&self) {}
}

/// The core's registry, promotion engine and identity over a fresh data directory.
#[derive(Debug)]
pub struct Engine {
    pub registry: Registry,
    pub promoter: Promoter,
    pub identity: Identity,
    pub policies: Arc<PolicySet>,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    uploads: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// An engine configured by `toml` (stages, `[limits]`, `[access]`, `[policy]`), with the
    /// [`PUSHER`] service account.
    pub async fn open(toml_text: &str, clock: ManualClock) -> Engine {
        let config: EngineToml = toml::from_str(toml_text).unwrap_or_else(|e| panic!("engine config: {e}"));
        let stages = config.stages.map_or_else(Stages::default, stages);
        let defaults = RegistryLimits::default();
        let limits = RegistryLimits {
            attestations_per_artifact: config
                .limits
                .attestations_per_artifact
                .unwrap_or(defaults.attestations_per_artifact),
            attestation_bytes_per_artifact: config
                .limits
                .attestation_bytes_per_artifact
                .unwrap_or(defaults.attestation_bytes_per_artifact),
            ..defaults
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::sqlite_store(dir.path()).await;
        let blobs = Arc::new(FsBlobStore::open(dir.path()).expect("blob store opens"));
        let policies = Arc::new(PolicySet::new(bundles(config.policy.bundle.as_deref(), &stages), None));
        let registry =
            Registry::new(stages, limits, store.clone(), blobs, Arc::new(clock.clone()), Arc::new(Unobserved))
                .with_tasks(Arc::new(RuntimeTasks));
        let identity =
            Identity::new(store.clone(), Arc::new(Unobserved), Arc::new(clock.clone()), None, identity_config())
                .expect("identity");
        let persons = PersonRule { fold_subaddress: config.access.fold_subaddress.unwrap_or(true) };
        let promoter = Promoter::new(
            registry.clone(),
            PromoterPorts::of(registry.store(), registry.clock().clone()),
            PromoterConfig {
                policies: policies.clone(),
                release_key: PrivateKey::generate(Algorithm::Ed25519).expect("release key"),
                log_origin: "airlock.test/log".to_owned(),
                verifier_id: "https://airlock.test".to_owned(),
                persons,
            },
        );
        let engine = Engine {
            registry,
            promoter,
            identity,
            policies,
            clock,
            dir,
            uploads: std::sync::atomic::AtomicU64::new(0),
        };
        let roles: Vec<String> = PUSHER_ROLES.iter().map(|r| (*r).to_owned()).collect();
        engine.add_principal(PUSHER, PrincipalKind::ServiceAccount, &roles, None).await;
        engine
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        self.registry.store()
    }

    /// Stores principal `name` holding `roles`, with `email` (a user's, approvals compare people
    /// by it), straight through the store as an operator's setup would leave it.
    pub async fn add_principal(&self, name: &str, kind: PrincipalKind, roles: &[String], email: Option<&str>) {
        let id = PrincipalId::parse(name).expect("principal name");
        let now = airlock_core::ports::Clock::now(&self.clock);
        let record = airlock_core::ports::PrincipalRecord {
            // Stored as identity stores it: trimmed and lowercased.
            email: email.map(|e| e.trim().to_lowercase()),
            ..airlock_core::ports::PrincipalRecord::new(&id, kind, roles, now)
        };
        let event = airlock_core::audit::Event::allowed(
            airlock_core::audit::EventKind::PrincipalCreate,
            &Actor::system(),
            now,
            airlock_core::audit::Subject::default(),
        )
        .with_detail("principal", serde_json::json!(name));
        assert!(self.store().create_principal(&record, &event).await.expect("principal stored"), "`{name}` is new");
    }

    /// Applies a trust root document as `actor`, then re-checks the policy bundles' trust under
    /// it, as applying one through the API does.
    pub async fn put_root(&self, actor: &Actor, document: Bytes) -> Result<u64, RegistryError> {
        let version = self.registry.update_root(actor, document).await?;
        self.policies.recheck(self.registry.trust().current().as_deref());
        Ok(version)
    }

    /// Uploads `bytes` into `repo` as `actor`; returns the blob's digest.
    pub async fn push_blob(&self, actor: &Actor, repo: &RepoName, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let n = self.uploads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = UploadId::parse(&format!("{n:032x}")).expect("upload id");
        let id = self.registry.start_upload(actor, repo, id, "engine-test").await?;
        let digest = Digest::of(bytes);
        self.registry.finish_upload_small(actor, repo, &id, &digest, Bytes::copy_from_slice(bytes)).await?;
        Ok(digest)
    }

    /// Stores `manifest` (of `media_type`) in `repo` under `reference` as `actor`.
    pub async fn push_manifest(
        &self,
        actor: &Actor,
        repo: &RepoName,
        reference: &Reference,
        media_type: &str,
        manifest: Bytes,
    ) -> Result<PutManifest, RegistryError> {
        self.registry.put_manifest(actor, repo, reference, Some(media_type), manifest).await
    }

    /// Pushes `image`'s blobs and its manifest under `tag` as `actor`.
    pub async fn push_image(
        &self,
        actor: &Actor,
        repo: &RepoName,
        image: &Image,
        tag: &str,
    ) -> Result<PutManifest, RegistryError> {
        for blob in image.blobs() {
            self.push_blob(actor, repo, blob).await?;
        }
        let reference = Reference::parse(tag).expect("tag");
        self.push_manifest(actor, repo, &reference, image.media_type(), image.manifest.clone()).await
    }
}

/// The identity configuration of a default `airlock.toml`.
pub fn identity_config() -> IdentityConfig {
    IdentityConfig {
        roles: default_roles(),
        custom_policies: None,
        conflicts: default_conflicts(),
        compatible: default_compatible(),
        api_key_max_days: 90,
        jit_max_duration_secs: 8 * 3600,
        privileged_roles: ["release-approver", "key-admin", "break-glass", "access-admin"]
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
        enrollment_ttl_secs: 3 * 24 * 3600,
    }
}

/// Actor `name`, a service account when it is [`PUSHER`] and a user otherwise.
pub fn actor(name: &str) -> Actor {
    let kind = if name == PUSHER { PrincipalKind::ServiceAccount } else { PrincipalKind::User };
    Actor::authenticated(&PrincipalId::parse(name).expect("principal name"), kind, "engine-test")
}

/// Tasks on the test's runtime, as the server runs them.
#[derive(Debug, Default)]
pub struct RuntimeTasks;

impl airlock_core::ports::Tasks for RuntimeTasks {
    fn spawn(&self, task: futures::future::BoxFuture<'static, ()>) -> futures::future::BoxFuture<'static, ()> {
        let running = tokio::spawn(task);
        Box::pin(async move {
            let _ = running.await;
        })
    }
}
